"""core.music_analysis: hand-made tunes with known answers, and the default corpus's figures."""

from __future__ import annotations

import time
from fractions import Fraction as F

import pytest

from core.corpus import load_corpus
from core.music_analysis import (
    ROWS,
    TuneAnalysis,
    analyse_tune,
    bar_lengths,
    corpus_keys,
    distinct_tunes,
    note_length,
    parse_meter,
    summarize,
    tuplet_factor,
    verdict,
)


def tune(body: str, meter: str = "C", key: str = "G", unit: str | None = "1/8") -> str:
    header = ["X:1", "T:Test", f"M:{meter}"] + ([f"L:{unit}"] if unit else []) + [f"K:{key}"]
    return "\n".join(header) + "\n" + body.strip("\n") + "\n"


REEL = tune("""
GA|B2dB G2BG|A2cA F2AF|G2BG D2GB|A2FA D2GA|
B2dB G2BG|A2cA F2AF|G2BG DGFA|G6:|
|:ga|b2gb a2fa|g2eg f2df|e2ce d2Bd|c2Ac B2GA|
B2dB G2BG|A2cA F2AF|G2BG DGFA|G6:|
""")


def lengths(body: str, meter: str = "C", unit: str | None = "1/8") -> list[F]:
    return bar_lengths(tune(body, meter=meter, unit=unit))


# --- durations ----------------------------------------------------------------------------------


def test_note_lengths() -> None:
    table = {"": F(1), "2": F(2), "/": F(1, 2), "//": F(1, 4), "3/2": F(3, 2), "/4": F(1, 4)}
    assert {text: note_length(text) for text in table} == table
    assert note_length("3/") == F(3, 2)


def test_meters_and_default_unit() -> None:
    assert parse_meter("C") is not None and str(parse_meter("C")) == "4/4"
    assert str(parse_meter("C|")) == "2/2"
    assert str(parse_meter("9/8")) == "9/8"
    assert parse_meter("none") is None
    # Below 3/4 the unit is 1/16: eight plain notes fill a 2/4 bar.
    assert lengths("dAFA dAFA|", meter="2/4", unit=None) == [F(1, 2)]
    assert lengths("dAF dAF|", meter="6/8", unit=None) == [F(6, 8)]
    assert lengths("d2fd A2FA|", meter="C|") == [F(1)]


def test_broken_rhythm() -> None:
    # A>B = 3/2 + 1/2, c<d = 1/2 + 3/2, e>>f = 7/4 + 1/4: a full 4/4 bar.
    assert lengths("A>B c<d e>>f g2|") == [F(1)]


def test_triplets_and_general_tuplets() -> None:
    assert lengths("(3ABc d2 e2 f2|") == [F(1)]  # (3 ABc is two quavers
    assert lengths("(3:2:3ABc d2 e2 f2|") == [F(1)]
    assert lengths("(3:2:2A2B c|") == [F(3, 8)]  # only two notes in the tuplet
    assert lengths("(2AB c|", meter="6/8") == [F(4, 8)]  # (2 is 2 in the time of 3
    assert tuplet_factor(3, None, parse_meter("6/8")) == F(2, 3)  # (3 in compound metre too
    assert tuplet_factor(5, None, parse_meter("6/8")) == F(3, 5)
    assert tuplet_factor(5, None, parse_meter("2/4")) == F(2, 5)


def test_chords_grace_notes_ties_and_rests() -> None:
    assert lengths("[GBd]2 [G2B2] [GB]/ A/ z2|") == [F(7, 8)]  # first note's length x chord's
    assert lengths("{ag}f2 {/g}f2|") == [F(4, 8)]  # grace notes take no time
    assert lengths("A2-A2 B2-|B2 c2|") == [F(6, 8), F(4, 8)]  # a tie joins nothing
    assert lengths("z4 x4|") == [F(1)]
    assert lengths('"Am"A2 !trill!B2 ~c2 .d2|') == [F(1)]  # guitar chords, decorations


# --- bars, edges, parts -------------------------------------------------------------------------


