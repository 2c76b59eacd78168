"""The app's own drawing and text helpers, without running the app."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from rich.style import Style
from textual.app import App, ComposeResult

from folkgen_tui.format import (
    duration,
    header_fields,
    prompt_to_text,
    show_char,
    text_to_prompt,
    when_saved,
    with_header_field,
)
from folkgen_tui.widgets.abc_view import AbcView, highlight_abc
from folkgen_tui.widgets.bar_chart import bar
from folkgen_tui.widgets.loss_chart import LossChart, bucket_means, column_means
from folkgen_tui.widgets.piano_roll import AHEAD, EMPTY, PLAYED, SOUNDING, PianoRoll, note_name
from folkgen_tui.widgets.tab_bar import TabBar
from folkgen_tui.widgets.tune_table import CORPUS, CorpusRows, TuneTable


@dataclass
class N:
    pitch: int
    start_seconds: float
    duration_seconds: float


def test_bar_lengths_in_eighths() -> None:
    assert bar(1.0, 4) == "████"
    assert bar(0.5, 4) == "██"
    assert bar(1 / 32, 4) == "▏"
    assert bar(0.0, 4) == ""


def test_a_saved_time_is_short_this_year() -> None:
    """The Models table's last column: its full date and time were cut at 100 columns."""
    import time

    stamp = time.mktime((2026, 12, 4, 0, 41, 0, 0, 0, -1))
    assert when_saved(stamp, now=stamp + 86_400) == "Dec 4 00:41"
    assert when_saved(stamp, now=stamp + 400 * 86_400) == "2026-12-04"


def test_prompt_helpers() -> None:
    picked = "X:"
    for field, value in (("T", "Kesh"), ("M", "6/8"), ("K", "G Major")):
        picked = with_header_field(picked, field, value)
    assert picked == "X:1\nT:Kesh\nM:6/8\nL:1/8\nK:G Major\n"  # the corpus's order
    for field in "TKM":
        picked = with_header_field(picked, field, "")
    assert picked == "X:"  # all back to "any"
    # What was written by hand stays: only the picker's own line changes.
    mine = "X:1\nT:Mine\nM:6/8\nL:1/8\nK:E Dorian\n|:B|e2B"
    assert with_header_field(mine, "M", "C") == mine.replace("M:6/8", "M:C")
    assert with_header_field(mine, "K", "G Major") == mine.replace("E Dorian", "G Major")
    assert with_header_field(mine, "K", "") == mine  # its music needs its K: line
    assert with_header_field(mine, "T", "") == mine.replace("T:Mine\n", "")
    assert with_header_field("X:1\nM:6/8\nK:G\n", "T", "New") == "X:1\nT:New\nM:6/8\nK:G\n"
    assert with_header_field("T:x\nGAB", "K", "D Major") == "X:1\nT:x\nL:1/8\nK:D Major\nGAB"
    # Directives and comments are part of the header: one X:, one M: (two made two tunes).
    assert with_header_field("%%scale 0.8\nX:1\nT:a\n", "M", "3/4") == "%%scale 0.8\nX:1\nT:a\nM:3/4\n"
    directive = "X:1\nT:a\n%%MIDI program 1\nM:6/8\n"
    assert with_header_field(directive, "M", "3/4") == directive.replace("6/8", "3/4")
    assert prompt_to_text(text_to_prompt("X:1\nT:a\n")) == "X:1\nT:a\n"
    # The header's fields to its K: line: a body's fields are not the header's.
    assert header_fields(mine) == {"X": "1", "T": "Mine", "M": "6/8", "L": "1/8", "K": "E Dorian"}
    assert header_fields("K:D\nM:3/4\n") == {"K": "D"} and header_fields("X:") == {"X": ""}
    # Without their comments, as core reads them (the Meter picker showed "any" for this).
    assert header_fields("X:1\nT:Reel % mine\nM:6/8 %jig\nK:A Dorian %x\n") == {
        "X": "1", "T": "Reel", "M": "6/8", "K": "A Dorian"}
    assert show_char("\n") == "⏎" and show_char(" ") == "␣" and show_char("|") == "|"
    assert duration(65) == "1:05" and duration(3723) == "1:02:03" and duration(None) == "–"


