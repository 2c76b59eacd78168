"""ABC text -> tunes, vocabulary, train/validation split and statistics. numpy only, no torch."""

from __future__ import annotations

import hashlib
import os
import re
import stat
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from core.paths import DefaultCorpusMissing, default_corpus_path
from core.words import plural

if TYPE_CHECKING:
    import numpy as np

DEFAULT_CORPUS_NAME = "irish (mitdeeplearning)"
TUNE_SEPARATOR = "\n\n"
# Per file and per corpus, from memory arithmetic: loading and training the tiny recipe on a
# 100 MB ASCII corpus peaks at ~680 MB above torch's own (6.8 bytes a corpus byte: the text as
# read, its lines and tunes, the joined corpus, the training text and its one-byte ids;
# bench/train_scale.py); the default recipe's two transposed copies (as text, joined, as ids)
# add about 8 more, by arithmetic. At this bound: 1.4-3 GB per training process, which a
# laptop's memory holds with room for the rest.
MAX_CORPUS_BYTES = 200_000_000


class CorpusError(ValueError):
    """A corpus could not be read or holds no tunes; the message says why, for a person."""


class UnknownCharacters(ValueError):
    """Text holds characters that the vocabulary lacks."""

    def __init__(self, unknown: Iterable[str]):
        self.unknown = sorted(set(unknown))
        shown = " ".join(repr(c) for c in self.unknown[:12])
        more = f" and {len(self.unknown) - 12} more" if len(self.unknown) > 12 else ""
        super().__init__(f"characters not in the model's vocabulary: {shown}{more}")


@dataclass(frozen=True)
class TuneChunk:
    """One tune's lines in a text: `start_line` is 1-based; `closed` when a blank line or the
    next tune's X: line ends it (not the end of the text)."""

    text: str
    start_line: int
    closed: bool


_FIELD = re.compile(r"[A-Za-z+]:")  # an information field's start ("+:" continues one)


def is_field_line(line: str) -> bool:
    """An information field's line (T:, M:, w:, ...), not music."""
    return _FIELD.match(line) is not None


def _is_header_block(lines: list[str]) -> bool:
    """A block of comments, directives and fields only, none of them X: or K:: ABC 2.1's file
    header (`%abc-2.1`, `%%pagewidth`, ...) that a blank line parts from the first tune, or a
    comment between tunes. Neither is a tune (a tune's own header has its X: or K: line)."""
    return all(
        line.startswith("%") or (is_field_line(line) and not line.startswith(("X:", "K:")))
        for line in lines
        if line.strip()
    )


def _comments_only(lines: list[str]) -> bool:
    return all(line.startswith("%") for line in lines if line.strip())


