"""Which characters ABC allows next: a character-level automaton for grammar-aware sampling.

The sampler sets the logits of forbidden characters to -inf before its usual tempered, top-k
draw, so a tune stays an exact sample from the model's distribution renormalised over what the
grammar allows. Two layers of rules.

Syntax: the practical subset of ABC 2.1 that the Irish corpus uses, with the rules abc2midi
enforces (found by sampling, checking and tightening):

* header: `X:` digits first; then `T:` (title characters), `Z:` (anything), `M:` (C, C| or n/d
  with d a power of two), `L:` (1/d), in any order; `K:` (tonic, optional # or b, optional
  mode word) ends the header; past HEADER_LIMIT characters the sampler steers it to K:
  (`closing_header`);
* body lines: notes `[_^=]*[A-Ga-g][,']*` with a length from a fixed set (2, 3, /, 3/2 ...),
  rests `z`, bar lines `|` `||` `|]` `:|` `|:` `::`, endings `[1` `|1` `[2` `:|2`, tuplets `(2`
  to `(9` (not nested), ties `-` (the next note has the same spelling), broken rhythm `>` `<`
  between two notes or rests of the same written length (not chained, not across a tuplet's
  end), grace notes `{ag}` (where the vocabulary has braces), guitar chords `"Am7"` with names
  abc2midi knows, `!` only right after a bar line at the end of a line, `K:` `M:` `L:` lines;
  chords `[CEG]` and slurs `(...)` only when asked for (see AbcGrammar);
* repeats as abc2midi plays them: a first ending only where no `:|` has been played since the
  tune start, a `|:` or the end of a second ending; `::` only where none has been played since
  the tune start or a `|:`; a second ending only right after the `:|` that closes a first
  ending; a first ending closes with `:|`; `|:` not twice without a `:|`;
* the blank line that ends a tune only outside first and second endings, with no `|:` left
  open, no slur open, and some music written; chords, grace notes and guitar chords close
  before a line ends.

Music (on by default; `metre`, `form` and `tonic` turn them off), so that core/music_analysis.py
finds every tune right:

* metre: the header gives M: (once, before K:) and at most one L:, making a bar of 1 to 32
  units of L: on a grid of half units; note lengths are the corpus's (1 2 3 4 6 8 12 16 / 3/2).
  The time used in the bar is kept exactly (integer ticks) through notes and rests, broken
  rhythm (both notes), tuplets (the default q as abc2midi has it, by the metre; a tuplet's
  notes all of one written length, as the corpus writes them), chords (first note) and grace
  notes (none). No note, length digit, tuplet or broken pair may overflow the bar or leave it
  unable to end on the grid. A plain bar line comes only when the bar is full, except after a
  part's first bar (a pickup); a bar line that closes a part (`:|` `||` `|]` `|:` `::`, a
  first ending's `:|`, the tune's end) comes after the bar that completes the part's pickup,
  a full one only where it has none (abc2midi plays the pickup again after a :|, and warns of
  a long bar); the tune's first pickup has any length, and every later part's first bar
  completes the bar that closed the part before (full after a full one), as abc2midi counts
  the two as one bar (so no plain `|` comes between them, which abc2midi checks at once).
  Where such a bar's length is set (`lim`), no note overruns it. Body M:
  L: K: lines and endings only between bars; ties stay within a bar. So every bar the
  analyser checks is right, none is too long, and abc2midi finds none wrong.
* form: a part closes when it holds 8 bars (written bars less the pickup, second endings left
  out, as the analyser counts them), and its 8th bar must close it; the first two parts close
  with a repeat (the corpus repeats 93 % of first and 80 % of second parts); a first ending is
  followed by its second ending, of as many bars, which closes with `||` `|]` or `|:` (after
  a `:|` abc2midi plays the part a third time); a tune holds two to four parts (the corpus:
  97 % at most four), and each stream's tune draws how many before it starts, as the corpus's
  tunes have them (`draw_parts`: 85 % two), and ends after that many.
* tonic: a part that could end the tune (the second onwards) ends on the tonic of the key in
  force, held a unit or more. In its last bar the note that ends the bar sounds the tonic (by
  its accidental, else one written earlier in the bar on the same letter and octave, else the
  key signature); no note ends within the bar's last unit except on its end, no tuplet ends
  it; a shorter last bar (completing a pickup) closes only on the tonic. So every tune ends on
  the tonic (the corpus: 76 %).
* keys: with `keys`, K: lines name only those keys (tonic + mode, as normalize_key writes it).
* spaces as the corpus writes them: one between tokens, none at a line's start or end, so a
  model kept from what it wants (the close its part needs) cannot mark time in blank-ish
  lines; and no line starts with a lone note and ":", a space between or not (the analyser
  reads "g:|" as a field, abc2midi "B :|").

Each state is a small hashable key (the lexical place, repeats, the time used in the bar). A
state's mask, its transitions for every character and their effects are computed once, on first
visit, and cached, so a step costs a list lookup. What a key cannot hold without multiplying the
states (the pitch being written, the pickup, the bars of the part, parts so far, the last note
against the tonic, accidentals of the bar) lives in each stream's GrammarState, updated by the
cached effects; the few characters that depend on it (a part's closing bar line, a cadence's
last note, a tied note, the tune's end) are gated per stream, with masks cached per (state,
characters shut). Every gate leaves something to draw, and none leads to a dead end. A
character that the grammar forbids (a prompt that breaks it, or a caller that ignores the mask)
moves the stream to a free state that allows everything until the next line, where the grammar
picks up again; a character only a gate forbids (a prompt closing a part early) is followed.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import threading
from collections.abc import Callable, Container, Iterable, Sequence
from functools import cache, lru_cache
from math import gcd
from operator import attrgetter
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from core.corpus import METER_VALUES, Vocabulary, normalize_key
from core.music_analysis import (
    default_unit,
    note_length,
    parse_meter,
    parse_unit,
    tonic_pitch_class,
    tuplet_factor,
)
from core.transpose import ACCIDENTALS as ACCIDENTAL_OFFSETS
from core.transpose import LETTERS, NATURAL_SEMITONES, parse_key

NOTE_LETTERS = "ABCDEFGabcdefg"
ACCIDENTALS = ("", "^", "^^", "_", "__", "=")
DIGITS = "0123456789"

# Note lengths (as written after a note, multiples of L:). The corpus uses 2 3 4 6 / 3/2.
LENGTHS = (
    "", "2", "3", "4", "5", "6", "7", "8", "12", "16",
    "/", "//", "/2", "/4", "/8", "3/", "3/2", "3/4", "5/2", "7/2",
)  # fmt: skip
# With the metre rule, only the lengths the corpus writes (and longer even ones): a rarer length
# or spelling (3/4, /8, //, /2) would only be where the rule pushed a model that meant another.
MUSIC_LENGTHS = ("", "2", "3", "4", "6", "8", "12", "16", "/", "3/2")
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
UNIT_VALUES = tuple(f"1/{d}" for d in (1, 2, 4, 8, 16, 32))
# Guitar chord names abc2midi knows (a subset), after a root A-G with an optional # or b.
CHORD_TYPES = ("", "m", "7", "m7", "maj7", "M7", "6", "m6", "9", "dim", "dim7", "aug", "sus4")  # fmt: skip
GUITAR_CHORDS = tuple(t + a + c for t in "ABCDEFG" for a in ("", "#", "b") for c in CHORD_TYPES)

# A title's characters: these, and any other letter its corpus writes ("Café", "Ríl"; a title
# without them lost its accented letters).
TITLE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 '-.,")
# Header fields: X (first), K (last), T and Z with free text, M and L with enumerated values.
# Other fields (C: R: ...) are left out: the corpus has none, and a model only writes them when
# the field it meant is not allowed, so they would only hold its stray text.
FREE_TEXT_FIELDS = "TZ"
# Characters a tune's header may take before the sampler steers it to its K: (closing_header):
# five times the Irish corpus's longest header (81).
HEADER_LIMIT = 400
ENUM_FIELDS = {"M": METER_VALUES, "L": UNIT_VALUES, "K": KEY_VALUES}
BODY_FIELDS = "KML"  # fields a body line may hold (abc2midi rejects most others there)

# Repeat states, as abc2midi plays repeats.
R_OPEN = 0  # a first ending may start, and :: (tune start, after |: or ::)
R_PLAYED = 1  # a :| was played since: a first ending would need a |: first
R_FIRST = 2  # inside a first ending: it must close with :|
R_FIRST_DONE = 3  # just after the :| that closed a first ending: a second ending may start
R_SECOND = 4  # inside a second ending: it closes at || |] :| or |:
R_REOPENED = 5  # after a second ending: a first ending may start, :: not (a :| was played)

# Time: integer ticks per unit of L:, exact for halves, broken rhythm, tuplets of 2 to 9 and a
# chord's own length (2^10 * lcm(1..9) / 8).
TICKS = 2**10 * 9 * 5 * 7
GRID = TICKS // 2  # the shortest music length (/): a bar ends on this grid
MAX_BAR_UNITS = 32
PART_BARS = (8,)  # bars a part closes at (the analyser's AABB phrase; see AbcGrammar)
MIN_PARTS = 2
MAX_PARTS = 4  # the corpus: 97 % of tunes; more only run on towards the length limit
REPEAT_PARTS = 2  # leading parts that close with a repeat (:| ::, or their endings)
# How many parts a tune holds, as the default corpus's 801 distinct tunes do (2 to 4 of them:
# 655, 82, 36). Each stream draws its tune's number from this before it starts (`draw_parts`),
# and the grammar ends the tune there: left to itself the model ended a tune after its second
# part about half the time where the corpus does in 82 % of tunes (AABB 33 % against 56 %).
PARTS_PRIOR = {2: 655, 3: 82, 4: 36}
ONE = (1, 1)  # a multiplier as (numerator, denominator)

# What a gate reads of a stream's counts, and what an effect reads or writes before a gate is
# judged: a gated state's mask is remembered by the values of these fields alone, so a close
# gate's memo does not split by the pitch just written (a hit far more often than not).
_FORM_COUNTS = ("pick", "bars", "second", "ending", "parts")
_PITCH_COUNTS = ("pitch", "accs", "sig", "tpc")
_GATE_READS: dict[str, tuple[str, ...]] = {
    "tie": ("tied",), "tie_end": ("tied",), "cad_pitch": _PITCH_COUNTS,
    "cad_note": _PITCH_COUNTS, "cad_rest": ("tonic",), "cad_chord": (),
    "close": (*_FORM_COUNTS, "max_parts", "tonic"), "end": (*_FORM_COUNTS, "tonic"),
}  # fmt: skip
_EFFECT_USES: dict[str, tuple[str, ...]] = {
    "pitch": ("pitch",), "pitch+": ("pitch",), "note": (*_PITCH_COUNTS, "tonic"),
    "tie": ("pitch", "tied"), "bar": (*_FORM_COUNTS, "accs"), "newbar": _FORM_COUNTS,
    "close": (*_FORM_COUNTS, "max_parts"), "first": ("ending",),
    "second": ("second", "ending", "parts"), "key": ("sig", "tpc"), "end": ("max_parts",),
}  # fmt: skip
# A mask as one stream's draw reads it (AbcGrammar.mask_one): the mask, (V,) bool; the same as a
# row, (1, V); a float64 row of -inf where it forbids (the logits' values elsewhere); the one
# character it allows, or -1 where it allows more; and a float64 row of 1 where it allows, 0
# elsewhere (the copy's distribution times it: a bool row costs numpy a cast at every step).
# One per distinct mask (AbcGrammar.masked).
Masked = tuple[np.ndarray, np.ndarray, np.ndarray, int, np.ndarray]
# A getter of the counts, whether the bar's accidentals count too, the pickups and the part's bar
# counts that could let a gated character pass with the mask where none does (see
# _gate_reading), and that mask.
_Reads = tuple[
    Callable[["GrammarState"], tuple[Any, ...]], bool, frozenset[int], frozenset[int], Masked
]
# Gates whose first test is that a short bar completes the pickup (check and bar at 4 and 5),
# and effects that leave the pickup as it is.
_PICKUP_GATES = ("close", "end")
_KEEP_PICK = ("note", "pitch", "pitch+")
UNBUILT = -1  # a state table row's entry for a forbidden character whose fallback is not found yet
UNSTEPPED = -2  # ... for an allowed character of a stored row whose next state is not found yet
_NO_EFFECTS: dict[int, tuple[Any, ...]] = {}  # a row's effects where it has none (never written)
AFTER_NOTE_LIMIT = 1 << 13  # after-note rows remembered before that memo starts over
MEMO_LIMIT = 1 << 17  # gated masks remembered by (state, counts) before the memo starts over

# Where a bar stands, for counting the part's bars.
W_PART, W_FIRST, W_SECOND = 0, 1, 2


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
_MUSIC_LEN = _Words(MUSIC_LENGTHS)
_PITCH = _Words(
    a + n + ("," if n.isupper() else "'") * k
    for a in ACCIDENTALS
    for n in NOTE_LETTERS
    for k in range(MAX_OCTAVE_MARKS + 1)
)
_NOTE_START = frozenset(NOTE_LETTERS + "^_=")
_BODY = ("", 0)  # a note's context in the body (see below)
_BODY_BOL = ("", 0, "bol")  # ... at a line's start, where "g:|" reads as a field line
# Every character a body state between tokens (N), in a note's pitch (P) or length (L) can
# take: pitches, lengths, what follows a note (- < > ] }) and what _neutral starts. A state's
# row skips the rest, about half the vocabulary, each of which would cost a full step to refuse.
_BODY_CHARS = frozenset(NOTE_LETTERS + "^_=z,'" + DIGITS + '/ \n!|:[](){}"-<>')
_BODY_LEX = frozenset("NPL")

# --- time ------------------------------------------------------------------------------------

_LEN_TICKS = {w: int(note_length(w) * TICKS) for w in LENGTHS}
# Per written prefix, the lengths (ticks) of the music lengths it may still become.
_LEN_ENDS = {
    p: tuple(sorted({_LEN_TICKS[w] for w in MUSIC_LENGTHS if w.startswith(p)}))
    for p in _MUSIC_LEN.next
}


def written_with(words: Iterable[str], chars: Container[str]) -> list[str]:
    """The words these characters (a vocabulary's) can write out."""
    return [w for w in words if all(c in chars for c in w)]


def key_values(keys: Iterable[str], chars: Container[str]) -> list[str]:
    """The K: values the grammar writes for these keys (any spelling: "G major", "Gmaj") with
    these characters (a vocabulary's)."""
    wanted = {normalize_key(k) for k in keys}
    return written_with((v for v in KEY_VALUES if normalize_key(v) in wanted), chars)


def _mul(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    n, d = a[0] * b[0], a[1] * b[1]
    g = gcd(n, d)
    return n // g, d // g


def _scale(ticks: int, mul: tuple[int, int]) -> int:
    return ticks * mul[0] // mul[1]


@cache
def _sums(notes: int) -> tuple[int, ...]:
    """The sums, in grid steps and ascending, that `notes` written lengths can make."""
    if notes == 0:
        return (0,)
    steps = {_LEN_TICKS[w] // GRID for w in MUSIC_LENGTHS}
    return tuple(sorted({s + x for s in _sums(notes - 1) for x in steps}))


@lru_cache(maxsize=1 << 16)
def _fits(t: int, bar: int, left: int, tf: tuple[int, int], cad: bool = False) -> bool:
    """Whether a bar at `t` can still end on the grid by `bar`, after the `left` notes an open
    tuplet (factor `tf`) still needs: a bar that cannot is never entered. In a cadence (`cad`:
    the bar that ends the tune's part) the final note lasts a unit or more, so no note ends
    within the last unit but on the bar's end, and no tuplet ends there."""
    if left == 0:
        return t % GRID == 0 and (t == bar or t <= (bar - TICKS if cad else bar))
    limit = bar - TICKS if cad else bar
    for s in _sums(left):
        end = t + _scale(s * GRID, tf)
        if end > limit:
            return False
        if end % GRID == 0:
            return True
    return False


@lru_cache(maxsize=1 << 16)
def _length_fits(
    t: int, bar: int, left: int, tf: tuple[int, int], mul: tuple[int, int], prefix: str,
    first: int = TICKS, cad: bool = False,
) -> bool:  # fmt: skip
    """Whether some length starting with `prefix` (times `first` / TICKS: a chord's first note,
    times `mul`: tuplet and broken rhythm) keeps the bar fillable."""
    return any(
        _fits(t + _scale(first * v // TICKS, mul), bar, left, tf, cad) for v in _LEN_ENDS[prefix]
    )


@cache
def _bar_ticks(meter: str, unit: str) -> int:
    """A bar of `meter` in ticks of `unit`; 0 when the pair makes no bar of 1 to 32 units on the
    grid (M:3/16 with L:1/4), which the header then refuses."""
    m, u = parse_meter(meter), parse_unit(unit)
    if m is None or u is None:
        return 0
    units = m.bar / u
    if (units * TICKS / GRID).denominator != 1 or not 1 <= units <= MAX_BAR_UNITS:
        return 0
    return int(units * TICKS)


def _default_unit(meter: str) -> str:
    return f"1/{default_unit(parse_meter(meter)).denominator}"


@cache
def _tuplet_tf(p: int, meter: str) -> tuple[int, int]:
    f = tuplet_factor(p, None, parse_meter(meter))
    return f.numerator, f.denominator


# --- pitch against the tonic -------------------------------------------------------------------


@cache
def _key_context(value: str) -> tuple[tuple[int, ...], int | None]:
    """A K: value -> (per-letter key signature, tonic pitch class), as the analyser reads it."""
    key = parse_key(value)
    return (key.signature() if key is not None else (0,) * 7), tonic_pitch_class(value)


@cache
def _pitch_parts(pitch: str) -> tuple[int, int | None]:
    """A written pitch -> (diatonic index of letter and octave, explicit accidental or None)."""
    i = len(pitch) - len(pitch.lstrip("^_="))
    letter, marks = pitch[i], pitch[i + 1 :]
    index = LETTERS.index(letter.upper()) + (7 if letter.islower() else 0)
    index += 7 * (marks.count("'") - marks.count(","))
    return index, (ACCIDENTAL_OFFSETS[pitch[:i]] if i else None)


@cache
def _shape(pitch: str) -> str:
    """A written pitch as the pitch table needs it: accidentals and octave marks, the letter only
    as its case. The letter itself lives in the stream (GrammarState.pitch), not in the state."""
    return "".join(("C" if c.isupper() else "c") if c.isalpha() else c for c in pitch)


# A lexical state is a tuple whose first item names it; the others, per name:
#   S                          tune start (X: next)
#   HL                         header line start
#   HF, field                  after a field letter (":" next)
#   HV, field, progress        in a field value (progress: the value so far, or "1" once a free
#                              text field holds a non-space character)
#   BL                         body line start
#   BF, field                  after K, M or L at a body line start (":" next)
#   N, prev                    between tokens in the body; prev: what came just before
#                              (bar, sp, note, chord, end, gch, bol, other; lone: a space
#                              after a line's lone first note: ":" may not come, a newline may)
#   P, shape, tied, need_len, ctx, mul    pitch of a note so far (tied: it repeats a tied pitch)
#   L, kind, sofar, need_len, ctx, mul    length of a note (kind n) or rest (kind r) so far
#   TIE, barred                after "-": the same pitch next (a single bar line may come first)
#   BR, length, mul            after ">" or "<": a note or rest of that length next, scaled by mul
#   TP / TN                    after "(" / after "(n": notes next
#   LB                         after "[" in the body: an ending number or a chord
#   IN, bracket, count, first, mul   inside a chord "[" or grace group "{", count notes so far
#                              (a chord: its first note's length in ticks and its multiplier)
#   CE, sofar, first, mul      length of a chord after "]"
#   GE                         after a grace group: its note next
#   G, sofar                   inside a guitar chord
#   PI, plain, close, filled, check, after   after "|": may the line stay plain, may it close
#                              a part, did the part hold music, the bar's length to check
#                              against the pickup (None: nothing to check), the length a close
#                              sets for the next part's first bar (-1: none, as it was)
#   CO, filled, after / CP     after ":" / ":|"
#   BANG                       after a line-end "!": newline next
#   F                          free: anything, until the next newline
# ctx of a note: ("", 0) in the body, ("[", count, first, mul) in a chord, ("{", count) in a
# grace group. mul: what its written length is multiplied by (tuplet, broken rhythm).


class _Key(NamedTuple):
    sec: str  # S tune start, H header, B body
    rep: int  # repeat state (R_*)
    pend: int  # 1 while a |: waits for its :|
    slur: int  # 1 while a slur is open
    nb: int  # 1 once the body holds a note, rest or chord
    tup: int  # notes still to come in the current tuplet
    lex: tuple[Any, ...]
    meter: str = ""  # M: in force
    unit: str = ""  # L: in force ("" in the header until one is given)
    bar: int = 0  # a bar's length in ticks; 0: no time kept (no metre, or the rule is off)
    t: int = 0  # time used in the current bar in ticks (without a metre: 1 once it has notes)
    tf: tuple[int, int] = ONE  # factor of the open tuplet
    first: int = 1  # 1 in a part's first bar (a pickup may end it anywhere)
    done: int = 0  # 1 once the tune holds its largest number of parts: only its end may come
    last: int = 0  # 1 in a bar that must end its part (its 8th, a second ending's last); 2 if
    # that part could end the tune: a cadence, its last note the tonic (a unit or longer)
    ends: int = 0  # 1 once the tune has had endings: a later :| needs a |: of its own, since
    # abc2midi then neither adds one nor ends its passes (it plays from the tune's start again)
    tl: int = 0  # in a tuplet: 1 + the index in LENGTHS of its notes' written length (all
    # alike, as the corpus writes them and abc2midi wants); -1 while its first note sets it
    lim: int = 0  # the length this bar must have, where it is not the metre's (0): a part's
    # first bar after a part closed short (what completes that bar), its last bar where the
    # part has a pickup (what the pickup completes, as abc2midi plays a repeat)


_START = _Key("S", R_OPEN, 0, 0, 0, 0, ("S",))
# A gate: a condition on what a stream counted, for one character of a state. An effect: what a
# character does to those counts. Both are small tuples led by their kind (see _gate_open and
# _apply).
Gate = tuple[Any, ...]
Effect = tuple[Any, ...]
# A character's step from a state: the next state (None: forbidden), its effects and gates.
_Step = tuple["_Key | None", tuple[Effect, ...], tuple[tuple[int, Gate], ...]]
# A state's gated characters, each with its gates and how many of its effects come first.
_RowGates = tuple[tuple[int, tuple[tuple[int, Gate], ...]], ...]


# A stored row: next state ids per character, the mask, effects by character, gates.
StoredRow = tuple[list[int], np.ndarray, dict[int, tuple[Effect, ...]], _RowGates]


class TableSnapshot(NamedTuple):
    """A grammar's built rows as plain values (core/grammar_table.py stores them): the states
    with a row, by their index here, and each row with its next states as those indices
    (UNBUILT: forbidden, UNSTEPPED: allowed, to a state without a row), effects and gates."""

    keys: list[_Key]
    rows: list[list[int]]
    effects: list[dict[int, tuple[Effect, ...]]]
    gates: list[_RowGates]


class StoredTable(NamedTuple):
    """A stored table as a grammar adopts it: its states (ids 0 to len(keys) - 1, each with a
    row), a function that gives a state's row when a stream first comes to it, and the states
    that most tunes visit, whose rows AbcGrammar.read_ahead reads before any tune asks."""

    keys: list[_Key]
    row: Callable[[int], StoredRow]
    hot: Sequence[int] = ()


def _where(rep: int) -> int:
    return W_FIRST if rep == R_FIRST else W_SECOND if rep == R_SECOND else W_PART


def _end(key: _Key) -> int:
    """Where the bar being written ends, in ticks: its set length, else the metre's bar."""
    return key.lim or key.bar


def _timed(ctx: tuple[Any, ...]) -> bool:
    """A note that takes time: in the body, or a chord's first note."""
    timed: bool = ctx[0] == "" or (ctx[0] == "[" and ctx[1] == 1)
    return timed


class GrammarState:
    """One stream's place in the grammar: an index into the grammar's state table, and what the
    rules count along the way."""

    __slots__ = (
        "sid", "bars", "ending", "second", "parts", "pick", "tonic", "sig", "tpc", "accs",
        "pitch", "tied", "max_parts",
    )  # fmt: skip

    def __init__(self, sid: int, max_parts: int = MAX_PARTS):
        self.sid = sid
        self.max_parts = max_parts  # the parts this tune holds at most (its end comes after them)
        self.bars = 0  # counted bars of the current part
        self.ending = 0  # bars of the part's first ending
        self.second = 0  # bars of its second ending so far
        self.parts = 0  # parts closed in this tune
        self.pick: int | None = None  # the part's pickup in ticks (0: none; None: not yet known)
        self.tonic = False  # the last note sounds the tonic
        self.sig: tuple[int, ...] = (0,) * 7  # key signature in force, per letter C..B
        self.tpc: int | None = None  # its tonic's pitch class
        self.accs: dict[int, int] = {}  # accidentals written in this bar, per letter and octave
        self.pitch = ""  # the pitch being (or last) written
        self.tied = ""  # the pitch a tie waits for

    def copy(self) -> GrammarState:
        # Field by field (a loop of getattr/setattr cost 5 us, and a gate's probe is one copy).
        new = GrammarState.__new__(GrammarState)
        new.sid, new.max_parts, new.bars = self.sid, self.max_parts, self.bars
        new.ending, new.second, new.parts = self.ending, self.second, self.parts
        new.pick, new.tonic = self.pick, self.tonic
        new.sig, new.tpc, new.accs = self.sig, self.tpc, dict(self.accs)
        new.pitch, new.tied = self.pitch, self.tied
        return new


def _completes_pickup(state: GrammarState, check: int | None, bar: int) -> bool:
    """Whether a part's last bar (`check`: its length; None: nothing to check) completes its
    pickup: a full bar only where it has none, as abc2midi plays the pickup again after :|."""
    return check is None or check == bar - (state.pick or 0)


def _parts_cdf() -> list[float]:
    counts = np.array(list(PARTS_PRIOR.values()), dtype=np.float64)
    cdf = (counts / counts.sum()).cumsum()
    return [float(c) for c in cdf / cdf[-1]]


_PARTS_CDF = _parts_cdf()


def draw_parts(rng: np.random.Generator) -> int:
    """A tune's number of parts, drawn as the corpus has them (PARTS_PRIOR): the draw that
    `rng.choice(parts, p=...)` makes (its CDF, one uniform, the same float steps), without its
    checks of p, which cost a tune's start ~60 us of the grammar's ~90 there (issue 14)."""
    return list(PARTS_PRIOR)[bisect.bisect_right(_PARTS_CDF, rng.random())]


def _could_end(state: GrammarState) -> bool:
    """Whether the part being written could be the tune's last (the second part onwards)."""
    return state.parts + 1 >= MIN_PARTS


def _sounding(state: GrammarState, pitch: str) -> int:
    """The pitch class a written pitch sounds here: its accidental, else one written earlier in
    the bar on the same letter and octave, else the key signature."""
    index, acc = _pitch_parts(pitch)
    offset = acc if acc is not None else state.accs.get(index, state.sig[index % 7])
    return (NATURAL_SEMITONES[index % 7] + offset) % 12


def _may_sound_tonic(state: GrammarState, sofar: str) -> bool:
    """Whether a pitch written so far sounds the tonic, or (accidentals only) still can."""
    if state.tpc is None:
        return True
    if sofar[-1] in "^_=":
        return any(_sounding(state, sofar + letter) == state.tpc for letter in LETTERS)
    return _sounding(state, sofar) == state.tpc


@lru_cache(maxsize=1 << 16)
def _equal_fits(
    t: int, end: int, left: int, tf: tuple[int, int], mul: tuple[int, int], v: int, cad: bool
) -> bool:
    """Whether a tuplet's note of written length `v` (times `mul`) and the `left` notes after it,
    each as long (times the tuplet's `tf`), end the tuplet on the grid within a bar that ends
    at `end` (in a cadence a unit before it: no tuplet ends the part)."""
    final = t + _scale(v, mul) + left * _scale(v, tf)
    return final % GRID == 0 and final <= (end - TICKS if cad else end)


@lru_cache(maxsize=1 << 16)
def _only_bar_end(
    t: int, bar: int, left: int, tf: tuple[int, int], mul: tuple[int, int], ends: tuple[int, ...]
) -> bool:
    """Whether every length in `ends` that fits a cadence makes the note end the bar."""
    hits = [e for e in (t + _scale(v, mul) for v in ends) if _fits(e, bar, left, tf, True)]
    return bool(hits) and all(e == bar for e in hits)


@cache
def _code_digest() -> str:
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


@cache
def _rules_digest() -> str:
    """What the helpers from other modules (lengths, metres, tuplets, keys) answer for every
    value the grammar may ask about: an edit to them that changes a row changes this."""
    facts = [
        [_LEN_TICKS[w] for w in LENGTHS],
        [_bar_ticks(m, u) for m in METER_VALUES for u in UNIT_VALUES],
        [_default_unit(m) for m in METER_VALUES],
        [_tuplet_tf(p, m) for p in range(2, 10) for m in METER_VALUES],
        [[_key_context(v), normalize_key(v)] for v in KEY_VALUES],
        [LETTERS, NATURAL_SEMITONES, sorted(ACCIDENTAL_OFFSETS.items())],
    ]
    return hashlib.sha256(json.dumps(facts).encode()).hexdigest()


def _gate_reading(
    gates: _RowGates, fx: dict[int, tuple[Effect, ...]], part_bars: tuple[int, ...]
) -> tuple[Callable[[GrammarState], tuple[Any, ...]], bool, frozenset[int], frozenset[int]]:
    """What a row's gates read (AbcGrammar._gate_reads): a getter of the counts, whether the
    bar's accidentals count too, the pickups that could pass, and the part's bar counts that
    could. Where every gated character has a gate that first tests that a short bar completes
    the pickup (after effects that leave the pickup as it is), the pickups that pass those
    tests (bar - check), for a lookup that costs less than the memo's when the stream's is
    none of them; empty elsewhere. Likewise where every gated character has a gate that closes
    a part that holds music outside a second ending (after such effects, which leave its bars
    as they are), the bar counts before which that close ends the part at a length it may
    have (`part_bars`, the form rule's; none without it): mid-part, every one is shut, and
    those misses of the memo took three quarters of its judging in a fresh process (a fifth
    of the grammar's cost for one stream there, issue 14)."""
    fields = {"tonic", "max_parts"}  # two at least, so the getter gives a tuple
    tests, lengths = [], []
    for i, char_gates in gates:
        test = length = None
        for before, gate in char_gates:
            fields.update(_GATE_READS[gate[0]])
            for effect in fx.get(i, ())[:before]:
                fields.update(_EFFECT_USES[effect[0]])
            if gate[0] not in _PICKUP_GATES:
                continue
            if not all(effect[0] in _KEEP_PICK for effect in fx.get(i, ())[:before]):
                continue
            if test is None and gate[4] is not None:
                test = (gate[4], gate[5])
            _, inc, where, filled = gate[:4]
            if length is None and part_bars and filled and where != W_SECOND:
                length = frozenset(bars - inc for bars in part_bars)
        tests.append(test)
        lengths.append(length)
    with_accs = "accs" in fields
    fields.discard("accs")
    found = [t for t in tests if t is not None]
    every = len(found) == len(tests)  # every gated character has a pickup test
    picks = frozenset(bar - check for check, bar in found) if every else frozenset()
    tested = [length for length in lengths if length is not None]
    every = len(tested) == len(lengths)  # every gated character has a part-length test
    parts = frozenset().union(*tested) if every else frozenset()
    return attrgetter(*sorted(fields)), with_accs, picks, parts


class AbcGrammar:
    """Masks of the characters ABC allows next, for a model's vocabulary.

    start(prompt) -> state; mask(state) -> bool (V,), never all False; advance(state, ch).

    `chords` allows chords `[CEG]` and `slurs` slurs `(...)`; both are off by default because
    the Irish corpus has neither. After "[" its model means an ending: where none may start, a
    chord would only hold the notes it was pushed into. And it never learnt to close a slur:
    one opened by chance keeps the tune from ending until the length limit cuts it off.

    `metre`, `form` and `tonic` switch the music rules (see the module's docstring); `keys`
    (tonic + mode values, e.g. core.music_analysis.corpus_keys(tunes)) limits what K: names;
    `part_bars` are the bar counts a part may close at (its largest forces the close), the
    first `repeat_parts` parts close with a repeat and a tune holds at most `max_parts`."""

    def __init__(
        self,
        vocab: Vocabulary,
        *,
        chords: bool = False,
        slurs: bool = False,
        metre: bool = True,
        form: bool = True,
        tonic: bool = True,
        keys: Iterable[str] | None = None,
        part_bars: Iterable[int] = PART_BARS,
        repeat_parts: int = REPEAT_PARTS,
        max_parts: int = MAX_PARTS,
    ):
        self.vocab = vocab
        self.chars: tuple[str, ...] = tuple(vocab.chars)
        self.char2idx = vocab.char2idx
        self.chords, self.slurs = chords, slurs
        self.metre, self.form, self.tonic = metre, form, tonic
        self.part_bars = tuple(sorted(set(part_bars)))
        self.repeat_parts = repeat_parts
        self.max_parts = max(max_parts, MIN_PARTS)
        self._len = _MUSIC_LEN if metre else _LEN
        # Spaces as the corpus writes them (one, between tokens): a model held back from what it
        # wants (the close a cadence needs) cannot then mark time in spaces and blank-ish lines.
        self._tidy = metre or form or tonic
        self._enum = {f: self._spelled(v) for f, v in ENUM_FIELDS.items()}
        if keys is not None:
            values = key_values(keys, self.char2idx)
            if not values:
                raise ValueError(f"none of these keys can be written as a K: value: {keys}")
            self._enum["K"] = _Words(values)
        self._gchord = self._spelled(GUITAR_CHORDS)
        self._fitting: dict[tuple[str, str], _Words] = {}  # M: or L: values per the other
        self._ids: dict[_Key, int] = {}
        self._keys: list[_Key] = []
        self._next: list[list[int] | None] = []  # per state: next state id for every character
        self._fx: list[dict[int, tuple[Effect, ...]] | None] = []  # per state: effects by char
        # per state: the gated characters, each with its gates and how many of the character's
        # effects come first (a gate judges the stream as those leave it)
        self._gates: list[_RowGates | None] = []
        self._masks = np.zeros((64, len(self.chars)), dtype=bool)
        # A gated state's masks by the characters its gates shut (none: the row's own mask).
        self._gated: dict[tuple[int, tuple[int, ...]], Masked] = {}
        self._one: list[Masked | None] = []  # per ungated state: its mask for one stream
        # The distinct masks, by their bytes: thousands of states share a few hundred masks, so
        # that the rows a draw reads stay in the CPU's caches from tune to tune.
        self._distinct: dict[bytes, Masked] = {}
        # A gated state's mask by the stream's counts: judging the gates costs tens of
        # microseconds (probe copies, effects applied), a lookup one; streams revisit the same
        # (state, counts) pairs, so after a tune or two nearly every gated step is a hit.
        self._by_counts: dict[tuple[int, tuple[Any, ...], tuple[Any, ...]], Masked] = {}
        self._reads: dict[int, _Reads] = {}
        self._reads_of: dict[tuple[int, int], tuple[Any, ...]] = {}  # by (gates, effects) ids
        self._timed: dict[tuple[int, int], tuple[_Key, _Key | None]] = {}  # within one build
        # What follows a note that a character ends, by the key after the note (its lex aside):
        # the same for every pitch and length written that ends at the same time.
        self._after_note: dict[_Key, dict[str, _Step]] = {}
        self._after_note_now: dict[int, tuple[_Key, dict[str, _Step]]] = {}  # within one build
        # Per note lex (P or L): the characters that end the note and then step as after any
        # note, with what ending it did before (set by _length while a row is built). Which
        # characters those are depends on the lex alone, what ending did on the state alone:
        # a row takes them from the after-note memo without stepping each through the note.
        self._plain: dict[tuple[Any, ...], set[int]] = {}
        self._plain_now: tuple[_Key, tuple[Effect, ...], tuple[tuple[int, Gate], ...]] | None = None
        self._variants: dict[tuple[int, str, tuple[int, int]], int] = {}  # (state, field, value)
        self._events: list[Effect] = []  # filled while a transition is computed (under the lock)
        self._gates_now: list[tuple[int, Gate]] = []
        self._lock = threading.Lock()  # the table grows; samplers may run in worker threads
        self.gate_fallbacks = 0  # gated masks that shut every character: none by construction
        # A stored table's rows (see adopt): states below _stored_count have one.
        self._stored: Callable[[int], StoredRow] | None = None
        self._stored_count = 0
        self._hot: Sequence[int] = ()  # its states that most tunes visit (see read_ahead)
        self.rows_read = 0  # rows read from a stored table
        self.rows_made = 0  # rows built
        self._start_id = self._id(_START)
        self._header_enders = np.isin(np.array(list(self.chars)), list(BODY_FIELDS))
        self._line_end = np.array([c == "\n" for c in self.chars])
        self._not_space = np.array([c != " " for c in self.chars])

    # --- public API ------------------------------------------------------------------------

    def start(self, prompt: str = "", parts: int | None = None) -> GrammarState:
        """The state after reading `prompt` (the sampler's prompt, usually "X:"), for a tune of
        at most `parts` parts (default: the grammar's `max_parts`; see `draw_parts`).

        A bare | as a part starts, which the grammar never writes (only |:) but people's ABC
        often has, is not left to the free state: abc2midi reads it as closing an empty bar, and
        checks the bar it closes when a :| comes back to it, so the part is read on from before
        it as a part with no pickup (its first and last bars full; as it was, where a short close
        left a bar to complete, which abc2midi finds short whatever follows)."""
        most = self.max_parts if parts is None else max(MIN_PARTS, min(parts, self.max_parts))
        state = GrammarState(self._start_id, most)
        bare = None  # the stream before a | as a part starts, while it may be a bare one
        for ch in prompt:
            if bare is not None and not self.allows(state, ch):
                if ch == " ":
                    continue  # "| GAB": the space goes with its bar line
                if ch != "\n":  # (a line of a lone | ends as before; the tune goes on)
                    state, bare = bare, None
                    key = self._keys[state.sid]
                    if ch not in "|[" and not key.lim:  # a note: the first bar is a full one
                        with self._lock:
                            state.sid = self._id(key._replace(first=0))
            before = state.copy() if ch == "|" else None
            self.advance(state, ch)
            lex = self._keys[state.sid].lex
            at_start = lex[0] == "PI" and not lex[1] and not lex[3]  # only |: may follow
            bare = before if at_start else None
        return state

    def mask(self, state: GrammarState) -> np.ndarray:
        """Characters allowed next, as a bool array over the vocabulary (never all False)."""
        if self._next[state.sid] is None:
            self._build(state.sid)
        if self._gates[state.sid] is None:
            mask: np.ndarray = self._masks[state.sid]
            return mask
        return self._gated_mask(state)[0]

    def mask_one(self, state: GrammarState) -> Masked:
        """One stream's mask with what its draw reads of it (see Masked), made once per mask:
        a draw then masks the logits and the copy's distribution in one call each, and skips
        the draw where one character is allowed, without working any of it out at every step
        (each numpy call costs a microsecond or more there, the model's step having just filled
        the caches)."""
        sid = state.sid
        if self._next[sid] is None:
            self._build(sid)
        if self._gates[sid] is not None:
            return self._gated_mask(state)
        one = self._one[sid]
        if one is None:
            one = self._one[sid] = self.masked(self._masks[sid])
        return one

    def masked(self, mask: np.ndarray) -> Masked:
        """`mask` as one stream's draw reads it, the same (read-only) objects for every equal
        mask."""
        key = mask.tobytes()
        found = self._distinct.get(key)
        if found is None:
            mask = mask.copy()
            mask.flags.writeable = False  # shared by every state with this mask
            row = mask[None]
            allowed = np.flatnonzero(mask)
            only = int(allowed[0]) if len(allowed) == 1 else -1
            forbid, keep = np.where(row, 0.0, -np.inf), row.astype(np.float64)
            forbid.flags.writeable = keep.flags.writeable = False
            found = self._distinct[key] = (mask, row, forbid, only, keep)
        return found

    def masks(self, states: Sequence[GrammarState]) -> np.ndarray:
        """Masks of many streams at once, (len(states), V): read only (one stream's is a view
        of the grammar's own table, without a copy)."""
        if len(states) == 1:
            return self.mask(states[0])[None]
        sids = [s.sid for s in states]
        for sid in sids:
            if self._next[sid] is None:
                self._build(sid)
        out = self._masks[sids]
        for j, state in enumerate(states):
            if self._gates[state.sid] is not None:
                out[j] = self._gated_mask(state)[0]
        return out

    def advance(self, state: GrammarState, ch: str) -> None:
        """Move past `ch`. A character the mask forbids moves the stream to the free state
        (one only a gate forbids is followed: a prompt may close a part anywhere)."""
        sid = state.sid
        row = self._next[sid]
        if row is None:
            row = self._build(sid)
        i = self.char2idx.get(ch)
        if i is not None:
            nxt = row[i]
            if nxt < 0:  # UNBUILT (a forbidden character) or UNSTEPPED (a stored row's)
                with self._lock:
                    key = self._keys[sid]
                    nxt = row[i] = self._id(
                        self._fallback(key, ch) if nxt == UNBUILT else self._step_alone(key, ch)
                    )
            state.sid = nxt
            fx = self._fx[sid]
            if fx is not None and i in fx:
                self._apply(state, fx[i])
            return
        key = self._keys[sid]  # a character outside the vocabulary (prompts only)
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

    def states_visited(self, text: str, prompt: str = "", parts: int | None = None) -> set[_Key]:
        """The states a stream of a tune of at most `parts` parts (as `start`) passes through
        reading `text` after `prompt`: a sampled tune's, given the parts its stream drew (the
        counts choose some states: a part's last bar, the tune's end)."""
        state = self.start(prompt, parts)
        sids = {state.sid}
        for ch in text:
            self.advance(state, ch)
            sids.add(state.sid)
        return {self._keys[sid] for sid in sids}

    def in_body(self, state: GrammarState) -> bool:
        """Whether the stream is past its header (a K: line the grammar read as one)."""
        body: bool = self._keys[state.sid].sec == "B"
        return body

    def closing_header(self, state: GrammarState, mask: np.ndarray) -> np.ndarray:
        """`mask` (the stream's) narrowed to the characters that bring its header to an end: at
        a line's start the fields K: needs and K: itself, in a title or Z: line (or a header
        line the grammar left, a prompt's) its end; as it is elsewhere (the body, a field's
        letter or a K: M: L: value, which end by themselves), or where nothing of it would be
        left. For a stream whose header has run past HEADER_LIMIT: a weak model can write T:
        and Z: lines for ever and never reach a K:."""
        key = self._keys[state.sid]
        lex = key.lex
        if lex[0] == "HL":
            closing = self._header_enders
        elif lex[0] == "HV" and lex[1] in FREE_TEXT_FIELDS:
            # (a title ends once it holds more than spaces: until then, a character that counts)
            closing = self._line_end if lex[1] != "T" or lex[2] else self._not_space
        elif lex[0] == "F" and key.sec == "H":  # a header line the grammar left (a prompt's)
            closing = self._line_end
        else:
            return mask
        narrowed: np.ndarray = mask & closing
        return narrowed if narrowed.any() else mask

    def left_at(self, prompt: str) -> int | None:
        """Where a stream reading `prompt` left the grammar for the rest of its last line (the
        index of the character it could not follow: a bar longer than the metre allows, a sign
        the grammar does not write), when the prompt ends so in a tune's body: the model would
        go on unchecked to the line's end. None where the prompt ends within the grammar."""
        state = self.start(prompt)
        if not (self.is_free(state) and self.in_body(state)):
            return None
        # The first prefix that ends free, read as start reads it (a bare | at a part's start
        # has its own reading): once free, a stream stays so to the line's end, so halving works.
        low, high = prompt.rfind("\n") + 1, len(prompt) - 1
        while low < high:
            mid = (low + high) // 2
            if self.is_free(self.start(prompt[: mid + 1])):
                high = mid
            else:
                low = mid + 1
        return low

    @property
    def key_names(self) -> frozenset[str]:
        """The keys its K: lines may name (tonic and mode, as normalize_key names them)."""
        return frozenset(normalize_key(v) for v in self._enum["K"].words)

    def is_free(self, state: GrammarState) -> bool:
        """Whether the stream left the grammar (and allows anything until the next line)."""
        free: bool = self._keys[state.sid].lex[0] == "F"
        return free

    @property
    def states_seen(self) -> int:
        return len(self._keys)

    def fingerprint(self) -> str:
        """What decides every row of the state table: this module's code, what the helpers it
        takes from other modules answer on the values it asks them about, the options, the
        vocabulary and the K: values allowed. A stored table is used only where it matches."""
        facts = {
            "code": _code_digest(),
            "rules": _rules_digest(),
            "options": [
                self.chords, self.slurs, self.metre, self.form, self.tonic, self.part_bars,
                self.repeat_parts, self.max_parts,
            ],
            "chars": self.chars,
            "keys": sorted(self._enum["K"].words),
        }  # fmt: skip
        return hashlib.sha256(json.dumps(facts).encode()).hexdigest()

    def snapshot(self) -> TableSnapshot:
        """The rows built so far (a forbidden character's fallback, found when a stream took
        it, left out as UNBUILT)."""
        with self._lock:
            built = [sid for sid, row in enumerate(self._next) if row is not None]
            index = {sid: j for j, sid in enumerate(built)}
            rows = []
            for sid in built:
                row, mask = self._next[sid] or [], self._masks[sid]
                rows.append([index.get(n, UNSTEPPED) if mask[i] else UNBUILT
                             for i, n in enumerate(row)])  # fmt: skip
            return TableSnapshot(
                [self._keys[sid] for sid in built],
                rows,
                [dict(self._fx[sid] or {}) for sid in built],
                [self._gates[sid] or () for sid in built],
            )

    def adopt(self, table: StoredTable) -> bool:
        """Take a stored table (of a grammar with this fingerprint) before any stream starts:
        a stored state's row is then read from it on the state's first visit, not built, and a
        character's next state is stepped to only when a stream takes it. False (nothing
        changed) where this grammar has built a row already or the table lacks the tune start."""
        with self._lock:
            if any(row is not None for row in self._next):
                return False
            ids = {key: sid for sid, key in enumerate(table.keys)}
            start = ids.get(_START)
            if start is None or len(ids) != len(table.keys):
                return False
            n = len(table.keys)
            self._ids, self._keys = ids, list(table.keys)
            self._next, self._fx, self._gates = [None] * n, [None] * n, [None] * n
            self._one = [None] * n
            self._masks = np.zeros((max(64, 1 << n.bit_length()), len(self.chars)), dtype=bool)
            self._stored, self._stored_count = table.row, n
            self._hot = table.hot
            self._start_id = start
            return True

    def read_ahead(self) -> int:
        """Read now the adopted table's rows that most tunes visit, with what their gates
        read, so that the first tunes of a fresh process do not: one stream met a thousand
        new rows in its first 32 tunes, at ~15 us each with their gates, a fifth of the
        grammar's cost there (issue 14). For a caller that is idle (the app's engine once a
        model is loaded); returns the rows read (none where tunes have read them already)."""
        with self._lock:
            hot, self._hot, before = self._hot, (), self.rows_read
            for sid in hot:
                if self._next[sid] is None:
                    self._build_locked(sid)
                if self._gates[sid] is not None and sid not in self._reads:
                    self._reads[sid] = self._gate_reads(sid)
                if self._gates[sid] is None and self._one[sid] is None:
                    self._one[sid] = self.masked(self._masks[sid])
            return self.rows_read - before

    # --- the state table -------------------------------------------------------------------

    def _id(self, key: _Key) -> int:
        """The id of a state, registering it (its row is built on first use). Under the lock."""
        sid = self._ids.get(key)
        if sid is None:
            sid = self._ids[key] = len(self._keys)
            self._keys.append(key)
            self._next.append(None)
            self._fx.append(None)
            self._gates.append(None)
            self._one.append(None)
        return sid

    def _build(self, sid: int) -> list[int]:
        """A state's mask and its successor for every character."""
        with self._lock:
            row = self._next[sid]
            return row if row is not None else self._build_locked(sid)

    def _build_locked(self, sid: int) -> list[int]:
        if sid < self._stored_count and self._stored is not None:
            row, self._masks[sid], stored_fx, stored_gates = self._stored(sid)
            self._fx[sid], self._gates[sid] = stored_fx or None, stored_gates or None
            self._next[sid] = row
            self.rows_read += 1
            return row
        self.rows_made += 1
        key = self._keys[sid]
        self._timed.clear()
        self._after_note_now.clear()
        targets: list[_Key | None] = []
        effects: dict[int, tuple[Effect, ...]] = {}
        gates: list[tuple[int, tuple[tuple[int, Gate], ...]]] = []
        body = key.lex[0] in _BODY_LEX
        plain = self._plain.setdefault(key.lex, set()) if key.lex[0] in ("P", "L") else None
        ended = None  # what ending the note did, once a character here has ended it plainly
        for i, ch in enumerate(self.chars):
            if body and ch not in _BODY_CHARS:
                targets.append(None)
                continue
            if ended is not None and plain is not None and i in plain:
                timed, before_fx, before_gates = ended
                target, after_fx, after_gates = self._after_note_entry(timed, ch)
                targets.append(target)
                if target is not None and (before_fx or after_fx):
                    effects[i] = before_fx + after_fx
                if target is not None and (before_gates or after_gates):
                    shift = len(before_fx)
                    gates.append((i, before_gates + tuple((b + shift, g) for b, g in after_gates)))
                continue
            self._events, self._gates_now, self._plain_now = [], [], None
            target = self._step(key, ch)
            targets.append(target)
            if target is not None and self._events:
                effects[i] = tuple(self._events)
            if target is not None and self._gates_now:
                gates.append((i, tuple(self._gates_now)))
            if plain is not None and self._plain_now is not None:
                plain.add(i)
                ended = self._plain_now
        if all(t is None for t in targets):  # never leave a stream with nothing to draw
            targets = [self._free(key)] * len(self.chars)
            effects, gates = {}, []
        allowed = np.array([t is not None for t in targets])
        # A forbidden character's fallback is found when a stream takes it (seldom: a prompt,
        # or a caller ignoring the mask), not for every state: most characters are forbidden.
        row = [UNBUILT if t is None else self._id(t) for t in targets]
        while sid >= len(self._masks):
            self._masks = np.concatenate([self._masks, np.zeros_like(self._masks)])
        self._masks[sid] = allowed
        self._fx[sid] = effects or None
        self._gates[sid] = tuple(gates) or None
        self._next[sid] = row
        return row

    def _step_alone(self, key: _Key, ch: str) -> _Key:
        """The state an allowed `ch` leads to from `key`, as its row's build found it (a stored
        row's character, its effects and gates known already). Under the lock."""
        self._timed.clear()
        self._after_note_now.clear()
        self._events, self._gates_now, self._plain_now = [], [], None
        target = self._step(key, ch)
        return self._free(key) if target is None else target  # a row that allowed nothing

    def _fallback(self, key: _Key, ch: str) -> _Key:
        if ch == "\n":
            return self._after_free_newline(key)
        if key.lex == ("HL",) and ch == "K":  # a prompt's header without M:: no metre kept
            return key._replace(lex=("HF", "K"))
        return self._free(key)

    # --- what streams count: effects and gates -----------------------------------------------

    def _emit(self, effect: Effect) -> None:
        self._events.append(effect)

    def _gate(self, gate: Gate) -> None:
        self._gates_now.append((len(self._events), gate))

    def _gated_mask(self, state: GrammarState) -> Masked:
        reads = self._reads.get(state.sid)
        if reads is None:
            reads = self._reads[state.sid] = self._gate_reads(state.sid)
        getter, with_accs, picks, parts, all_shut = reads
        # Mid-bar, where only a short last bar could close: usually none does. Mid-part,
        # where only the part's last bar could close it: none does.
        if picks and (state.pick or 0) not in picks:
            return all_shut
        if parts and state.bars not in parts:
            return all_shut
        memo = (state.sid, getter(state), tuple(state.accs.items()) if with_accs else ())
        found = self._by_counts.get(memo)
        if found is None:
            if len(self._by_counts) >= MEMO_LIMIT:  # bound memory in very long sessions
                self._by_counts.clear()
            found = self._by_counts[memo] = self._judge_gates(state)
        return found

    def _gate_reads(self, sid: int) -> _Reads:
        """The counts a state's gates depend on (through the effects before them too): a getter
        of them as a tuple, whether the bar's accidentals are among them, and the pickups and
        bar counts that could pass with the mask where none does (see _gate_reading). Rows that
        share their gates and effects (a stored table's often do: 1,269 pairs for 3,396 gated
        rows) share all but the mask."""
        gates, fx = self._gates[sid] or (), self._fx[sid] or _NO_EFFECTS
        shared = self._reads_of.get((id(gates), id(fx)))
        if shared is None:  # the objects kept with it, so that their ids stay theirs
            reading = _gate_reading(gates, fx, self.part_bars if self.form else ())
            shared = self._reads_of[(id(gates), id(fx))] = (gates, fx, *reading)
        _, _, getter, with_accs, picks, parts = shared
        if not picks and not parts:
            return getter, with_accs, picks, parts, self._open(sid)
        shut = self._masks[sid].copy()
        shut[[i for i, _ in gates]] = False
        if not shut.any():  # never leave nothing to draw (the gates then judge as usual)
            return getter, with_accs, frozenset(), frozenset(), self._open(sid)
        return getter, with_accs, picks, parts, self.masked(shut)

    def _open(self, sid: int) -> Masked:
        """A gated state's mask where every gate is open: its row's."""
        found = self._gated.get((sid, ()))
        if found is None:
            found = self._gated[(sid, ())] = self.masked(self._masks[sid])
        return found

    def _judge_gates(self, state: GrammarState) -> Masked:
        sid = state.sid
        gates = self._gates[sid]
        assert gates is not None
        probes: dict[tuple[Effect, ...], GrammarState] = {}
        shut = tuple(i for i, gs in gates if not self._gates_open(state, i, gs, probes))
        if not shut:
            return self._open(sid)
        found = self._gated.get((sid, shut))
        if found is None:
            mask = self._masks[sid].copy()
            mask[list(shut)] = False
            if not mask.any():  # cannot happen by construction; never leave nothing to draw
                self.gate_fallbacks += 1
                mask = self._masks[sid]
            found = self._gated[(sid, shut)] = self.masked(mask)
        return found

    def _gates_open(
        self, state: GrammarState, i: int, gates: tuple[tuple[int, Gate], ...],
        probes: dict[tuple[Effect, ...], GrammarState],
    ) -> bool:  # fmt: skip
        """Whether character i passes its gates, each judged after the effects before it (the
        note that character completes counts before the cadence of the note it starts). Gates
        only read a probe, so characters whose gates follow the same effects (`|` and `:` after
        a note) share one, kept in `probes`."""
        probe = state
        for before, gate in gates:
            if before:
                fx = self._fx[state.sid]
                assert fx is not None
                effects = fx[i][:before]
                if gate[0] in _PICKUP_GATES and gate[4] is not None:
                    # A short bar that closes a part must complete its pickup: mid-bar, where
                    # every note ends, that shuts `|` and `:` without a probe, when the effects
                    # before leave the pickup as it is.
                    kept = all(effect[0] in _KEEP_PICK for effect in effects)
                    if kept and not _completes_pickup(state, gate[4], gate[5]):
                        return False
                found = probes.get(effects)
                if found is None:
                    found = probes[effects] = state.copy()
                    self._apply(found, effects)
                probe = found
            if not self._gate_open(gate, probe, self.chars[i]):
                return False
        return True

    def _gate_open(self, gate: Gate, state: GrammarState, ch: str) -> bool:
        kind = gate[0]
        if kind == "tie":  # the tied note repeats the tied pitch, character by character
            return gate[1] < len(state.tied) and state.tied[gate[1]] == ch
        if kind == "tie_end":
            ended: bool = gate[1] == len(state.tied)
            return ended
        if kind.startswith("cad"):  # a part that could end the tune ends on the tonic
            return self._cadence_open(gate, state, ch)
        if kind == "close":
            return self._close_open(gate, state)
        _, inc, where, filled, check, bar = gate  # "end": the tune ends, closing its open part
        if not _completes_pickup(state, check, bar):
            return False
        if self.form:
            if filled and not self._part_may_close(state, inc, where):
                return False
            if filled and where != W_SECOND and state.parts < self.repeat_parts:  # no :| yet
                return False
            if state.parts + filled < MIN_PARTS:
                return False
        return not self.tonic or state.tonic

    def _close_open(self, gate: Gate, state: GrammarState) -> bool:
        """A bar line closes a part: ("close", bars added, where, filled, check, bar, repeat,
        opens: it leaves a repeat open, so another part must follow; shuts: no later part can
        repeat, so none may need to)."""
        _, inc, where, filled, check, bar, repeat, opens, shuts = gate
        if not _completes_pickup(state, check, bar):
            return False
        if shuts and self.form and state.parts + 1 < self.repeat_parts:
            return False
        if not filled:
            return True
        if self.form:
            if not self._part_may_close(state, inc, where):
                return False
            if not repeat and state.parts < self.repeat_parts:
                return False
            if opens and state.parts + 1 >= state.max_parts:
                return False
        cadence = self.tonic and where != W_FIRST and _could_end(state)
        return not cadence or state.tonic

    @staticmethod
    def _cadence_open(gate: Gate, state: GrammarState, ch: str) -> bool:
        kind = gate[0]
        if kind == "cad_pitch":  # the pitch of a note that ends the part
            return _may_sound_tonic(state, state.pitch[: gate[1]] + ch)
        if kind == "cad_note":  # a length that ends the part with the note written
            return state.tpc is None or _sounding(state, state.pitch) == state.tpc
        if kind == "cad_rest":  # a rest ends the part after the last note
            return state.tonic
        return False  # "cad_chord": a chord would end the part on a note left unchecked

    def _part_may_close(self, state: GrammarState, inc: int, where: int) -> bool:
        if where == W_SECOND:
            return state.second + inc == state.ending
        return state.bars + inc in self.part_bars

    def _apply(self, state: GrammarState, effects: tuple[Effect, ...]) -> None:
        last = 0
        for effect in effects:
            kind = effect[0]
            if kind == "pitch":
                state.pitch = effect[1]
            elif kind == "pitch+":
                state.pitch += effect[1]
            elif kind == "note":
                self._note_sounds(state, effect[1])
            elif kind == "tie":
                state.tied = state.pitch
            elif kind == "bar":
                self._bar_counted(state, *effect[1:])
            elif kind == "newbar":  # the bar now starting: must it end the part?
                if effect[1] == W_SECOND:
                    last = self._last_level(state, state.second + 1 == state.ending)
                else:
                    last = self._last_level(state, state.bars + 1 == self.part_bars[-1])
            elif kind == "close":
                state.parts += effect[1]
                state.bars = state.ending = state.second = 0
                state.pick = None
                if self.form and state.parts >= state.max_parts:
                    state.sid = self._variant(state.sid, "done", (1, 0))
            elif kind == "first":
                state.ending = 0
            elif kind == "second":
                state.second = 0
                last = self._last_level(state, state.ending == 1)
            elif kind == "key":
                state.sig, state.tpc = _key_context(effect[1])
            elif kind == "end":
                fresh = GrammarState(state.sid, state.max_parts)
                for name in GrammarState.__slots__[1:]:
                    setattr(state, name, getattr(fresh, name))
        if last and self.form:
            state.sid = self._variant(state.sid, "last", (last, state.pick or 0))

    @staticmethod
    def _bar_counted(state: GrammarState, inc: int, where: int, pick: int | None) -> None:
        """A bar line: the bar counts (or not) in its part or ending; a first bar sets the
        pickup; accidentals end."""
        if where == W_SECOND:
            state.second += inc
        else:
            state.bars += inc
            if where == W_FIRST:
                state.ending += inc
        if pick is not None:
            state.pick = pick
        if state.accs:
            state.accs = {}

    @staticmethod
    def _note_sounds(state: GrammarState, melody: bool) -> None:
        """A note was written: its accidental holds for the bar; a melody note (not a grace
        note, a chord's first) becomes the last note, on the tonic or not."""
        index, acc = _pitch_parts(state.pitch)
        if acc is not None:
            state.accs[index] = acc
        if melody:
            state.tonic = state.tpc is None or _sounding(state, state.pitch) == state.tpc

    def _last_level(self, state: GrammarState, last: bool) -> int:
        """0: the new bar need not end its part; 1: it must; 2: and it is a cadence."""
        if not last:
            return 0
        return 2 if self.tonic and _could_end(state) else 1

    def _variant(self, sid: int, field: str, value: tuple[int, int]) -> int:
        """The same state with a field the stream's counts decide: `last` (1: the bar must end
        its part, 2: as a cadence; with the part's pickup, which that bar must complete) or
        `done` (the tune holds all the parts it may)."""
        other = self._variants.get((sid, field, value))
        if other is None:
            with self._lock:
                key = self._keys[sid]
                if field == "last":
                    level, pick = value
                    lim = key.bar - pick if key.bar and 0 < pick < key.bar else 0
                    key = key._replace(last=level, lim=lim)
                else:
                    key = key._replace(done=value[0])
                other = self._id(key)
            self._variants[(sid, field, value)] = other
        return other

    # --- the automaton -----------------------------------------------------------------------

    @staticmethod
    def _free(key: _Key) -> _Key:
        sec = "H" if key.sec == "S" else key.sec
        return key._replace(sec=sec, lex=("F",), t=0, tup=0, tf=ONE, last=0, lim=0, tl=0)

    @staticmethod
    def _after_free_newline(key: _Key) -> _Key:
        if key.sec == "B":
            return key._replace(rep=R_OPEN, pend=0, slur=0, tup=0, lex=("BL",))
        return key._replace(sec="H", lex=("HL",))

    def _step(self, key: _Key, ch: str) -> _Key | None:
        lex = key.lex
        kind = lex[0]
        if kind == "N":
            return self._neutral(key, ch, lex[1])
        if kind == "P":
            return self._pitch(key, ch, *lex[1:])
        if kind == "L":
            return self._length(key, ch, *lex[1:])
        handler = getattr(self, "_st_" + kind)
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
        if self.metre:
            if ch == "K" and not key.meter:  # M: first: the bar must be known
                return None
            if (ch == "M" and key.meter) or (ch == "L" and key.unit):
                return None  # once each: the analyser reads the first, abc2midi the last
        if ch in FREE_TEXT_FIELDS or ch in ENUM_FIELDS:
            return key._replace(lex=("HF", ch))
        return None

    def _st_HF(self, key: _Key, ch: str) -> _Key | None:
        return key._replace(lex=("HV", key.lex[1], "")) if ch == ":" else None

    def _st_BF(self, key: _Key, ch: str) -> _Key | None:
        return self._st_HF(key, ch)

    def _spelled(self, words: Iterable[str]) -> _Words:
        """The words this vocabulary can write out: a corpus without an "i" has no "dim" chord
        and no "Aeolian" key, and a value begun that only such a word completes had no way on
        (the stream then left the grammar: abc2midi rejected "Bdi" and "F Aeol")."""
        return _Words(written_with(words, self.char2idx))

    def _words(self, field: str, key: _Key) -> _Words:
        """The values a field may take here: with the metre rule, M: and L: only make bars of 1
        to 32 units of L: on the grid (the default L: follows the header's M:)."""
        if field == "K" or not self.metre:
            return self._enum[field]
        other = key.unit if field == "M" else key.meter
        words = self._fitting.get((field, other))
        if words is None:
            if field == "M":
                ok = [m for m in METER_VALUES if _bar_ticks(m, other or _default_unit(m))]
            else:
                ok = [u for u in UNIT_VALUES if not other or _bar_ticks(other, u)]
            words = self._fitting[(field, other)] = self._spelled(ok)
        return words

    def _st_HV(self, key: _Key, ch: str) -> _Key | None:
        field, sofar = key.lex[1], key.lex[2]
        if ch == "\n":
            if field == "X":
                done = sofar != ""
            elif field in ENUM_FIELDS:
                done = self._words(field, key).complete(sofar)
            else:
                done = field != "T" or sofar != ""
            return self._field_done(key, field, sofar) if done else None
        if field == "X":
            ok = ch in DIGITS and len(sofar) < MAX_X_DIGITS and not (sofar == "" and ch == "0")
            return key._replace(lex=("HV", field, sofar + ch)) if ok else None
        if field in ENUM_FIELDS:
            ok = self._words(field, key).extends(sofar, ch)
            return key._replace(lex=("HV", field, sofar + ch)) if ok else None
        if field == "T":
            if ch not in TITLE_CHARS and not ch.isalpha():
                return None
            return key._replace(lex=("HV", field, "1" if ch != " " or sofar else ""))
        return key  # other free text: anything but a newline, state unchanged

    def _field_done(self, key: _Key, field: str, value: str) -> _Key:
        """A field line ends: K: sets the key (and, in the header, starts the body with its
        bar); M: and L: set the metre."""
        if field == "K":
            self._emit(("key", value))
        if field in "ML":
            meter, unit = (value, key.unit) if field == "M" else (key.meter, value)
            key = key._replace(meter=meter, unit=unit)
            if key.sec == "B" and self.metre and meter:
                bar = _bar_ticks(meter, unit)  # a full first bar, if set, in the new metre
                key = key._replace(bar=bar, lim=bar if key.lim else 0)
        if key.sec == "B":
            return key._replace(lex=("BL",))
        if field != "K":
            return key._replace(lex=("HL",))
        unit = key.unit or _default_unit(key.meter)
        bar = _bar_ticks(key.meter, unit) if self.metre and key.meter else 0
        return key._replace(sec="B", unit=unit, bar=bar, lex=("BL",))

    # body: time

    def _add_time(self, key: _Key, ticks: int) -> _Key | None:
        # Every character that ends a note adds the same time to the same key: once per build
        # (by the key's identity, kept alive in the entry, so an id is never reused wrongly).
        memo = self._timed.get((id(key), ticks))
        if memo is not None and memo[0] is key:
            return memo[1]
        if not key.bar:
            timed: _Key | None = key._replace(t=1)
        else:
            t = key.t + ticks
            timed = key._replace(t=t) if self._fit(key, t, key.tup) else None
        self._timed[(id(key), ticks)] = (key, timed)
        return timed

    def _fit(self, key: _Key, t: int, left: int) -> bool:
        """_fits for this bar: its length, the open tuplet, a cadence."""
        return _fits(t, _end(key), left, key.tf, self._cadence(key))

    def _can_start(self, key: _Key) -> bool:
        """Whether a note of some length still fits the bar (in a tuplet, of its length)."""
        if not key.bar:
            return True
        mul, left = (key.tf, key.tup - 1) if key.tup else (ONE, 0)
        if key.tup and key.tl > 0:
            return self._fit(key, key.t + _scale(_LEN_TICKS[LENGTHS[key.tl - 1]], mul), left)
        if key.tup and self.metre:  # the tuplet's first note: its others as long
            return self._equal_room(key, left, mul, "")
        return _length_fits(key.t, _end(key), left, key.tf, mul, "", TICKS, self._cadence(key))

    def _equal_room(self, key: _Key, left: int, mul: tuple[int, int], prefix: str) -> bool:
        """Whether a tuplet's first note, of a length from `prefix` (times `mul`), leaves room
        for the `left` notes after it, each as long."""
        cad = self._cadence(key)
        return any(
            _equal_fits(key.t, _end(key), left, key.tf, mul, v, cad) for v in _LEN_ENDS[prefix]
        )

    def _tuplet_fits(self, key: _Key, p: int) -> bool:
        if not key.bar:
            return True
        tf = _tuplet_tf(p, key.meter)
        if self.metre:  # p notes alike
            cad = self._cadence(key)
            return any(_equal_fits(key.t, _end(key), p - 1, tf, tf, v, cad) for v in _LEN_ENDS[""])
        return _fits(key.t, _end(key), p, tf, self._cadence(key))

    def _counts(self, key: _Key) -> int:
        """1 when the bar being closed counts among its part's bars (not empty, not a pickup)."""
        return int(key.t > 0 and (not key.first or not key.bar or key.t >= key.bar))

    def _bar_kinds(self, key: _Key) -> tuple[bool, bool, int | None] | None:
        """(may a plain bar line come now, may a part-closing one, the bar's length, which the
        closing one must have to complete the pickup; None: nothing to check); None for no bar
        line."""
        if not key.bar:
            return not key.last, True, None
        if key.tup:
            return None
        t = key.t
        if t == 0:  # no bar to close: a plain line is a no-op; only an empty part may close
            # As a part starts (with the form rules) only a |: may: abc2midi checks a | or || at
            # once, against what a short close left, or what a :| leaves coming back to it.
            if key.first and self.form:
                return (False, True, None) if not key.pend else None
            return True, bool(key.first), None
        if key.lim and t != key.lim:  # a bar of a set length ends there and only there
            return None
        if key.first:  # the part's first bar: a pickup of any length, unless set
            return True, True, None
        return t == key.bar and not key.last, True, t

    # body

    def _closable(self, key: _Key) -> bool:
        if not key.nb or key.rep in (R_FIRST, R_SECOND) or key.pend or key.slur:
            return False  # abc2midi wants a second ending closed by a bar line too
        return not (self.form and key.rep == R_FIRST_DONE)

    def _st_BL(self, key: _Key, ch: str) -> _Key | None:
        if ch == "\n":  # the blank line that ends the tune
            return self._tune_end(key)
        if key.done:  # only the end (and a slur's close) may follow the last part
            return self._neutral(key, ch, "bol") if ch == ")" else None
        if ch in BODY_FIELDS:
            if key.bar and (key.t or key.tup):  # fields only between bars
                return None
            if ch in "ML" and key.bar and (key.lim or self.form) and not self._new_metre_ok(key):
                return None
            if self.form and key.rep == R_FIRST_DONE:  # the second ending comes first
                return None
            rep = R_PLAYED if key.rep == R_FIRST_DONE else key.rep
            return key._replace(rep=rep, lex=("BF", ch))
        return self._neutral(key, ch, "bol")

    @staticmethod
    def _new_metre_ok(key: _Key) -> bool:
        """Whether a body M: or L: may come: as a part starts (with the form rules), and not
        where its first bar must complete a short close, whose length the old metre set (a
        part's pickup and its last bar are measured in one metre)."""
        return bool(key.first) and key.lim in (0, key.bar)

    def _tune_end(self, key: _Key) -> _Key | None:
        if not self._closable(key) or (key.bar and key.tup):
            return None
        filled = int(not (key.first and key.t == 0))
        check = None
        if key.bar and filled and not key.first:  # the last bar, with no bar line after it
            if (key.last and key.t == 0) or (key.lim and key.t not in (0, key.lim)):
                return None
            check = key.t or None  # it completes the pickup
        self._gate(("end", self._counts(key), _where(key.rep), filled, check, key.bar))
        self._emit(("end",))
        return _START

    def _note_start(
        self, key: _Key, ch: str, need_len: str | None, ctx: tuple[Any, ...],
        broken: tuple[int, int] = ONE, tied: bool = False,
    ) -> _Key | None:  # fmt: skip
        """Start a note or rest with `ch` (an accidental, a letter or z)."""
        if key.rep == R_FIRST_DONE:
            if self.form:  # a first ending's :| is followed by the second ending
                return None
            key = key._replace(rep=R_PLAYED)
        mul = ONE
        first = False  # the first note of a tuplet, which sets its notes' length
        if key.tup and ctx[0] != "{" and ctx[1] <= 1:
            mul = key.tf  # a note or the first note of a chord, in a tuplet
            tl = key.tl
            if self.metre and ctx[0] == "":  # a tuplet's notes alike (abc2midi warns else)
                if tl > 0:
                    if need_len not in (None, LENGTHS[tl - 1]):
                        return None
                    need_len = LENGTHS[tl - 1]
                first = tl == 0 and key.tup > 1
                tl = 0 if key.tup == 1 else -1 if first else tl
            key = key._replace(tup=key.tup - 1, tf=key.tf if key.tup > 1 else ONE, tl=tl)
        mul = _mul(mul, broken)
        if key.bar and _timed(ctx) and not self._room(key, mul, need_len):
            return None
        if key.bar and first and not self._equal_room(key, key.tup, mul, ""):
            return None
        ends_part = self._cadence(key) and _timed(ctx) and self._ends_bar(key, mul, "", need_len)
        if ch == "z" and ctx[0] == "" and not tied:
            if ends_part:
                self._gate(("cad_rest",))
            return key._replace(nb=1, lex=("L", "r", "", need_len, ctx, mul))
        if not _PITCH.extends("", ch):
            return None
        if ends_part:
            self._gate(("cad_pitch", 0))
        if tied:
            self._gate(("tie", 0))
        self._emit(("pitch", ch))
        return key._replace(nb=1, lex=("P", _shape(ch), tied, need_len, ctx, mul))

    def _room(self, key: _Key, mul: tuple[int, int], need_len: str | None) -> bool:
        """Whether the note starting now (scaled by mul) has a length that fits."""
        if need_len is not None:
            return self._fit(key, key.t + _scale(_LEN_TICKS[need_len], mul), key.tup)
        return _length_fits(key.t, _end(key), key.tup, key.tf, mul, "", TICKS, self._cadence(key))

    def _neutral(self, key: _Key, ch: str, prev: str) -> _Key | None:
        if ch == " ":
            if self._tidy and (prev in ("sp", "bol", "lone") or key.done):
                return None
            return key._replace(lex=("N", "sp"))
        if key.done and ch not in "\n!)":  # the last part closed: the line ends, then the tune
            return None
        if ch in _NOTE_START or ch == "z":
            return self._note_start(key, ch, None, _BODY_BOL if prev == "bol" else _BODY)
        if ch == "\n":
            if prev == "end" or (self._tidy and prev == "sp"):  # "lone": ":" on the next line
                return None
            return key._replace(lex=("BL",))
        if ch == "!":
            return key._replace(lex=("BANG",)) if prev == "bar" else None
        if ch in "|:":
            if prev in ("bar", "end") or key.rep == R_FIRST_DONE or (ch == ":" and prev == "lone"):
                return None
            return self._bar_line(key, ch, prev == "bol")
        if ch == "[":  # an ending or a chord must be able to follow
            chord = self.chords and self._can_start(key)
            ending = self._ending_may_start(key)
            if chord and not ending and self._cadence(key):
                self._gate(("cad_chord",))
            return key._replace(lex=("LB",)) if chord or ending else None
        if key.rep == R_FIRST_DONE:
            if self.form:
                return None
            key = key._replace(rep=R_PLAYED)
        if ch == "(":  # a tuplet or a slur must be able to follow
            tuplet = not key.tup and any(self._tuplet_fits(key, p) for p in range(2, 10))
            slur = self.slurs and not key.slur and self._can_start(key)
            return key._replace(lex=("TP",)) if tuplet or slur else None
        if ch == ")":
            if key.slur and (prev in ("note", "chord") or key.done):
                return key._replace(slur=0, lex=("N", "other"))
            return None
        if ch == '"':  # a guitar chord, and a note to carry it
            return key._replace(lex=("G", "")) if self._can_start(key) else None
        if ch == "{":
            return key._replace(lex=("IN", "{", 0, 0, ONE)) if self._can_start(key) else None
        return None

    def _ending_may_start(self, key: _Key) -> bool:
        return key.rep == R_FIRST_DONE or self._first_ending_may_start(key)

    def _first_ending_may_start(self, key: _Key) -> bool:
        if key.rep not in (R_OPEN, R_REOPENED) or (key.bar and key.t):  # between bars
            return False
        return not (self.form and key.first)  # not as a part's first bar

    def _bar_line(self, key: _Key, ch: str, line_start: bool = False) -> _Key | None:
        """A bar line begins with `ch` ("|", or ":" of :| and ::): the bar ends here. An empty
        bar's plain | (a no-op) only starts a line ("...|" then "|..."): mid-line, a model of
        other tunes wrote "| | | ..." by the hundred, which abc2midi rejected."""
        kinds = self._bar_kinds(key)
        if kinds is None:
            return None
        plain, close, check = kinds
        if plain and key.bar and not key.t and not key.first and not line_start:
            plain = False
        filled = int(not (key.first and key.t == 0))
        inc, where = self._counts(key), _where(key.rep)
        if ch == "|":
            if not plain and not (close and key.rep != R_FIRST):  # nothing could follow "|"
                return None
            if not plain:  # only || |] |: may follow: gated as they are
                self._close_gate(
                    key, inc, filled, check, where == W_SECOND, bool(key.pend), bool(key.pend)
                )  # with a |: open, only || |] may follow, which shut (see _close_gate)
        elif self.form and key.first and not key.t:  # only |: as a part starts (_bar_kinds)
            return None
        elif not close or (self.form and key.rep == R_SECOND):
            return None  # a second ending's :| would have abc2midi play the part a third time
        elif self.form and key.ends and not key.pend and key.rep != R_FIRST:
            return None  # after endings, :| and :: only where a |: opened the repeat
        else:  # :| (it closes an open |:) or ::
            only = key.rep not in (R_OPEN, R_FIRST)  # :| closing the part: no :: to follow
            self._close_gate(key, inc, filled, check, True, False, only)
        pick = (key.t if key.t < key.bar else 0) if key.first and key.t else None
        self._emit(("bar", inc, where, pick))
        if ch == "|" and plain:
            self._emit(("newbar", where))
        # The first bar of the part that a close here would start: as abc2midi counts, what
        # completes this bar where it is short, else a full one (-1: as it is, no bar here).
        after = (key.bar - key.t if key.t < key.bar else key.bar) if key.bar and key.t else -1
        key = key._replace(
            t=0, first=int(key.first and not key.t), last=0, lim=key.lim if not key.t else 0
        )
        if ch == "|":
            return key._replace(lex=("PI", plain, close, filled, check, after))
        return key._replace(lex=("CO", filled, after))

    def _close_gate(
        self, key: _Key, inc: int, filled: int, check: int | None, repeat: bool,
        opens: bool = False, shuts: bool = False,
    ) -> None:  # fmt: skip
        """Gate a part-closing bar line on the bars counted, the pickup, a repeat where the part
        needs one, the tonic where the part could end the tune, and the number of parts; and,
        after endings, where it leaves the next part no |: (`shuts`), on that part's needing
        no repeat (see _Key.ends)."""
        # A part that no |: opened after endings (a prompt's: `shuts` keeps streams from it)
        # cannot repeat, so it need not.
        repeat = repeat or bool(key.ends and not key.pend)
        shuts = shuts and self.form and bool(key.ends)
        if check is not None or (filled and (self.form or self.tonic)):
            gate = ("close", inc, _where(key.rep), filled, check, key.bar, repeat, opens, shuts)
            self._gate(gate)

    def _cadence(self, key: _Key) -> bool:
        """Whether this bar ends a part that could end the tune (not in a first ending)."""
        return key.last == 2 and key.rep != R_FIRST and bool(key.bar)

    def _ends_bar(self, key: _Key, mul: tuple[int, int], prefix: str, need: str | None) -> bool:
        """Whether every length of this note that fits (from `prefix`, or `need`) ends the bar."""
        ends = (_LEN_TICKS[need],) if need is not None else _LEN_ENDS[prefix]
        return _only_bar_end(key.t, _end(key), key.tup, key.tf, mul, ends)

    def _pitch(
        self, key: _Key, ch: str, shape: str, tied: bool, need_len: str | None,
        ctx: tuple[Any, ...], mul: tuple[int, int],
    ) -> _Key | None:  # fmt: skip
        if _PITCH.extends(shape, ch):
            if self._cadence(key) and _timed(ctx) and self._ends_bar(key, mul, "", need_len):
                self._gate(("cad_pitch", len(shape)))
            if tied:
                self._gate(("tie", len(shape)))
            self._emit(("pitch+", ch))
            return key._replace(lex=("P", _shape(shape + ch), tied, need_len, ctx, mul))
        if _PITCH.complete(shape):
            if tied:
                self._gate(("tie_end", len(shape)))
            return self._length(key, ch, "n", "", need_len, ctx, mul, len(shape) == 1)
        return None

    def _length(
        self, key: _Key, ch: str, kind: str, sofar: str, need_len: str | None,
        ctx: tuple[Any, ...], mul: tuple[int, int], letter: bool = False,
    ) -> _Key | None:  # fmt: skip
        lengths = self._len if need_len is None else _LEN
        if lengths.extends(sofar, ch) and (need_len is None or need_len.startswith(sofar + ch)):
            if key.bar and _timed(ctx) and need_len is None:  # the length must fit the bar
                cad = self._cadence(key)
                end = _end(key)
                if not _length_fits(key.t, end, key.tup, key.tf, mul, sofar + ch, TICKS, cad):
                    return None
                if key.tl == -1 and not self._equal_room(key, key.tup, mul, sofar + ch):
                    return None
                if cad and self._ends_bar(key, mul, sofar + ch, None):
                    self._gate(("cad_note",) if kind == "n" else ("cad_rest",))
            return key._replace(lex=("L", kind, sofar + ch, need_len, ctx, mul))
        if not lengths.complete(sofar) or (need_len is not None and sofar != need_len):
            return None
        # A line that starts with a lone letter (a note, or z), then ":" (after a space too),
        # reads as a field line: "g:|" to the analyser, "B :|" to abc2midi, which warns.
        lone = self._tidy and ctx == _BODY_BOL and not sofar and (letter or kind == "r")
        if lone and ch == ":":
            return None
        ticks = _LEN_TICKS[sofar]
        if key.tl == -1 and ctx[0] == "":  # a tuplet's first note: its length is the others'
            if key.bar and not _equal_fits(
                key.t, _end(key), key.tup, key.tf, mul, ticks, self._cadence(key)
            ):
                return None
            key = key._replace(tl=LENGTHS.index(sofar) + 1)
        if kind == "n":
            self._emit(("note", _timed(ctx)))
        bracket = ctx[0]
        if bracket == "{":  # a grace note ends
            return self._st_IN(key._replace(lex=("IN", "{", ctx[1], 0, ONE)), ch)
        if bracket == "[":  # a chord's note ends; the first one gives the chord its length
            if ctx[1] == 1:
                end = key.t + _scale(ticks, mul)
                if key.bar and not self._fit(key, end, key.tup):
                    return None
                first, cmul = ticks, mul
            else:
                first, cmul = ctx[2], ctx[3]
            return self._st_IN(key._replace(lex=("IN", "[", ctx[1], first, cmul)), ch)
        if ch in "<>" and need_len is None:
            return self._broken(key, ch, ticks, mul, sofar)
        timed_key = self._add_time(key, _scale(ticks, mul))
        if timed_key is None:
            return None
        if self._cadence(key) and timed_key.t == _end(key) and not key.tup:  # the part's end
            self._gate(("cad_note",) if kind == "n" else ("cad_rest",))
        if ch == "-" and kind == "n":
            return self._tie(timed_key)
        self._plain_now = (timed_key, tuple(self._events), tuple(self._gates_now))
        target = self._after_note_step(timed_key, ch)
        if lone and ch == " " and target is not None:  # ":" may not come next
            self._plain_now = None  # so not as after any note
            return target._replace(lex=("N", "lone"))
        return target

    def _after_note_entry(self, key: _Key, ch: str) -> _Step:
        """_neutral(key, ch, "note") with its own effects and gates, remembered: it reads every
        field of the key but its lex, so all notes that end at the same time share it."""
        now = self._after_note_now.get(id(key))
        if now is None or now[0] is not key:
            if len(self._after_note) >= AFTER_NOTE_LIMIT:
                self._after_note.clear()
            steps = self._after_note.setdefault(key._replace(lex=()), {})
            now = self._after_note_now[id(key)] = (key, steps)
        step = now[1].get(ch)
        if step is None:
            events, gates = self._events, self._gates_now
            self._events, self._gates_now = [], []
            target = self._neutral(key, ch, "note")
            step = now[1][ch] = (target, tuple(self._events), tuple(self._gates_now))
            self._events, self._gates_now = events, gates
        return step

    def _after_note_step(self, key: _Key, ch: str) -> _Key | None:
        """_after_note_entry, its effects and gates added to the step being computed."""
        target, effects, gated = self._after_note_entry(key, ch)
        if gated:
            shift = len(self._events)
            self._gates_now.extend((before + shift, gate) for before, gate in gated)
        if effects:
            self._events.extend(effects)
        return target

    def _broken(
        self, key: _Key, ch: str, ticks: int, mul: tuple[int, int], written: str
    ) -> _Key | None:
        """`>` dots the note just written and halves the next (of the same written length);
        `<` the reverse. The pair must fit the bar together."""
        if mul != ONE and not key.tup:  # a tuplet's last note and one outside it: abc2midi
            return None  # wants equal durations
        before = _scale(ticks, mul)
        after = (1, 2) if ch == ">" else (3, 2)
        if not key.bar:
            return key._replace(t=1, lex=("BR", written, after))
        t = key.t + before + (before // 2 if ch == ">" else -(before // 2))  # the first, altered
        nxt = _scale(ticks, _mul(key.tf if key.tup else ONE, after))
        if not self._fit(key, t + nxt, max(key.tup - 1, 0)):
            return None
        return key._replace(t=t, lex=("BR", written, after))

    def _tie(self, key: _Key) -> _Key | None:
        if key.bar and not self._can_start(key):  # the tied note stays in this bar
            return None
        mul = key.tf if key.tup else ONE
        ahead = key._replace(tup=max(key.tup - 1, 0))
        if self._cadence(key) and self._ends_bar(ahead, mul, "", None):  # it ends the part
            self._gate(("cad_note",))
        self._emit(("tie",))
        return key._replace(lex=("TIE", 0))

    def _st_TIE(self, key: _Key, ch: str) -> _Key | None:
        if ch == " ":
            return key
        if ch == "|" and not key.lex[1] and not (self.metre or self.form):
            return key._replace(lex=("TIE", 1))
        if ch in _NOTE_START:
            return self._note_start(key, ch, None, _BODY, tied=True)
        return None

    def _st_BR(self, key: _Key, ch: str) -> _Key | None:
        if ch in _NOTE_START or ch == "z":
            return self._note_start(key, ch, key.lex[1], _BODY, key.lex[2])
        return None

    def _st_TP(self, key: _Key, ch: str) -> _Key | None:
        if ch in "23456789" and not key.tup:
            p = int(ch)
            if not self._tuplet_fits(key, p):
                return None
            return key._replace(tup=p, tf=_tuplet_tf(p, key.meter), lex=("TN",))
        if (ch in _NOTE_START or ch == "z") and self.slurs and not key.slur:
            return self._note_start(key._replace(slur=1), ch, None, _BODY)
        return None

    def _st_TN(self, key: _Key, ch: str) -> _Key | None:
        if ch in _NOTE_START or ch == "z":
            return self._note_start(key, ch, None, _BODY)
        return None

    def _st_LB(self, key: _Key, ch: str) -> _Key | None:
        if ch == "1":
            if not self._first_ending_may_start(key):
                return None
            self._emit(("first",))
            return key._replace(rep=R_FIRST, ends=1, lex=("N", "end"))
        if ch == "2":
            if key.rep != R_FIRST_DONE:
                return None
            self._emit(("second",))
            return key._replace(rep=R_SECOND, lex=("N", "end"))
        if ch in _NOTE_START and self.chords:
            if self._cadence(key):
                self._gate(("cad_chord",))
            return self._st_IN(key._replace(lex=("IN", "[", 0, 0, ONE)), ch)
        return None

    def _st_IN(self, key: _Key, ch: str) -> _Key | None:
        bracket, count, first, mul = key.lex[1:5]
        if ch in _NOTE_START and count < MAX_CHORD_NOTES:
            ctx = (bracket, count + 1, first, mul) if bracket == "[" else (bracket, count + 1)
            return self._note_start(key, ch, None, ctx)
        if count and ch == ("]" if bracket == "[" else "}"):
            return key._replace(lex=("CE", "", first, mul) if bracket == "[" else ("GE",))
        return None

    def _st_CE(self, key: _Key, ch: str) -> _Key | None:
        _, sofar, first, mul = key.lex
        if self._len.extends(sofar, ch):
            limit = _end(key)
            cad = self._cadence(key)
            if key.bar and not _length_fits(
                key.t, limit, key.tup, key.tf, mul, sofar + ch, first, cad
            ):
                return None
            return key._replace(lex=("CE", sofar + ch, first, mul))
        if self._len.complete(sofar):
            timed = self._add_time(key, _scale(first * _LEN_TICKS[sofar] // TICKS, mul))
            return None if timed is None else self._neutral(timed, ch, "chord")
        return None

    def _st_GE(self, key: _Key, ch: str) -> _Key | None:
        if ch in _NOTE_START:
            return self._note_start(key, ch, None, _BODY)
        return None

    def _st_G(self, key: _Key, ch: str) -> _Key | None:
        sofar = key.lex[1]
        if self._gchord.extends(sofar, ch):
            return key._replace(lex=("G", sofar + ch))
        if ch == '"' and self._gchord.complete(sofar):
            return key._replace(lex=("N", "gch"))
        return None

    def _st_PI(self, key: _Key, ch: str) -> _Key | None:
        _, plain, close, filled, check, after = key.lex
        rep, pend = key.rep, key.pend
        if ch in "|]:":  # || |] |: close the part
            if not close or rep == R_FIRST or (ch == ":" and pend):
                return None
            if self.form and not filled and ch != ":":  # as a part starts, only |: (_bar_kinds)
                return None
            opens = ch == ":" or bool(pend)
            self._close_gate(key, 0, filled, check, rep == R_SECOND, opens, ch != ":")
            self._emit(("close", filled))
            key = key._replace(first=1, last=0, lim=key.lim if after < 0 else after)
            if ch == ":":
                return key._replace(rep=R_OPEN, pend=1, lex=("N", "bar"))
            rep = R_REOPENED if rep == R_SECOND else rep
            return key._replace(rep=rep, lex=("N", "bar"))
        if not plain:
            return None
        if ch == "1":  # |1
            if not self._first_ending_may_start(key):
                return None
            self._emit(("first",))
            return key._replace(rep=R_FIRST, ends=1, lex=("N", "end"))
        return self._neutral(key._replace(lex=("N", "bar")), ch, "bar")

    def _st_CO(self, key: _Key, ch: str) -> _Key | None:
        rep, filled, after = key.rep, key.lex[1], key.lex[2]
        if ch == "|":  # :|
            if rep == R_FIRST:  # the first ending's end: the part goes on in its second ending
                return key._replace(rep=R_FIRST_DONE, pend=0, last=0, lim=0, lex=("CP",))
            if key.ends:  # the next part has no |:
                self._close_gate(key, 0, filled, None, True, False, True)
            self._emit(("close", filled))
            played = {
                R_OPEN: R_PLAYED,
                R_PLAYED: R_PLAYED,
                R_SECOND: R_REOPENED,
                R_REOPENED: R_PLAYED,
            }
            lim = key.lim if after < 0 else after
            return key._replace(rep=played[rep], pend=0, first=1, last=0, lim=lim, lex=("CP",))
        if ch == ":" and rep == R_OPEN:  # ::
            self._close_gate(key, 0, filled, None, True, True)
            self._emit(("close", filled))
            lim = key.lim if after < 0 else after
            return key._replace(pend=1, first=1, last=0, lim=lim, lex=("N", "bar"))
        return None

    def _st_CP(self, key: _Key, ch: str) -> _Key | None:
        if ch == "2":  # :|2
            if key.rep != R_FIRST_DONE:
                return None
            self._emit(("second",))
            return key._replace(rep=R_SECOND, lex=("N", "end"))
        return self._neutral(key, ch, "bar")

    def _st_BANG(self, key: _Key, ch: str) -> _Key | None:
        return key._replace(lex=("BL",)) if ch == "\n" else None

    def _st_F(self, key: _Key, ch: str) -> _Key | None:
        return self._after_free_newline(key) if ch == "\n" else key