def test_abc_is_never_markup_and_the_error_is_marked() -> None:
    styles = {name: Style(color="red") if name.startswith("error") else Style()
              for name in ("header", "field", "bar", "muted", "error_line", "error_char")}  # fmt: skip
    text = highlight_abc("X:1\nK:G\n[|:GA [bold]B|]", error=(3, 5), **styles)
    assert text.plain == "X:1\nK:G\n[|:GA [bold]B|]"  # brackets are music, kept as they are
    marked = [span for span in text.spans if span.style == Style(color="red")]
    line_start = text.plain.index("[|:")
    assert any(s.start == line_start + 4 and s.end == line_start + 5 for s in marked)


def test_piano_roll_states_follow_the_playhead() -> None:
    roll = PianoRoll()
    roll.set_notes([N(60, 0.0, 0.5), N(64, 0.5, 0.5), N(67, 1.0, 0.5)], 1.5)
    roll.position = 0.7  # the first note played, the second sounding, the third ahead
    grid = roll.render_lines_grid(width=20, height=4)
    states = {cell for row in grid for cell in row} - {EMPTY}
    assert states == {PLAYED, SOUNDING, AHEAD}
    # Higher pitches sit in higher slots; each note spans its duration (0.1 s per cell).
    rows = {state: i for i, row in enumerate(grid) for state in row if state != EMPTY}
    assert rows[PLAYED] < rows[SOUNDING] < rows[AHEAD]
    assert sum(cell == SOUNDING for row in grid for cell in row) == 5
    assert note_name(60) == "C4" and note_name(69) == "A4"


def test_loss_history_is_summarised_for_the_sparkline() -> None:
    values = [float(i) for i in range(1000)]
    means = bucket_means(values, points=10)
    assert len(means) == 10 and means[0] == 49.5 and means[-1] == 949.5
    assert bucket_means([1.0, 2.0], points=10) == [1.0, 2.0]


def test_loss_chart_columns_are_run_means() -> None:
    assert column_means([1.0, 3.0, 5.0, 7.0], 2) == [2.0, 6.0]
    assert column_means([1.0, 2.0], 4) == [1.0, 1.0, 2.0, 2.0]  # few values: each spans columns


class ChartApp(App[None]):
    CSS = "LossChart { width: 10; height: 2; }"

    def compose(self) -> ComposeResult:
        yield LossChart()


@pytest.mark.asyncio
async def test_loss_chart_draws_bars_and_redraws_only_for_new_data() -> None:
    app = ChartApp()
    async with app.run_test(size=(20, 4)) as pilot:
        chart = app.query_one(LossChart)
        await pilot.pause()
        assert [chart.render_line(y).text for y in (0, 1)] == [" " * 10, "▁" * 10]  # no data
        chart.data = [float(i) for i in range(10)]  # rising: from nothing to full height
        top, bottom = (chart.render_line(y).text for y in (0, 1))
        assert bottom[0] == "▁" and bottom[-1] == "█" and top[0] == " " and top[-1] == "█"
        assert list(bottom) == sorted(bottom, key="▁▂▃▄▅▆▇█".index)
        assert chart.render_line(0) is chart.render_line(0)  # kept, not drawn again
        before = chart.render_line(1)
        chart.data = [9.0 - i for i in range(10)]
        assert chart.render_line(1).text == before.text[::-1]


class AbcApp(App[None]):
    def compose(self) -> ComposeResult:
        yield AbcView()


@pytest.mark.asyncio
async def test_abc_set_again_unchanged_asks_for_no_layout() -> None:
    """The Dataset's Tunes tab is given its first tune twice as the corpus comes (the list's
    first highlight): a Static's update asks for a layout of the whole screen, even hidden."""
    app = AbcApp()
    async with app.run_test(size=(40, 8)) as pilot:
        view = app.query_one(AbcView)
        view.set_text("X:1\nK:G\nGAB|")
        await pilot.pause()
        updates: list[object] = []
        update = view._body.update

        def updated(content: object) -> None:
            updates.append(content)
            update(content)  # type: ignore[arg-type]

        view._body.update = updated  # type: ignore[method-assign]
        view.set_text("X:1\nK:G\nGAB|")
        assert updates == []
        view.set_text("X:1\nK:G\nGAB|", (2, 1))  # an error marked: drawn again
        view.set_text("X:2\nK:D\nDEF|")
        assert len(updates) == 2