def tune_chunks(text: str) -> list[TuneChunk]:
    """The tunes of ABC text with where they stand: blank lines (empty or only spaces, as ABC
    has it) separate them, and so does a tune's X: line right after another tune; line ends
    are normalised to "\\n". A block of comments, directives and fields alone (a file header,
    a comment between tunes) is no tune and left out. core.abc.extract_tunes judges each one;
    split_tunes gives their texts."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines[-1] == "":
        lines.pop()  # the newline that ends the last line is not a blank line
    chunks: list[TuneChunk] = []
    start: int | None = None
    in_tune = False  # the chunk being read has had an X: or a K: line
    for i, line in enumerate([*lines, None]):
        if line is not None and line.strip():
            if start is not None and in_tune and line.startswith("X:"):
                # Collections often run tunes together without the blank line: an X: line
                # can only start a tune, so it ends the one before (a file header, which has
                # neither line, stays with the first tune, as abc2midi reads it).
                chunks.append(TuneChunk("\n".join(lines[start:i]), start + 1, True))
                start = None
            if start is None:
                start, in_tune = i, False
            in_tune = in_tune or line.startswith(("X:", "K:"))
            continue
        if start is not None:
            block, closed = lines[start:i], line is not None
            # Fields cut off by the text's end are kept: a generated tune's header, not yet at
            # its K: line (extract_tunes says it was cut off).
            if not (_is_header_block(block) and (closed or _comments_only(block))):
                chunks.append(TuneChunk("\n".join(block), start + 1, closed))
            start = None
    return chunks


def last_tune(text: str) -> str:
    """The text's last tune (tune_chunks): after a prompt that may hold tunes before it, the
    one a stream wrote; the text itself where it has none."""
    chunks = tune_chunks(text)
    return chunks[-1].text if chunks else text


_TUNE_LINE = re.compile(r"^(?:[A-Za-z]:|.*\|)", re.M)  # a field line, or one with a bar line


def holds_music(block: str) -> bool:
    """A tune, whole or broken: a block of lines with a field line or a bar line. A block of
    words alone, with neither, is a collection's note between its tunes ("See also…"), which
    import, training and `folkgen check` pass over."""
    return _TUNE_LINE.search(block) is not None


def split_tunes(text: str, *, lab: bool = False) -> list[str]:
    """The tunes of ABC text: separated by blank lines (or an X: line right after a tune), the
    last one ending with the text; a block of words alone, with no field line and no bar line
    (a collection's notes between its tunes: "See also…"), is none (it was trained on, and
    counted); one with music and no K: is still a (broken) tune.

    `lab`: exactly as the MIT lab splits its corpus (the default corpus, so that its 817 tunes
    are the seed's): `(^|\\n\\n)(.*?)\\n\\n` with `regex`'s overlapped search, so every tune ends
    at a blank line, a run of three newlines yields the following tune twice (once with a
    leading "\\n"), and text after the last blank line is not a tune (it is usually cut off).
    """
    if not lab:
        return [c.text for c in tune_chunks(text) if holds_music(c.text)]
    starts = [0]
    pos = text.find(TUNE_SEPARATOR)
    while pos >= 0:
        starts.append(pos + 2)
        pos = text.find(TUNE_SEPARATOR, pos + 1)
    tunes = []
    for begin in starts:
        end = text.find(TUNE_SEPARATOR, begin)
        if end >= 0:
            tunes.append(text[begin:end])
    return tunes


@dataclass(frozen=True)
class Vocabulary:
    """Sorted distinct characters with index lookups."""

    chars: tuple[str, ...]

    @classmethod
    def from_text(cls, text: str) -> Vocabulary:
        return cls(tuple(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.chars)

    @cached_property
    def char2idx(self) -> Mapping[str, int]:
        # Made once (a sampler asked for it ten times a tune, 7 us each); shared, so read only.
        return {c: i for i, c in enumerate(self.chars)}

    @property
    def idx2char(self) -> np.ndarray:
        import numpy as np

        return np.array(self.chars)

    def unknown(self, text: str) -> set[str]:
        return set(text) - set(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """Text -> int64 indices, vectorised (no Python loop per character)."""
        import numpy as np

        return self.encode_compact(text).astype(np.int64)

    @property
    def id_dtype(self) -> type[np.unsignedinteger]:
        """The smallest unsigned type that holds every index and one spare (a 'no such
        character' mark): one byte a character for a vocabulary under 256."""
        import numpy as np

        return np.uint8 if len(self.chars) <= 255 else np.uint16  # MAX_VOCAB is 4096

    def encode_compact(self, text: str) -> np.ndarray:
        """Text -> indices of `id_dtype` in one vectorised pass: ASCII text (ABC almost always)
        is read as its bytes through a 128-entry table; other text through its code points."""
        import numpy as np

        dtype = self.id_dtype
        if not text:
            return np.zeros(0, dtype=dtype)
        missing = np.iinfo(dtype).max
        if text.isascii():  # a flag CPython keeps: no scan
            ids = self._ascii_ids[np.frombuffer(text.encode("ascii"), dtype=np.uint8)]
            bad = ids == missing
            if bad.any():
                codes = np.unique(np.frombuffer(text.encode("ascii"), dtype=np.uint8)[bad])
                raise UnknownCharacters(chr(int(c)) for c in codes)
            return ids
        codes32 = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        points = np.array([ord(c) for c in self.chars], dtype=np.uint32)
        idx = np.searchsorted(points, codes32)
        bad = points[np.minimum(idx, len(points) - 1)] != codes32
        if bad.any():
            raise UnknownCharacters(chr(int(c)) for c in np.unique(codes32[bad]))
        return idx.astype(dtype)

    @cached_property
    def _ascii_ids(self) -> np.ndarray:
        """Index by ASCII code (the dtype's largest value: not in the vocabulary)."""
        import numpy as np

        table = np.full(128, np.iinfo(self.id_dtype).max, dtype=self.id_dtype)
        for i, c in enumerate(self.chars):
            if ord(c) < 128:
                table[ord(c)] = i
        table.flags.writeable = False
        return table

    def decode(self, ids: Iterable[int]) -> str:
        chars = self.chars
        return "".join(chars[int(i)] for i in ids)


@dataclass
class Split:
    """A by-tune train/validation split; the texts are tunes joined by blank lines."""

    train_tunes: list[str]
    val_tunes: list[str]
    train_ids: np.ndarray
    val_ids: np.ndarray


NO_TUNES = "no tunes found (tunes are separated by blank lines)"


@dataclass
class Corpus:
    name: str
    tunes: list[str]
    source: Path | None = None
    skipped: list[str] = field(default_factory=list)  # files left out, with the reason

    def __post_init__(self) -> None:
        if not self.tunes:
            raise CorpusError(f"{self.name}: {NO_TUNES}")
        self.text = TUNE_SEPARATOR.join(self.tunes)
        self.vocab = Vocabulary.from_text(self.text)

    def encode(self) -> np.ndarray:
        return self.vocab.encode(self.text)

    @cached_property
    def sha256(self) -> str:
        """The identity of the corpus's text: the same tunes anywhere, wherever the file is."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def identity(self) -> dict[str, str | int]:
        """What a checkpoint records about its corpus: what it is (name, content hash, tunes)
        and the keys its tunes name as they write them (key_spellings), not where it was (a
        path means nothing on another machine)."""
        spelled = [
            v for v in key_spellings(self.tunes).values()
            if KEY_SEPARATOR not in v and len(v) <= MAX_KEY_LENGTH
        ][:MAX_KEY_SPELLINGS]  # fmt: skip
        return {
            "name": self.name, "sha256": self.sha256, "tunes": len(self.tunes),
            "keys": KEY_SEPARATOR.join(spelled),
        }  # fmt: skip

    def is_described_by(self, info: dict[str, str | int]) -> bool:
        """Whether a checkpoint's corpus description is this corpus. Checkpoints from before the
        hash recorded only a name and a path; of those, only the default corpus's name is
        trusted (its file is the same everywhere)."""
        if "sha256" in info:
            return info["sha256"] == self.sha256
        return self.name == DEFAULT_CORPUS_NAME and info.get("name") == DEFAULT_CORPUS_NAME

    def split(
        self, val_fraction: float = 0.1, vocab: Vocabulary | None = None, compact: bool = False
    ) -> Split:
        """Deterministic by-tune split: a tune's side depends only on its text, so duplicates
        (the seed's search yields some tunes twice) always land on the same side. Encoded with
        `vocab` (default: the corpus's own), which must hold every character; as int64, or
        `compact`: the vocabulary's `id_dtype` (a byte a character, what training holds)."""
        vocab = vocab or self.vocab
        threshold = int(val_fraction * 1000)
        train: list[str] = []
        val: list[str] = []
        for tune in self.tunes:
            h = zlib.crc32(tune.strip().encode("utf-8")) % 1000
            (val if h < threshold else train).append(tune)
        if not val or not train:  # tiny corpora: hold out the last tune
            train, val = self.tunes[:-1] or self.tunes, self.tunes[-1:]
        encode = vocab.encode_compact if compact else vocab.encode
        return Split(
            train_tunes=train,
            val_tunes=val,
            train_ids=encode(TUNE_SEPARATOR.join(train)),
            val_ids=encode(TUNE_SEPARATOR.join(val)),
        )


def _megabytes(size: int) -> str:
    return f"{size / 1e6:,.0f} MB"


def _read_bytes(path: Path) -> bytes:
    """A regular file's bytes, up to the corpus bound. Opened without blocking and checked on the
    open file: a FIFO or a device (/dev/zero) is refused, never read."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise CorpusError(
                f"{path}: not a regular file (a device, pipe or socket); "
                "give an .abc file or a folder of them"
            )
        if info.st_size > MAX_CORPUS_BYTES:
            raise CorpusError(
                f"{path}: {_megabytes(info.st_size)} is more than a corpus file may be "
                f"({_megabytes(MAX_CORPUS_BYTES)}); split it or use part of it"
            )
        data = f.read(MAX_CORPUS_BYTES + 1)  # the file may grow after the check
    if len(data) > MAX_CORPUS_BYTES:
        raise CorpusError(f"{path}: more than {_megabytes(MAX_CORPUS_BYTES)}, too large a corpus")
    return data


class NotAbcText(ValueError):
    """A file's bytes are not ABC text; the message says why, for a person."""


def abc_text(path: Path, data: bytes) -> str:
    """An .abc file's text, read the one way every command reads one: UTF-8 (ABC 2.1's
    default), else Windows-1252, the Latin-1 of most older collections (they were refused
    whole for one accented letter); a binary file (a MIDI file or a picture given by mistake)
    says so (NotAbcText)."""
    if b"\x00" in data[:65536]:
        raise NotAbcText(f"{path}: looks like a binary file, not ABC text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        try:  # Latin-1 with curly quotes and dashes where Latin-1 has control codes
            text = data.decode("cp1252")
        except UnicodeDecodeError:  # one of the five bytes Windows-1252 leaves undefined
            text = data.decode("latin-1")
    return text.lstrip("\ufeff")


def _read_abc(path: Path) -> str:
    try:
        return abc_text(path, _read_bytes(path))
    except NotAbcText as e:
        raise CorpusError(str(e)) from None


def load_corpus(path: str | Path | None = None) -> Corpus:
    """The default Irish corpus (seed-compatible), or a user's .abc file or folder of them."""
    if path is None:
        source = default_corpus_path()
        return Corpus(DEFAULT_CORPUS_NAME, split_tunes(_read_abc(source), lab=True), source)
    source = Path(path).expanduser()
    if not source.exists():
        raise CorpusError(f"{source}: no such file or folder")
    if not source.is_dir():  # a file, or something that is refused with the reason
        found = split_tunes(_read_abc(source))
        if not found:  # named by its path, as a file skipped from a folder is
            raise CorpusError(f"{source}: {NO_TUNES}")
        return Corpus(source.name, found, source)
    tunes: list[str] = []
    skipped: list[str] = []
    files = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() == ".abc")
    if not files:
        raise CorpusError(f"{source}: no .abc files in this folder")
    total = sum(f.stat().st_size for f in files)
    if total > MAX_CORPUS_BYTES:
        raise CorpusError(
            f"{source}: its .abc files hold {_megabytes(total)}, more than a corpus may "
            f"({_megabytes(MAX_CORPUS_BYTES)}); use a part of the folder"
        )
    for f in files:
        try:
            found = split_tunes(_read_abc(f))
        except (CorpusError, OSError) as e:
            skipped.append(str(e))
            continue
        tunes.extend(found)
        if not found:  # (left out without a word)
            skipped.append(f"{f}: {NO_TUNES}")
    if not tunes:
        reason = f" ({skipped[0]})" if skipped else ""
        raise CorpusError(f"{source}: no tunes found in {plural(len(files), '.abc file')}{reason}")
    return Corpus(source.name + "/", tunes, source, skipped)


# --- header fields and statistics -------------------------------------------------------------

_MODES = {
    "maj": "major", "ion": "major", "min": "minor", "m": "minor", "aeo": "minor",
    "dor": "Dorian", "phr": "Phrygian", "lyd": "Lydian", "mix": "Mixolydian", "loc": "Locrian",
}  # fmt: skip


_COMMENT_SIGN = re.compile(r"(?<!\\)%")  # a comment's start; \% is a percent sign


def header_field(tune: str, name: str) -> str | None:
    """Value of the first `name:` header line (M, K, T, L…) in a tune, without its comment
    (`K:C % 0 sharps` is C: the Tunes tab showed the comment, and `M:6/8 % jig` read as no
    metre), or None."""
    prefix = name + ":"
    for line in tune.splitlines():
        if line.startswith(prefix):
            return field_value(line[len(prefix) :])
    return None


def field_value(raw: str) -> str:
    """A field line's value as written after its `X:`, without its comment and spaces."""
    if "%" in raw:
        raw = _COMMENT_SIGN.split(raw, 1)[0]
    return raw.strip()


@dataclass(frozen=True)
class Credit:
    """A generated tune's making, as its Z: line says it (`line`), and the prompt it was made
    from (a Z: line typed there is the user's own)."""

    line: str
    prompt: str = ""


def generation_credit(
    model: str, seed: int | None, temperature: float | None, top_k: int | None, prompt: str = ""
) -> Credit:
    """The credit of a tune `model` generated with these settings (credited). The model's name
    is a file's: on one line, its % escaped (ABC's comment sign: the settings after it were
    lost to a reader)."""
    name = " ".join(model.split()).replace("%", "\\%") or "unknown"
    made = [f"model {name}"]
    if seed is not None:
        made.append(f"seed {seed}")
    if temperature is not None:
        made.append(f"temperature {temperature:.15g}")  # as given, not 6 digits of it
    if top_k:
        made.append(f"top-k {top_k}")
    return Credit("generated by folkgen: " + ", ".join(made), prompt)


def credited(text: str, credit: Credit) -> str:
    """The text with its last tune (the one a model wrote after the prompt) credited in one
    Z: line (ABC's transcription field), after its title, in place of the Z: lines the model
    wrote in its header; those on the lines the prompt began are the user's and stay (counted
    in lines: renaming a tune swaps its T: line for one). A model writes the Z: lines of the
    collection it learned from: most of the default corpus's name a tune of it ("Z:
    id:dc-slide-34" is "Where's the Cat"), which a saved or shared tune must not claim to be.
    The tunes of the prompt before it are left as they are."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    chunks = tune_chunks(text)
    if not chunks:
        return text
    lines = text.split("\n")
    start = chunks[-1].start_line - 1
    end = start + chunks[-1].text.count("\n") + 1
    prompt = credit.prompt.replace("\r\n", "\n").replace("\r", "\n")
    typed = prompt.count("\n") + (bool(prompt) and not prompt.endswith("\n"))  # lines it began
    if prompt.split("\n")[-1].strip() == "Z:":  # left for the model to fill: its line
        typed -= 1
    header: list[str] = []
    dropping = False  # a dropped Z: line's continuation (+:) lines go with it
    key = end - start
    for i, line in enumerate(lines[start:end]):
        if line.startswith("K:"):
            key = i
            break
        if line.startswith("+:") and dropping:
            continue
        dropping = line.startswith("Z:") and start + i >= typed
        if not dropping:
            header.append(line)
    # After the title and the user's Z: lines, and after their continuations.
    after = max(
        (i + 1 for i, line in enumerate(header) if line.startswith(("T:", "Z:"))),
        default=next((i + 1 for i, line in enumerate(header) if line.startswith("X:")), 0),
    )
    while after < len(header) and header[after].startswith("+:"):
        after += 1
    header.insert(after, f"Z:{credit.line}")
    return "\n".join([*lines[:start], *header, *lines[start + key :]])


class CreditedStream:
    """A generated tune credited (credited) as it streams: its text is held from the prompt on
    until its header is whole (its K: line ended), then given credited, and what follows as it
    comes. `folkgen generate` prints this: it printed the Z: line the model wrote, and a tune
    copied from there claimed to be the corpus tune it names. The header is a few short lines,
    written in a few milliseconds."""

    def __init__(self, prompt: str, credit: Credit) -> None:
        self._head: str | None = prompt  # held until the header is whole; None: given
        self._credit = credit
        self._looked = 0  # where the lines not yet looked at begin in _head
        self._whole = self._ends_header()

    def start(self) -> str:
        """What to write before the first character: the prompt, if its header is whole."""
        return self._give() if self._whole else ""

    def feed(self, text: str) -> str:
        """What to write now that the model wrote `text` (a character or more)."""
        if self._head is None:
            return text
        self._head += text
        return self._give() if "\n" in text and self._ends_header() else ""

    def end(self) -> str:
        """What is left once the stream ends (a header cut off before its K: line)."""
        return "" if self._head is None else self._give()

    def _ends_header(self) -> bool:
        """A K: line among the lines ended since the last look."""
        head = self._head or ""
        ended = head[self._looked :].split("\n")[:-1]
        self._looked = head.rfind("\n") + 1
        return any(line.startswith("K:") for line in ended)

    def _give(self) -> str:
        head, self._head = self._head or "", None
        return credited(head, self._credit)


# The M: values the sampler's grammar writes (core.abc_grammar): a prompt's other M: (`none`,
# `2/4 3/4`) is left to the model, which then writes a second M: of its own.
METER_VALUES = ("C", "C|", *(f"{n}/{d}" for n in range(1, 17) for d in (1, 2, 4, 8, 16)))
KEY_SEPARATOR = ";"  # between the K: values a checkpoint records
MAX_KEY_SPELLINGS = 200  # K: values a checkpoint records (a corpus uses a few dozen at most)
MAX_KEY_LENGTH = 30  # characters of one ("C# Mixolydian" is 13); with the count, well under
# what a checkpoint may hold (core.checkpoint.MAX_KEYS_TEXT)


def key_spellings(tunes: Iterable[str]) -> dict[str, str]:
    """The keys a corpus's header K: lines name, each with the value its tunes write most for
    it: {"G major": "G Major", "A Dorian": "A Dorian"}. The grammar allows only these keys,
    and a prompt's K: line is read to the model as its corpus writes it ("K:G" and "K:Gmaj" as
    "K:G Major"): written otherwise, the default model began a header of its own after it."""
    written: dict[str, Counter[str]] = {}
    for tune in tunes:
        value = header_field(tune, "K")
        if value is not None:  # the value without its comment ("G % by ear"), as it is read
            written.setdefault(normalize_key(value), Counter())[value.split("%")[0].strip()] += 1
    return {name: counts.most_common(1)[0][0] for name, counts in sorted(written.items())}


def model_key_spellings(info: Mapping[str, str | int], corpus: Corpus | None) -> dict[str, str]:
    """The keys a model's grammar names, as its corpus writes them: from its training corpus
    where that is here (`corpus`, training_corpus's), else as its checkpoint recorded them (a
    model of one's own tunes); {} where none is known (any key). The CLI's and the app's."""
    return key_spellings(corpus.tunes) if corpus is not None else recorded_key_spellings(info)


def recorded_key_spellings(info: Mapping[str, str | int]) -> dict[str, str]:
    """key_spellings as a checkpoint records them (Corpus.identity); {} where it has none."""
    text = info.get("keys")
    values = text.split(KEY_SEPARATOR) if isinstance(text, str) and text else []
    return {normalize_key(v): v for v in values[:MAX_KEY_SPELLINGS] if v.strip()}



def training_corpus(info: dict[str, str | int]) -> Corpus | None:
    """The corpus a checkpoint describes, when it is the default corpus installed here: found by
    what it is (its content hash), never by a path a checkpoint holds."""
    try:
        corpus = load_corpus()
    except (CorpusError, DefaultCorpusMissing, OSError):
        return None
    return corpus if corpus.is_described_by(info) else None


# Clef names a K: line may carry after its key (ABC 2.1, 3.1.14), with an octave shift or not.
_CLEFS = ("treble", "bass", "alto", "tenor", "baritone", "perc")
_SETTING = re.compile(r"[A-Za-z]+=")  # name=value; "=c" is a natural in the key's signature


def key_and_settings(value: str) -> tuple[str, str]:
    """A K: value split into its key (tonic and mode) and the settings after it, which change
    how the tune is drawn or played, not its key: `clef=bass`, `middle=d`, `transpose=-2`, a
    clef's name (ABC 2.1, 3.1.14). "G Dorian clef=bass" -> ("G Dorian", "clef=bass"); a value
    without settings is the key whole (comment and outer spaces taken off)."""
    words = value.split("%")[0].split()
    for i, word in enumerate(words[1:], 1):
        if _SETTING.match(word) or word.lower().rstrip("+-8") in _CLEFS:
            return " ".join(words[:i]), " ".join(words[i:])
    return " ".join(words), ""


@dataclass(frozen=True)
class KeyValue:
    """What a K: value says, read once (read_key): normalize_key names it, and
    core.transpose.parse_key makes a key signature of the exact ones."""

    tonic: str  # the letter in upper case and its accidental: "F#", "Bb", "G"
    mode: str | None  # "major", "minor", "Dorian"…; None when the word names no mode
    rest: str  # what follows the tonic, stripped: the mode word and anything after it
    exact: bool  # an upper-case tonic, at most one word, and that word a mode: nothing else

    @property
    def name(self) -> str:
        return f"{self.tonic} {self.mode}" if self.mode else f"{self.tonic} {self.rest}"


@lru_cache(maxsize=1024)  # a corpus or the grammar reads the same few values again and again
def read_key(value: str) -> KeyValue | None:
    """The one reader of K: values; None without a tonic letter. Mode words as ABC has them
    (their first three letters, any case; 'm' is minor); names go on leniently (a word starting
    with 'm' reads as minor) but only an exact value counts for a key signature."""
    text = value.split("%")[0].strip()
    if not text or text[0].upper() not in "ABCDEFG":
        return None
    tonic, rest = text[0].upper(), text[1:]
    if rest[:1] in ("#", "b"):
        tonic, rest = tonic + rest[0], rest[1:]
    rest = rest.strip()
    word = rest.split(" ")[0].lower() if rest else ""
    if not word:
        return KeyValue(tonic, "major", rest, text[0].isupper())
    exact_mode = _MODES.get(word[:3]) if len(word) >= 3 else _MODES.get(word)
    mode = _MODES.get(word[:3]) or _MODES.get(word[:1])
    exact = text[0].isupper() and rest.isalpha() and exact_mode is not None
    return KeyValue(tonic, mode, rest, exact)


def normalize_key(value: str) -> str:
    """'D Major' / 'Ador' / 'Em' / 'G' -> 'D major' / 'A Dorian' / 'E minor' / 'G major'; the
    settings after a key ('G clef=bass') are no part of its name."""
    key = read_key(key_and_settings(value)[0])
    return key.name if key is not None else value.split("%")[0].strip() or "?"


@dataclass
class CorpusStats:
    name: str
    tunes: int
    characters: int
    vocabulary: list[tuple[str, int]]  # every character with its count, most common first
    meters: list[tuple[str, int]]
    keys: list[tuple[str, int]]  # by name ('D major'), spellings counted together
    written_keys: list[tuple[str, int]]  # K: values as the tunes write them ('D', 'Dmaj')
    length_min: int
    length_max: int
    length_mean: float
    length_histogram: list[tuple[int, int]]  # (bucket start, tunes)

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "tunes": self.tunes,
            "characters": self.characters,
            "vocabulary_size": len(self.vocabulary),
            "vocabulary": dict(self.vocabulary),
            "meters": dict(self.meters),
            "keys": dict(self.keys),
            "length": {
                "min": self.length_min,
                "max": self.length_max,
                "mean": round(self.length_mean, 1),
                "histogram": [list(b) for b in self.length_histogram],
            },
        }


def _count(values: Sequence[str | None]) -> list[tuple[str, int]]:
    return Counter(v if v else "?" for v in values).most_common()


COUNT_SLICE = 1 << 20  # characters counted at a time (a C call that holds the interpreter)


def compute_stats(corpus: Corpus, buckets: int = 10) -> CorpusStats:
    """In plain Python: the app computes these on a thread as it starts, and numpy's import
    (~50 ms of that thread) held the interpreter from the first keys."""
    lengths = [len(t) for t in corpus.tunes]
    counts: Counter[str] = Counter()
    for start in range(0, len(corpus.text), COUNT_SLICE):  # one call held other threads for all
        counts.update(corpus.text[start : start + COUNT_SLICE])  # of it (~0.5 s for 20 MB)
    # Most common first; a tie in the vocabulary's order (a stable sort).
    vocabulary = sorted(((c, counts[c]) for c in corpus.vocab.chars), key=lambda cn: -cn[1])
    # Buckets of whole lengths, as many as fit up to `buckets` (float edges cut to ints named
    # ranges that ran backwards and repeated for a corpus of a few tunes); the last bucket ends
    # past the longest tune.
    low, high = min(lengths), max(lengths)
    width = -(-(high - low + 1) // buckets)  # ceiling division
    hist = [0] * (-(-(high - low + 1) // width))
    for n in lengths:
        hist[(n - low) // width] += 1
    keys = [header_field(t, "K") for t in corpus.tunes]
    return CorpusStats(
        name=corpus.name,
        tunes=len(corpus.tunes),
        characters=len(corpus.text),
        vocabulary=vocabulary,
        meters=_count([header_field(t, "M") for t in corpus.tunes]),
        keys=_count([normalize_key(k) if k else None for k in keys]),
        written_keys=_count(keys),
        length_min=low,
        length_max=high,
        length_mean=sum(lengths) / len(lengths),
        length_histogram=[(low + width * i, n) for i, n in enumerate(hist)],
    )
