"""Tunes in generated text, and what the real abc2midi makes of each one. No torch.

abc2midi exits 0 even when it reports errors, and writes a MIDI file for many broken tunes, so
its printed messages are the verdict: a tune is valid when a MIDI file was written and no
`Error in line-char …` line was printed.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import shutil
import signal
import subprocess
import tempfile
import unicodedata
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from core.corpus import header_field, normalize_key, tune_chunks
from core.voice import Voice, original_line, voice_tune
from core.words import plural as plural

ABC2MIDI = "abc2midi"
ABC2MIDI_PACKAGE = "abcmidi"
CHECK_TIMEOUT = 10.0
MIB = 1 << 20
# What a tool may print that is kept; the rest is dropped (a 10 MB file of junk makes abc2midi
# print an error per character).
MAX_OUTPUT = MIB

# abc2midi prints these for nearly every tune with repeats (781 and 794 of the 817 corpus tunes):
# kept apart from the warnings a person is shown.
IGNORABLE_WARNINGS = ("Assuming repeat", "replacing |: with double repeat")
_BAR_WARNING = re.compile(r"\bBar \d+ has .* time units")
_LINE_CHAR = re.compile(r"^(Error|Warning) in line-char (\d+)-(\d+) : ?(.*)$")
_OTHER_ERROR = re.compile(r"^(\*\*error\*\*|%%Error|Internal error|MIDI read/write error)", re.I)
_OTHER_WARNING = re.compile(r"^\*\*warning", re.I)


class SoundError(RuntimeError):
    """Base of the sound path's errors; every message is a sentence for a person."""


class ToolMissing(SoundError):
    """An external program (abc2midi, timidity) is not on PATH."""

    def __init__(self, tool: str, packages: str):
        self.tool = tool
        self.packages = packages
        super().__init__(
            f"{tool} is not installed (or not on PATH); install it with: sudo apt-get install {packages}"
        )


class ToolTimeout(SoundError):
    """An external program ran past its time limit and was killed."""

    def __init__(self, tool: str, timeout: float):
        self.tool = tool
        self.timeout = timeout
        super().__init__(f"{tool} did not finish within {timeout:g} s and was stopped")


class AbcTimeout(ToolTimeout):
    """abc2midi hung on a tune."""


def find_tool(tool: str, packages: str) -> str:
    """Full path of `tool` on the current PATH, or ToolMissing naming the Debian package(s)."""
    path = shutil.which(tool)
    if path is None:
        raise ToolMissing(tool, packages)
    return path


@dataclass(frozen=True)
class Limits:
    """What a child program may use: bytes of address space and bytes per file it writes."""

    memory: int  # RLIMIT_AS
    file_size: int  # RLIMIT_FSIZE: past it the kernel stops the program (SIGXFSZ)


# abc2midi needs under 16 MB and writes a MIDI file of kilobytes; these bound a hostile tune.
ABC2MIDI_LIMITS = Limits(memory=512 * MIB, file_size=64 * MIB)


def _rlimit(kind: int, value: int) -> tuple[int, int]:
    """(soft, hard) at most `value`, and never above the current hard limit (only root may)."""
    hard = resource.getrlimit(kind)[1]
    bound = value if hard == resource.RLIM_INFINITY else min(value, hard)
    return bound, bound


def _limiter(limits: Limits) -> Callable[[], None]:
    """The function the child runs between fork and exec to take on `limits`."""
    memory = _rlimit(resource.RLIMIT_AS, limits.memory)
    file_size = _rlimit(resource.RLIMIT_FSIZE, limits.file_size)

    def apply() -> None:  # in the forked child: values computed above, nothing imported here
        resource.setrlimit(resource.RLIMIT_AS, memory)
        resource.setrlimit(resource.RLIMIT_FSIZE, file_size)

    return apply


def run_tool(
    args: list[str],
    *,
    cwd: Path,
    timeout: float,
    limits: Limits,
    error: type[ToolTimeout] = ToolTimeout,
) -> tuple[int, str]:
    """Run a program (no shell) under `limits` and return (exit status, its output).

    stdout and stderr go to one temporary file, bounded by the file-size limit; the first
    MAX_OUTPUT bytes are read back. The program gets its own process group, killed whole on
    timeout and after it exits: a wrapper script's children must not outlive the run.
    """
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(
            args,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # Safe with threads: the child only calls setrlimit with values made beforehand.
            preexec_fn=_limiter(limits),
        )
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise error(Path(args[0]).name, timeout) from None
        except BaseException:  # Ctrl+C: its own session keeps the child from seeing it
            _kill_group(proc)
            raise
        _kill_group(proc)
        out.seek(0)
        data = out.read(MAX_OUTPUT + 1)
    text = data[:MAX_OUTPUT].decode("utf-8", errors="replace")
    if len(data) > MAX_OUTPUT:
        text += f"\n[output cut at {MAX_OUTPUT // MIB} MB]\n"
    return rc, text


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def stopped_how(tool: str, rc: int, limits: Limits) -> str:
    """Why a tool ended with a non-zero status, for a person."""
    if rc == -signal.SIGXFSZ:
        return f"{tool} was stopped: it wrote a file over {limits.file_size // MIB} MB"
    if rc < 0:
        return f"{tool} stopped with signal {-rc}"
    return f"{tool} stopped with exit status {rc}"