class TabsApp(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.clicked: list[str] = []

    def compose(self) -> ComposeResult:
        yield TabBar((("Summary", "summary"), ("Tunes", "tunes")), "summary", id="bar")

    def on_tab_bar_clicked(self, message: TabBar.Clicked) -> None:
        self.clicked.append(message.tab)


@pytest.mark.asyncio
async def test_tab_bar_draws_its_tabs_marks_the_active_one_and_says_which_is_clicked() -> None:
    app = TabsApp()
    async with app.run_test(size=(40, 3)) as pilot:
        bar = app.query_one(TabBar)
        line = bar.render()
        assert line.plain == " Summary   Tunes   "
        underlined = {
            line.plain[s.start : s.end] for s in line.spans if Style.parse(str(s.style)).underline
        }
        assert underlined == {"Summary"}
        bar.active = "tunes"
        line = bar.render()
        assert {
            line.plain[s.start : s.end] for s in line.spans if Style.parse(str(s.style)).underline
        } == {"Tunes"}
        await pilot.click(TabBar, offset=(12, 0))  # on "Tunes"
        await pilot.click(TabBar, offset=(1, 0))  # on "Summary"
        await pilot.click(TabBar, offset=(9, 0))  # between the tabs: nothing
        await pilot.pause()
        assert app.clicked == ["tunes", "summary"]


def test_corpus_rows_are_made_from_their_tunes_and_stop_at_the_limit() -> None:
    tunes = ["X:1\nT:Reel\nM:4/4\nK:D\nABc|", "X:2\nK:G\nG|", "X:3\nT:Third\nK:A\nA|"]
    rows = CorpusRows(tunes, limit=2)
    assert len(rows) == 2
    assert rows[0].cells() == ("1", "Reel", "4/4", "D", str(len(tunes[0])))
    assert rows[1].cells() == ("2", "–", "", "G", str(len(tunes[1])))  # no title, no meter
    assert rows[-1].id == 1 and [r.id for r in rows[0:5]] == [0, 1]
    with pytest.raises(IndexError):
        rows[2]  # beyond the limit, though the corpus has it
    kept = CorpusRows(tunes, limit=5, kept=[2, 0])  # a filter's: rows keep their corpus number
    assert len(kept) == 2 and [r.id for r in kept] == [2, 0] and kept[-1].tune == tunes[0]
    assert kept[0].cells()[:2] == ("3", "Third")
    assert len(CorpusRows(tunes, limit=1, kept=[2, 0])) == 1


def test_a_narrow_table_drops_columns_in_its_layouts_order() -> None:
    table = TuneTable(CORPUS)
    wide = table.layout_columns(60)
    assert [CORPUS.columns[i].heading for i, _ in wide] == ["#", "Title", "M", "K", "Chars"]
    assert sum(w for _, w in wide) + len(wide) - 1 == 60  # the title takes what is left
    narrower = table.layout_columns(33)  # Chars goes first
    assert [CORPUS.columns[i].heading for i, _ in narrower] == ["#", "Title", "M", "K"]
    assert dict(narrower)[1] == CORPUS.min_flexible
    narrowest = table.layout_columns(20)  # then M; the title keeps its least width
    assert [CORPUS.columns[i].heading for i, _ in narrowest] == ["#", "Title", "K"]
    assert dict(narrowest)[1] == CORPUS.min_flexible


def test_the_verdict_puts_the_music_before_abc2midis_warnings() -> None:
    """The first warning, quoted, ran the badge past its two lines at 100 columns, and the
    music after it ("ends on E · 4 bars off") was cut off: it now comes first."""
    from core.abc import AbcMessage, TuneCheck
    from folkgen_tui.screens.generate import verdict_badge
    from folkgen_tui.state import TuneRecord

    warning = AbcMessage(5, 3, "Bar 3 has 9 units instead of 6 in repeat")
    check = TuneCheck(True, warnings=[warning] * 4, bars=32, duration_seconds=64.0)
    record = TuneRecord(1, "X:", "X:1\n", 1, 1.0, None, 1000, "m", check=check,
                        music="16 bars · AABB · ends on E · 4 bars off")  # fmt: skip
    text, style = verdict_badge(record)
    assert text == ("✓ valid, plays 1:04 · 16 bars · AABB · ends on E · 4 bars off · 4 warnings, the "
                    "first (line 5, column 3: Bar 3 has 9 units instead of 6 in repeat)")  # fmt: skip
    assert style == "-valid"
    clean = TuneRecord(1, "X:", "X:1\n", 1, 1.0, None, 1000, "m",
                       check=TuneCheck(True, bars=32, duration_seconds=64.0), music="16 bars")  # fmt: skip
    assert verdict_badge(clean)[0] == "✓ valid, plays 1:04 · 16 bars"


@pytest.mark.asyncio
async def test_clamped_text_ends_in_an_ellipsis_where_it_is_cut() -> None:
    """The verdict badge and Train's state line hold two lines: a longer text ended mid-word,
    with nothing to say there was more (the badge cut abc2midi's message so)."""
    from folkgen_tui.widgets.clamped import ClampedStatic, fit_lines

    message = "✗ invalid: line 5, column 38: Bar 1 has 8 time units while the time signature has 6"
    assert fit_lines(message, 200, 2) == message
    two = fit_lines(message, 30, 2).split("\n")
    assert len(two) == 2 and all(len(line) <= 30 for line in two) and two[1].endswith("…")
    assert two[0] == "✗ invalid: line 5, column 38:"

    class One(App[None]):
        def compose(self) -> ComposeResult:
            yield ClampedStatic(message + " [CEG]", max_lines=2, id="c")

    app = One()
    async with app.run_test(size=(32, 6)) as pilot:
        await pilot.pause()
        widget = app.query_one("#c", ClampedStatic)
        lines = [str(line.text).rstrip() for line in widget.render_lines(widget.region.reset_offset)]
        shown = [line for line in lines if line]
        assert len(shown) == 2 and shown[1].endswith("…"), lines
        assert str(widget.content).endswith("[CEG]")  # the whole text, no markup read


@pytest.mark.asyncio
async def test_run_numbers_shorten_where_the_full_table_is_wider() -> None:
    """At 80 columns the Train panel's figures wrapped, and it showed half its rows: where the
    full table does not fit, labels are shortened and chars/s loses its threads."""
    from folkgen_tui.widgets.run_numbers import RunNumbers

    rows = [("step", "150 / 300", "chars/s", "203,502 (2 threads)"),
            ("loss (nats)", "1.464", "elapsed", "0:01"), ("smoothed", "1.599", "ETA", "0:01"),
            ("val bits/char", "2.223", "best", "2.223")]  # fmt: skip

    class One(App[None]):
        def compose(self) -> ComposeResult:
            yield RunNumbers(id="n")

    for width, first, last in (
        (60, "step           150 / 300  chars/s  203,502 (2 threads)", "val bits/char  2.223"),
        (38, "step     150 / 300  chars/s  203,502", "val bpc  2.223      best     2.223"),
    ):
        app = One()
        async with app.run_test(size=(width, 6)) as pilot:
            widget = app.query_one("#n", RunNumbers)
            widget.show(rows)
            await pilot.pause()
            lines = [line.text.rstrip() for line in widget.render_lines(widget.region.reset_offset)]
            assert lines[0] == first and lines[3].startswith(last), lines
            assert all(len(line) <= width for line in lines)

    # Mid-run at 80 columns the short table was 41 wide for 38: its validation row was cut.
    rows[0] = ("step", "5,550 / 10,000", "chars/s", "150,158 (2 threads)")
    app = One()
    async with app.run_test(size=(38, 6)) as pilot:
        widget = app.query_one("#n", RunNumbers)
        widget.show(rows)
        await pilot.pause()
        lines = [line.text.rstrip() for line in widget.render_lines(widget.region.reset_offset)]
        assert lines[0] == "step    5,550/10,000 chars/s 150,158", lines
        assert lines[3].startswith("val bpc 2.223") and all(len(line) <= 38 for line in lines)


@pytest.mark.asyncio
async def test_an_empty_tables_words_wrap_to_its_width() -> None:
    """At 80 columns the Library's empty table cut its hint short ("…, or fo…")."""
    words = "no tunes yet: save one on Generate (s), or folkgen library import; h shows more"

    class One(App[None]):
        def compose(self) -> ComposeResult:
            table = TuneTable(CORPUS, id="t")
            table.empty_text = words
            yield table

    app = One()
    async with app.run_test(size=(30, 8)) as pilot:
        await pilot.pause()
        table = app.query_one("#t", TuneTable)
        lines = [line.text.strip() for line in table.render_lines(table.region.reset_offset)][1:]
        shown = [line for line in lines if line]
        assert " ".join(shown) == words and len(shown) > 2, lines