def test_a_right_reel() -> None:
    a = analyse_tune(REEL)
    assert (a.bars_checked, a.bars_right, a.edge_bars_long, a.all_right) == (14, 14, 0, True)
    assert a.bars_per_part == (8, 8) and a.repeated_parts == (True, True)
    assert a.aabb and not a.one_part and a.form == "AABB"
    assert a.ends_on_tonic and a.last_pitch_class == 7 and a.key == "G major"
    assert not a.meter_mismatch
    # Part A repeats two bars, part B three bars of part A.
    assert a.repeated_bars == 5
    assert verdict(a) == "16 bars · AABB · ends on G"


def test_without_m_bars_are_in_abc2midis_metre_and_with_m_none_in_none() -> None:
    """No M: is abc2midi's 4/4 (and the grammar's): the tunebook said "bars off" of a tune the
    generator had judged right, its bars being checked against no metre. M:none is free."""
    reel = REEL.replace("M:C\n", "")
    assert "M:" not in reel
    a = analyse_tune(reel)
    assert a.meter is None and (a.bars_checked, a.bars_right, a.all_right) == (14, 14, True)
    a = analyse_tune(reel.replace("A2cA F2AF|G2BG D2GB", "A2cA F2AFA|G2BG D2GB"))
    assert (a.bars_right, a.all_right) == (13, False)
    a = analyse_tune(REEL.replace("M:C\n", "M:none\n"))
    assert (a.bars_checked, a.all_right) == (0, False)


def test_a_bar_too_long() -> None:
    a = analyse_tune(REEL.replace("A2cA F2AF|G2BG D2GB", "A2cA F2AFA|G2BG D2GB"))
    assert (a.bars_checked, a.bars_right, a.all_right) == (14, 13, False)
    assert verdict(a).endswith("· 1 bar off")


def test_edge_bars_only_must_not_be_too_long() -> None:
    a = analyse_tune(REEL)  # pickups of 2/8 and last bars of 6/8 are edge bars: fine
    assert a.edge_bars_long == 0
    long_end = analyse_tune(REEL.replace("DGFA|G6:|\n|:", "DGFA|G9:|\n|:"))
    assert long_end.edge_bars_long == 1 and not long_end.all_right
    assert long_end.bars_checked == long_end.bars_right  # it is not a checked bar


def test_pickup_is_not_counted_but_a_full_first_bar_is() -> None:
    no_pickup = analyse_tune(tune("B2dB G2BG|A2cA F2AF|G2BG D2GB|G8|]"))
    assert no_pickup.bars_per_part == (4,) and no_pickup.one_part
    pickup = analyse_tune(tune("GA|B2dB G2BG|A2cA F2AF|G2BG D2GB|G6|]"))
    assert pickup.bars_per_part == (4,)


def test_first_and_second_endings() -> None:
    a = analyse_tune(
        tune(
            "|:dAFA d2fd|efge fdBc|dAFA d2fd|1 e2ce d4:|2 e2ce d2fe||\n"
            "|:fAdA fAdA|gBdB gBdB|aceg fdec|d4 d4:|",
            key="D",
        )
    )
    # The second ending stays in part A and is not counted; bars beside the endings are edges.
    assert a.parts == 2 and a.bars_per_part == (4, 4) and a.repeated_parts == (True, True)
    assert a.bars_checked == 3  # efge fdBc, gBdB gBdB, aceg fdec
    assert a.bars_right == 3 and a.all_right
    assert not a.aabb  # 4 bars per part, not 8
    assert verdict(a) == "8 bars (4+4) · AABB · ends on D"
    pipe = analyse_tune(tune("dAFA d2fd|efge fdBc|dAFA d2fd|1 e2ce d4:|2 e2ce d2fe|]", key="D"))
    assert pipe.parts == 1 and pipe.bars_per_part == (4,) and pipe.repeated_parts == (True,)


def test_aabb_abc_and_one_part() -> None:
    part = "B2dB G2BG|A2cA F2AF|G2BG D2GB|A2FA D2GA|B2dB G2BG|A2cA F2AF|G2BG DGFA|G8"
    aabb = analyse_tune(tune(f"|:{part}:|\n|:{part}:|"))
    assert aabb.aabb and aabb.bars_per_part == (8, 8)
    abc = analyse_tune(tune(f"{part}||\n{part}||\n{part}|]"))
    assert abc.parts == 3 and abc.form == "ABC" and not abc.aabb
    one = analyse_tune(tune(f"{part}|]"))
    assert one.one_part and one.form == "A" and not one.aabb
    unrepeated = analyse_tune(tune(f"{part}||\n{part}|]"))
    assert unrepeated.parts == 2 and not unrepeated.aabb  # both parts must be repeated
    both = analyse_tune(tune(f"{part}::{part}:|"))
    assert both.aabb