_HIDDEN = ("Cc", "Cf", "Cs")  # control (ESC, BEL, C1), format (bidi overrides), surrogates


def printable(text: str) -> str:
    """`text` without control and format characters, tabs as spaces: tune text and what tools
    echo of it, safe to show on a terminal (an ESC in a T: line could retitle or clear it)."""
    if text.isprintable():
        return text
    return "".join(
        " " if c == "\t" else c for c in text if c == "\t" or unicodedata.category(c) not in _HIDDEN
    )


# --- tunes in text ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tune:
    """One tune of a text. `start_line` is the 1-based line of its first line in that text."""

    text: str
    complete: bool
    incomplete_reason: str = ""  # why it is not a whole tune, for a person; "" when complete
    start_line: int = 1

    def field(self, name: str) -> str | None:
        """Value of the first `name:` header line (X, T, M, L, K…), or None."""
        return header_field(self.text, name)

    @property
    def title(self) -> str:
        """The T: line, printable (no terminal escapes), or "Untitled"."""
        return printable(self.field("T") or "") or "Untitled"

    @property
    def key(self) -> str | None:
        value = self.field("K")
        return normalize_key(value) if value else None

    @property
    def meter(self) -> str | None:
        return self.field("M")


def _body_after_key(lines: list[str]) -> bool:
    for i, line in enumerate(lines):
        if line.startswith("K:"):
            return any(not _is_header(rest) for rest in lines[i + 1 :])
    return False


def _is_header(line: str) -> bool:
    # "X:" style fields; "|:" (a repeat) is music, not a header.
    return len(line) >= 2 and line[1] == ":" and line[0].isalpha()


def extract_tunes(text: str, *, eof_ends_tune: bool = False) -> list[Tune]:
    """Split text into tunes at blank lines.

    A tune is complete when a blank line ends it and it has a K: line with music after it.
    Generated text ends a tune with a blank line, so text that stops without one was cut off by
    the length limit; for a file, pass eof_ends_tune=True: its end closes the last tune.
    """
    tunes: list[Tune] = []
    for chunk in tune_chunks(text):  # the one splitter (core.corpus)
        lines = chunk.text.split("\n")
        if not (chunk.closed or eof_ends_tune):
            reason = "cut off: the text ends before the blank line that closes a tune"
        elif not any(c.startswith("K:") for c in lines):
            reason = "no K: (key) line, so no tune body"
        elif not _body_after_key(lines):
            reason = "no music after the K: line"
        else:
            reason = ""
        tunes.append(Tune(chunk.text, not reason, reason, chunk.start_line))
    return tunes


# --- checking with abc2midi ---------------------------------------------------------------------


@dataclass(frozen=True)
class AbcMessage:
    """One abc2midi message. Line and column are 1-based in the checked text (0: unknown);
    abc2midi places some errors at the end of the tune, and they point at its last line."""

    line: int
    column: int
    text: str

    def __str__(self) -> str:
        where = f"line {self.line}, column {self.column}: " if self.line else ""
        return where + self.text

    def moved(self, lines: int) -> AbcMessage:
        """This message where the text shown has `lines` more lines above the checked one."""
        return replace(self, line=self.line + lines) if self.line else self


