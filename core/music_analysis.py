"""How a tune sounds as a folk tune: bar lengths against the metre, parts and form, the last note
against the tonic, repeated bars, and keys against a corpus. Stdlib only (no torch, no textual).

Issue 12's definitions, on ABC 2.1 durations in exact fractions. Where they leave a choice, the
one taken here reproduces the issue's corpus and shipped-model figures:

* Bars split at every bar line (`|` `||` `|]` `[|` `|:` `:|` `::`) and ending mark (`[1` `|1`
  `:|2` `[2`); a stretch with no notes or rests is no bar. A bar lasts the sum of its notes and
  rests: L: (default 1/16 below a 3/4 metre, else 1/8, from the header M:), broken rhythm,
  tuplets `(p:q:r` (the default q by the metre in force, as abc2midi has it), chords (first note's length
  times the chord's own), grace notes (zero), `Z`/`X` multi-bar rests (as many bars). A tie
  joins nothing: each bar keeps its own notes. Body M: / L: lines and [M:] / [L:] change them.
* Edge bars: the first and last bar of each part, the last of the tune, and the bars on either
  side of an ending mark or of a repeat / double bar that does not end a part. They only must not
  be longer than a bar. The other bars (under a metre) are the checked bars: each must last
  exactly one bar of the metre in force. A tune's bars are all right when no checked bar is
  wrong and no edge bar is too long.
* Parts end at `:|` `::` `|]` `||` `|:` or a `P:` field, except where a second ending follows
  (it stays in its part). A part is repeated when a `:|` or `::` closes it or stands inside it.
  Bars per part: written bars outside second endings (a second ending lasts until its part
  ends), less a first bar shorter than a bar (a pickup).
* Tonic: the pitch class of the tonic of the key in force at the last note (the header K:
  unless a body K: line or [K:] changed it), its mode and own accidental included (`K:Ador` ->
  A, `K:F#m` -> F#). The last note is the last written note, not a rest or grace note (the end
  of a second ending); a chord counts by its first note. It sounds with its explicit
  accidental, else one written earlier in its bar on the same letter and octave, else the key
  signature in force (a tie does not carry an accidental over a bar line here).
* Metre mismatch: among a tune's checked bars, some other length is more common than the bar of
  the metre in force (a tie is no mismatch), as jig bars under M:9/8 are.
* A repeated bar is a checked bar with the same notes (sounding pitches, rests) and durations as
  an earlier bar of the tune, edge bars included; shares of repeated bars are over checked bars.
  A bar run: three written bars in a row with the same notes and durations (a loop, not a
  phrase repeated: the corpus has one in 1 % of tunes).
* Key: the header K:'s tonic and mode as core.corpus.normalize_key writes them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property, lru_cache

from core.abc import plural
from core.corpus import header_field, key_spellings, normalize_key
from core.transpose import ACCIDENTALS, LETTERS, NATURAL_SEMITONES, parse_key

BAR_PHRASE = 8  # bars in each part of an AABB tune
SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
FLAT_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")

# One token of a music line; the outer group's name says which (m.lastgroup). Order matters:
# inline fields and `[|` before chords, `[1` endings before chords, tuplets before slurs (a `(`
# that starts no tuplet is skipped as a slur), quotes and `!…!` decorations are skipped whole.
_TOKEN = re.compile(
    r"""
    (?P<field>\[(?P<fname>[A-Za-z]):(?P<fvalue>[^\]]*)\])
  | (?P<bar>(?P<bar_text>:*\[?\|[|\]]*:*|::+)(?P<bar_ending>[1-9][0-9,\-]*)?)
  | (?P<ending>\[(?P<ending_text>[1-9][0-9,\-]*))
  | (?P<chord_open>\[)
  | (?P<chord_close>\](?P<chord_len>\d*/*\d*))
  | (?P<grace_open>\{) | (?P<grace_close>\})
  | (?P<tuplet>\((?P<p>[1-9])(?::(?P<q>\d*))?(?::(?P<r>\d*))?)
  | (?P<note>(?P<acc>\^\^|\^|__|_|=)?(?P<letter>[A-Ga-g])(?P<octave>[,']*)(?P<len>\d*/*\d*))
  | (?P<rest>[zx](?P<rest_len>\d*/*\d*))
  | (?P<multirest>[ZX](?P<count>\d*))
  | (?P<broken>[<>]+)
  | (?P<skip>"[^"]*"?|![^!\s]+!|\+[^+\s]*\+)
    """,
    re.VERBOSE,
)
_LENGTH = re.compile(r"(\d*)(/*)(\d*)")
_TONIC = re.compile(r"([A-G])([#b]?)")


# --- metre, lengths, pitch -----------------------------------------------------------------------


@dataclass(frozen=True)
class Meter:
    """A metre n/d; `C` is 4/4 and `C|` is 2/2."""

    num: int
    den: int

    @cached_property
    def bar(self) -> Fraction:
        return Fraction(self.num, self.den)

    @property
    def compound(self) -> bool:
        """3/4, 6/8, 9/8 …: the default q of `(5` `(7` `(9` tuplets is then 3, as abc2midi, which
        plays the tunes, has it (ABC 2.1 would count 3/4 and 3/8 simple, with q 2)."""
        return self.num % 3 == 0

    def __str__(self) -> str:
        return f"{self.num}/{self.den}"


NO_METER = "4/4"  # the metre abc2midi plays where a header has no M: ("using default")


@lru_cache(maxsize=1024)  # a corpus or the grammar asks about the same few values again and again
def parse_meter(value: str | None) -> Meter | None:
    """An M: value -> Meter; None for `none`, a missing or an unreadable value."""
    text = (value or "").split("%")[0].strip()
    if text == "C":
        return Meter(4, 4)
    if text == "C|":
        return Meter(2, 2)
    m = re.fullmatch(r"\(?([\d+]+)\)?\s*/\s*(\d+)", text)
    if m is None:
        return None
    num = sum(int(x) for x in m.group(1).split("+") if x)  # 2+3/8 is 5/8
    den = int(m.group(2))
    return Meter(num, den) if num > 0 and den > 0 else None


@lru_cache(maxsize=1024)
def parse_unit(value: str | None) -> Fraction | None:
    """An L: value like 1/8 -> Fraction, or None."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", (value or "").split("%")[0])
    if m is None or int(m.group(2)) == 0 or int(m.group(1)) == 0:
        return None
    return Fraction(int(m.group(1)), int(m.group(2)))


def default_unit(meter: Meter | None) -> Fraction:
    """ABC 2.1: 1/16 when the metre is below 3/4, else (and without a metre) 1/8."""
    return Fraction(1, 16) if meter is not None and meter.bar < Fraction(3, 4) else Fraction(1, 8)


@lru_cache(maxsize=256)
def note_length(text: str) -> Fraction:
    """A length suffix in units of L: '' 1, '2' 2, '/' 1/2, '//' 1/4, '3/2' 3/2, '/4' 1/4."""
    m = _LENGTH.fullmatch(text)
    if m is None or not text:
        return Fraction(1)
    num = int(m.group(1)) if m.group(1) else 1
    if not m.group(2):
        return Fraction(num)
    den = int(m.group(3)) if m.group(3) else 2
    return Fraction(num, max(den, 1) * 2 ** (len(m.group(2)) - 1))


@lru_cache(maxsize=1024)
def _scaled(text: str, unit: Fraction) -> Fraction:
    return note_length(text) * unit


def tuplet_factor(p: int, q: int | None, meter: Meter | None) -> Fraction:
    """`(p:q` plays p notes in the time of q; abc2midi's q when none is given (Meter.compound)."""
    if q is None:
        if p in (2, 4, 8):
            q = 3
        elif p in (3, 6):
            q = 2
        else:
            q = 3 if meter is not None and meter.compound else 2
    return Fraction(q, p)


def tonic_pitch_class(key_value: str | None) -> int | None:
    """The K: tonic's pitch class (C=0), modes and the tonic's own sharp/flat included."""
    m = _TONIC.match(normalize_key(key_value or ""))
    if m is None:
        return None
    natural = NATURAL_SEMITONES[LETTERS.index(m.group(1))]
    return (natural + {"#": 1, "b": -1, "": 0}[m.group(2)]) % 12


def _signature(key_value: str | None) -> tuple[int, ...]:
    """Per-letter offsets of a K: value's key signature; none when parse_key cannot read it."""
    key = parse_key(key_value or "")
    return key.signature() if key is not None else (0,) * 7


def pitch_name(pitch_class: int, flats: bool = False) -> str:
    return (FLAT_NAMES if flats else SHARP_NAMES)[pitch_class % 12]


# --- reading a tune into bars --------------------------------------------------------------------


@dataclass
class _Boundary:
    """What stands between two bars: bar lines, an ending mark, a P: field."""

    bars: list[str] = field(default_factory=list)
    ending: str | None = None
    part_field: bool = False

    @property
    def repeat_end(self) -> bool:
        return any(b.startswith(":") for b in self.bars)

    @property
    def second_ending(self) -> bool:
        return self.ending is not None and "1" not in re.findall(r"\d+", self.ending)

    @property
    def ends_part(self) -> bool:
        if self.part_field:
            return True
        if self.second_ending:
            return False  # `:|2`: the second ending stays in its part
        return any(b[0] == ":" or b[-1] == ":" or "||" in b or "|]" in b for b in self.bars)

    @property
    def inner_mark(self) -> bool:
        """An ending mark or a repeat / double bar that does not end a part: its neighbours are
        edge bars."""
        return not self.ends_part and (self.ending is not None or any(b != "|" for b in self.bars))


@dataclass
class _Bar:
    events: list[tuple[int | None, Fraction]]  # (sounding pitch in semitones or None, duration)
    meter: Meter | None
    before: _Boundary
    written: int = 1  # written bars: a multi-bar rest `Z4` is 4
    duration: Fraction = Fraction(0)

    @property
    def limit(self) -> Fraction | None:
        return self.meter.bar * self.written if self.meter is not None else None


class _Reader:
    """Walks a tune's body once, token by token, into bars and the boundaries between them."""

    def __init__(self, tune: str):
        # Without M: its bars as abc2midi plays them (and the grammar writes them): in NO_METER.
        # (M:none, free metre, has none.)
        self.meter = parse_meter(header_field(tune, "M") or NO_METER)
        self.unit = parse_unit(header_field(tune, "L")) or default_unit(self.meter)
        self.key = header_field(tune, "K")
        self.signature = _signature(self.key)
        self.bars: list[_Bar] = []
        self.boundary = _Boundary()  # the one being written, before the next bar
        self.before = self.boundary  # the one before the bar being read
        self.events: list[tuple[int | None, Fraction]] = []
        self.written = 1
        self.bar_meter = self.meter
        self.accidentals: dict[int, int] = {}  # diatonic index -> offset, for the rest of the bar
        self.tuplet: tuple[Fraction, int] | None = None  # (factor, notes left)
        self.broken_next: Fraction | None = None  # what `>` / `<` leave for the next note
        self.chord: tuple[int, Fraction] | None = None  # first note of an open chord
        self.in_chord = self.in_grace = False
        self.last_pitch: int | None = None
        self.last_key = self.key  # the key in force at the last note
        for line in _body_lines(tune):
            self._line(line)
        self._close_bar()

    def _line(self, line: str) -> None:
        if len(line) >= 2 and line[1] == ":" and line[0].isalpha():
            self._field(line[0], line[2:])
            return
        music = line.split("%")[0]
        pos = 0
        while pos < len(music):
            m = _TOKEN.match(music, pos)
            if m is None:
                pos += 1  # spaces, decorations (~ . H T u v), slurs, `!` line ends
                continue
            handler = _HANDLERS.get(m.lastgroup or "")
            if handler is not None:
                handler(self, m)
            pos = m.end()

    def _field(self, name: str, value: str) -> None:
        if name == "M":
            self.meter = parse_meter(value)
        elif name == "L":
            self.unit = parse_unit(value) or self.unit
        elif name == "K":
            self.key, self.signature = value, _signature(value)
        elif name == "P":
            self.boundary.part_field = True

    def _inline_field(self, m: re.Match[str]) -> None:
        self._field(m.group("fname"), m.group("fvalue"))

    def _bar_line(self, m: re.Match[str]) -> None:
        self._close_bar()
        self.boundary.bars.append(m.group("bar_text"))
        if m.group("bar_ending") is not None:
            self.boundary.ending = m.group("bar_ending")

    def _ending(self, m: re.Match[str]) -> None:
        self.boundary.ending = m.group("ending_text")

    def _close_bar(self) -> None:
        if self.events:
            duration = sum((d for _, d in self.events), Fraction(0))
            self.bars.append(_Bar(self.events, self.bar_meter, self.before, self.written, duration))
            self.events, self.written = [], 1
        self.accidentals = {}

    def _pitch(self, m: re.Match[str]) -> int:
        """Sounding pitch in semitones above C (`C` = 0, `c` = 12)."""
        letter = m.group("letter")
        index = LETTERS.index(letter.upper()) + (7 if letter.islower() else 0)
        index += 7 * (m.group("octave").count("'") - m.group("octave").count(","))
        acc = m.group("acc")
        if acc:
            self.accidentals[index] = ACCIDENTALS[acc]
        offset = self.accidentals.get(index, self.signature[index % 7])
        return 12 * (index // 7) + NATURAL_SEMITONES[index % 7] + offset

    def _note(self, m: re.Match[str]) -> None:
        pitch = self._pitch(m)
        if self.in_grace:
            return  # grace notes take no time
        length = _scaled(m.group("len"), self.unit)
        if not self.in_chord:
            self._event(pitch, length)
        elif self.chord is None:
            self.chord = (pitch, length)

    def _chord_open(self, m: re.Match[str]) -> None:
        self.in_chord, self.chord = True, None

    def _chord_close(self, m: re.Match[str]) -> None:
        first, self.chord, self.in_chord = self.chord, None, False
        if first is not None:
            self._event(first[0], first[1] * note_length(m.group("chord_len")))

    def _grace(self, m: re.Match[str]) -> None:
        self.in_grace = m.group(0) == "{"

    def _rest(self, m: re.Match[str]) -> None:
        self._event(None, _scaled(m.group("rest_len"), self.unit))

    def _multirest(self, m: re.Match[str]) -> None:
        bars = int(m.group("count") or 1)
        self._event(None, (self.meter.bar if self.meter else Fraction(1)) * bars)
        self.written = bars

    def _event(self, pitch: int | None, length: Fraction) -> None:
        """A note, rest or chord enters the bar, shaped by an open tuplet and a broken rhythm."""
        if not self.events:
            self.before, self.boundary = self.boundary, _Boundary()
            self.bar_meter = self.meter
        if self.tuplet is not None:
            factor, left = self.tuplet
            length *= factor
            self.tuplet = (factor, left - 1) if left > 1 else None
        if self.broken_next is not None:
            length, self.broken_next = length * self.broken_next, None
        self.events.append((pitch, length))
        if pitch is not None:
            self.last_pitch, self.last_key = pitch, self.key

    def _tuplet(self, m: re.Match[str]) -> None:
        p = int(m.group("p"))
        q = int(m.group("q")) if m.group("q") else None
        r = int(m.group("r")) if m.group("r") else p
        if p >= 2:
            self.tuplet = (tuplet_factor(p, q, self.meter), r)

    def _broken(self, m: re.Match[str]) -> None:
        """`>`: the note before is dotted and the next halved; `>>` double-dotted …; `<` reverse."""
        if not self.events:
            return  # nothing before it in this bar (abc2midi rejects that too)
        text = m.group(0)
        short = Fraction(1, 2 ** len(text))
        before, after = (2 - short, short) if text[0] == ">" else (short, 2 - short)
        pitch, length = self.events[-1]
        self.events[-1] = (pitch, length * before)
        self.broken_next = after


_HANDLERS: dict[str, Callable[[_Reader, re.Match[str]], None]] = {
    "field": _Reader._inline_field,
    "bar": _Reader._bar_line,
    "ending": _Reader._ending,
    "chord_open": _Reader._chord_open,
    "chord_close": _Reader._chord_close,
    "grace_open": _Reader._grace,
    "grace_close": _Reader._grace,
    "tuplet": _Reader._tuplet,
    "note": _Reader._note,
    "rest": _Reader._rest,
    "multirest": _Reader._multirest,
    "broken": _Reader._broken,
}  # "skip" (quotes, decorations) has none


def _body_lines(tune: str) -> list[str]:
    """Lines after the first K: line (all lines when there is none, as core.novelty reads it)."""
    lines = tune.strip("\n").splitlines()
    start = next((i + 1 for i, line in enumerate(lines) if line.startswith("K:")), 0)
    return lines[start:]


# --- measures of one tune ------------------------------------------------------------------------


@dataclass(frozen=True)
class TuneAnalysis:
    """The musical measures of one tune (see the module's definitions)."""

    bars_checked: int  # non-edge bars under a metre: each must last exactly one bar
    bars_right: int  # of those, the ones that do
    edge_bars_long: int  # edge bars longer than a bar
    all_right: bool  # some bars under a metre, no checked bar wrong, no edge bar too long
    meter: str | None  # the header's M: as n/d
    body_meter: str | None  # the length most non-edge bars have when it is not M:'s, e.g. "6/8"
    meter_mismatch: bool
    tonic_pitch_class: int | None  # of the key in force at the last note
    last_pitch_class: int | None
    ends_on_tonic: bool
    parts: int
    bars_per_part: tuple[int, ...]
    repeated_parts: tuple[bool, ...]
    aabb: bool
    one_part: bool
    repeated_bars: int  # checked bars with the same notes and durations as an earlier bar
    bar_run: bool  # three written bars in a row with the same notes and durations
    key: str  # the header K:'s tonic and mode as core.corpus.normalize_key writes them, "?" if none

    @property
    def bars(self) -> int:
        return sum(self.bars_per_part)

    @property
    def bars_off(self) -> int:
        return self.bars_checked - self.bars_right + self.edge_bars_long

    @property
    def form(self) -> str:
        """A letter per part, doubled when it is repeated: AABB, AB, AABBCC …"""
        return "".join(
            chr(ord("A") + min(i, 25)) * (2 if rep else 1)
            for i, rep in enumerate(self.repeated_parts)
        )


def _parts(bars: Sequence[_Bar]) -> list[list[int]]:
    parts: list[list[int]] = []
    for i, bar in enumerate(bars):
        if not parts or bar.before.ends_part:
            parts.append([])
        parts[-1].append(i)
    return parts


def _edge_bars(bars: Sequence[_Bar], parts: Sequence[Sequence[int]]) -> set[int]:
    edges = {i for part in parts for i in (part[0], part[-1])}
    for i, bar in enumerate(bars):
        if i > 0 and bar.before.inner_mark:
            edges.update((i - 1, i))
    return edges


def _in_second_ending(bars: Sequence[_Bar]) -> list[bool]:
    """Per bar: inside a second (or later) ending, which lasts until its part ends."""
    inside, flags = False, []
    for bar in bars:
        if bar.before.ends_part:
            inside = False
        if bar.before.ending is not None:
            inside = bar.before.second_ending
        flags.append(inside)
    return flags


def _part_bars(bars: Sequence[_Bar], part: Sequence[int], second: Sequence[bool]) -> int:
    count = sum(bars[i].written for i in part if not second[i])
    first = bars[part[0]]
    if first.limit is not None and first.duration < first.limit and not second[part[0]]:
        count -= 1  # a pickup
    return count


def _is_repeated(bars: Sequence[_Bar], part: Sequence[int], end: _Boundary) -> bool:
    return end.repeat_end or any(bars[i].before.repeat_end for i in part[1:])


def _body_meter(bars: Sequence[_Bar], checked: Sequence[int]) -> str | None:
    """The bar length that outnumbers the metre's among checked bars (a tie is no mismatch),
    written over the metre's denominator; None when the metre's own length is the most common."""
    others: Counter[Fraction] = Counter()
    exact = 0
    for i in checked:
        bar, meter = bars[i], bars[i].meter
        assert meter is not None  # checked bars have a metre
        if bar.duration == meter.bar:
            exact += 1
        else:
            others[bar.duration / meter.bar] += 1
    if not others or others.most_common(1)[0][1] <= exact:
        return None
    ratio = others.most_common(1)[0][0]
    meter = bars[checked[-1]].meter
    assert meter is not None
    length = ratio * meter.bar
    den = max(meter.den, length.denominator)
    return f"{length.numerator * den // length.denominator}/{den}"


def _repeated_bars(bars: Sequence[_Bar], checked: Sequence[int]) -> int:
    """Checked bars whose notes and durations some earlier bar (edge bars too) already had."""
    first_seen: dict[tuple[tuple[int | None, Fraction], ...], int] = {}
    for i, bar in enumerate(bars):
        first_seen.setdefault(tuple(bar.events), i)
    return sum(first_seen[tuple(bars[i].events)] < i for i in checked)


def _bar_run(bars: Sequence[_Bar]) -> bool:
    """Whether three bars in a row (as written) hold the same notes and durations."""
    return any(
        bars[i].events and bars[i].events == bars[i - 1].events == bars[i - 2].events
        for i in range(2, len(bars))
    )


def bar_lengths(tune: str) -> list[Fraction]:
    """Each bar's length in whole notes, as written (for tests and for a person's questions)."""
    return [bar.duration for bar in _Reader(tune).bars]


def bar_notes(tune: str) -> list[int]:
    """Each bar's count of notes (not rests), as written: what an engraving must show."""
    return [sum(pitch is not None for pitch, _ in bar.events) for bar in _Reader(tune).bars]


def analyse_tune(tune: str) -> TuneAnalysis:
    """The measures of one ABC tune (header and body)."""
    reader = _Reader(tune)
    bars = reader.bars
    parts = _parts(bars)
    edges = _edge_bars(bars, parts)
    second = _in_second_ending(bars)
    timed = [i for i, bar in enumerate(bars) if bar.limit is not None]
    checked = [i for i in timed if i not in edges]
    right = sum(bars[i].duration == bars[i].limit for i in checked)
    too_long = sum(bars[i].duration > (bars[i].limit or 0) for i in timed if i in edges)
    closers = [bars[p[0]].before for p in parts[1:]] + ([reader.boundary] if parts else [])
    repeated_parts = tuple(_is_repeated(bars, p, e) for p, e in zip(parts, closers, strict=True))
    per_part = tuple(_part_bars(bars, p, second) for p in parts)
    body_meter = _body_meter(bars, checked)
    tonic = tonic_pitch_class(reader.last_key)
    last = reader.last_pitch % 12 if reader.last_pitch is not None else None
    meter = parse_meter(header_field(tune, "M"))
    key_value = header_field(tune, "K")
    return TuneAnalysis(
        bars_checked=len(checked),
        bars_right=right,
        edge_bars_long=too_long,
        all_right=bool(timed) and right == len(checked) and not too_long,
        meter=str(meter) if meter else None,
        body_meter=body_meter,
        meter_mismatch=body_meter is not None,
        tonic_pitch_class=tonic,
        last_pitch_class=last,
        ends_on_tonic=last is not None and last == tonic,
        parts=len(parts),
        bars_per_part=per_part,
        repeated_parts=repeated_parts,
        aabb=len(parts) == 2 and all(repeated_parts) and per_part == (BAR_PHRASE, BAR_PHRASE),
        one_part=len(parts) == 1,
        repeated_bars=_repeated_bars(bars, checked),
        bar_run=_bar_run(bars),
        key=normalize_key(key_value) if key_value else "?",
    )


def verdict(analysis: TuneAnalysis) -> str:
    """A short line for a person: '16 bars · AABB · ends on G', and what is off."""
    a = analysis
    if not a.parts:
        return "no bars"
    bars = plural(a.bars, "bar")
    if a.parts > 1 and not a.aabb:
        bars += " (" + "+".join(str(n) for n in a.bars_per_part) + ")"
    words = [bars, a.form]
    key = parse_key(a.key)
    flats = key is not None and key.sharps < 0
    if a.last_pitch_class is not None:
        ends = f"ends on {pitch_name(a.last_pitch_class, flats)}"
        if not a.ends_on_tonic and a.tonic_pitch_class is not None:
            ends += f", not {pitch_name(a.tonic_pitch_class, flats)}"
        words.append(ends)
    if a.bars_off:
        words.append(plural(a.bars_off, "bar") + " off")
    if a.meter_mismatch:
        words.append(f"bars of {a.body_meter} under M:{a.meter}")
    return " · ".join(words)


# --- a set of tunes ------------------------------------------------------------------------------


def distinct_tunes(tunes: Iterable[str]) -> list[str]:
    """Each tune once (the lab's split yields some twice, once with a leading blank line), in
    order, leaving out chunks with no K: line or no music after it."""
    seen: set[str] = set()
    out: list[str] = []
    for tune in tunes:
        text = tune.strip("\n")
        if text in seen or header_field(text, "K") is None or not "".join(_body_lines(text)):
            continue
        seen.add(text)
        out.append(text)
    return out


def corpus_keys(tunes: Iterable[str]) -> frozenset[str]:
    """The keys (tonic + mode, normalised) that a corpus's header K: lines use."""
    return frozenset(key_spellings(tunes))


@dataclass(frozen=True)
class MusicSummary:
    """Issue 12's table for one set of tunes; shares are percentages."""

    tunes: int
    bars_checked: int
    bars_right: int
    bars_right_pct: float
    all_right_pct: float
    meter_mismatch_pct: float
    tonic_ending_pct: float
    aabb_pct: float
    one_part_pct: float
    repeated_bars_pct: float
    bar_run_pct: float
    unknown_key_pct: float

    def rows(self) -> list[tuple[str, float]]:
        """(label, percentage) in the issue's order."""
        return [(label, getattr(self, name)) for name, label in ROWS]


ROWS = (
    ("bars_right_pct", "bars of the right length (checked bars, pooled)"),
    ("all_right_pct", "tunes whose checked bars are all right"),
    ("meter_mismatch_pct", "tunes whose body is in another metre than their M:"),
    ("tonic_ending_pct", "last note is the tonic of K:"),
    ("aabb_pct", "AABB: exactly two parts, both repeated, 8 bars each"),
    ("one_part_pct", "tunes of one part only"),
    ("repeated_bars_pct", "bars that repeat an earlier bar of the tune exactly"),
    ("bar_run_pct", "tunes that play one bar three times in a row"),
    ("unknown_key_pct", "tunes in a key (tonic + mode) the corpus never uses"),
)


def _pct(part: int, whole: int) -> float:
    return 100 * part / whole if whole else 0.0


def summarize(analyses: Sequence[TuneAnalysis], known_keys: Iterable[str]) -> MusicSummary:
    """The table's figures over a set of tunes; `known_keys` from corpus_keys(the corpus)."""
    keys = frozenset(known_keys)
    n = len(analyses)
    checked = sum(a.bars_checked for a in analyses)
    right = sum(a.bars_right for a in analyses)
    return MusicSummary(
        tunes=n,
        bars_checked=checked,
        bars_right=right,
        bars_right_pct=_pct(right, checked),
        all_right_pct=_pct(sum(a.all_right for a in analyses), n),
        meter_mismatch_pct=_pct(sum(a.meter_mismatch for a in analyses), n),
        tonic_ending_pct=_pct(sum(a.ends_on_tonic for a in analyses), n),
        aabb_pct=_pct(sum(a.aabb for a in analyses), n),
        one_part_pct=_pct(sum(a.one_part for a in analyses), n),
        repeated_bars_pct=_pct(sum(a.repeated_bars for a in analyses), checked),
        bar_run_pct=_pct(sum(a.bar_run for a in analyses), n),
        unknown_key_pct=_pct(sum(a.key not in keys for a in analyses), n),
    )