def test_p_fields_start_parts() -> None:
    a = analyse_tune(tune("P:A\nB2dB G2BG|A2cA F2AF|\nP:B\nG2BG D2GB|A2FA D2G2|"))
    assert a.parts == 2 and a.bars_per_part == (2, 2) and a.repeated_parts == (False, False)
    inline = analyse_tune(tune("B2dB G2BG|A2cA F2AF|[P:B]G2BG D2GB|A2FA D2G2|"))
    assert inline.parts == 2


# --- tonic and last note ------------------------------------------------------------------------


def test_tonic_of_modes() -> None:
    a = analyse_tune(tune("EAAG ABcd|eaag edBd|BAGB A2A2|]", key="Ador"))
    assert a.key == "A Dorian" and a.tonic_pitch_class == 9 and a.ends_on_tonic
    assert "ends on A" in verdict(a)
    fsharp = analyse_tune(tune("FAcA FAcA|f4 F4|]", key="F#m"))  # F sounds F# in F# minor
    assert fsharp.tonic_pitch_class == 6 and fsharp.last_pitch_class == 6 and fsharp.ends_on_tonic


def test_last_note_accidentals() -> None:
    assert analyse_tune(tune("GABc d2F2|]")).last_pitch_class == 6  # F# from the signature
    assert analyse_tune(tune("GABc d2=F2|]")).last_pitch_class == 5
    assert analyse_tune(tune("FAcA f2B2|]", key="F")).last_pitch_class == 10  # Bb
    assert analyse_tune(tune("^cdec d2c2|]", key="C")).last_pitch_class == 1  # carried in the bar
    assert analyse_tune(tune("^cdec d2c2|c8|]", key="C")).last_pitch_class == 0  # not past it
    assert analyse_tune(tune("^Cdec d2c2|]", key="C")).last_pitch_class == 0  # other octave
    assert analyse_tune(tune("GABc d2[DG]2|]")).last_pitch_class == 2  # a chord's first note
    off = analyse_tune(tune("GABc d2e2|]"))
    assert not off.ends_on_tonic and verdict(off).endswith("ends on E, not G")
    flat = analyse_tune(tune("FAcA f2B2|]", key="F"))
    assert verdict(flat) == "1 bar · A · ends on Bb, not F"  # flat keys name notes with flats


def test_key_change_moves_the_tonic() -> None:
    a = analyse_tune(tune("B2dB G2BG|A2cA F2AF|\nK:D\nd2fd A2FA|d8|]"))
    assert a.key == "G major" and a.tonic_pitch_class == 2 and a.ends_on_tonic


# --- repetition and metre -----------------------------------------------------------------------


def test_repeated_bars() -> None:
    a = analyse_tune(tune("GA|B2dB G2BG|B2dB G2BG|A2cA F2AF|B2dB G2BG|A2cA F2AF|G8|]"))
    assert a.bars_checked == 5 and a.repeated_bars == 3
    # The same letters in another key sound otherwise, but a repeat is a repeat in any key.
    transposed = analyse_tune(tune("B2dB G2BG|B2dB G2BF|B2dB G2BG|B2dB G2BF|G8|]"))
    assert transposed.repeated_bars == 2


def test_jig_bars_under_nine_eight() -> None:
    a = analyse_tune(tune("dAF dAF|dfe dBA|dAF dAF|dfe dBA|dAF dAF|d3 d3|]", meter="9/8", key="D"))
    assert a.meter_mismatch and a.body_meter == "6/8"
    assert (a.bars_checked, a.bars_right) == (4, 0)
    assert verdict(a).endswith("· 4 bars off · bars of 6/8 under M:9/8")
    jig = analyse_tune(
        tune("dAF dAF|dfe dBA|dAF dAF|dfe dBA|dAF dAF|d3 d3|]", meter="6/8", key="D")
    )
    assert not jig.meter_mismatch and jig.all_right