@dataclass
class TuneCheck:
    valid: bool
    errors: list[AbcMessage] = field(default_factory=list)
    warnings: list[AbcMessage] = field(default_factory=list)  # what a person should see
    ignored: list[AbcMessage] = field(default_factory=list)  # near-universal repeat notices
    bars: int = 0  # bars as played (repeats expanded), from the MIDI
    duration_seconds: float = 0.0  # from the MIDI
    midi_written: bool = False
    log: str = ""  # abc2midi's whole output

    @property
    def first_error(self) -> AbcMessage | None:
        return self.errors[0] if self.errors else None

    @property
    def bar_warnings(self) -> list[AbcMessage]:
        return [w for w in self.warnings if _BAR_WARNING.search(w.text)]

    @property
    def clean(self) -> bool:
        """Valid, and no warning worth showing (bar lengths against the meter, ignored text…)."""
        return self.valid and not self.warnings

    def validity(self, line_offset: int = 0) -> str:
        """"valid", or "valid, 1 warning (line 4, column 2: Bar 3 has 5 units…)" naming the
        first warning (its line moved by `line_offset`, where the text shown has lines above
        the checked one), so that a person knows what to look at."""
        if self.clean:
            return "valid"
        first = self.warnings[0].moved(line_offset)
        count = len(self.warnings)
        many = "" if count == 1 else "s, the first"
        return f"valid, {count} warning{many} ({first})"

    def summary(self, line_offset: int = 0) -> str:
        """One line for a person: the verdict and the first problem (its line moved by
        `line_offset`, as in `validity`)."""
        if self.valid:
            return f"{self.validity(line_offset)}, {plural(self.bars, 'bar')}, {self.duration_seconds:.0f} s"
        first = self.first_error
        return f"invalid: {first.moved(line_offset) if first else 'abc2midi wrote no MIDI'}"

    def to_dict(self) -> dict[str, object]:
        return {
            "valid": self.valid,
            "clean": self.clean,
            "midi_written": self.midi_written,
            "bars": self.bars,
            "duration_seconds": round(self.duration_seconds, 3),
            "errors": [asdict(m) for m in self.errors],
            "warnings": [asdict(m) for m in self.warnings],
        }


def parse_abc2midi_output(
    output: str, line_offset: int, lines: list[str], inserted: tuple[int, ...] = ()
) -> TuneCheck:
    """abc2midi's printed messages -> errors, warnings and ignored notices (validity unset).
    `inserted`: lines of abc2midi's file that are not in the text (a voice's directives)."""
    check = TuneCheck(valid=False, log=output)
    lines = lines or [""]
    last = len(lines)
    for raw in output.splitlines():
        raw = printable(raw).strip()  # abc2midi echoes tune text: no escapes may pass
        m = _LINE_CHAR.match(raw)
        if m:
            kind, text = m.group(1), m.group(4).strip()
            line = original_line(int(m.group(2)), inserted) - line_offset
            column = int(m.group(3)) + 1
            if line > last:  # reported after the last line: the end of the tune
                line, column = last, len(lines[-1]) + 1
            msg = AbcMessage(max(line, 1), column, text)
            if kind == "Error":
                check.errors.append(msg)
            elif text.startswith(IGNORABLE_WARNINGS) or _repeats_warning(msg, check.warnings):
                check.ignored.append(msg)
            else:
                check.warnings.append(msg)
        elif _OTHER_ERROR.match(raw):
            check.errors.append(AbcMessage(0, 0, raw))
        elif _OTHER_WARNING.match(raw):
            check.warnings.append(AbcMessage(0, 0, raw))
    return check


def _repeats_warning(msg: AbcMessage, warnings: list[AbcMessage]) -> bool:
    """The same bar warning again, as the repeat is played ("… in repeat")."""
    if not msg.text.endswith(" in repeat"):
        return False
    first = AbcMessage(msg.line, msg.column, msg.text.removesuffix(" in repeat"))
    return first in warnings


def midi_facts(midi_path: Path) -> tuple[float, int]:
    """(seconds, bars as played) of a MIDI file; bars follow its time signatures."""
    import mido  # cheap, but only the paths that read MIDI need it

    mid = mido.MidiFile(str(midi_path))
    beat = mid.ticks_per_beat
    bar_ticks = beat * 4.0  # 4/4 until a time signature says otherwise
    bars = 0.0
    since = 0
    for msg in mido.merge_tracks(mid.tracks):
        since += msg.time
        if msg.type == "time_signature":
            bars += since / bar_ticks
            since = 0
            bar_ticks = beat * 4.0 * msg.numerator / msg.denominator
    bars += since / bar_ticks
    return float(mid.length), int(round(bars))


# Directives abc2midi obeys by opening a file the tune names (abc2midi 4.84 source:
# parse_abc_include in parseabc.c; "ptstress" in store.c, reached by %%MIDI, I:MIDI, [I:MIDI …]
# and %%MIDIdef macros). A shared tune could make it read any path: /dev/zero grows it to
# gigabytes, a FIFO hangs it. Matched loosely (case, spacing): a false match only costs a line.
_READS_A_FILE = re.compile(r"abc-include|ptstress", re.I)
# The words of a text field (a title, notes, lyrics) at the line's start, which abc2midi keeps
# as text, unless an inline field is written in them: "T:The abc-include Reel" made the tune
# invalid (its title line left out).
_TEXT_FIELD = re.compile(r"[ABCDFGHNORSTWwZ]:(?!.*\[\s*I\s*:)", re.I)


