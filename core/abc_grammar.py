"""Which characters ABC syntax allows next: a character-level automaton for grammar-aware sampling.

The sampler sets the logits of forbidden characters to -inf before its usual tempered, top-k
draw, so a tune stays an exact sample from the model's distribution renormalised over what the
grammar allows. The grammar is the practical subset of ABC 2.1 that the Irish corpus uses, with
the rules abc2midi enforces (found by sampling, checking and tightening):

* header: `X:` digits first; then `T:` (title characters), `Z:` (anything), `M:` (C, C| or n/d
  with d a power of two), `L:` (1/d), in any order; `K:` (tonic, optional # or b, optional
  mode word) ends the header;
* body lines: notes `[_^=]*[A-Ga-g][,']*` with a length from a fixed set (2, 3, /, 3/2 ...),
  rests `z`, bar lines `|` `||` `|]` `:|` `|:` `::`, endings `[1` `|1` `[2` `:|2`, tuplets `(2`
  to `(9` (not nested), ties `-` (the next note has the same spelling), broken rhythm `>` `<`
  between two notes or rests of the same written length (not chained), grace notes `{ag}`
  (where the vocabulary has braces), guitar chords `"Am7"` with names abc2midi knows, `!` only
  right after a bar line at the end of a line, `K:` `M:` `L:` lines; chords `[CEG]` and slurs
  `(...)` only when asked for (see AbcGrammar);
* repeats as abc2midi plays them: a first ending only where no `:|` has been played since the
  tune start, a `|:` or the end of a second ending; a second ending only right after the `:|`
  that closes a first ending; a first ending closes with `:|`; `|:` not twice without a `:|`;
* the blank line that ends a tune only outside a first ending, with no `|:` left open, no slur
  open, and some music written; chords, grace notes and guitar chords close before a line ends.

Each state is a small hashable key. A state's mask and its transitions for every character are
computed once, on first visit, and cached, so a step costs a list lookup. A character that the
grammar forbids (a prompt that breaks it, or a caller that ignores the mask) moves the stream to
a free state that allows everything until the next line, where the grammar picks up again.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np

from core.corpus import Vocabulary

NOTE_LETTERS = "ABCDEFGabcdefg"
ACCIDENTALS = ("", "^", "^^", "_", "__", "=")
DIGITS = "0123456789"

# Note lengths (as written after a note, multiples of L:). The corpus uses 2 3 4 6 / 3/2.
LENGTHS = (
    "", "2", "3", "4", "5", "6", "7", "8", "12", "16",
    "/", "//", "/2", "/4", "/8", "3/", "3/2", "3/4", "5/2", "7/2",
)  # fmt: skip
MAX_OCTAVE_MARKS = 2
MAX_CHORD_NOTES = 4
MAX_X_DIGITS = 6

MODES = (
    "Major", "Minor", "Dorian", "Mixolydian", "Lydian", "Phrygian", "Locrian", "Aeolian", "Ionian",
)  # fmt: skip
TONICS = tuple(t + a for t in "ABCDEFG" for a in ("", "#", "b"))
KEY_VALUES = tuple(
    lead + tonic + mode
    for lead in ("", " ")
    for tonic in TONICS
    for mode in ("", *(" " + m for m in MODES))
)
METER_VALUES = ("C", "C|", *(f"{n}/{d}" for n in range(1, 17) for d in (1, 2, 4, 8, 16)))
UNIT_VALUES = tuple(f"1/{d}" for d in (1, 2, 4, 8, 16, 32))
# Guitar chord names abc2midi knows (a subset), after a root A-G with an optional # or b.
CHORD_TYPES = ("", "m", "7", "m7", "maj7", "M7", "6", "m6", "9", "dim", "dim7", "aug", "sus4")  # fmt: skip
GUITAR_CHORDS = tuple(t + a + c for t in "ABCDEFG" for a in ("", "#", "b") for c in CHORD_TYPES)

TITLE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 '-.,")
# Header fields: X (first), K (last), T and Z with free text, M and L with enumerated values.
# Other fields (C: R: ...) are left out: the corpus has none, and a model only writes them when
# the field it meant is not allowed, so they would only hold its stray text.
FREE_TEXT_FIELDS = "TZ"
ENUM_FIELDS = {"M": METER_VALUES, "L": UNIT_VALUES, "K": KEY_VALUES}
BODY_FIELDS = "KML"  # fields a body line may hold (abc2midi rejects most others there)

# Repeat states, as abc2midi plays repeats.
R_OPEN = 0  # a first ending may start (tune start, after |: or ::, after a second ending)
R_PLAYED = 1  # a :| was played since: a first ending would need a |: first
R_FIRST = 2  # inside a first ending: it must close with :|
R_FIRST_DONE = 3  # just after the :| that closed a first ending: a second ending may start
R_SECOND = 4  # inside a second ending: it closes at || |] :| or |:


class _Words:
    """A finite set of strings as a prefix table: what may follow a prefix, and is it a word."""

    def __init__(self, words: Iterable[str]):
        self.words = frozenset(words)
        nxt: dict[str, set[str]] = {}
        for w in self.words:
            for i in range(len(w) + 1):
                nxt.setdefault(w[:i], set())
                if i < len(w):
                    nxt[w[:i]].add(w[i])
        self.next: dict[str, frozenset[str]] = {p: frozenset(s) for p, s in nxt.items()}

    def extends(self, prefix: str, ch: str) -> bool:
        return ch in self.next.get(prefix, ())

    def complete(self, word: str) -> bool:
        return word in self.words


_LEN = _Words(LENGTHS)
_PITCH = _Words(
    a + n + ("," if n.isupper() else "'") * k
    for a in ACCIDENTALS
    for n in NOTE_LETTERS
    for k in range(MAX_OCTAVE_MARKS + 1)
)
_ENUM = {f: _Words(v) for f, v in ENUM_FIELDS.items()}
_GCHORD = _Words(GUITAR_CHORDS)
_NOTE_START = frozenset(NOTE_LETTERS + "^_=")

# A lexical state is a tuple whose first item names it; the others, per name:
#   S                          tune start (X: next)
#   HL                         header line start
#   HF, field                  after a field letter (":" next)
#   HV, field, progress        in a field value (progress: the value so far, or "1" once a free
#                              text field holds a non-space character)
#   BL                         body line start
#   BF, field                  after K, M or L at a body line start (":" next)
#   N, prev                    between tokens in the body; prev: what came just before
#                              (bar, sp, note, chord, end, gch, bol, other)
#   P, sofar, need_pitch, need_len, ctx       pitch of a note so far
#   L, kind, pitch, sofar, need_len, ctx      length of a note (kind n) or rest (kind r) so far
#   TIE, pitch, barred         after "-": the same pitch next (a single bar line may come first)
#   BR, length                 after ">" or "<": a note or rest of that length next
#   TP / TN                    after "(" / after "(n": notes next
#   LB                         after "[" in the body: an ending number or a chord
#   IN, bracket, count         inside a chord "[" or grace group "{", count notes so far
#   CE, sofar                  length of a chord after "]"
#   GE                         after a grace group: its note next
#   G, sofar                   inside a guitar chord
#   PI / CO / CP               after "|" / ":" / ":|"
#   BANG                       after a line-end "!": newline next
#   F                          free: anything, until the next newline
# ctx of a note: ("", 0) in the body, ("[", count) in a chord, ("{", count) in a grace group.


class _Key(NamedTuple):
    sec: str  # S tune start, H header, B body
    rep: int  # repeat state (R_*)
    pend: int  # 1 while a |: waits for its :|
    slur: int  # 1 while a slur is open
    nb: int  # 1 once the body holds a note, rest or chord
    tup: int  # notes still to come in the current tuplet
    lex: tuple[object, ...]


_START = _Key("S", R_OPEN, 0, 0, 0, 0, ("S",))


class GrammarState:
    """One stream's place in the grammar (an index into the grammar's state table)."""

    __slots__ = ("sid",)

    def __init__(self, sid: int):
        self.sid = sid

    def copy(self) -> GrammarState:
        return GrammarState(self.sid)


class AbcGrammar:
    """Masks of the characters ABC allows next, for a model's vocabulary.

    start(prompt) -> state; mask(state) -> bool (V,), never all False; advance(state, ch).

    `chords` allows chords `[CEG]` and `slurs` slurs `(...)`; both are off by default because
    the Irish corpus has neither. After "[" its model means an ending: where none may start, a
    chord would only hold the notes it was pushed into. And it never learnt to close a slur:
    one opened by chance keeps the tune from ending until the length limit cuts it off."""

    def __init__(self, vocab: Vocabulary, *, chords: bool = False, slurs: bool = False):
        self.vocab = vocab
        self.chars: tuple[str, ...] = tuple(vocab.chars)
        self.char2idx = vocab.char2idx
        self._ids: dict[_Key, int] = {}
        self._keys: list[_Key] = []
        self._next: list[list[int] | None] = []  # per state: next state id for every character
        self._masks = np.zeros((64, len(self.chars)), dtype=bool)
        self.chords = chords
        self.slurs = slurs
        self._lock = threading.Lock()  # the table grows; samplers may run in worker threads
        self._start_id = self._id(_START)

    # --- public API ------------------------------------------------------------------------

    def start(self, prompt: str = "") -> GrammarState:
        """The state after reading `prompt` (the sampler's prompt, usually "X:")."""
        state = GrammarState(self._start_id)
        for ch in prompt:
            self.advance(state, ch)
        return state

    def mask(self, state: GrammarState) -> np.ndarray:
        """Characters allowed next, as a bool array over the vocabulary (never all False)."""
        if self._next[state.sid] is None:
            self._build(state.sid)
        return self._masks[state.sid]

    def masks(self, states: Sequence[GrammarState]) -> np.ndarray:
        """Masks of many streams at once, (len(states), V)."""
        sids = [s.sid for s in states]
        for sid in sids:
            if self._next[sid] is None:
                self._build(sid)
        return self._masks[sids]

    def advance(self, state: GrammarState, ch: str) -> None:
        """Move past `ch`. A character the mask forbids moves the stream to the free state."""
        row = self._next[state.sid]
        if row is None:
            row = self._build(state.sid)
        i = self.char2idx.get(ch)
        if i is not None:
            state.sid = row[i]
            return
        key = self._keys[state.sid]  # a character outside the vocabulary (prompts only)
        with self._lock:
            state.sid = self._id(self._fallback(key, ch))

    def allows(self, state: GrammarState, ch: str) -> bool:
        i = self.char2idx.get(ch)
        return i is not None and bool(self.mask(state)[i])

    def accepts(self, text: str, prompt: str = "") -> bool:
        """Whether every character of `text` is allowed in turn after `prompt`."""
        return self.first_rejection(text, prompt) is None

    def first_rejection(self, text: str, prompt: str = "") -> int | None:
        """Index of the first character of `text` the grammar forbids, or None."""
        state = self.start(prompt)
        for i, ch in enumerate(text):
            if not self.allows(state, ch):
                return i
            self.advance(state, ch)
        return None

    def is_free(self, state: GrammarState) -> bool:
        """Whether the stream left the grammar (and allows anything until the next line)."""
        return self._keys[state.sid].lex[0] == "F"

    @property
    def states_seen(self) -> int:
        return len(self._keys)

    # --- the state table -------------------------------------------------------------------

    def _id(self, key: _Key) -> int:
        """The id of a state, registering it (its row is built on first use). Under the lock."""
        sid = self._ids.get(key)
        if sid is None:
            sid = self._ids[key] = len(self._keys)
            self._keys.append(key)
            self._next.append(None)
        return sid

    def _build(self, sid: int) -> list[int]:
        """A state's mask and its successor for every character."""
        with self._lock:
            row = self._next[sid]
            return row if row is not None else self._build_locked(sid)

    def _build_locked(self, sid: int) -> list[int]:
        key = self._keys[sid]
        targets: list[_Key | None] = [self._step(key, ch) for ch in self.chars]
        if all(t is None for t in targets):  # never leave a stream with nothing to draw
            targets = [self._free(key)] * len(self.chars)
        allowed = np.array([t is not None for t in targets])
        row = [
            self._id(t if t is not None else self._fallback(key, ch))
            for ch, t in zip(self.chars, targets, strict=True)
        ]
        while sid >= len(self._masks):
            self._masks = np.concatenate([self._masks, np.zeros_like(self._masks)])
        self._masks[sid] = allowed
        self._next[sid] = row
        return row

    def _fallback(self, key: _Key, ch: str) -> _Key:
        return self._after_free_newline(key) if ch == "\n" else self._free(key)

    # --- the automaton -----------------------------------------------------------------------

    @staticmethod
    def _free(key: _Key) -> _Key:
        return key._replace(sec="H" if key.sec == "S" else key.sec, lex=("F",))

    @staticmethod
    def _after_free_newline(key: _Key) -> _Key:
        if key.sec == "B":
            return key._replace(rep=R_OPEN, pend=0, slur=0, tup=0, lex=("BL",))
        return key._replace(sec="H", lex=("HL",))

    def _step(self, key: _Key, ch: str) -> _Key | None:
        lex = key.lex
        kind = lex[0]
        if kind == "N":
            return self._neutral(key, ch, str(lex[1]))
        if kind == "P":
            return self._pitch(key, ch, *lex[1:])  # type: ignore[arg-type]
        if kind == "L":
            return self._length(key, ch, *lex[1:])  # type: ignore[arg-type]
        handler = getattr(self, "_st_" + str(kind))
        result: _Key | None = handler(key, ch)
        return result

    # header

    def _st_S(self, key: _Key, ch: str) -> _Key | None:
        if ch == "X":
            return key._replace(lex=("HF", "X"))
        if ch == "\n":
            return key
        return None

    def _st_HL(self, key: _Key, ch: str) -> _Key | None:
        if ch in FREE_TEXT_FIELDS or ch in ENUM_FIELDS:
            return key._replace(lex=("HF", ch))
        return None

    def _st_HF(self, key: _Key, ch: str) -> _Key | None:
        return key._replace(lex=("HV", key.lex[1], "")) if ch == ":" else None

    def _st_BF(self, key: _Key, ch: str) -> _Key | None:
        return self._st_HF(key, ch)

    def _st_HV(self, key: _Key, ch: str) -> _Key | None:
        field, sofar = str(key.lex[1]), str(key.lex[2])
        if ch == "\n":
            if field == "X":
                done = sofar != ""
            elif field in _ENUM:
                done = _ENUM[field].complete(sofar)
            else:
                done = field != "T" or sofar != ""
            if not done:
                return None
            if key.sec == "B":
                return key._replace(lex=("BL",))
            if field == "K":
                return key._replace(sec="B", lex=("BL",))
            return key._replace(lex=("HL",))
        if field == "X":
            ok = ch in DIGITS and len(sofar) < MAX_X_DIGITS and not (sofar == "" and ch == "0")
            return key._replace(lex=("HV", field, sofar + ch)) if ok else None
        if field in _ENUM:
            words = _ENUM[field]
            return key._replace(lex=("HV", field, sofar + ch)) if words.extends(sofar, ch) else None
        if field == "T":
            if ch not in TITLE_CHARS:
                return None
            return key._replace(lex=("HV", field, "1" if ch != " " or sofar else ""))
        return key  # other free text: anything but a newline, state unchanged

    # body

    def _closable(self, key: _Key) -> bool:
        return bool(key.nb) and key.rep != R_FIRST and not key.pend and not key.slur

    def _st_BL(self, key: _Key, ch: str) -> _Key | None:
        if ch == "\n":  # the blank line that ends the tune
            return _START if self._closable(key) else None
        if ch in BODY_FIELDS:
            rep = R_PLAYED if key.rep == R_FIRST_DONE else key.rep
            return key._replace(rep=rep, lex=("BF", ch))
        return self._neutral(key, ch, "bol")

    def _note_start(
        self, key: _Key, ch: str, need_len: str | None, ctx: tuple[str, int]
    ) -> _Key | None:
        """Start a note or rest with `ch` (an accidental, a letter or z)."""
        if key.rep == R_FIRST_DONE:
            key = key._replace(rep=R_PLAYED)
        if key.tup and ctx[0] != "{" and ctx[1] <= 1:  # a note or the first note of a chord
            key = key._replace(tup=key.tup - 1)
        if ch == "z" and ctx[0] == "":
            return key._replace(nb=1, lex=("L", "r", "z", "", need_len, ctx))
        if _PITCH.extends("", ch):
            return key._replace(nb=1, lex=("P", ch, None, need_len, ctx))
        return None

    def _neutral(self, key: _Key, ch: str, prev: str) -> _Key | None:
        if ch == " ":
            return key._replace(lex=("N", "sp"))
        if ch in _NOTE_START or ch == "z":
            return self._note_start(key, ch, None, ("", 0))
        after_ending = prev == "end"
        if ch == "\n":
            if after_ending:
                return None
            return key._replace(lex=("BL",))
        if ch == "!":
            return key._replace(lex=("BANG",)) if prev == "bar" else None
        if ch in "|:":
            if prev in ("bar", "end") or key.rep == R_FIRST_DONE:
                return None
            return key._replace(lex=("PI",) if ch == "|" else ("CO",))
        if ch == "[":  # an ending or a chord must be able to follow
            if self.chords or key.rep in (R_OPEN, R_FIRST_DONE):
                return key._replace(lex=("LB",))
            return None
        rep = R_PLAYED if key.rep == R_FIRST_DONE else key.rep
        if ch == "(":  # a tuplet or a slur must be able to follow
            ok = not key.tup or (self.slurs and not key.slur)
            return key._replace(rep=rep, lex=("TP",)) if ok else None
        if ch == ")":
            if key.slur and prev in ("note", "chord"):
                return key._replace(rep=rep, slur=0, lex=("N", "other"))
            return None
        if ch == '"':
            return key._replace(rep=rep, lex=("G", ""))
        if ch == "{":
            return key._replace(rep=rep, lex=("IN", "{", 0))
        return None

    def _pitch(
        self, key: _Key, ch: str, sofar: str, need_pitch: str | None, need_len: str | None,
        ctx: tuple[str, int],
    ) -> _Key | None:  # fmt: skip
        if _PITCH.extends(sofar, ch) and (need_pitch is None or need_pitch.startswith(sofar + ch)):
            return key._replace(lex=("P", sofar + ch, need_pitch, need_len, ctx))
        if _PITCH.complete(sofar) and (need_pitch is None or need_pitch == sofar):
            return self._length(key, ch, "n", sofar, "", need_len, ctx)
        return None

    def _length(
        self, key: _Key, ch: str, kind: str, pitch: str, sofar: str, need_len: str | None,
        ctx: tuple[str, int],
    ) -> _Key | None:  # fmt: skip
        if _LEN.extends(sofar, ch) and (need_len is None or need_len.startswith(sofar + ch)):
            return key._replace(lex=("L", kind, pitch, sofar + ch, need_len, ctx))
        if not _LEN.complete(sofar) or (need_len is not None and sofar != need_len):
            return None
        bracket, count = ctx
        if bracket:  # a note inside a chord or grace group ends
            return self._st_IN(key._replace(lex=("IN", bracket, count)), ch)
        if ch == "-" and kind == "n":
            return key._replace(lex=("TIE", pitch, 0))
        if ch in "<>" and need_len is None:
            return key._replace(lex=("BR", sofar))
        return self._neutral(key, ch, "note")

    def _st_TIE(self, key: _Key, ch: str) -> _Key | None:
        pitch, barred = str(key.lex[1]), key.lex[2]
        if ch == " ":
            return key
        if ch == "|" and not barred:
            return key._replace(lex=("TIE", pitch, 1))
        if pitch.startswith(ch):
            return key._replace(lex=("P", ch, pitch, None, ("", 0)))
        return None

    def _st_BR(self, key: _Key, ch: str) -> _Key | None:
        if ch in _NOTE_START or ch == "z":
            return self._note_start(key, ch, str(key.lex[1]), ("", 0))
        return None

    def _st_TP(self, key: _Key, ch: str) -> _Key | None:
        if ch in "23456789" and not key.tup:
            return key._replace(tup=int(ch), lex=("TN",))
        if (ch in _NOTE_START or ch == "z") and self.slurs and not key.slur:
            return self._note_start(key._replace(slur=1), ch, None, ("", 0))
        return None

    def _st_TN(self, key: _Key, ch: str) -> _Key | None:
        if ch in _NOTE_START or ch == "z":
            return self._note_start(key, ch, None, ("", 0))
        return None

    def _st_LB(self, key: _Key, ch: str) -> _Key | None:
        if ch == "1":
            return key._replace(rep=R_FIRST, lex=("N", "end")) if key.rep == R_OPEN else None
        if ch == "2":
            return key._replace(rep=R_SECOND, lex=("N", "end")) if key.rep == R_FIRST_DONE else None
        if ch in _NOTE_START and self.chords:
            return self._st_IN(key._replace(lex=("IN", "[", 0)), ch)
        return None

    def _st_IN(self, key: _Key, ch: str) -> _Key | None:
        bracket, count = str(key.lex[1]), int(key.lex[2])  # type: ignore[call-overload]
        if ch in _NOTE_START and count < MAX_CHORD_NOTES:
            return self._note_start(key, ch, None, (bracket, count + 1))
        if count and ch == ("]" if bracket == "[" else "}"):
            return key._replace(lex=("CE", "") if bracket == "[" else ("GE",))
        return None

    def _st_CE(self, key: _Key, ch: str) -> _Key | None:
        sofar = str(key.lex[1])
        if _LEN.extends(sofar, ch):
            return key._replace(lex=("CE", sofar + ch))
        if _LEN.complete(sofar):
            return self._neutral(key, ch, "chord")
        return None

    def _st_GE(self, key: _Key, ch: str) -> _Key | None:
        if ch in _NOTE_START:
            return self._note_start(key, ch, None, ("", 0))
        return None

    def _st_G(self, key: _Key, ch: str) -> _Key | None:
        sofar = str(key.lex[1])
        if _GCHORD.extends(sofar, ch):
            return key._replace(lex=("G", sofar + ch))
        if ch == '"' and _GCHORD.complete(sofar):
            return key._replace(lex=("N", "gch"))
        return None

    def _st_PI(self, key: _Key, ch: str) -> _Key | None:
        rep, pend = key.rep, key.pend
        if ch in "|]":  # || or |]
            if rep == R_FIRST:
                return None
            return key._replace(rep=R_OPEN if rep == R_SECOND else rep, lex=("N", "bar"))
        if ch == ":":  # |:
            if pend or rep == R_FIRST:
                return None
            return key._replace(rep=R_OPEN, pend=1, lex=("N", "bar"))
        if ch == "1":  # |1
            return key._replace(rep=R_FIRST, lex=("N", "end")) if rep == R_OPEN else None
        return self._neutral(key._replace(lex=("N", "bar")), ch, "bar")

    def _st_CO(self, key: _Key, ch: str) -> _Key | None:
        rep = key.rep
        if ch == "|":  # :|
            after = {R_OPEN: R_PLAYED, R_PLAYED: R_PLAYED, R_FIRST: R_FIRST_DONE, R_SECOND: R_OPEN}
            return key._replace(rep=after[rep], pend=0, lex=("CP",))
        if ch == ":":  # ::
            return key._replace(pend=1, lex=("N", "bar")) if rep == R_OPEN else None
        return None

    def _st_CP(self, key: _Key, ch: str) -> _Key | None:
        if ch == "2":  # :|2
            return key._replace(rep=R_SECOND, lex=("N", "end")) if key.rep == R_FIRST_DONE else None
        return self._neutral(key, ch, "bar")

    def _st_BANG(self, key: _Key, ch: str) -> _Key | None:
        return key._replace(lex=("BL",)) if ch == "\n" else None

    def _st_F(self, key: _Key, ch: str) -> _Key | None:
        return self._after_free_newline(key) if ch == "\n" else key
