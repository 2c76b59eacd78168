"""The voice a tune is played in: instrument (a General MIDI program), tempo and transpose.

`apply_voice` turns a tune's ABC into the ABC abc2midi should play, with abc2midi's own
directives (checked against abc2midi 4.84):
- `%%MIDI program N` (N from 0, as MIDI numbers it) after the K: line sets the first voice's
  instrument, and again after each body `V:` line, as each voice starts on its own channel
  with abc2midi's default, program 0 (acoustic grand piano). A value over 127 makes abc2midi
  write a MIDI file no reader accepts, so programs come from INSTRUMENTS only.
- `Q:1/4=BPM` replaces the header's Q: line or, without one, goes before the K: line. abc2midi
  4.84 reads a bare `Q:120` as quarter notes a minute whatever L: says, and plays a tune with
  no Q: at 120 of them; the voice's tempo is always written with its beat, `1/4=`.
- `%%MIDI transpose N` after the K: line moves every voice N semitones.
What the voice sets replaces what the tune says on that point (its own program, transpose or
tempo lines are blanked, keeping the text's lines and columns); what it leaves unset stays as
written. These lines are for abc2midi only: a tune saved or shown keeps its text as written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

# Names a folk musician uses -> General MIDI program (0-based, as abc2midi's %%MIDI program).
# GM has no pipes but the Highland bag pipe, no concertina but the bandoneon ("tango
# accordion"), no mandolin but steel-strung guitar: the nearest sounds are named for the tune.
INSTRUMENTS: Mapping[str, int] = MappingProxyType(
    {
        "fiddle": 110,  # GM "Fiddle"
        "violin": 40,
        "viola": 41,
        "cello": 42,
        "double bass": 43,
        "flute": 73,
        "piccolo": 72,
        "tin whistle": 78,  # GM "Whistle"
        "recorder": 74,
        "pan flute": 75,
        "uilleann pipes": 109,  # GM "Bag pipe"
        "bagpipes": 109,
        "accordion": 21,
        "concertina": 23,  # GM "Tango accordion" (bandoneon)
        "harmonica": 22,
        "harmonium": 20,  # GM "Reed organ"
        "harp": 46,  # GM "Orchestral harp"
        "piano": 0,
        "harpsichord": 6,
        "hammered dulcimer": 15,  # GM "Dulcimer"
        "guitar": 24,  # GM "Acoustic guitar (nylon)"
        "mandolin": 25,  # GM "Acoustic guitar (steel)"
        "banjo": 105,
        "bouzouki": 25,
        "oboe": 68,
        "clarinet": 71,
        "bassoon": 70,
        "trumpet": 56,
        "organ": 19,  # GM "Church organ"
        "music box": 10,
        "glockenspiel": 9,
        "marimba": 12,
        "choir": 52,  # GM "Choir aahs"
    }
)
TEMPO_RANGE = (20, 400)  # quarter notes a minute
TRANSPOSE_RANGE = (-12, 12)  # semitones
ABC2MIDI_DEFAULT_TEMPO = 120  # quarter notes a minute when a tune has no Q:


class VoiceError(ValueError):
    """A voice that cannot be played; the message is a sentence both front ends show as is."""


def instrument_names() -> str:
    """The instruments, sorted, comma-separated: for help texts and errors."""
    return ", ".join(sorted(INSTRUMENTS))


def canonical_instrument(name: str) -> str:
    """The INSTRUMENTS name for `name` (any case; '-' or '_' for spaces), else VoiceError."""
    key = " ".join(name.lower().replace("-", " ").replace("_", " ").split())
    if key not in INSTRUMENTS:
        raise VoiceError(f"unknown instrument {name!r}; choose one of: {instrument_names()}")
    return key


def _whole_number(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise VoiceError(f"{what} must be a whole number, not {value!r}")
    return value


@dataclass(frozen=True)
class Voice:
    """How to play a tune. instrument None: the tune's own (abc2midi: piano); tempo None: the
    tune's Q: (abc2midi: 120 quarter notes a minute); transpose in semitones."""

    instrument: str | None = None
    tempo: int | None = None  # quarter notes a minute
    transpose: int = 0

    def __post_init__(self) -> None:
        if self.instrument is not None:
            if not isinstance(self.instrument, str):
                raise VoiceError(f"the instrument must be a name, not {self.instrument!r}")
            object.__setattr__(self, "instrument", canonical_instrument(self.instrument))
        if self.tempo is not None:
            lo, hi = TEMPO_RANGE
            if not lo <= _whole_number(self.tempo, "the tempo") <= hi:
                raise VoiceError(
                    f"the tempo must be {lo} to {hi} quarter notes a minute, not {self.tempo}"
                )
        lo, hi = TRANSPOSE_RANGE
        if not lo <= _whole_number(self.transpose, "the transpose") <= hi:
            raise VoiceError(f"the transpose must be {lo} to {hi} semitones, not {self.transpose}")

    @property
    def program(self) -> int | None:
        return INSTRUMENTS[self.instrument] if self.instrument is not None else None

    @property
    def plain(self) -> bool:
        """Nothing to change: the tune plays as written."""
        return self.instrument is None and self.tempo is None and self.transpose == 0

    def describe(self) -> str:
        """A few words for a person: "fiddle, ♩=140, +2 semitones" ("as written" when plain)."""
        parts = [self.instrument] if self.instrument else []
        if self.tempo is not None:
            parts.append(f"♩={self.tempo}")
        if self.transpose:
            parts.append(f"{self.transpose:+d} semitones")
        return ", ".join(parts) or "as written"

    def to_dict(self) -> dict[str, str | int | None]:
        return {"instrument": self.instrument, "tempo": self.tempo, "transpose": self.transpose}

    @classmethod
    def from_dict(cls, data: object) -> Voice:
        """A voice from to_dict's form (settings); anything unreadable gives the plain voice."""
        if not isinstance(data, dict):
            return cls()
        try:
            return cls(data.get("instrument"), data.get("tempo"), data.get("transpose", 0))
        except VoiceError:
            return cls()


