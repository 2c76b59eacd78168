"""The score view (v) in the app: on the Dataset tune list and on Generate it takes the ABC
text's place and gives it back; it follows the tune shown, the terminal's size and the theme,
plays beside the piano roll, and below a legible width it names the saved SVG instead. Tests run
without a terminal, so the picture is drawn in half blocks (the fallback)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widget import Widget

from folkgen_tui.app import FolkgenApp
from folkgen_tui.screens.generate import GenerateScreen
from folkgen_tui.state import TuneRecord
from folkgen_tui.widgets import AbcView
from folkgen_tui.widgets.piano_roll import PianoRoll
from folkgen_tui.widgets.score_view import ScoreView
from tests.app_helpers import play_in_real_time, show_screen, wait_for, wait_ready
from tests.test_score import JIG

pytestmark = pytest.mark.asyncio


def image_of(score: ScoreView) -> Widget:
    return score.query_one(".score-image")


async def drawn(pilot: Pilot[Any], score: ScoreView, before: int, what: str) -> None:
    """A picture newer than the `before`-th is up, for what was last asked, and laid out."""

    def up() -> bool:
        images = score.query(".score-image")
        laid_out = all(image.size.width > 0 for image in images)
        return score.engraved > before and score.up_to_date and laid_out

    await wait_for(pilot, up, what)


async def test_v_shows_the_score_on_the_dataset_tune_list(
    monkeypatch: pytest.MonkeyPatch, folkgen_home: Path
) -> None:
    play_in_real_time(monkeypatch)
    app = FolkgenApp(autoload_model=False, theme="gruvbox")
    async with app.run_test(size=(130, 40)) as pilot:
        await wait_ready(pilot)
        await pilot.press("u")
        screen = app.screen
        score = screen.query_one("#tune-score", ScoreView)
        text = screen.query_one("#tune-abc", AbcView)
        await pilot.press("v")
        assert score.display and not text.display
        await drawn(pilot, score, 0, "the first tune's score")
        columns = score.scrollable_content_region.width
        assert image_of(score).size.width == columns >= 60
        assert image_of(score).size.height > 10  # scrolls: taller than it is wide in rows

        shown = score.engraved
        await pilot.press("down")  # the next tune
        await drawn(pilot, score, shown, "the next tune's score")
        await pilot.press("p")  # plays, with the piano roll under the score
        roll = screen.query_one("#corpus-roll", PianoRoll)
        await wait_for(pilot, lambda: roll.display and roll.position > 0.1, "the playhead")
        assert score.display and score.region.height > 0
        await pilot.press("p")

        shown = score.engraved
        app.theme = "textual-light"  # dark ink on light paper: drawn again
        await drawn(pilot, score, shown, "the score in the new theme")
        paper = image_of(score).image.convert("L").getpixel((0, 0))  # type: ignore[attr-defined]
        assert paper > 200
        shown = score.engraved
        await pilot.resize_terminal(150, 40)
        await drawn(pilot, score, shown, "the score at the new width")
        assert image_of(score).size.width == score.scrollable_content_region.width > columns

        await pilot.resize_terminal(80, 30)  # the side panel is too narrow to read a staff
        await wait_for(pilot, lambda: "too narrow" in score.notice, "the notice")
        saved = sorted((folkgen_home / "previews").glob("*.svg"))
        assert len(saved) == 1 and str(saved[0]) in score.notice
        assert not list((folkgen_home / "tunes").glob("*"))  # where saves and exports go
        assert not score.query(".score-image")

        await pilot.press("v")
        assert text.display and not score.display


async def test_v_shows_the_score_on_generate(folkgen_home: Path) -> None:
    app = FolkgenApp(autoload_model=False)
    async with app.run_test(size=(130, 40)) as pilot:
        await wait_ready(pilot)
        screen = await show_screen(pilot, "g", GenerateScreen)
        score = screen.query_one("#gen-score", ScoreView)
        await pilot.press("v")
        assert score.display and "generate a tune first" in score.notice
        # a finished tune, as the stream leaves one (no model needed for the view)
        record = TuneRecord(1, "X:", JIG, 1, 1.0, None, 1000, "test")
        app.history.append(record)
        screen.shown = record
        screen._add_history(record)
        screen._show_record(record)
        await drawn(pilot, score, 0, "the tune's score")
        assert image_of(score).size.width == score.scrollable_content_region.width
        await pilot.press("v")
        assert screen.query_one("#gen-abc", AbcView).display and not score.display


@pytest.mark.parametrize("kind", ["sixel", "tgp"])
async def test_a_graphics_terminal_gets_a_real_image_a_cell_per_column(
    kind: str, monkeypatch: pytest.MonkeyPatch, folkgen_home: Path
) -> None:
    from folkgen_tui import graphics

    monkeypatch.setattr(graphics, "_found", graphics.Graphics(kind, (9, 18)))
    app = FolkgenApp(autoload_model=False)
    async with app.run_test(size=(130, 40)) as pilot:
        await wait_ready(pilot)
        await pilot.press("u", "v")
        score = app.screen.query_one("#tune-score", ScoreView)
        await drawn(pilot, score, 0, "the score")
        image = image_of(score)
        images = graphics.load_textual_image()
        assert isinstance(image, {"sixel": images.SixelImage, "tgp": images.TGPImage}[kind])
        pixels = image.image.size  # type: ignore[attr-defined]
        columns = score.scrollable_content_region.width
        assert pixels[0] == 9 * columns and image.size.width == columns
        assert image.size.height == -(-pixels[1] // 18)  # rows of 18-pixel cells


@pytest.mark.parametrize("columns", [100, 110, 120])
async def test_the_tune_lists_score_is_legible_at_common_widths(
    columns: int, folkgen_home: Path
) -> None:
    """At 100, 110 and 120 columns the Dataset tune list leaves its score the width a legible
    one takes (the list was 46 columns, then 64 from 120: the score had 59 and 51, and a wider
    terminal drew none; at 100 the list of 40 left it 56, "too narrow")."""
    from folkgen_tui.widgets.score_view import MIN_HALF_BLOCK_COLUMNS

    app = FolkgenApp(autoload_model=False)
    async with app.run_test(size=(columns, 34)) as pilot:
        await wait_ready(pilot)
        await pilot.press("u")
        await wait_for(pilot, lambda: bool(app.screen.query("#tune-score")), "the tune list")
        await pilot.press("v")
        score = app.screen.query_one("#tune-score", ScoreView)
        await drawn(pilot, score, 0, "the score")
        assert score.scrollable_content_region.width >= MIN_HALF_BLOCK_COLUMNS
        assert not list((folkgen_home / "previews").glob("*"))  # drawn, not written out


async def test_the_librarys_score_is_legible_at_100_columns(folkgen_home: Path) -> None:
    """The README's size: the Library's table steps aside to 34 columns for the score (at 38 it
    left 56 columns, and the score said "too narrow")."""
    from core.library import LIBRARY_FILE, Library
    from folkgen_tui.widgets.score_view import MIN_HALF_BLOCK_COLUMNS

    folkgen_home.mkdir(parents=True)
    with Library.open(folkgen_home / LIBRARY_FILE) as library:
        library.add(JIG, source="imported", in_tunebook=True)
    app = FolkgenApp(autoload_model=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_ready(pilot)
        await pilot.press("l")
        await wait_for(pilot, lambda: getattr(app.screen, "tune", None) is not None, "the tune")
        await pilot.press("v")
        score = app.screen.query_one("#lib-score", ScoreView)
        await drawn(pilot, score, 0, "the score")
        assert score.scrollable_content_region.width >= MIN_HALF_BLOCK_COLUMNS
