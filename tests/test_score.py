"""Sheet music (core/score.py, `folkgen score`): what verovio engraves is counted against our
own reading of the ABC, the PNG is looked at row by row, and a tune verovio rejects (it crashes
on some) is one line naming the line, with the engraver alive afterwards."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.cli import main
from core.music_analysis import bar_lengths, bar_notes
from core.score import Colours, ScoreError, engrave, svg_size, to_pdf, to_png

# Two parts with repeats and first/second endings, a pickup, an accidental, 6/8 in G.
JIG = """X:1
T:The Counted Jig
R:jig
M:6/8
L:1/8
Q:3/8=116
K:G
D|:GAB dBG|c2e dBG|FGA ^cBA|1 G3 G2D:|2 G3 G2B|
|:d2e fed|e2f gfe|dBG cAF|G3 G3:|
"""
LONG = "X:2\nT:Long Reel\nM:4/4\nL:1/8\nK:D\n" + "|".join(["dAFA dAFA"] * 32) + "|]\n"


def count(svg: str, cls: str) -> int:
    return len(re.findall(rf'class="{cls}"', svg))


def test_the_svg_holds_every_note_bar_and_the_signatures() -> None:
    score = engrave(JIG)
    svg = score.svg
    assert count(svg, "note") == sum(bar_notes(JIG)) == 42
    assert count(svg, "measure") == len(bar_lengths(JIG)) == 10
    first_key = svg.split('class="keySig"', 1)[1].split("</g>", 1)[0]
    assert count(first_key, "keyAccid") == 1  # G major: one sharp
    meter = svg.split('class="meterSig"', 1)[1].split("</g>", 2)[0]
    assert "#E086" in meter and "#E088" in meter  # SMuFL's time-signature 6 and 8
    assert score.title == "The Counted Jig" and "The Counted Jig" in svg
    assert "♩. = 116" in svg  # the tempo is printed (verovio shows only Q:'s quoted text)
    assert count(svg, "system") == 2  # one per line of music, as the ABC has them


def test_a_long_tune_wraps_across_systems_at_the_width_asked() -> None:
    wide, narrow = engrave(LONG), engrave(LONG, width=1200)
    assert count(narrow.svg, "system") > count(wide.svg, "system") > 1
    assert count(narrow.svg, "measure") == len(bar_lengths(LONG)) == 32
    assert len(narrow.pages) == 1
    assert svg_size(narrow.svg)[0] == 1200 and svg_size(wide.svg)[0] == 2100


def staff_rows(png: bytes, *, dark_ink: bool = True) -> list[int]:
    """The y of each run of rows inked nearly all across a band left of the middle: staff lines
    (a last system may stop short of the right edge; notes and beams leave gaps)."""
    grey = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.int16)
    band = grey[:, grey.shape[1] // 10 : grey.shape[1] * 3 // 10]
    inked = band < 128 if dark_ink else band > 128
    lines = np.flatnonzero(inked.mean(axis=1) > 0.9)
    return [int(y) for i, y in enumerate(lines) if i == 0 or y != lines[i - 1] + 1]


def test_the_png_is_not_blank_and_shows_five_staff_lines_per_system() -> None:
    score = engrave(LONG)
    png = to_png(score.svg)
    image = Image.open(io.BytesIO(png))
    assert image.size == svg_size(score.svg)
    systems = count(score.svg, "system")
    rows = staff_rows(png)
    assert len(rows) == 5 * systems
    for first in range(0, len(rows), 5):  # evenly spaced, as a staff is
        gaps = np.diff(rows[first : first + 5])
        assert gaps.max() - gaps.min() <= 2
    grey = np.asarray(image.convert("L"))
    assert 0.02 < (grey < 128).mean() < 0.3  # notes and lines on mostly white paper


def test_dark_theme_draws_light_ink_on_dark_paper() -> None:
    dark = Colours(ink="#e0e0e0", paper="#1e1e1e")
    png = to_png(engrave(JIG, colours=dark).svg, paper=dark.paper)
    grey = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
    assert grey.mean() < 80 and len(staff_rows(png, dark_ink=False)) == 10  # two systems


def test_the_pdf_has_one_a4_page_per_tune() -> None:
    pdf = to_pdf([engrave(JIG).svg, engrave(LONG).svg])
    assert pdf.startswith(b"%PDF") and len(re.findall(rb"/Type /Page\b(?!s)", pdf)) == 2
    boxes = re.findall(rb"/MediaBox \[ 0 0 ([\d.]+) ([\d.]+) \]", pdf)
    assert [(round(float(w) / 72 * 25.4), round(float(h) / 72 * 25.4)) for w, h in boxes] == [
        (210, 297),
        (210, 297),
    ]


@pytest.mark.parametrize(
    ("tune", "line"),
    [
        ("X:1\nT:Broken\nM:4/4\nK:C\nCDEF|GABc|\nGA [[[ ]] |\n", 6),
        ("X:1\nT:Broken\nK:C\nCD [[[ ]] |\n", 4),
        ("T:Broken, no X:\nK:C\nCD [[[ ]] |\n", 3),  # its own line, not that of the X: put first
    ],
)
def test_a_tune_verovio_rejects_is_one_line_naming_the_line(tune: str, line: int) -> None:
    with pytest.raises(ScoreError) as caught:
        engrave(tune)
    message = str(caught.value)
    assert "\n" not in message and caught.value.line == line and f"line {line}:" in message
    assert count(engrave(JIG).svg, "note") == 42  # the engraver came back


@pytest.mark.parametrize(
    ("tune", "meter_signs"),
    [
        ("X:298\nT:Providence\nZ: id:dc-reel-387\nM:C\nL:1/8\nK:D Major", 1),  # from the corpus
        ("X:1\nT:Only a header\nK:C\n", 0),
        ('X:1\nT:Only a header\nM:6/8\nK:G\n"G"!trill!|\n', 1),  # a chord name is not a note
    ],
)
def test_a_tune_with_a_header_and_no_notes_is_an_empty_staff(tune: str, meter_signs: int) -> None:
    score = engrave(tune)
    title = tune.split("T:")[1].split("\n")[0]
    assert score.empty and score.title == title and title in score.svg
    assert count(score.svg, "note") == 0 and count(score.svg, "rest") == 0
    assert count(score.svg, "measure") == 1 and count(score.svg, "keySig") == 1
    assert count(score.svg, "meterSig") == meter_signs
    assert not engrave(JIG).empty


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_score_writes_files_and_never_overwrites(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, folkgen_home: Path
) -> None:
    abc = tmp_path / "two.abc"
    abc.write_text(JIG + "\n" + LONG, encoding="utf-8")
    code, out, _ = run(capsys, "score", str(abc), "--json")
    report = json.loads(out)
    assert code == 0 and report["engraved"] == 2
    first = report["tunes"][0]
    assert Path(first["svg"]) == folkgen_home / "tunes" / "the-counted-jig.svg"
    assert {Path(first[k]).suffix for k in ("svg", "png", "pdf")} == {".svg", ".png", ".pdf"}
    assert Image.open(first["png"]).size[0] == 2100

    mine = tmp_path / "mine"
    mine.mkdir()
    taken = mine / "jig.svg"
    taken.write_text("mine", encoding="utf-8")
    code, out, _ = run(
        capsys, "score", str(abc), "--tune", "1", "--svg", str(taken), "--pdf", str(mine / "b")
    )
    assert code == 0 and taken.read_text(encoding="utf-8") == "mine"
    assert (mine / "jig-2.svg").read_text(encoding="utf-8").count('class="note"') == 42
    assert (mine / "b.pdf").read_bytes().startswith(b"%PDF")
    assert sorted(p.name for p in mine.iterdir()) == ["b.pdf", "jig-2.svg", "jig.svg"]
    code, out, _ = run(capsys, "score", str(abc), "--pdf", str(mine / "book.pdf"))
    assert code == 0 and out.splitlines()[1:] == [
        "  1. The Counted Jig: page 1 of the PDF", "  2. Long Reel: page 2 of the PDF",
        f"  2 pages: {mine / 'book.pdf'}",
    ]  # each tune says where it is (it said nothing after its title)


def test_cli_score_reports_a_rejected_tune_by_its_line_in_the_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    abc = tmp_path / "mixed.abc"
    abc.write_text(JIG + "\nX:3\nT:Broken\nK:C\nCD [[[ ]] |\n", encoding="utf-8")
    code, out, err = run(capsys, "score", str(abc), "--svg", str(tmp_path / "out"))
    assert code == 1 and "Traceback" not in err
    broken = [line for line in out.splitlines() if "Broken" in line]
    assert len(broken) == 1 and f"{abc}:14" in broken[0] and "not engraved" in broken[0]
    assert (tmp_path / "out.svg").is_file()
    code, _, err = run(capsys, "score", str(abc), "--tune", "5")
    assert code == 1 and err.count("\n") == 1 and "--tune must be 1 to 2" in err


def test_the_old_line_break_sign_is_read_as_abc2midi_reads_it() -> None:
    # Most of the default corpus ends its music lines with "!"; verovio alone aborts on it.
    marked = JIG.replace("G2B|\n", "G2B|!\n").replace("G3:|\n", "!trill!G3:|!\n")
    assert count(engrave(marked).svg, "note") == 42


@pytest.mark.parametrize(
    "slip",  # what the shipped model's tunes had where verovio crashed and abc2midi read on
    [("G2B|\n", "G2B ]!\n"), ("dBG|c2e", "dBG|!c2e"), ("X:1\n", "X:TidB\n"),
     ("X:1\n", "")],  # no X: line: verovio crashed (signal 11), abc2midi reads it as X:1
)  # fmt: skip
def test_slips_abc2midi_reads_past_do_not_crash_verovio(slip: tuple[str, str]) -> None:
    assert count(engrave(JIG.replace(*slip)).svg, "note") == 42


@pytest.mark.parametrize(
    ("last", "notes"),
    [("A4 G4", 12), ("A4 G4\n% the end\nw: la la la", 12), ("A4 G4 % a comment", 12),
     ("A4 [GB]4", 13), ("A4 [K:D] G4", 12),  # a "]" that closes a chord or a field is no bar line
     ('"^50%"A4 G4|]', 12), ("A4 G4|]", 12)],  # closed already: a % in quotes is no comment
)  # fmt: skip
def test_a_last_bar_without_a_bar_line_is_drawn(last: str, notes: int) -> None:
    """abc2midi plays a last bar that no bar line closes (a tune cut off by the length limit);
    verovio left it out of the score."""
    score = engrave(f"X:1\nT:Open end\nM:4/4\nL:1/8\nK:G\nGABc d2B2|c2A2 B2G2|{last}\n")
    assert count(score.svg, "measure") == 3 and count(score.svg, "note") == notes


def test_a_chords_length_after_it_is_drawn() -> None:
    """[CEG]4 is a half-note chord to abc2midi; verovio read a chord's length only from its
    notes and drew eighths. (SMuFL note heads: E0A2 whole, E0A3 half, E0A4 black.)"""
    svg = engrave("X:1\nT:Chords\nM:4/4\nL:1/8\nK:C\n[CEG]4 [DFA]4|[EGc]8|]\n").svg
    heads = {glyph: len(re.findall(rf'<use[^>]*#{glyph}', svg)) for glyph in ("E0A2", "E0A3", "E0A4")}
    assert heads == {"E0A2": 3, "E0A3": 6, "E0A4": 0}, heads


TWO_VOICES = """X:12
T:Two voices
M:4/4
L:1/8
%%score (T B)
K:C
V:T clef=treble
V:B clef=bass
[V:T] c2 e2 g2 c'2|b2 g2 e2 c2|
[V:B] C,4 G,,4|C,4 E,4|
[V:T] [CEG]4 [DFA]4|[EGc]8|]
[V:B] C,8|C,8|]
"""


def test_only_the_first_voice_is_drawn_and_the_score_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """verovio reads one voice: the bass came after the tune on its staff, in ledger lines."""
    score = engrave(TWO_VOICES)
    assert count(score.svg, "note") == 8 + 6 + 3 and count(score.svg, "measure") == 4
    assert score.voices == 2 and score.note == "its first voice of 2: verovio draws one"
    assert engrave(JIG).note == ""
    with pytest.raises(ScoreError) as caught:  # an error names the tune's own line
        engrave(TWO_VOICES.replace("[EGc]8|]", "[EGc]8 [[[ ]] |]"))
    assert caught.value.line == 11
    abc = tmp_path / "duet.abc"
    abc.write_text(TWO_VOICES, encoding="utf-8")
    code, out, _ = run(capsys, "score", str(abc), "--svg", str(tmp_path / "duet.svg"))
    assert code == 0 and out.splitlines()[1].endswith("(its first voice of 2: verovio draws one)")


def test_a_tune_without_a_key_line_is_refused_before_verovio() -> None:
    with pytest.raises(ScoreError, match="no K:"):
        engrave("X:1\nc|dGG2 dGBG|dGBd g2de|!\n")
