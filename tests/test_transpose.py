"""core.transpose: exact transposition proved with the real abc2midi, round trips, edge cases."""

from __future__ import annotations

import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from core.audio import midi_notes
from core.corpus import header_field, load_corpus
from core.transpose import (
    augment,
    key_signature,
    parse_key,
    transpose_interval,
    transpose_tune,
)

SHIFTS = (-3, -2, -1, 1, 2, 3)
SAMPLE = 40


@pytest.fixture(scope="module")
def corpus_tunes() -> list[str]:
    return load_corpus().tunes


@pytest.fixture(scope="module")
def vocab() -> set[str]:
    return set(load_corpus().vocab.chars)


def melodies(tunes: list[str], work: Path, name: str) -> list[list[tuple[int, float, float]]]:
    """(pitch, start s, length s) of the melody-channel notes of each tune, from one abc2midi run
    over a file of all of them (renumbered X:1, X:2 … so abc2midi writes name1.mid, name2.mid …)."""
    parts = []
    for i, tune in enumerate(tunes, start=1):
        lines = tune.strip("\n").split("\n")
        parts.append("\n".join([f"X:{i}", *(lines[1:] if lines[0].startswith("X:") else lines)]))
    (work / f"{name}.abc").write_text("\n\n".join(parts) + "\n\n", encoding="utf-8")
    subprocess.run(
        ["abc2midi", f"{name}.abc"], cwd=work, capture_output=True, timeout=60, check=True
    )
    out = []
    for i in range(1, len(tunes) + 1):
        notes = midi_notes(work / f"{name}{i}.mid")
        out.append(
            [(n.pitch, n.start_seconds, n.duration_seconds) for n in notes if n.channel == 0]
        )
    return out


def assert_same_music_shifted(
    before: list[tuple[int, float, float]], after: list[tuple[int, float, float]], interval: int
) -> None:
    assert before and len(before) == len(after)
    assert {a[0] - b[0] for b, a in zip(before, after, strict=True)} == {interval}
    assert [b[1:] for b in before] == pytest.approx([a[1:] for a in after], abs=1e-9)


def sample(tunes: list[str]) -> list[str]:
    """SAMPLE corpus tunes, round robin over their keys, those with explicit accidentals first."""
    by_key: dict[str, list[str]] = defaultdict(list)
    for tune in tunes:
        if transpose_tune(tune, 1) or transpose_tune(tune, -1):
            by_key[header_field(tune, "K") or "?"].append(tune)
    for group in by_key.values():
        group.sort(key=lambda t: -sum(t.count(c) for c in "^_="))
    picked: list[str] = []
    depth = 0
    while len(picked) < SAMPLE:
        for key in sorted(by_key):
            if depth < len(by_key[key]) and len(picked) < SAMPLE:
                picked.append(by_key[key][depth])
        depth += 1
    return picked


# --- proof with abc2midi ------------------------------------------------------------------------


def test_transposed_corpus_tunes_play_the_same_music_a_constant_interval_away(
    corpus_tunes: list[str], vocab: set[str], tmp_path: Path
) -> None:
    tunes = sample(corpus_tunes)
    keys = {header_field(t, "K") for t in tunes}
    assert len(keys) >= 14  # G/D/A/E/F/C/B majors, Dorian, Mixolydian and minor keys
    assert sum(any(c in t for c in "^_=") for t in tunes) >= 30
    originals = melodies(tunes, tmp_path, "orig")
    verified = 0
    for shift in SHIFTS:
        moved = [(t, transpose_tune(t, shift, vocab)) for t in tunes]
        done = [(i, m) for i, (_, m) in enumerate(moved) if m is not None]
        assert len(done) >= SAMPLE // 2, shift
        after = melodies([m for _, m in done], tmp_path, f"shift{shift + 3}")
        for (i, _), notes in zip(done, after, strict=True):
            interval = transpose_interval(tunes[i], shift)
            assert interval is not None and 0 < abs(interval) <= 6 and interval * shift > 0
            assert_same_music_shifted(originals[i], notes, interval)
            verified += 1
    assert verified >= 150


EDGE_TUNES = [
    # A natural, then a plain note in the same bar (it keeps the natural), then the next bar.
    "X:1\nT:Natural carried\nM:4/4\nL:1/8\nK:D Major\n=c c d c|c =F F f|c ^c c d|=f f ^f f|]!",
    # Accidentals in a flat key, a double sharp in the result, octave crossings.
    "X:2\nT:Flats\nM:4/4\nL:1/8\nK:F Major\n^B B _E E|=B B c b|c' b B, C,|A,, B,, ^F =F|]!",
    # Chords, grace notes, tuplets, broken rhythm, ties, slurs, endings, rests.
    "X:3\nT:Chords\nM:4/4\nL:1/8\nK:A Dorian\n|:[CEG]2 {ag}f2 (3ABc (d2|e)>f g<a z2 b-b|1 [^ce]4 c4:|2 =c8|]!",
    "X:4\nT:Minor\nM:6/8\nL:1/8\nK:E Minor\nE^DE =FGA|^d2e =d2c|B,^CD ^A,B,C|E3 E3|]!",
]