def _reads_a_file(line: str) -> re.Match[str] | None:
    found = _READS_A_FILE.search(line)
    return None if found is None or _TEXT_FIELD.match(line) else found


@dataclass(frozen=True)
class Prepared:
    """The file abc2midi reads, made from a tune's text."""

    file_text: str
    offset: int  # file line number minus the text's line number
    lines: list[str]  # the text's lines
    refused: list[AbcMessage]  # lines left out because they would make abc2midi read a file
    inserted: tuple[int, ...] = ()  # lines of file_text added by a voice (1-based)


def _prepare(abc_text: str) -> Prepared:
    """The one gate between tune text and abc2midi: X: added when missing, and every line that
    would make abc2midi open a file replaced by an empty comment (line numbers stay)."""
    lines = abc_text.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n").split("\n")
    leading = next(i for i, line in enumerate(lines) if line.strip())
    kept: list[str] = []
    refused: list[AbcMessage] = []
    for number, line in enumerate(lines[leading:], start=leading + 1):
        found = _reads_a_file(line)
        if found:
            refused.append(AbcMessage(number, found.start() + 1, _refusal(found.group())))
            line = "%"
        kept.append(line)
    text = "\n".join(kept) + "\n"
    if text.startswith("X:"):
        return Prepared(text, -leading, lines, refused)
    # abc2midi ignores a tune without its X: line ("No tune processed"); generated text may lack it.
    return Prepared("X:1\n" + text, 1 - leading, lines, refused)


def _refusal(word: str) -> str:
    return (
        f"{word} makes abc2midi read another file, which a tune may not do here: "
        "folkgen left this line out"
    )


def _voiced(prepared: Prepared, voice: Voice | None) -> Prepared:
    """The voice's directives, added after _prepare's cleaning: the cleaning never sees (or
    drops) them, and what the tune itself says on instrument, tempo or transpose is replaced."""
    if voice is None or voice.plain:
        return prepared
    done = voice_tune(prepared.file_text, voice)
    return Prepared(done.text, prepared.offset, prepared.lines, prepared.refused, done.inserted)


def run_abc2midi(
    abc_text: str,
    keep_midi: Path | None = None,
    timeout: float = CHECK_TIMEOUT,
    voice: Voice | None = None,
) -> TuneCheck:
    """Check one tune with abc2midi; its MIDI file (if one was written) is moved to keep_midi.

    Every run of abc2midi goes through here: lines naming files are left out (_prepare) and
    the program runs under ABC2MIDI_LIMITS. `voice` (core.voice) picks the instrument, tempo
    and transpose of the MIDI; messages keep the lines of `abc_text`.
    """
    if not abc_text.strip():
        return TuneCheck(valid=False, errors=[AbcMessage(0, 0, "the tune is empty")])
    exe = find_tool(ABC2MIDI, ABC2MIDI_PACKAGE)
    prepared = _voiced(_prepare(abc_text), voice)
    with tempfile.TemporaryDirectory(prefix="folkgen-abc-") as tmp:
        work = Path(tmp)
        (work / "tune.abc").write_text(prepared.file_text, encoding="utf-8")
        rc, output = run_tool(
            [exe, "tune.abc", "-o", "tune.mid"],
            cwd=work,
            timeout=timeout,
            limits=ABC2MIDI_LIMITS,
            error=AbcTimeout,
        )
        check = parse_abc2midi_output(output, prepared.offset, prepared.lines, prepared.inserted)
        check.errors[:0] = prepared.refused
        made = work / "tune.mid"
        check.midi_written = made.is_file() and made.stat().st_size > 0
        if rc != 0 and not check.errors:
            check.errors.append(AbcMessage(0, 0, stopped_how("abc2midi", rc, ABC2MIDI_LIMITS)))
        if check.midi_written:
            try:
                check.duration_seconds, check.bars = midi_facts(made)
            except (OSError, ValueError, EOFError, KeyError, IndexError) as e:  # mido, bad file
                check.midi_written = False
                check.errors.append(AbcMessage(0, 0, f"abc2midi wrote an unreadable MIDI: {e}"))
            else:
                if keep_midi is not None:
                    shutil.move(made, keep_midi)
    if not check.midi_written and not check.errors:
        check.errors.append(AbcMessage(0, 0, "abc2midi wrote no MIDI for this tune"))
    check.valid = check.midi_written and not check.errors
    return check


def check_tune(abc_text: str, timeout: float = CHECK_TIMEOUT) -> TuneCheck:
    """Check one tune (the text of a single tune, as `extract_tunes` gives) with abc2midi.

    Raises ToolMissing when abc2midi is not installed and AbcTimeout when it hangs.
    """
    return run_abc2midi(abc_text, None, timeout)
