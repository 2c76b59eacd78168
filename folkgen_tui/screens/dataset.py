"""Dataset: the corpus at a glance, its vocabulary, and every tune (shown as ABC, playable)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, cast

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import ContentSwitcher, Input, Static

from core.words import plural
from folkgen_tui.format import number, show_char
from folkgen_tui.imports import IMPORT_PAUSE, import_next
from folkgen_tui.screens.base import StudioScreen
from folkgen_tui.widgets.bar_chart import BarChart
from folkgen_tui.widgets.stat_cards import StatCards
from folkgen_tui.widgets.tab_bar import TabBar
from folkgen_tui.widgets.vocab_grid import VocabGrid

if TYPE_CHECKING:  # the Tunes tab's, imported when it is filled (after the first frame)
    from folkgen_tui.widgets.abc_view import AbcView
    from folkgen_tui.widgets.filter_input import FilterInput
    from folkgen_tui.widgets.piano_roll import PianoRoll
    from folkgen_tui.widgets.score_view import ScoreView
    from folkgen_tui.widgets.tune_table import CorpusRow, TuneHighlighted, TuneTable

TABS = (("Summary", "summary"), ("Vocabulary", "vocabulary"), ("Tunes", "tunes"))
MAX_LISTED = 20_000  # tunes in the browsable list (the statistics cover them all)
CORPUS_KEY = "corpus-"  # what the app plays from here is keyed corpus-<its place in the corpus>
_WIDGETS = "folkgen_tui.widgets."
TUNES_TAB_NEEDS = (  # what hidden_tabs imports, in the order of folkgen_tui/imports.py
    _WIDGETS + "abc_view", _WIDGETS + "piano_roll", "folkgen_tui.graphics",
    _WIDGETS + "score_view", _WIDGETS + "tune_table",
)  # fmt: skip


class DatasetScreen(StudioScreen):
    MODE = "dataset"
    TITLE_TEXT = "Dataset"
    HELP = (
        "The corpus the model learns from: how many tunes and characters, every character with "
        "its count, tunes per meter and key, tune lengths, and each tune as ABC."
    )
    BINDINGS = [
        Binding("o", "open_corpus", "Open ABC", tooltip="Load another .abc file or folder"),
        Binding("s", "show_tab('summary')", "Summary", tooltip="Numbers and charts"),
        Binding(
            "v", "show_tab('vocabulary')", "Vocabulary",
            tooltip="Every character with its count (from the other tabs)",
        ),  # fmt: skip
        # On the Tunes tab `v` is the score's: the tab's own key (s, u) and a click reach the rest.
        Binding(
            "v", "toggle_score", "Score",
            tooltip="On the Tunes tab: the tune as sheet music (again: ABC)",
        ),  # fmt: skip
        Binding("u", "show_tab('tunes')", "Tunes", tooltip="The list of tunes, each shown as ABC"),
        Binding("p", "play", "Play/Stop", tooltip="Play the selected tune (again: stop)"),
        Binding(
            "slash", "filter", "Filter",
            tooltip="The Tunes tab: filter its list as you type (title, key, metre, ABC)",
        ),  # fmt: skip
        Binding("escape", "clear_filter", "Clear", tooltip="Clear the tune list's filter"),
    ]

    def compose_body(self) -> ComposeResult:
        yield TabBar(TABS, "summary", id="dataset-tab-bar")
        with ContentSwitcher(initial="summary", id="dataset-tabs") as self._tabs:
            with Vertical(id="summary"), VerticalScroll(id="summary-scroll"):
                yield Static("loading the corpus…", id="corpus-name", markup=False)
                yield StatCards(id="corpus-numbers")
                with Grid(id="charts"):
                    yield BarChart(id="meters-chart", max_rows=10)
                    yield BarChart(id="keys-chart", max_rows=12)
                    yield BarChart(id="length-chart", max_rows=12)
                yield VocabGrid(id="summary-vocab")  # wide terminals: everything on one page
            # Filled once the first frame is drawn (_fill_hidden_tabs): hidden at first, their
            # widgets were a fifth of its work (issue 14).
            yield Vertical(id="vocabulary")
            yield Vertical(id="tunes")

    _tabs_filling = _tabs_filled = False
    filter_text = ""  # the Tunes tab's filter (/)
    _kept: list[int] | None = None  # the corpus's tunes the filter keeps, by place (None: all)
    _search_texts: list[str] | None = None  # the corpus's tunes lower-cased, for the filter

    def hidden_tabs(self) -> tuple[Widget, Widget]:
        from folkgen_tui.widgets.abc_view import AbcView
        from folkgen_tui.widgets.piano_roll import PianoRoll
        from folkgen_tui.widgets.score_view import ScoreView
        from folkgen_tui.widgets.tune_table import CORPUS, TuneTable

        vocabulary = VerticalScroll(
            Static("", id="vocab-title", markup=False), VocabGrid(id="vocab-grid"),
            id="vocab-scroll",
        )  # fmt: skip
        table = Vertical(TuneTable(CORPUS, id="tune-table"), id="tune-list")  # a filter above
        side = Vertical(
            AbcView(id="tune-abc", placeholder="select a tune"),
            ScoreView(id="tune-score"),
            PianoRoll(id="corpus-roll"),
            id="tune-side",
        )
        return vocabulary, Horizontal(table, side, id="tunes-split")

    def mounted(self) -> None:
        self.query_one("#meters-chart").border_title = "Tunes per meter (M:)"
        self.query_one("#keys-chart").border_title = "Tunes per key (K:)"
        self.query_one("#length-chart").border_title = "Tune length (characters)"
        self.query_one(
            "#summary-vocab"
        ).border_title = "Vocabulary: every character, most common first"
        self.corpus_changed()

    def first_frame_drawn(self) -> None:
        self.call_later(self._fill_hidden_tabs)

    async def _fill_hidden_tabs(self) -> None:
        if self._tabs_filling:
            return
        self._tabs_filling = True
        while not import_next(TUNES_TAB_NEEDS):  # a few a loop turn (folkgen_tui/imports.py)
            await asyncio.sleep(IMPORT_PAUSE)
        vocabulary, tunes = self.hidden_tabs()
        await self.query_one("#vocabulary", Vertical).mount(vocabulary)
        await self.query_one("#tunes", Vertical).mount(tunes)
        if not tunes.is_attached:  # the app quit at its first frame: Textual mounted nothing
            return
        self._roll().stop_along()
        self._tabs_filled = True
        self.corpus_changed()
        self.refresh_bindings()

    # The Tunes tab's widgets, by id: their classes are not imported before it is filled.
    def _table(self) -> TuneTable[CorpusRow]:
        return cast("TuneTable[CorpusRow]", self.query_one("#tune-table"))

    def _abc(self) -> AbcView:
        return cast("AbcView", self.query_one("#tune-abc"))

    def _score(self) -> ScoreView:
        return cast("ScoreView", self.query_one("#tune-score"))

    def _roll(self) -> PianoRoll:
        return cast("PianoRoll", self.query_one("#corpus-roll"))

    # --- shared state ----------------------------------------------------------------------

    def corpus_changed(self) -> None:
        stats = self.studio.stats
        corpus = self.studio.corpus
        name = self.query_one("#corpus-name", Static)
        if stats is None or corpus is None:
            name.update(self.studio.corpus_error or "loading the corpus…")
            return
        source = f" — {corpus.source}" if self.studio.corpus_path and corpus.source else ""
        skipped = f" ({plural(len(corpus.skipped), 'file')} skipped)" if corpus.skipped else ""
        name.update(f"{stats.name}{source}{skipped}")
        self.query_one("#corpus-numbers", StatCards).cards = (
            (number(stats.tunes), "tunes"),
            (number(stats.characters), "characters"),
            (number(len(stats.vocabulary)), "vocabulary"),
            (f"{stats.length_min}–{stats.length_max}", "tune length"),
            (number(stats.length_mean, 0), "mean length"),
        )
        self.query_one("#meters-chart", BarChart).rows = tuple(stats.meters)
        self.query_one("#keys-chart", BarChart).rows = tuple(stats.keys)
        hist = stats.length_histogram
        edges = [start for start, _ in hist[1:]] + [stats.length_max + 1]
        self.query_one("#length-chart", BarChart).rows = tuple(
            (f"{start}–{end - 1}" if end - 1 > start else f"{start}", n)
            for (start, n), end in zip(hist, edges, strict=True)
        )
        self.query_one("#summary-vocab", VocabGrid).entries = tuple(stats.vocabulary)
        if len(corpus.tunes) > MAX_LISTED:
            name.update(
                f"{stats.name}{source}{skipped} — the list shows the first {MAX_LISTED:,} tunes"
            )
        if not self._tabs_filled:
            return  # filled when they are (_fill_hidden_tabs)
        self.query_one("#vocab-title", Static).update(
            f"{len(stats.vocabulary)} distinct characters, most common first "
            f"({show_char(' ')} is a space, {show_char(chr(10))} a line break)"
        )
        self.query_one("#vocab-grid", VocabGrid).entries = tuple(stats.vocabulary)
        self._search_texts = None
        self._refilter(keep_place=False)  # the filter stays; the cursor goes to the top
        current = self._table().current
        self._abc().set_text(current.tune if current is not None else "")

    # --- the filter --------------------------------------------------------------------------

    def _refilter(self, narrower: bool = False, keep_place: bool = True) -> None:
        """List the tunes the filter keeps, as the Library filters its tunes (core.search),
        the cursor on the same tune where it is kept (`keep_place`); `narrower`: the filter
        was typed on, so only what it kept is searched."""
        from core.search import matching
        from folkgen_tui.widgets.tune_table import CorpusRows

        corpus = self.studio.corpus
        if corpus is None:
            return
        table = self._table()
        if not self.filter_text.split():
            self._kept = None
            table.empty_text = "no tunes"
        else:
            if self._search_texts is None:  # made once per corpus (20,000 tunes: ~10 ms)
                self._search_texts = [tune.lower() for tune in corpus.tunes]
            source = self._kept if narrower and self._kept is not None else range(len(corpus.tunes))
            self._kept = matching(source, self.filter_text, self._search_texts.__getitem__)
            table.empty_text = "no tune matches the filter (escape clears it)"
        shown = "" if self._kept is None else f"{len(self._kept):,} of {len(corpus.tunes):,}"
        self.query_one(TabBar).set_note("tunes", shown)
        current = table.current if keep_place else None
        table.set_rows(
            CorpusRows(corpus.tunes, MAX_LISTED, self._kept),
            current.id if current is not None else None,
        )

    def _filter_field(self) -> FilterInput | None:
        fields = self.query("#tune-filter")
        return cast("FilterInput", fields.first()) if fields else None

    async def action_filter(self) -> None:
        if not self._tabs_filled:
            return
        self.action_show_tab("tunes")
        field = self._filter_field()
        if field is None:  # made at the first /: nothing more to build ahead
            from folkgen_tui.widgets.filter_input import FilterInput

            field = FilterInput(
                self.filter_typed, placeholder="filter: title, key, metre, ABC…", compact=True,
                id="tune-filter",
            )  # fmt: skip
            await self.query_one("#tune-list").mount(field, before=0)
        field.display = True
        field.focus()
        self.refresh_bindings()

    def action_clear_filter(self) -> None:
        field = self._filter_field()
        if field is None:
            return
        field.display = False
        self._table().focus()
        if field.value:
            field.value = ""  # refilters (filter_typed)
        self.refresh_bindings()

    def filter_typed(self, new: str) -> None:
        """The filter field's text changed (FilterInput calls this as it changes)."""
        from core.search import narrows

        old = self.filter_text
        if new == old:
            return
        self.filter_text = new
        self._refilter(narrower=narrows(old, new))
        if bool(old) != bool(new):
            self.refresh_bindings()  # escape clears a filter only while there is one

    @on(Input.Submitted, "#tune-filter")
    def filter_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._table().focus()  # the filter stays; the keys are commands again
        if not self.filter_text:
            self.action_clear_filter()

    # --- actions ---------------------------------------------------------------------------

    _tabs: ContentSwitcher | None = None  # none before the screen is composed

    def _on_tunes_tab(self) -> bool:
        # Asked for each key at each footer update: no query of the screen.
        return self._tabs is not None and self._tabs.current == "tunes"

    def action_state(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_filter":
            return bool(self.filter_text) or self.typing()
        if action == "filter":
            return True if self._tabs_filled else None
        if action == "toggle_score":
            return self._on_tunes_tab()
        if action == "show_tab" and parameters == ("vocabulary",):
            return not self._on_tunes_tab()  # `v` is the score's there
        return True

    def on_tab_bar_clicked(self, event: TabBar.Clicked) -> None:
        self.action_show_tab(event.tab)

    def action_toggle_score(self) -> None:
        """The selected tune as sheet music in place of its ABC text, and back."""
        if not self._tabs_filled:
            return
        score = self._score()
        text = self._abc()
        score.swap_with(text)
        self.query_one("#tunes-split").set_class(score.display, "-score")  # the score's room
        self._update_score()

    def _update_score(self) -> None:
        if not self._tabs_filled:
            return
        score = self._score()
        if score.display:
            score.show(self.selected_tune() or "", "select a tune")

    def action_show_tab(self, tab: str) -> None:
        self.query_one("#dataset-tabs", ContentSwitcher).current = tab
        self.query_one(TabBar).active = tab
        self.refresh_bindings()  # `v` is the score's on the Tunes tab
        focus = {
            "summary": "#summary-scroll",
            "vocabulary": "#vocab-scroll",
            "tunes": "#tune-table",
        }
        for widget in self.query(focus[tab]):  # none in the first moments (_fill_hidden_tabs)
            widget.focus()

    def action_open_corpus(self) -> None:
        from folkgen_tui.screens.dialogs import PathDialog

        def done(path: str | None) -> None:
            if path is not None:  # escape: None; empty: the default corpus again
                self.studio.load_corpus(path.strip() or None)

        current = self.studio.corpus_path
        self.app.push_screen(
            PathDialog(
                "Open ABC",
                "An .abc file (tunes separated by blank lines) or a folder of them; empty: the "
                "Irish corpus (the default). The app opens it again at its next start:",
                str(current) if current else "",
            ),
            done,
        )

    def selected_tune(self) -> str | None:
        corpus = self.studio.corpus
        if corpus is None or not self._tabs_filled:
            return None
        row = self._table().current
        return row.tune if row is not None else None

    def action_play(self) -> None:
        tune = self.selected_tune()
        if tune is None:
            why = ("The filter keeps no tune (esc clears it)." if self._kept == [] else
                   "Open the Tunes tab (u) and pick a tune first.")  # fmt: skip
            self.notify(why, severity="warning")
            return
        from core.corpus import header_field

        row = self._table().current
        assert row is not None  # selected_tune
        self.studio.toggle_play(
            tune, header_field(tune, "T") or "tune", key=f"{CORPUS_KEY}{row.id}"
        )

    def playback_changed(self) -> None:
        """A corpus tune playing shows its piano roll under the ABC."""
        if not self._tabs_filled:
            return
        self.follow_playback(self._roll(), lambda key: key.startswith(CORPUS_KEY))

    def on_tune_highlighted(self, event: TuneHighlighted) -> None:
        row = cast("CorpusRow | None", event.row)
        # None: the filter keeps no tune, and the last one shown went on showing
        self._abc().set_text(row.tune if row is not None else "")
        self._update_score()