@pytest.mark.parametrize("tune", EDGE_TUNES, ids=lambda t: t.split("\n")[1][2:])
def test_edge_tunes_verified_with_abc2midi(tune: str, tmp_path: Path) -> None:
    shifts = [s for s in range(-3, 4) if transpose_tune(tune, s)]
    assert len(shifts) >= 5
    moved = [transpose_tune(tune, s) or "" for s in shifts]
    before, *after = melodies([tune, *moved], tmp_path, "edge")
    for shift, notes in zip(shifts, after, strict=True):
        assert_same_music_shifted(before, notes, transpose_interval(tune, shift) or 0)


def test_natural_then_plain_note_in_the_bar_sounds_right(tmp_path: Path) -> None:
    tune = "X:1\nL:1/4\nK:D Major\n=c c d c|c4|]"
    up = transpose_tune(tune, 1)
    assert up == "X:1\nL:1/4\nK:E Major\n=d d e d|d4|]"
    before, after = melodies([tune, up], tmp_path, "nat")
    assert [n[0] for n in before] == [72, 72, 74, 72, 73]  # C C D C | C#
    assert [n[0] for n in after] == [74, 74, 76, 74, 75]  # D D E D | D#


# --- text ---------------------------------------------------------------------------------------


def test_round_trip_gives_back_the_corpus_text(corpus_tunes: list[str], vocab: set[str]) -> None:
    both = 0
    for shift in (1, 2, 3):
        for tune in corpus_tunes:
            up = transpose_tune(tune, shift, vocab)
            down = transpose_tune(up, -shift, vocab) if up else None
            if down is not None:
                assert down == tune
                both += 1
    assert both > 2000


def test_round_trip_differs_only_for_a_sharp_or_flat_tonic() -> None:
    # New tonics are natural letters: F# minor +1 is G minor (a semitone up), and G minor -1 is
    # F minor, not F# minor. The notes stay the same letters.
    tune = "X:1\nK:F#m\nFAc f^ef|"
    up = transpose_tune(tune, 1)
    assert up == "X:1\nK:Gm\nGBd g^fg|" and transpose_interval(tune, 1) == 1
    assert transpose_tune(up, -1) == "X:1\nK:Fm\nFAc f=ef|"
    assert transpose_tune("X:1\nK:Bb\nB_Bc|", 1) == "X:1\nK:C\nc=cd|"  # Bb -> C: a tone


def test_octaves_accidentals_and_everything_else_left_alone() -> None:
    assert transpose_tune("K:C\nB b B, b'|", 1) == "K:D\nc c' C c''|"
    assert transpose_tune("K:D\nC c C, c'|", -1) == "K:C\nB, B B,, b|"
    # ^B in F major is two semitones above the key's Bb; one letter up, in G major, that is ^^c.
    # Explicit accidentals stay explicit, a natural as "=": later notes in the bar rely on them.
    assert transpose_tune("K:F Major\n^B _B =B _E|", 1) == "K:G Major\n^^c =c ^c =F|"
    assert transpose_tune("K:F Major\n^B _B =B _E|", -1) == "K:E Major\n^^A =A ^A =D|"
    text = (
        "X:7\nT:Cabbage and Bacon\nZ: id:x\nM:6/8\nL:1/8\nK:G Major\n"
        "|:(3GAB c2>d e<f|[1 g3-g2 z:|[2 {ag}f/2e3/2 [GBd]2|]!\nM:9/8\n[M:3/4] a2 A,|\n"
    )
    assert transpose_tune(text, 1) == (
        "X:7\nT:Cabbage and Bacon\nZ: id:x\nM:6/8\nL:1/8\nK:A Major\n"
        "|:(3ABc d2>e f<g|[1 a3-a2 z:|[2 {ba}g/2f3/2 [Ace]2|]!\nM:9/8\n[M:3/4] b2 B,|\n"
    )


@pytest.mark.parametrize(
    ("line", "shift", "expected"),
    [
        ("K:D Major", 1, "K:E Major"),
        ("K:A Dorian", -1, "K:G Dorian"),
        ("K:E Minor", 1, "K:F Minor"),
        ("K:D Mixolydian", 2, "K:F Mixolydian"),
        ("K:A Mixolydian", -3, "K:E Mixolydian"),
        ("K:Em", 3, "K:Am"),
        ("K:G % comment", 1, "K:A % comment"),
        ("K: G", 1, "K: A"),
    ],
)
def test_key_lines_keep_their_form(line: str, shift: int, expected: str) -> None:
    assert transpose_tune(f"X:1\n{line}\nz4|]", shift) == f"X:1\n{expected}\nz4|]"


