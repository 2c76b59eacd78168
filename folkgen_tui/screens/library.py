"""Library: the tunebook (core.library) as a table to sort, filter, play, rate, keep favourites,
see as a score, open again in Generate (the same tune comes back), rename, delete and export.

The rows live in memory (core.library.TuneRow, light); sorting and filtering are list work on
the UI thread (milliseconds for 10,000 tunes), and the table draws only the rows in view. Every
database call runs on the tunebook's own thread (folkgen_tui.tunebook)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, TypeVar, cast

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import Input, Static

from core.search import narrows
from core.voice import VoiceError
from core.words import plural
from folkgen_tui.screens.base import LEAVE_FIELD, StudioScreen
from folkgen_tui.screens.dialogs import ConfirmDialog, TextDialog
from folkgen_tui.widgets import AbcView
from folkgen_tui.widgets.deferred import Deferred
from folkgen_tui.widgets.filter_input import FilterInput
from folkgen_tui.widgets.piano_roll import PianoRoll
from folkgen_tui.widgets.score_view import ScoreView
from folkgen_tui.widgets.sketch import cut
from folkgen_tui.widgets.tune_table import TUNEBOOK, TuneHighlighted, TuneTable, stars
from folkgen_tui.widgets.voice_row import VoiceRow, voice_sketch

if TYPE_CHECKING:
    from core.library import Library, LibraryTune, TuneRow
    from folkgen_tui.tunebook import Tunebook

LIBRARY_KEY = "library-"  # what the app plays from here is keyed library-<id>
DETAIL_DELAY = 0.05  # seconds the cursor rests on a row before its whole tune is read
# While a filter is typed the top row changes with each key: its tune is shown once typing
# pauses, so that laying out the tune panel (a new ABC text) never lands between two keys.
TYPING_DELAY = 0.3
T = TypeVar("T")
OPENING = "opening the tunebook…"  # the table's text until the tunebook is read
WATCH_EVERY = 2.0  # seconds between looks for tunes another process wrote, while shown

# The sort key cycles through these: (shown as, core.library's sort, descending).
SORTS: tuple[tuple[str, str, bool], ...] = (
    ("date", "created", True),
    ("rating", "rating", True),
    ("title", "title", False),
    ("key", "key", False),
    ("metre", "metre", False),
)


def sort_rows(rows: Sequence[TuneRow], sort: str) -> list[TuneRow]:
    from core.library import sort_rows as core_sort  # the CLI's order, ties and all

    _, by, descending = next(s for s in SORTS if s[0] == sort)
    return core_sort(rows, by, descending)


def filter_rows(rows: Sequence[TuneRow], text: str) -> list[TuneRow]:
    from core.library import filter_rows as core_filter  # what `library list --filter` keeps

    return core_filter(rows, text)


class LibraryScreen(StudioScreen):
    MODE = "library"
    # Focus starts on the table, as `mounted` sets it: keys that come while the screen is
    # built are commands, not text for its first field (Textual focuses the first focusable).
    AUTO_FOCUS = "#lib-table"
    TITLE_TEXT = "Library"
    HELP = (
        "The tunebook: tunes you saved on Generate (s) or imported (folkgen library import). "
        "Sort, filter as you type, play, rate, keep favourites, see the score, open a tune again "
        "in Generate with its model, seed and settings, rename, delete (u undoes) and export. "
        "Every tune generated in the app is also kept in the session history."
    )
    PALETTE_NAMES: ClassVar[dict[str, str]] = {
        **{f"rate({n})": f"Rate {n} star{'s' if n > 1 else ''}" for n in range(1, 6)},
        "rate(0)": "Clear the rating",
    }
    BINDINGS = [
        Binding("p", "play", "Play", tooltip="Play the tune with its piano roll (again: stop)"),
        Binding(
            "enter,o",
            "open",
            "Open",
            tooltip="Open in Generate: the same model, seed and settings make the same tune again",
        ),
        Binding("slash", "filter", "Filter", tooltip="Filter as you type (title, key, metre, ABC)"),
        Binding("escape", "clear_filter", "Clear", tooltip="Clear the filter"),
        LEAVE_FIELD,  # the voice row's fields (escape there said "Clear")
        Binding("s", "sort", "Sort", tooltip="Sort by date, rating, title, key or metre, in turn"),
        Binding(
            "1",
            "rate(1)",
            "Rate",
            key_display="1-5",
            tooltip="Rate the tune 1 to 5 stars (keys 1-5; 0 clears the rating)",
        ),
        Binding("2", "rate(2)", "", show=False),
        Binding("3", "rate(3)", "", show=False),
        Binding("4", "rate(4)", "", show=False),
        Binding("5", "rate(5)", "", show=False),
        Binding("0", "rate(0)", "", show=False),
        Binding("f", "favourite", "Fav", tooltip="Mark the tune a favourite (again: unmark)"),
        Binding("space", "mark", "Mark", tooltip="Select the tune for export (again: unselect)"),
        Binding("v", "toggle_score", "Score", tooltip="Show the tune as sheet music (again: ABC)"),
        Binding("e", "rename", "Title", tooltip="Edit the tune's title"),
        Binding("n", "notes", "Notes", tooltip="Write your notes on the tune", show=False),
        Binding("x,delete", "delete", "Delete", tooltip="Delete the tune (asks first)"),
        Binding(
            "h",
            "toggle_history",
            "History",
            tooltip="The session history: the tunes generated and not kept (again: the tunebook)",
        ),
        Binding("h", "show_tunebook", "Tunebook", tooltip="Back to the tunebook"),
        Binding("k", "keep", "Keep", tooltip="Keep the history tune in the tunebook"),
        Binding(
            "E",
            "export",
            "Export",
            tooltip="Export the selected tunes (else the favourites) "
            "to one .abc file in the tunes folder",
        ),
        # Last: shown only after a delete (whose notice names it), it is the key a narrow
        # footer cuts, not Export (at 100 columns one of the two is cut).
        Binding("u", "undo", "Undo", tooltip="Bring back the last deleted tune"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.all_rows: list[TuneRow] = []  # the tunebook, in the current sort
        self.shown_rows: list[TuneRow] = []  # after the filter
        self.sort = "date"
        self.filter_text = ""
        self.marked: set[int] = set()
        self.loaded = False
        # Not `loading`: that is Textual's reactive, which greys the whole screen out and takes
        # the focus from the table (the arrows then scrolled the ABC after a rename or undo).
        self.rows_loading = False
        self._reloads = 0
        self.history = False  # showing the session history (tunes generated, not kept)
        self.load_seconds = 0.0  # the last rows() query (for the bench)
        self.tune: LibraryTune | None = None  # the tune under the cursor, read in full
        self._details: dict[int, LibraryTune] = {}
        self._fetch_timer: Timer | None = None
        self._watch: Timer | None = None  # looks for other processes' writes while shown
        self._outside_writes: int | None = None  # their count, as last seen
        self._edits = 0  # this screen's writes asked for (see _edit)
        self._deleted_ids: list[int] = []  # the tunes this screen deleted, the last last

    @property
    def tunebook(self) -> Tunebook:
        return self.studio.tunebook

    def compose_body(self) -> ComposeResult:
        # The panels first; the voice row, the table and the tune's parts made and mounted once
        # the screen is drawn (Deferred), or built ahead, in the app's turn: built whole, its
        # layout as it was built held the keys for ~20 ms (issue 14). The voice row's picker and
        # fields, made with the frame, were a third of a key's build of it before any screen was
        # built ahead (their widgets' CSS parsed and applied: ~35 of ~110 ms, a 2-core Zen 2).
        with Vertical(id="lib-voice"):
            yield Deferred(
                Vertical(id="lib-voice-part"), self._voice_row,
                lambda width: cut(voice_sketch(self.studio.voice), width),
            )  # fmt: skip
        with Horizontal(id="lib-main"):
            with Vertical(id="lib-list"):
                yield Deferred(
                    Vertical(id="lib-list-parts"), self._list,
                    lambda width: TUNEBOOK.sketch(width, OPENING),
                )  # fmt: skip
            with Vertical(id="lib-side") as side:
                side.border_title = "Tune"
                yield Deferred(Vertical(id="lib-side-parts"), self._side)
        yield Static("", id="lib-status", markup=False)

    def _voice_row(self) -> ComposeResult:
        yield VoiceRow(self.studio.voice)

    def _list(self) -> ComposeResult:
        yield FilterInput(self.filter_typed, placeholder="filter: title, key, metre, ABC…",
                          compact=True, id="lib-filter")  # fmt: skip
        yield TuneTable(TUNEBOOK, id="lib-table")

    def _side(self) -> ComposeResult:
        yield Static("", id="lib-badge", markup=False)
        yield AbcView(id="lib-abc", placeholder="")
        yield ScoreView(id="lib-score")
        yield PianoRoll(id="lib-roll")

    def mounted(self) -> None:
        self.query_one(VoiceRow).show(self.studio.voice)  # one chosen since its row was made
        self.query_one("#lib-filter").display = False
        self.query_one("#lib-roll", PianoRoll).stop_along()
        self.query_one("#lib-score").display = False
        table = self.query_one(TuneTable)
        table.empty_text = OPENING
        table.focus()
        self.reload()

    @on(events.ScreenResume)
    def reload_on_resume(self, event: events.ScreenResume) -> None:
        if self.loaded:
            self.reload()  # tunes saved on Generate or by the CLI meanwhile
        if self._watch is None:
            self._watch = self.set_interval(WATCH_EVERY, self._look_for_outside_writes)
        self._watch.resume()

    @on(events.ScreenSuspend)
    def stop_watching(self, event: events.ScreenSuspend) -> None:
        if self._watch is not None:
            self._watch.pause()

    def _look_for_outside_writes(self) -> None:
        """While shown: tunes another process adds, rates or deletes (`folkgen library import`,
        `generate --save`) come into the list without leaving the screen."""
        if self.rows_loading or not self.is_current:
            return

        def seen(version: int) -> None:
            if version != self._outside_writes and self.is_current and not self.rows_loading:
                self.reload()

        self.tunebook.call(lambda library: library.outside_writes(), seen, lambda _: None)

    # --- loading -----------------------------------------------------------------------------

    def _edit(
        self, job: Callable[[Library], T], done: Callable[[T], None] | None = None
    ) -> None:
        """A write of this screen's, on the tunebook's thread: a reload asked for before it
        reads the rows without it (and this connection's writes set off no reload of their
        own), so a reload under way reads them again (`reload`)."""
        self._edits += 1
        self.tunebook.call(job, done)

    def reload(self, keep_id: int | None = None) -> None:
        self._reloads += 1
        request = self._reloads  # the tunebook thread answers in order: the last one counts
        edits = self._edits
        self.rows_loading = True
        started = time.perf_counter()
        history = self.history

        def done(result: tuple[int, list[TuneRow]]) -> None:
            if request != self._reloads:
                return
            if edits != self._edits:  # read before an edit of ours landed: again, after it
                self.reload(keep_id)
                return
            self._outside_writes, rows = result
            self.rows_loading = False
            self.load_seconds = time.perf_counter() - started
            # keep_id, else the row under the cursor as they arrive (not as they were asked
            # for: a reload for another process's write may come while the cursor moves).
            self.set_rows(rows, keep_id)

        def failed(error: str) -> None:
            if request != self._reloads:
                return
            self.rows_loading = False
            self.query_one(TuneTable).empty_text = f"no tunebook: {error}"
            self.query_one(TuneTable).refresh()
            self._show_status()

        def read(library: Library) -> tuple[int, list[TuneRow]]:
            # The writes seen first: one that comes between the two reads is read again later.
            return library.outside_writes(), library.rows(in_tunebook=not history)

        self.tunebook.call(read, done, failed)

    def set_rows(self, rows: list[TuneRow], keep_id: int | None = None) -> None:
        self.loaded = True
        self._details.clear()
        if self.marked:
            self.marked &= {r.id for r in rows}
        # rows() lists the newest first, the date order: 10,000 rows need no sorting again.
        self.all_rows = rows if self.sort == "date" else sort_rows(rows, self.sort)
        table = self.query_one(TuneTable)
        table.empty_text = (
            "no tunes in the history: every tune made on Generate comes here"
            if self.history
            else "no tunes yet: save one on Generate (s), or folkgen library import; "
            "h shows the history, every tune made on Generate"
        )
        self._refilter(keep_id if keep_id is not None else self._surviving(rows))

    def _surviving(self, rows: list[TuneRow]) -> int | None:
        """The tune under the cursor, or, where it is gone (deleted by another process), the
        next tune shown that is still there, else the one before: the cursor went to the top."""
        table = self.query_one(TuneTable)
        current = table.current
        if current is None:
            return None
        ids = {row.id for row in rows}
        if current.id in ids:
            return current.id
        shown, at = table.rows, table.cursor
        after = (row.id for row in shown[at + 1 :] if row.id in ids)
        before = (row.id for row in reversed(shown[:at]) if row.id in ids)
        return next(after, next(before, None))

    def _refilter(self, keep_id: int | None = None, narrower: bool = False) -> None:
        source = self.shown_rows if narrower else self.all_rows
        self.shown_rows = filter_rows(source, self.filter_text)
        table = self.query_one(TuneTable)
        if self.filter_text and not self.shown_rows:
            table.empty_text = "no tune matches the filter (escape clears it)"
        had_rows = bool(table.rows)
        table.set_rows(self.shown_rows, keep_id if keep_id is not None else self._current_id())
        self._show_status()
        if had_rows != bool(self.shown_rows):
            self.refresh_bindings()  # the keys that act on a tune come and go with the rows

    def _current_id(self) -> int | None:
        row = self.query_one(TuneTable).current
        return row.id if row is not None else None

    def _current(self) -> TuneRow | None:
        return cast("TuneRow | None", self.query_one(TuneTable).current)

    # --- the tune under the cursor -----------------------------------------------------------

    @on(TuneHighlighted)
    def row_highlighted(self, event: TuneHighlighted) -> None:
        row = event.row
        if row is None:
            self._show_tune(None)
            return
        if self._fetch_timer is not None:
            self._fetch_timer.stop()
            self._fetch_timer = None
        typing = self.typing()
        cached = self._details.get(row.id)
        if cached is not None and not typing:
            self._show_tune(cached)
            return
        # Read the whole tune once the cursor rests (a held arrow key or a filter being
        # typed passes over many rows: each would lay out the ABC view for nothing).
        delay = TYPING_DELAY if typing else DETAIL_DELAY
        self._fetch_timer = self.set_timer(delay, partial(self._fetch_tune, row.id))

    def _fetch_tune(self, wanted: int) -> None:
        self._fetch_timer = None
        if self._current_id() != wanted:
            return
        cached = self._details.get(wanted)
        if cached is not None:
            self._show_tune(cached)
            return

        def done(tune: LibraryTune) -> None:
            row = self._current()
            if row is None or row.id != wanted:
                return
            # A rating or favourite set while this was read is in the row already (and queued
            # for the database after this read): the row's are the newer values.
            tune = dataclasses.replace(tune, rating=row.rating, favourite=row.favourite)
            self._details[tune.id] = tune
            self._show_tune(tune)

        self.tunebook.call(lambda library: library.get(wanted), done, lambda _: None)

    def _show_tune(self, tune: LibraryTune | None) -> None:
        self.tune = tune
        badge = self.query_one("#lib-badge", Static)
        view = self.query_one("#lib-abc", AbcView)
        if tune is None:
            badge.update("", layout=False)  # two lines, always: no layout for a new tune
            view.set_text("")
        else:
            badge.update(describe(tune), layout=False)
            text = tune.shared_abc  # as exported: the model's own Z: line claimed a corpus id
            if view.text != text:
                view.set_text(text)
        self._update_score()
        self.playback_changed()

    # --- sorting and filtering ---------------------------------------------------------------

    def action_sort(self) -> None:
        names = [name for name, _, _ in SORTS]
        self.sort = names[(names.index(self.sort) + 1) % len(names)]
        self.all_rows = sort_rows(self.all_rows, self.sort)
        self._refilter()
        self.notify(f"Sorted by {self.sort}.", timeout=2)

    def action_filter(self) -> None:
        field = self.query_one("#lib-filter", Input)
        field.display = True
        field.focus()

    def _in_voice_row(self) -> bool:
        return self.focused is not None and self.focused in self.query_one(VoiceRow).children

    def action_leave_field(self) -> None:
        self.query_one(TuneTable).focus()  # escape leaves the voice row's field, that is all

    def action_clear_filter(self) -> None:
        field = self.query_one("#lib-filter", Input)
        field.display = False
        self.query_one(TuneTable).focus()
        if field.value:
            field.value = ""  # refilters (filter_typed)

    def filter_typed(self, new: str) -> None:
        """The filter field's text changed (FilterInput calls this as it changes)."""
        old = self.filter_text
        if new == old:
            return
        self.filter_text = new
        self._refilter(narrower=narrows(old, new))  # then only what shows is searched
        if bool(old) != bool(new):
            self.refresh_bindings()  # escape clears a filter only while there is one

    @on(Input.Submitted, "#lib-filter")
    def filter_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one(TuneTable).focus()  # the filter stays; the keys are commands again
        if not self.filter_text:
            self.query_one("#lib-filter").display = False

    def action_state(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_filter":
            return not self._in_voice_row() and (bool(self.filter_text) or self.typing())
        if action == "leave_field":
            return self._in_voice_row()
        if action == "keep":
            return self.history and self._current() is not None
        if action in ("toggle_history", "show_tunebook"):  # h says where it goes
            return self.history == (action == "show_tunebook")
        if action in ("play", "open", "rate", "favourite", "mark", "rename", "delete"):
            return True if self._current() is not None else None
        if action == "undo":  # in the footer once there is a delete to undo (help lists it)
            return bool(self._deleted_ids)
        return True

    # --- rating, favourites, marks -----------------------------------------------------------

    def _replace_row(self, row: TuneRow) -> None:
        for rows in (self.all_rows, self.shown_rows):
            for i, old in enumerate(rows):
                if old.id == row.id:
                    rows[i] = row
                    break
        self.query_one(TuneTable).update_row(row)
        self._details.pop(row.id, None)

    def action_rate(self, stars_: int) -> None:
        row = self._current()
        if row is None:
            return
        self._replace_row(dataclasses.replace(row, rating=stars_))
        tune_id = row.id
        self._edit(lambda library: library.rate(tune_id, stars_), self._refresh_tune)

    def action_favourite(self) -> None:
        row = self._current()
        if row is None:
            return
        on_ = not row.favourite
        self._replace_row(dataclasses.replace(row, favourite=on_))
        tune_id = row.id
        self._edit(lambda library: library.set_favourite(tune_id, on_), self._refresh_tune)

    def _refresh_tune(self, _: object = None) -> None:
        row = self._current()
        if row is not None:
            self.row_highlighted(TuneHighlighted(self.query_one(TuneTable), row))

    def action_mark(self) -> None:
        row = self._current()
        if row is None:
            return
        self.marked ^= {row.id}
        table = self.query_one(TuneTable)
        table.marked = self.marked
        table.update_row(row)
        table.cursor += 1
        self._show_status()

    # --- playing and the score ---------------------------------------------------------------

    def action_play(self) -> None:
        tune = self.tune
        if tune is None:
            self.notify("Pick a tune first (it is still being read).", severity="warning")
            return
        try:
            voice = self.query_one(VoiceRow).read()
        except VoiceError as e:
            self.notify(str(e), title="Check the voice", severity="error", markup=False)
            return
        self.studio.toggle_play(tune.abc, tune.title, f"{LIBRARY_KEY}{tune.id}", voice)
        tune_id = tune.id
        self._edit(lambda library: library.played(tune_id), lambda _: None)

    def on_voice_row_changed(self, message: VoiceRow.Changed) -> None:
        self.studio.voice = message.voice  # the app's one voice: Generate's row shows it too

    def voice_changed(self) -> None:
        self.query_one(VoiceRow).show(self.studio.voice)

    def playback_changed(self) -> None:
        self.follow_playback(
            self.query_one("#lib-roll", PianoRoll),
            lambda key: self.tune is not None and key == f"{LIBRARY_KEY}{self.tune.id}",
        )

    def action_toggle_score(self) -> None:
        score = self.query_one("#lib-score", ScoreView)
        text = self.query_one("#lib-abc", AbcView)
        score.swap_with(text)
        # The table gives the score room (its least needed columns step aside).
        self.query_one("#lib-main").set_class(score.display, "-score")
        self._update_score()

    def _update_score(self) -> None:
        score = self.query_one("#lib-score", ScoreView)
        if score.display:
            score.show(self.tune.shared_abc if self.tune else "", "pick a tune")

    # --- open in Generate --------------------------------------------------------------------

    def action_open(self) -> None:
        row = self._current()
        if row is None:
            return
        tune_id = row.id
        tunebook = self.tunebook

        def find(library: Library) -> tuple[LibraryTune, Path | None, str]:
            tune = library.get(tune_id)
            if tune.seed is None or tune.source != "generated":
                return tune, None, ""
            path, problem = find_model(tunebook, tune.model_name, tune.model_hash)
            return tune, path, problem

        def found(result: tuple[LibraryTune, Path | None, str]) -> None:
            tune, path, problem = result
            if tune.seed is None or tune.source != "generated":
                self.notify(f"{tune.title} was not generated here: no model and seed to make it "
                            "again.", severity="warning", markup=False)  # fmt: skip
                return
            if path is None:
                self.notify(problem, title="Cannot open in Generate", severity="error",
                            markup=False)  # fmt: skip
                return
            if tune.grammar is False:  # `folkgen generate --no-grammar`: the app samples with it
                problem = " ".join((problem, "It was made without the grammar, which the app "
                                    "always uses: the tune will come out different."))  # fmt: skip
            if problem:
                self.notify(problem.strip(), severity="warning", timeout=8, markup=False)
            self.call_later(self._open_in_generate, tune, path)

        self.tunebook.call(find, found)

    async def _open_in_generate(self, tune: LibraryTune, path: Path) -> None:
        from folkgen_tui.screens.generate import GenerateScreen

        await self.app.switch_mode("generate")
        screen = self.app.screen
        if isinstance(screen, GenerateScreen):
            screen.open_tune_settings(tune, path)

    # --- title, delete, undo -----------------------------------------------------------------

    def action_rename(self) -> None:
        row = self._current()
        if row is None:
            return
        tune_id = row.id

        def done(title: str | None) -> None:
            if title is not None and not title.strip():  # (it was dropped without a word)
                self.notify("A title needs some text: the tune keeps its own.", severity="warning")
            elif title and title != row.title:
                self._edit(lambda library: library.rename(tune_id, title),
                                   lambda _: self.reload(tune_id))  # fmt: skip

        self.app.push_screen(TextDialog("Title", "The tune's title (its T: line):", row.title),
                             done)  # fmt: skip

    def action_notes(self) -> None:
        row, tune = self._current(), self.tune
        if row is None or tune is None or tune.id != row.id:
            return  # the tune's facts not read yet
        tune_id = row.id

        def done(notes: str | None) -> None:
            if notes is not None and notes != tune.notes:

                def written(_: object) -> None:
                    self._details.pop(tune_id, None)  # its facts read again, notes and all
                    self._refresh_tune()

                self._edit(lambda library: library.set_notes(tune_id, notes), written)

        self.app.push_screen(TextDialog("Notes", "Your notes on the tune (empty: none):",
                                        tune.notes), done)  # fmt: skip

    def action_delete(self) -> None:
        row = self._current()
        if row is None:
            return
        tune_id = row.id

        def done(yes: bool | None) -> None:
            if not yes:
                return
            table = self.query_one(TuneTable)
            index = table.cursor
            self.all_rows = [r for r in self.all_rows if r.id != tune_id]
            self.shown_rows = [r for r in self.shown_rows if r.id != tune_id]
            self.marked.discard(tune_id)
            rows = self.shown_rows
            table.set_rows(rows, rows[min(index, len(rows) - 1)].id if rows else None)
            self._show_status()
            self._deleted_ids.append(tune_id)  # (undo_delete brings back the last, in order)
            self.refresh_bindings()
            self._edit(lambda library: library.delete(tune_id), lambda _: self.notify(
                f"Deleted {row.title} (u brings it back).", markup=False))  # fmt: skip

        self.app.push_screen(ConfirmDialog("Delete", f"Delete {row.title} from the tunebook?"),
                             done)  # fmt: skip

    def action_undo(self) -> None:
        deleted = self._deleted_ids.pop() if self._deleted_ids else None
        self.refresh_bindings()

        def done(tune_id: int | None) -> None:
            if tune_id is None:
                self.notify("Nothing to undo: no tune was deleted.", severity="warning")
                return
            self.notify("The tune is back." if deleted in (None, tune_id) else
                        "The tune is back, in the entry it was saved in again since.")  # fmt: skip
            self.reload(tune_id)

        self._edit(lambda library: library.undo_delete(), done)

    # --- the session history ----------------------------------------------------------------

    def action_toggle_history(self) -> None:
        self.history = not self.history
        self.marked.clear()
        self.query_one(TuneTable).marked = self.marked
        self.all_rows = self.shown_rows = []
        self.query_one(TuneTable).set_rows([])
        self.reload()
        self.refresh_bindings()

    def action_show_tunebook(self) -> None:
        self.action_toggle_history()

    def action_keep(self) -> None:
        row = self._current()
        if row is None or not self.history:
            return
        tune_id = row.id
        index = self.query_one(TuneTable).cursor
        self.all_rows = [r for r in self.all_rows if r.id != tune_id]
        rest = [r for r in self.shown_rows if r.id != tune_id]
        # The cursor stays in its place, on the next tune (it went back to the first): a run of
        # keeps goes down the history.
        self._refilter(keep_id=rest[min(index, len(rest) - 1)].id if rest else None)

        def kept(into: int) -> None:
            self.notify(f"Kept {row.title} in the tunebook." if into == tune_id else
                        f"{row.title} is in the tunebook already: this entry went into it.",
                        markup=False)  # fmt: skip

        self._edit(lambda library: library.keep(tune_id), kept)

    # --- export ------------------------------------------------------------------------------

    def action_export(self) -> None:
        ids = [r.id for r in self.all_rows if r.id in self.marked]
        what = "selected"
        if not ids:
            ids = [r.id for r in self.all_rows if r.favourite]
            what = "favourite"
        if not ids:
            self.notify("Nothing to export: select tunes (space) or mark favourites (f) first.",
                        severity="warning")  # fmt: skip
            return

        writing = self.studio.writing

        def export(library: Library) -> Path:
            from core.paths import output_dir

            stamp = time.strftime("%Y%m%d-%H%M%S")
            with writing:  # a lost terminal waits for it (FolkgenApp.finish_work)
                return library.export_abc(ids, output_dir() / f"tunebook-{stamp}.abc")

        count = len(ids)
        if self.history:  # the history's own, not the tunebook's: said so
            what += " history"
        self.tunebook.call(export, lambda path: self.notify(
            f"Exported {plural(count, what + ' tune')} to {path}", markup=False))  # fmt: skip

    # --- status line -------------------------------------------------------------------------

    def _show_status(self) -> None:
        total, shown = len(self.all_rows), len(self.shown_rows)
        parts = ["session history"] if self.history else []
        tunes = "tune" if total == 1 else "tunes"
        parts.append(f"{total:,} {tunes}" if shown == total else f"{shown:,} of {total:,} {tunes}")
        parts.append(f"sorted by {self.sort}")
        if self.filter_text:
            parts.append(f"filter “{self.filter_text}”")
        if self.marked:
            parts.append(f"{len(self.marked)} selected")
        # One line of fixed size: no layout of the screen for each keystroke of a filter.
        self.query_one("#lib-status", Static).update(" · ".join(parts), layout=False)


def describe(tune: LibraryTune) -> str:
    """The badge over the ABC: where the tune came from and how it sounds."""
    first = [tune.title, stars(tune.rating) if tune.rating else "", tune.notes]
    # The music first, then what makes the tune again (top-k only when it was used); a line too
    # long for the panel ends in "…" (library.tcss).
    second = [plural(tune.bars, "bar") if tune.bars else "", tune.form]
    if tune.source == "generated":
        second += [tune.model_name or "?", f"seed {tune.seed}"]
        second.append(f"T {tune.temperature:g}" if tune.temperature is not None else "T ?")
        second.append(f"top-k {tune.top_k}" if tune.top_k else "")
    else:
        second.append("imported")
    second.append(f"played {tune.play_count}×" if tune.play_count else "")
    return "\n".join(" · ".join(p for p in line if p) for line in (first, second))


def find_model(tunebook: Tunebook, name: str, content_hash: str) -> tuple[Path | None, str]:
    """The checkpoint that made a tune: by name in the checkpoints folder, else the shipped
    default model, checked by content hash. (path, "") when found; (path, warning) when only a
    file of that name with other contents is there; (None, why) when none. Tunebook thread."""
    from core.paths import checkpoints_dir, shipped_model_path

    # The name comes from the database: only a file name, never a path out of the folder.
    named = checkpoints_dir() / Path(name).name if Path(name).name else None
    candidates = [p for p in (named, shipped_model_path()) if p is not None and p.is_file()]
    for path in candidates:
        if content_hash and tunebook.model_hash(path) == content_hash:
            return path, ""
    if named is not None and named.is_file():
        return named, (f"{name} has changed since the tune was made (its contents differ): "
                       "the tune may come out different.")  # fmt: skip
    return None, (
        f"the model {name or '(unknown)'} that made this tune is neither in the "
        f"checkpoints folder ({checkpoints_dir()}) nor the shipped default model."
    )