def test_inline_and_body_meter_changes() -> None:
    body = "|:d2fd A2FA|d2fd e2ce|d2fd A2FA|[M:6/8] dAF dAF|dfe dBA|dAF dAF|d3 d3:|"
    a = analyse_tune(tune(body, key="D"))
    assert (a.bars_checked, a.bars_right, a.all_right, a.meter_mismatch) == (5, 5, True, False)
    line = analyse_tune(tune(body.replace("[M:6/8] ", "\nM:6/8\n"), key="D"))
    assert (line.bars_checked, line.bars_right) == (5, 5)
    unit = analyse_tune(tune(body.replace("[M:6/8] dAF dAF", "[L:1/16] d4A4F4 d4A4F4"), key="D"))
    assert unit.all_right is False  # 6/8 of notes in a 4/4 bar: the metre did not change


def test_multi_bar_rest_counts_as_its_bars() -> None:
    a = analyse_tune(tune("Z4|B2dB G2BG|A2cA F2AF|G8|]"))
    assert a.bars_per_part == (7,) and a.all_right


# --- sets of tunes ------------------------------------------------------------------------------


def test_summary_and_corpus_keys() -> None:
    jig = tune("dAF dAF|dfe dBA|dAF dAF|dfe dBA|dAF dAF|d3 d3|]", meter="9/8", key="Ador")
    keys = corpus_keys([REEL, tune("d8|]", key="D")])
    assert keys == {"G major", "D major"}
    s = summarize([analyse_tune(REEL), analyse_tune(jig)], keys)
    assert s.tunes == 2 and (s.bars_checked, s.bars_right) == (18, 14)
    assert s.bars_right_pct == pytest.approx(100 * 14 / 18)
    assert (s.all_right_pct, s.meter_mismatch_pct, s.aabb_pct, s.one_part_pct) == (50, 50, 50, 50)
    assert s.unknown_key_pct == 50 and s.tonic_ending_pct == 50
    assert s.repeated_bars_pct == pytest.approx(100 * (5 + 3) / 18)
    assert s.bar_run_pct == 0  # the jig's "dAF dAF" comes three times, but never in a row
    assert [label for label, _ in s.rows()] == [label for _, label in ROWS]


def test_a_bar_run_is_one_bar_three_times_in_a_row() -> None:
    """Three written bars in a row with the same notes and durations; spaces, line breaks and
    spelling aside (=A and A sound alike in G), and not two, nor three apart."""
    assert analyse_tune(tune("GABc dBAG|GABc dBAG|\nGA Bc dB=AG|d8|]")).bar_run
    assert not analyse_tune(tune("GABc dBAG|GABc dBAG|d8|GABc dBAG|]")).bar_run
    assert not analyse_tune(tune("GABc dBAG|GABc dBAG|GABc dBAc|]")).bar_run
    assert not analyse_tune(REEL).bar_run


def test_distinct_tunes() -> None:
    header_only = "X:9\nT:No music\nM:C\nL:1/8\nK:D"
    assert distinct_tunes([REEL, "\n" + REEL, header_only, "d8|]", REEL.strip()]) == [REEL.strip()]


def test_no_music() -> None:
    a = analyse_tune("X:1\nT:Empty\nM:C\nK:G\n")
    assert isinstance(a, TuneAnalysis) and a.parts == 0 and not a.all_right
    assert verdict(a) == "no bars"


def test_the_default_corpus_is_like_the_issue_says() -> None:
    tunes = distinct_tunes(load_corpus().tunes)
    t0 = time.perf_counter()
    analyses = [analyse_tune(t) for t in tunes]
    seconds = time.perf_counter() - t0
    s = summarize(analyses, corpus_keys(tunes))
    assert 795 <= s.tunes <= 805
    assert s.bars_right_pct >= 99.5
    assert 70 <= s.tonic_ending_pct <= 80
    assert 50 <= s.aabb_pct <= 60
    assert 28 <= s.repeated_bars_pct <= 38
    assert s.unknown_key_pct == 0
    assert s.meter_mismatch_pct <= 1 and s.one_part_pct <= 1 and s.all_right_pct >= 98
    assert seconds < 4, f"{len(tunes)} tunes took {seconds:.1f}s"
