"""Data augmentation: transpose ABC tunes into other keys. Pure Python, no torch, no numpy.

The shift is diatonic with a key change, which is an exact chromatic transposition: every note's
letter moves by `degrees` scale steps (C D E F G A B c d e f g a b, `,` an octave down, `'` up), and
the K: tonic moves by the same number of letters, keeping the mode. Plain notes follow the key
signature, so they need nothing more. An explicit accidental (`^` `^^` `_` `__` `=`) is absolute:
it is re-expressed as the same offset from the *key-signature* pitch of the new letter in the new
key. Every explicit accidental stays explicit (a natural becomes `=`, a courtesy accidental stays),
so the accidentals that ABC carries through a bar still land on the same notes: the letter mapping
is a bijection on (letter, octave), so a plain note after `=c` maps to a plain note after the
accidental that `=c` became, and that one sounds the same interval higher.

New tonics are always natural letters (F# minor +1 becomes G minor, one semitone up, not a
G# minor a tone up), and the new key signature must stay within 4 sharps or flats.

A tune is skipped (None) where this cannot be done safely: no K: line, no music after it, a K: the parser does not
know (unknown mode, explicit accidentals, clefs), a second K: line or an inline field `[K:…]`,
text in quotes (guitar chords, annotations), `!…!` or `+…+` decorations, accidentals beyond
double or not followed by a note, or a result with characters outside `vocab_chars`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from core.corpus import read_key

LETTERS = "CDEFGAB"
NATURAL_SEMITONES = (0, 2, 4, 5, 7, 9, 11)  # C D E F G A B
MAJOR_SHARPS = {"C": 0, "D": 2, "E": 4, "F": -1, "G": 1, "A": 3, "B": 5}
SHARP_ORDER = "FCGDAEB"
FLAT_ORDER = "BEADGCF"
# Sharps of each mode relative to the major key on the same tonic.
MODE_SHARPS = {
    "major": 0,
    "dorian": -2,
    "phrygian": -4,
    "lydian": 1,
    "mixolydian": -1,
    "minor": -3,
    "locrian": -5,
}
MAX_NEW_SHARPS = 4  # the new key signature stays within ±4 sharps/flats
DEFAULT_SHIFTS = (-2, -1, 1, 2)

ACCIDENTALS = {"__": -2, "_": -1, "=": 0, "^": 1, "^^": 2}
ACCIDENTAL_TEXT = {v: k for k, v in ACCIDENTALS.items()}

# In a music line: an inline field (left alone, [K:…] refused), a note, or a stray accidental.
_BODY_TOKEN = re.compile(
    r"(?P<field>\[[A-Za-z]:[^\]]*\])"
    r"|(?P<note>(?P<acc>[\^_=]*)(?P<letter>[A-Ga-g])(?P<octave>[,']*))"
    r"|(?P<stray>[\^_=]+)"
)


@dataclass(frozen=True)
class Key:
    """A K: key: natural letter index (C=0 … B=6), tonic accidental (-1, 0, 1), mode name."""

    letter: int
    accidental: int
    mode: str

    @property
    def sharps(self) -> int:
        """Sharps (positive) or flats (negative) in the key signature; may exceed 7 in theory."""
        return MAJOR_SHARPS[LETTERS[self.letter]] + 7 * self.accidental + MODE_SHARPS[self.mode]

    def signature(self) -> tuple[int, ...]:
        """Semitone offset the key signature gives each letter C … B."""
        return key_signature(self.sharps)

    @property
    def name(self) -> str:
        return LETTERS[self.letter] + {-1: "b", 0: "", 1: "#"}[self.accidental] + " " + self.mode


def key_signature(sharps: int) -> tuple[int, ...]:
    """Per-letter (C … B) offsets in semitones of a signature of `sharps` sharps (<0: flats)."""
    offsets = [0] * 7
    if sharps > 0:
        for letter in SHARP_ORDER[:sharps]:
            offsets[LETTERS.index(letter)] = 1
    elif sharps < 0:
        for letter in FLAT_ORDER[:-sharps]:
            offsets[LETTERS.index(letter)] = -1
    return tuple(offsets)


def parse_key(value: str) -> Key | None:
    """A K: value ('D Major', 'A Dorian', 'Em', 'F#m', 'G') -> Key, or None when not understood
    (no tonic, an unknown mode, 'none'/'HP', explicit accidentals, clefs, or over 7 sharps/flats).
    The value is read by core.corpus.read_key, as every K: value is."""
    read = read_key(value)
    if read is None or not read.exact or read.mode is None:
        return None
    accidental = {"#": 1, "b": -1, "": 0}[read.tonic[1:]]
    key = Key(LETTERS.index(read.tonic[0]), accidental, read.mode.lower())
    return key if abs(key.sharps) <= 7 else None


def _semitones(diatonic: int) -> int:
    """Natural pitch in semitones above C (uppercase octave) of a diatonic index (C=0, c=7)."""
    return 12 * (diatonic // 7) + NATURAL_SEMITONES[diatonic % 7]


def _spell(diatonic: int) -> str:
    """Diatonic index -> ABC letter with octave marks (C, = -7, C = 0, c = 7, c' = 14)."""
    octave, letter = divmod(diatonic, 7)
    if octave >= 1:
        return LETTERS[letter].lower() + "'" * (octave - 1)
    return LETTERS[letter] + "," * (-octave)


def transpose_key(key: Key, degrees: int) -> tuple[Key, int] | None:
    """The key `degrees` letters away with a natural tonic and the same mode, and the interval in
    semitones; None when its signature has over MAX_NEW_SHARPS sharps or flats."""
    new = Key((key.letter + degrees) % 7, 0, key.mode)
    if abs(new.sharps) > MAX_NEW_SHARPS:
        return None
    old_tonic = _semitones(key.letter) + key.accidental
    new_tonic = _semitones(key.letter + degrees)  # the unreduced index keeps the octave
    return new, new_tonic - old_tonic


class _Skip(Exception):
    """Raised inside the note substitution: the tune cannot be transposed safely."""


def _is_field_line(line: str) -> bool:
    return len(line) >= 2 and line[1] == ":" and line[0].isalpha()


def transpose_tune(tune: str, degrees: int, vocab_chars: set[str] | None = None) -> str | None:
    """The tune moved `degrees` scale steps (and its key as many letters), or None if it cannot
    be transposed safely. Header lines other than K:, bar lines, lengths, rests, tuplets, ties,
    slurs, repeats and the corpus's `!` line ends are left as they are."""
    result = _transpose(tune, degrees)
    if result is None:
        return None
    if vocab_chars is not None and not set(result) <= vocab_chars:
        return None
    return result


def transpose_interval(tune: str, degrees: int) -> int | None:
    """Semitones by which transpose_tune(tune, degrees) moves the tune, or None when it skips it."""
    if _transpose(tune, degrees) is None:
        return None
    key = parse_key(_key_value(tune) or "")
    moved = transpose_key(key, degrees) if key else None
    return moved[1] if moved else None


def _key_value(tune: str) -> str | None:
    for line in tune.split("\n"):
        if line.startswith("K:"):
            return line[2:]
    return None


def _transpose(tune: str, degrees: int) -> str | None:
    lines = tune.split("\n")
    key_at = next((i for i, line in enumerate(lines) if line.startswith("K:")), None)
    if key_at is None:
        return None
    if any(not (_is_field_line(h) or h.startswith("%") or not h.strip()) for h in lines[:key_at]):
        return None  # music before the K: line
    value = lines[key_at][2:]
    key = parse_key(value)
    if key is None:
        return None
    moved = transpose_key(key, degrees)
    if moved is None:
        return None
    new_key = moved[0]
    old_sig, new_sig = key.signature(), new_key.signature()

    cache: dict[str, str] = {}

    def note(m: re.Match[str]) -> str:
        text = m.group(0)
        done = cache.get(text)
        if done is not None:
            return done
        if m.group("field") is not None:
            if text[1] == "K":
                raise _Skip  # a key change inside a line
            return text  # other inline fields ([M:…], [L:…], [P:A]…) are not music
        if m.group("stray") is not None:
            raise _Skip  # an accidental with no note after it
        old = LETTERS.index(m.group("letter").upper())
        index = old + (7 if m.group("letter").islower() else 0)
        index += 7 * (m.group("octave").count("'") - m.group("octave").count(","))
        new_index = index + degrees
        acc = m.group("acc")
        if acc:
            if acc not in ACCIDENTALS:
                raise _Skip  # ^^^, ^_, =^ …
            # The same offset from the key-signature pitch, in the new key.
            offset = ACCIDENTALS[acc] - old_sig[old]
            new_acc = offset + new_sig[new_index % 7]
            if new_acc not in ACCIDENTAL_TEXT:
                raise _Skip  # would need a triple sharp or flat
            done = ACCIDENTAL_TEXT[new_acc] + _spell(new_index)
        else:
            done = _spell(new_index)
        cache[text] = done
        return done

    # The new tonic in place of the old one and its accidental; the rest of the line stays.
    lead = len(value) - len(value.lstrip())
    tonic_end = lead + (2 if key.accidental else 1)
    out = lines[:key_at]
    out.append("K:" + value[:lead] + LETTERS[new_key.letter] + value[tonic_end:])
    if not any(line.strip() and not _is_field_line(line) for line in lines[key_at + 1 :]):
        return None  # no music: nothing to transpose, and an empty copy teaches nothing
    try:
        for line in lines[key_at + 1 :]:
            if _is_field_line(line):
                if line.startswith("K:"):
                    return None  # a second key
                out.append(line)  # M:, L:, T:, w: … stay as they are
                continue
            music, hash_, comment = line.partition("%")
            if '"' in music or "+" in music or "!" in music.rstrip()[:-1]:
                return None  # annotations, guitar chords, decorations with letters
            out.append(_BODY_TOKEN.sub(note, music) + hash_ + comment)
    except _Skip:
        return None
    return "\n".join(out)


def augment(
    tunes: Sequence[str],
    shifts: Sequence[int] = DEFAULT_SHIFTS,
    vocab_chars: set[str] | None = None,
) -> list[str]:
    """The transposed copies that succeed (not the originals), tune by tune, shift by shift."""
    copies: list[str] = []
    for tune in tunes:
        for degrees in shifts:
            moved = transpose_tune(tune, degrees, vocab_chars)
            if moved is not None:
                copies.append(moved)
    return copies