# --- ABC for abc2midi ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Voiced:
    """A tune's text with its voice, and the 1-based numbers of the lines added to it."""

    text: str
    inserted: tuple[int, ...]


_PROGRAM_LINE = re.compile(r"^\s*(%%|I:)\s*MIDI\s+program\b", re.I)
_TRANSPOSE_LINE = re.compile(r"^\s*(%%|I:)\s*MIDI\s+r?transpose\b", re.I)
_PROGRAM_INLINE = re.compile(r"\[I:\s*MIDI\s+program\b[^\]]*\]", re.I)
_TRANSPOSE_INLINE = re.compile(r"\[I:\s*MIDI\s+r?transpose\b[^\]]*\]", re.I)
_TEMPO_INLINE = re.compile(r"\[Q:[^\]]*\]")


def _blank(match: re.Match[str]) -> str:
    return " " * len(match.group())  # columns of the rest of the line stay where they were


def voice_tune(abc_text: str, voice: Voice) -> Voiced:
    """The text with `voice` applied to each of its tunes (see the module's doc), and where
    lines were added. A tune starts at an X: line (a text without one is one tune); the file
    header before the first X: is left alone, as abc2midi ignores MIDI directives there. A tune
    without a K: line has no header end to place the voice after and is left as it is."""
    lines = abc_text.split("\n")
    if voice.plain:
        return Voiced(abc_text, ())
    starts = [i for i, line in enumerate(lines) if line.startswith("X:")] or [0]
    out = lines[: starts[0]]
    inserted: list[int] = []
    for start, end in zip(starts, [*starts[1:], len(lines)], strict=True):
        tune, added = _voice_one(lines[start:end], voice)
        inserted += [len(out) + n for n in added]
        out += tune
    return Voiced("\n".join(out), tuple(inserted))


def _voice_one(lines: list[str], voice: Voice) -> tuple[list[str], list[int]]:
    """One tune's lines with the voice, and the 1-based numbers of the added lines."""
    key = next((i for i, line in enumerate(lines) if line.startswith("K:")), None)
    if key is None:
        return lines, []
    program, tempo, transpose = voice.program, voice.tempo, voice.transpose
    beat = f"Q:1/4={tempo}"
    tempo_written = False
    out: list[str] = []
    inserted: list[int] = []

    def add(line: str) -> None:
        out.append(line)
        inserted.append(len(out))

    for i, line in enumerate(lines):
        if program is not None:
            if _PROGRAM_LINE.match(line):
                line = "%"
            line = _PROGRAM_INLINE.sub(_blank, line)
        if transpose:
            if _TRANSPOSE_LINE.match(line):
                line = "%"
            line = _TRANSPOSE_INLINE.sub(_blank, line)
        if tempo is not None:
            if line.startswith("Q:"):  # the header's tempo takes the voice's, later ones go
                line = "%" if tempo_written or i > key else beat
                tempo_written = True
            line = _TEMPO_INLINE.sub(_blank, line)
        if i == key and tempo is not None and not tempo_written:
            add(beat)  # a header field: before K:, so the MIDI starts at this tempo
            tempo_written = True
        out.append(line)
        if i == key:
            if program is not None:
                add(f"%%MIDI program {program}")
            if transpose:
                add(f"%%MIDI transpose {transpose}")
        elif i > key and program is not None and line.startswith("V:"):
            add(f"%%MIDI program {program}")  # each voice has its own channel and program
    return out, inserted


def apply_voice(abc_text: str, voice: Voice) -> str:
    """The ABC abc2midi should play for this tune in this voice (never the text to save)."""
    return voice_tune(abc_text, voice).text


def original_line(line: int, inserted: tuple[int, ...]) -> int:
    """A line number of voice_tune's text -> the line of the text it was given (an added
    line maps to the line before it)."""
    before = sum(1 for n in inserted if n < line)
    return line - before - (1 if line in inserted else 0)