@pytest.mark.parametrize(
    ("tune", "shift", "why"),
    [
        ("X:1\nT:x\nAB|", 1, "no K:"),
        ("AB cd|", 1, "no header at all"),
        ("X:1\nK:G\n", 1, "no music"),
        ("X:1\nAB|\nK:G\nAB|", 1, "music before K:"),
        ("X:1\nK:G\nAB [K:D] cd|", 1, "inline key change"),
        ("X:1\nK:G\nAB cd|\nK:D\nAB cd|", 1, "second K: line"),
        ('X:1\nK:G\n"G"AB cd|', 1, "guitar chord"),
        ('X:1\nK:G\n"Verse" AB cd|', 1, "annotation"),
        ("X:1\nK:G\nAB !trill!c d|!", 1, "decoration"),
        ("X:1\nK:G\nAB +trill+c d|", 1, "decoration"),
        ("X:1\nK:D Blues\nAB|", 1, "unknown mode"),
        ("X:1\nK:D exp ^f\nAB|", 1, "explicit key signature"),
        ("X:1\nK:none\nAB|", 1, "no key"),
        ("X:1\nK:G\n^^^A B|", 1, "triple sharp"),
        ("X:1\nK:G\n^_A B|", 1, "mixed accidentals"),
        ("X:1\nK:G\nA ^ B|", 1, "accidental without a note"),
        ("X:1\nK:C\n__F|", 3, "F major: __F becomes a triple flat on B"),
        ("X:1\nK:Am\n^^b a|", 1, "B minor: ^^b becomes a triple sharp on c"),
        ("X:1\nK:A\nAB|", 1, "B major has 5 sharps"),
        ("X:1\nK:C\nAB|", -1, "B major has 5 sharps"),
        ("X:1\nK:F\nAB|", 2, "A major is fine, but ..."),
    ],
)
def test_skipped(tune: str, shift: int, why: str) -> None:
    if why.startswith("A major"):
        assert transpose_tune(tune, shift) == "X:1\nK:A\ncd|"
        return
    assert transpose_tune(tune, shift) is None, why


def test_result_outside_the_vocabulary_is_skipped(vocab: set[str]) -> None:
    tune = "X:1\nK:G\nGB d2 b|"
    assert transpose_tune(tune, 1, vocab) == "X:1\nK:A\nAc e2 c'|"
    no_apostrophe = vocab - {"'"}
    assert transpose_tune(tune, 1, no_apostrophe) is None
    assert transpose_tune(tune, -1, no_apostrophe) == "X:1\nK:F\nFA c2 a|"


def test_key_signatures() -> None:
    assert key_signature(0) == (0,) * 7
    assert key_signature(2) == (1, 0, 0, 1, 0, 0, 0)  # F# C#
    assert key_signature(-2) == (0, 0, -1, 0, 0, 0, -1)  # Bb Eb
    for value, sharps in {
        "D Major": 2, "A Dorian": 1, "E Minor": 1, "D Mixolydian": 1, "A Mixolydian": 2,
        "F Major": -1, "B Minor": 2, "G Dorian": -1, "F# Minor": 3, "Bb": -2, "C Lydian": 1,
        "E Phrygian": 0, "B Locrian": 0, "Am": 0, "Gmix": 0, "Ddor": 0,
    }.items():  # fmt: skip
        key = parse_key(value)
        assert key is not None and key.sharps == sharps, value
    assert parse_key("H") is None and parse_key("D Blues") is None and parse_key("") is None
    assert parse_key("Fb Locrian") is None  # 15 flats


def test_every_corpus_key_is_understood(corpus_tunes: list[str]) -> None:
    values = {header_field(t, "K") for t in corpus_tunes} - {None}
    assert values and all(parse_key(v or "") is not None for v in values)


# --- augment ------------------------------------------------------------------------------------


def test_augment_all_tunes(corpus_tunes: list[str], vocab: set[str]) -> None:
    # Its speed is measured by bench/corpus_check.py, beside abc2midi's.
    copies = augment(corpus_tunes, vocab_chars=vocab)
    counts = {s: sum(transpose_tune(t, s, vocab) is not None for t in corpus_tunes) for s in SHIFTS}
    assert len(copies) == sum(counts[s] for s in (-2, -1, 1, 2)) > 2 * len(corpus_tunes)
    assert min(counts[s] for s in (-3, -1, 1, 3)) > 0.9 * len(corpus_tunes)
    assert min(counts[-2], counts[2]) > 0.6 * len(corpus_tunes)
    assert not set(copies) & set(corpus_tunes)
    assert set("".join(copies)) <= vocab
    assert augment(corpus_tunes[:3], shifts=(1,)) == [
        u for t in corpus_tunes[:3] if (u := transpose_tune(t, 1)) is not None
    ]
