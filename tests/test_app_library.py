"""The Library screen (l) driven by keys, in one run of the app (each start costs seconds): a
damaged tunebook is set aside with a notice; a tune generated with a small model from the
checkpoints folder goes into the session history, saving keeps it in the tunebook, and the
screen lists, rates, marks favourites, filters, sorts, plays, shows the score, renames, deletes
(undo), exports, opens it again in Generate (the same text comes back) and keeps a history tune;
? lists the keys."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Static

from core.corpus import load_corpus
from core.library import LIBRARY_FILE, Library, LibraryError, filter_rows, model_hash
from folkgen_tui.app import FolkgenApp
from folkgen_tui.screens.help import HelpScreen
from folkgen_tui.screens.library import LibraryScreen
from folkgen_tui.widgets.abc_view import AbcView
from folkgen_tui.widgets.footer import StudioFooter
from folkgen_tui.widgets.piano_roll import PianoRoll
from folkgen_tui.widgets.score_view import ScoreView
from folkgen_tui.widgets.tune_table import TuneTable, stars
from tests.app_helpers import (
    generate_tune,
    make_checkpoint,
    plain_text,
    play_in_real_time,
    record_notices,
    run_from_palette,
    wait_for,
    wait_ready,
)

pytestmark = pytest.mark.asyncio
SIZE = (110, 32)


def seed_tunebook(home: Path, count: int) -> list[int]:
    """The corpus's first `count` tunes in the tunebook, as `folkgen library import` would keep
    them (the corpus holds a few tunes twice, which the tunebook holds once: not counted)."""
    with Library.open(home / LIBRARY_FILE) as library:
        ids: list[int] = []
        for tune in load_corpus().tunes:
            if len(ids) == count:
                break
            tune_id = library.add(tune, source="imported", in_tunebook=True)
            if tune_id not in ids:
                ids.append(tune_id)
        return ids


def stored(home: Path, tune_id: int) -> object:
    """The tune as the database holds it now (a second connection, as the CLI would open)."""
    with Library.open(home / LIBRARY_FILE) as library:
        try:
            return library.get(tune_id)
        except LibraryError:
            return None


async def test_library_walked_by_keys(monkeypatch: pytest.MonkeyPatch, folkgen_home: Path) -> None:
    model = make_checkpoint(folkgen_home / "checkpoints" / "tiny.pt")  # found again by name
    play_in_real_time(monkeypatch)
    folkgen_home.mkdir(parents=True, exist_ok=True)
    (folkgen_home / LIBRARY_FILE).write_bytes(b"this is no database " * 100)  # damaged
    app = FolkgenApp(model_path=model, theme="gruvbox")
    notices = record_notices(app)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot, model=True)

        # Generate one tune: it lands in the history, and s keeps it in the tunebook.
        generate, record = await generate_tune(pilot, {"seed": "7", "max-chars": "150"})
        await wait_for(pilot, lambda: record.library_id is not None, "the history entry")
        tune_id = record.library_id
        assert tune_id is not None
        history = stored(folkgen_home, tune_id)
        assert history is not None and not history.in_tunebook  # type: ignore[attr-defined]
        assert history.abc == record.text and history.seed == 7  # type: ignore[attr-defined]
        assert history.model_name == "tiny.pt"  # type: ignore[attr-defined]

        # The damaged tunebook was set aside when the app first opened it, and the app said so.
        aside = app.tunebook.recovered_from
        assert aside is not None and aside != folkgen_home / LIBRARY_FILE
        assert aside.read_bytes().startswith(b"this is no database")
        await wait_for(pilot, lambda: any(str(aside) in m for m, _ in notices), "the notice")
        notices.clear()
        corpus_ids = seed_tunebook(folkgen_home, 3)  # as the CLI would, while the app runs
        await pilot.press("s")
        await wait_for(pilot, lambda: getattr(stored(folkgen_home, tune_id), "in_tunebook", False),
                       "the tune kept", timeout=30)  # fmt: skip
        kept = stored(folkgen_home, tune_id)
        assert {p.suffix for p in kept.files} >= {".abc", ".mid", ".wav"}  # type: ignore[attr-defined]

        # The Library lists the four tunes, newest first (the generated one, made first, last).
        await pilot.press("l")
        screen = app.screen
        assert isinstance(screen, LibraryScreen)
        table = screen.query_one(TuneTable)
        await wait_for(pilot, lambda: len(table.rows) == 4, "the tunebook's rows")
        assert app.focused is table and table.rows[-1].id == tune_id
        assert [r.id for r in table.rows] == [*reversed(corpus_ids), tune_id]
        await pilot.press("end")
        assert table.current is not None and table.current.id == tune_id
        await wait_for(pilot, lambda: getattr(screen.tune, "id", None) == tune_id, "its text")
        assert screen.tune is not None and screen.tune.abc == record.text
        # Shown as exported: credited to its making, in place of the Z: line the model wrote.
        shown = screen.query_one("#lib-abc", AbcView).text
        assert shown == screen.tune.shared_abc and shown != record.text
        assert "Z:generated by folkgen: model tiny.pt, seed 7" in shown

        # Rate, favourite: at once on screen, and in the database.
        await pilot.press("4", "f")
        assert table.current.rating == 4 and table.current.favourite
        await wait_for(pilot, lambda: getattr(stored(folkgen_home, tune_id), "favourite", False),
                       "the favourite stored")  # fmt: skip
        assert stored(folkgen_home, tune_id).rating == 4  # type: ignore[attr-defined]
        await pilot.press("home", "2", "down", "0")
        assert [r.rating for r in table.rows] == [2, 0, 0, 4]
        # From the palette, a rating by its name (its one "Rate" gave 1 star, whatever was meant).
        await run_from_palette(pilot, "Library: Rate 3", "Library: Rate 3 stars")
        await wait_for(pilot, lambda: table.rows[1].rating == 3, "the palette's rating")
        await pilot.press("0")
        assert [r.rating for r in table.rows] == [2, 0, 0, 4]

        # Sort: date -> rating (the 4-star tune first, then the 2-star one) -> title.
        await pilot.press("s")
        assert screen.sort == "rating"
        assert [r.rating for r in table.rows][:2] == [4, 2]
        await pilot.press("s")
        titles = [r.title for r in table.rows]
        assert screen.sort == "title" and titles == sorted(titles, key=str.casefold)

        # Filter as you type; escape clears it.
        target = next(r for r in table.rows if r.id == corpus_ids[1])
        word = target.title.split()[0].lower()
        await pilot.press("slash", *word)
        assert screen.query_one("#lib-filter", Input).value == word
        assert table.rows and all(word in r.search_text for r in table.rows)  # type: ignore[attr-defined]
        assert len(table.rows) < 4 and target in table.rows
        await pilot.press("escape")
        assert len(table.rows) == 4 and app.focused is table

        # Play: the piano roll runs under the ABC; p again stops.
        table.cursor = next(i for i, r in enumerate(table.rows) if r.id == tune_id)
        await wait_for(pilot, lambda: screen.tune is not None and screen.tune.id == tune_id, "tune")
        await pilot.press("p")
        roll = screen.query_one("#lib-roll", PianoRoll)
        await wait_for(pilot, lambda: roll.display and roll.notes, "the piano roll", timeout=30)
        await pilot.press("p")
        await wait_for(pilot, lambda: not roll.display, "the roll stopped")

        # v: a corpus tune as sheet music in place of its ABC (the table steps aside for it,
        # leaving out its least needed columns), and back.
        table.cursor = next(i for i, r in enumerate(table.rows) if r.id == corpus_ids[0])
        await wait_for(pilot, lambda: getattr(screen.tune, "id", None) == corpus_ids[0], "tune")
        await pilot.press("v")
        score = screen.query_one("#lib-score", ScoreView)
        await wait_for(pilot, lambda: score.engraved and score.up_to_date, "the score")
        assert not screen.query_one("#lib-abc").display
        assert score.size.width >= 60 and "Created" not in table.render_line(0).text
        assert table.current is not None and table.current.title in table.render_line(
            table.cursor + 1 - round(table.scroll_y)).text[:40]  # fmt: skip
        await pilot.press("v")
        assert not score.display and screen.query_one("#lib-abc").display

        # Rename: the title and the T: line of the stored ABC.
        table.cursor = next(i for i, r in enumerate(table.rows) if r.id == tune_id)
        await pilot.press("e")
        await pilot.pause()
        field = app.screen.query_one("#text-input", Input)
        field.value = ""
        await pilot.press(*"Seed Seven", "enter")
        await wait_for(pilot, lambda: any(r.title == "Seed Seven" for r in table.rows), "rename")
        assert "T:Seed Seven" in stored(folkgen_home, tune_id).abc  # type: ignore[attr-defined]
        # An empty title is said to be kept (it was dropped without a word).
        said = record_notices(app)
        await pilot.press("e")
        await pilot.pause()
        app.screen.query_one("#text-input", Input).value = ""
        await pilot.press("enter")
        await wait_for(pilot, lambda: said, "the notice")
        assert "A title needs some text" in said[0][0]
        assert any(r.title == "Seed Seven" for r in table.rows)

        # Notes: written, shown beside the title, and cleared by emptying them.
        await wait_for(pilot, lambda: getattr(screen.tune, "id", None) == tune_id, "its facts")
        await pilot.press("n")
        await pilot.pause()
        await pilot.press(*"play it slow", "enter")
        await wait_for(pilot, lambda: stored(folkgen_home, tune_id).notes == "play it slow",  # type: ignore[attr-defined]
                       "the notes")  # fmt: skip
        badge = screen.query_one("#lib-badge", Static)
        await wait_for(pilot, lambda: "play it slow" in str(badge.content), "the notes shown")
        await pilot.press("n")
        await pilot.pause()
        app.screen.query_one("#text-input", Input).value = ""
        await pilot.press("enter")
        await wait_for(pilot, lambda: stored(folkgen_home, tune_id).notes == "",  # type: ignore[attr-defined]
                       "the notes cleared")  # fmt: skip

        # Delete asks; u brings the tune back. The footer offers u only while there is a delete
        # to undo (it showed "u Undo" with nothing to undo).
        def offers_undo() -> bool:
            return any(a.binding.action == "undo" for a in app.screen.active_bindings.values())

        assert not offers_undo()
        victim = corpus_ids[2]
        table.cursor = next(i for i, r in enumerate(table.rows) if r.id == victim)
        await pilot.press("x")
        await pilot.pause()
        await pilot.press("y")
        await wait_for(pilot, lambda: stored(folkgen_home, victim) is None, "the delete")
        assert len(table.rows) == 3 and victim not in [r.id for r in table.rows]
        assert offers_undo()
        await pilot.press("u")
        await wait_for(pilot, lambda: len(table.rows) == 4, "the undo")
        assert stored(folkgen_home, victim) is not None
        assert not offers_undo()

        # Export the favourites: one .abc in the tunes folder, named in a notice.
        await pilot.press("E")
        await wait_for(pilot, lambda: any("Exported" in m for m, _ in notices), "the export")
        (exported,) = (folkgen_home / "tunes").glob("tunebook-*.abc")
        said = next(m for m, _ in notices if "Exported" in m)
        assert exported.name in said and "favourite tune" in said and "(s)" not in said, said
        assert "T:Seed Seven" in exported.read_text(encoding="utf-8")

        # Open in Generate: the same model, seed and settings give back the identical text.
        table.cursor = next(i for i, r in enumerate(table.rows) if r.id == tune_id)
        before = len(app.history)
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(app.history) == before + 1, "the tune again")
        assert app.screen is generate
        again = app.history[-1]
        assert again.seed == 7 and again.text == record.text
        # Its settings stay in the fields for the next tunes: said.
        assert any(m.startswith("The settings are Seed Seven's: seed 7, temperature 1.0 (n:")
                   for m, _ in notices), notices  # fmt: skip

        # That tune is in the session history (h), and k keeps it in the tunebook.
        await wait_for(pilot, lambda: again.library_id is not None, "its history entry")
        await pilot.press("l")
        assert "h History" in app.screen.query_one(StudioFooter).render().plain
        await pilot.press("h")
        await wait_for(pilot, lambda: [r.id for r in table.rows] == [again.library_id], "history")
        await pilot.pause()
        footer = app.screen.query_one(StudioFooter).render().plain
        assert "h Tunebook" in footer and "History" not in footer  # h says where it goes now
        await pilot.press("space", "E")  # the history's own tune: the notice says so
        await wait_for(pilot, lambda: any("history tune" in m for m, _ in notices), "export")
        await pilot.press("space")
        # It is the tune it was made again from (the same model, seed and notes), retitled
        # Seed Seven since: kept, it goes into that entry (it went in beside it, Untitled).
        await pilot.press("k")
        await wait_for(pilot, lambda: stored(folkgen_home, again.library_id or 0) is None, "kept")
        assert stored(folkgen_home, tune_id).title == "Seed Seven"  # type: ignore[attr-defined]
        assert table.rows == []
        assert not [n for n in notices if n[1] == "error"], notices

        # A save keeps the tune it was asked for, though another is shown when it ends.
        _, second = await generate_tune(pilot, {"seed": "8", "max-chars": "150"})
        await wait_for(pilot, lambda: second.library_id is not None, "its history entry")
        assert generate.shown is second
        generate.action_save()
        generate.shown = record  # the first tune picked in the session list meanwhile
        second_id = second.library_id
        await wait_for(pilot, lambda: getattr(stored(folkgen_home, second_id or 0), "in_tunebook",
                                              False), "the second tune kept", timeout=30)  # fmt: skip
        assert second.saved and not set(second.saved) & set(record.saved)
        # The same tune again (its seed, its settings), saved again: the tunebook holds it once,
        # its files added to the entry.
        _, third = await generate_tune(pilot, {"seed": "8", "max-chars": "150"})
        assert third.text == second.text and third is not second
        await wait_for(pilot, lambda: third.library_id is not None, "its history entry")
        generate.action_save()
        await wait_for(pilot, lambda: third.library_id == second_id, "the tune merged", timeout=30)
        again = stored(folkgen_home, second_id or 0)
        assert set(third.saved) <= set(again.files) and set(second.saved) <= set(again.files)  # type: ignore[attr-defined]

        # A tune made without the grammar (generate --no-grammar) opens with a warning: the app
        # samples with it, so the same seed makes another tune.
        # (Titled apart: the tunebook holds the seed-7 tune already, and would take it as that.)
        x_line, rest = record.text.split("\n", 1)
        plain_text_ = f"{x_line}\nT:Plain\n{rest}"
        with Library.open(folkgen_home / LIBRARY_FILE) as library:
            plain = library.add(plain_text_, model_name="tiny.pt", model_hash=model_hash(model),
                                seed=7, temperature=1.0, grammar=False, in_tunebook=True)  # fmt: skip
        await pilot.press("l")
        library_screen = app.screen
        assert isinstance(library_screen, LibraryScreen) and library_screen.history
        await pilot.press("h")  # from the history (k above) back to the tunebook
        lib_table = library_screen.query_one(TuneTable)
        await wait_for(pilot, lambda: any(r.id == plain for r in lib_table.rows), "the tune")
        lib_table.cursor = next(i for i, r in enumerate(lib_table.rows) if r.id == plain)
        await pilot.press("enter")
        await wait_for(pilot, lambda: any("without the grammar" in m for m, _ in notices),
                       "the warning")  # fmt: skip

        # ? lists the Library's keys (and the Dataset's Tunes tab moved to u).
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = plain_text(app.screen.query_one("#help-text", Static).content, width=88)
        lines = [line.rstrip() for line in text.splitlines()]
        library = "\n".join(lines[lines.index("Library") :])
        for key, words in (("1-5", "Rate"), ("f", "favourite"), ("/", "Filter"), ("s", "Sort"),
                           ("enter / o", "Open in Generate"), ("x / delete", "Delete"),
                           ("u", "Bring back"), ("E", "Export"), ("v", "sheet music"),
                           ("p", "Play"), ("e", "title"), ("h", "history"), ("k", "Keep")):  # fmt: skip
            assert any(line.lstrip().startswith(key) and words in line
                       for line in library.splitlines()), (key, library)  # fmt: skip
        dataset = "\n".join(lines[lines.index("Dataset") : lines.index("Train")])
        assert any(line.startswith("u ") and "tunes" in line for line in dataset.splitlines())


async def test_a_narrow_window_the_focus_after_a_dialog_and_a_filter_typed(folkgen_home: Path) -> None:
    """In 80 columns the table leaves the tune beside it room to be read (its width was fixed at
    64, leaving the ABC 12 columns). The screen's reload after a dialog (rename, delete) must
    not take the table's focus: a reload flag named `loading` was Textual's reactive, which
    greyed the screen out and left the arrows scrolling the ABC beside the table."""
    seed_tunebook(folkgen_home, 40)
    app = FolkgenApp(autoload_model=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_ready(pilot)
        await pilot.press("l")
        screen = app.screen
        assert isinstance(screen, LibraryScreen)
        table = screen.query_one(TuneTable)
        await wait_for(pilot, lambda: len(table.rows) == 40, "the tunes")
        assert screen.query_one("#lib-side").size.width >= 30
        assert screen.query_one("#lib-abc").size.width >= 26
        header = table.render_line(0).text
        assert "Title" in header and "Key" in header and "Stars" in header, header
        reloads = screen._reloads
        await pilot.press("down", "e")
        await wait_for(pilot, lambda: app.screen is not screen, "the title dialog")
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen._reloads > reloads and not screen.rows_loading,
                       "the reload on coming back")  # fmt: skip
        await pilot.pause(0.05)
        assert screen.focused is table
        await pilot.press("down")
        assert table.cursor == 2

        # A filter typed key by key: each keystroke narrows the rows shown before (a longer
        # filter keeps a subset), across spaces and new words; a deletion searches the whole
        # tunebook again. At every step the rows are core.library.filter_rows's, as `folkgen
        # library list --filter` gives them; the tune beside follows the top row once typing
        # pauses.
        everything = list(screen.all_rows)
        await pilot.press("slash")
        typed, counts = "", []
        for key in [*"d maj x:1", "backspace", "backspace", "2", *["backspace"] * 5]:
            await pilot.press({" ": "space", ":": "colon"}.get(key, key))
            typed = typed[:-1] if key == "backspace" else typed + key
            assert screen.filter_text == typed
            assert list(table.rows) == filter_rows(everything, typed), typed
            counts.append(len(table.rows))
        assert typed == "d m" and any(0 < n < 40 for n in counts), counts
        top = table.rows[0].id
        await wait_for(pilot, lambda: getattr(screen.tune, "id", None) == top, "the top tune")

        # Stars set while the tune under the cursor is still being read show at once and stay:
        # the read (queued first, on the tunebook's one thread) returns the old rating.
        await pilot.press("escape")
        held = threading.Event()
        app.tunebook.call(lambda library: held.wait(5))  # the tunebook thread, busy a moment
        last = table.rows[-1].id
        assert last not in screen._details  # not read before: it is read once the cursor rests
        await pilot.press("end")
        await wait_for(pilot, lambda: screen._fetch_timer is None, "the read queued")
        await pilot.press("3")  # queued after the read, behind the wait
        held.set()
        rated = table.current
        assert rated is not None and rated.rating == 3
        await wait_for(pilot, lambda: getattr(screen.tune, "id", None) == rated.id, "the tune")
        await wait_for(pilot, lambda: stored(folkgen_home, rated.id).rating == 3, "stored")  # type: ignore[attr-defined]
        await pilot.pause(0.2)
        assert screen.tune is not None and screen.tune.rating == 3
        assert stars(3) in str(screen.query_one("#lib-badge", Static).render())


async def listed(
    pilot: Pilot[Any], app: FolkgenApp, count: int
) -> tuple[LibraryScreen, TuneTable[Any]]:
    """The Library, shown by its key once the app is ready, listing its `count` tunes."""
    await wait_ready(pilot)
    await pilot.press("l")
    screen = app.screen
    assert isinstance(screen, LibraryScreen)
    table = screen.query_one(TuneTable)
    await wait_for(pilot, lambda: len(table.rows) == count and not screen.rows_loading, "the tunes")
    return screen, table


async def test_keeping_history_tunes_in_turn_goes_down_the_list(folkgen_home: Path) -> None:
    """k on a history tune: the cursor stays in its place, on the next (it went back to the
    first), and a tune the tunebook holds already is said so without files it did not have."""
    with Library.open(folkgen_home / LIBRARY_FILE) as library:
        tunes = load_corpus().tunes[:4]
        for tune in tunes:
            library.add(tune, in_tunebook=False)  # the history, newest first: tunes[3] at the top
        library.add(tunes[0], source="imported", in_tunebook=True)  # held already
    app = FolkgenApp(autoload_model=False)
    async with app.run_test(size=SIZE) as pilot:
        screen, table = await listed(pilot, app, 1)
        notices = record_notices(app)
        await pilot.press("h")
        await wait_for(pilot, lambda: len(table.rows) == 4, "the history")
        ids = [row.id for row in table.rows]
        await pilot.press("down", "k")  # the second
        await wait_for(pilot, lambda: len(table.rows) == 3, "the keep")
        assert table.rows[table.cursor].id == ids[2]
        await pilot.press("end", "k")  # the last, which the tunebook holds: the one before
        await wait_for(pilot, lambda: len(table.rows) == 2, "the second keep")
        assert table.rows[table.cursor].id == ids[2]
        await wait_for(pilot, lambda: len(notices) == 2, "the notices")
        assert notices[1][0].endswith("is in the tunebook already: this entry went into it.")


async def test_a_tune_another_process_deletes_leaves_the_cursor_beside_it(
    monkeypatch: pytest.MonkeyPatch, folkgen_home: Path
) -> None:
    """`folkgen library delete` in another terminal on the tune under the Library's cursor: the
    cursor goes to the next tune (as after the screen's own delete), or the one before at the
    end of the list; it went to the top of the list."""
    import folkgen_tui.screens.library as library_module

    monkeypatch.setattr(library_module, "WATCH_EVERY", 0.2)
    seed_tunebook(folkgen_home, 4)
    app = FolkgenApp(autoload_model=False)
    async with app.run_test(size=SIZE) as pilot:
        screen, table = await listed(pilot, app, 4)
        await pilot.press("down", "down")
        ids = [row.id for row in table.rows]
        for gone, then in ((ids[2], ids[3]), (ids[3], ids[1])):  # mid-list, then the last
            with Library.open(folkgen_home / LIBRARY_FILE) as library:
                library.delete(gone)
            await wait_for(pilot, lambda g=gone: all(r.id != g for r in table.rows), "the delete")
            assert table.rows[table.cursor].id == then


async def test_tunes_another_process_writes_come_in_while_the_library_is_shown(
    monkeypatch: pytest.MonkeyPatch, folkgen_home: Path
) -> None:
    """`folkgen library import` or `generate --save` in another terminal while the Library is
    shown: the new tune comes into the list (it came only once the screen was left and shown
    again), the cursor staying on its tune. The app's own writes (a rating) and other processes'
    writes while the screen is hidden set off no reload of their own."""
    import folkgen_tui.screens.library as library_module

    monkeypatch.setattr(library_module, "WATCH_EVERY", 0.2)
    first = seed_tunebook(folkgen_home, 3)
    app = FolkgenApp(autoload_model=False)
    async with app.run_test(size=SIZE) as pilot:
        screen, table = await listed(pilot, app, 3)
        await pilot.press("down", "3")  # the second newest, rated by the app
        on = table.rows[table.cursor].id
        await wait_for(pilot, lambda: getattr(stored(folkgen_home, on), "rating", 0) == 3,
                       "the rating written")  # fmt: skip
        reloads = screen._reloads
        await pilot.pause(0.8)  # four looks
        assert screen._reloads == reloads  # its own write: nothing to read again

        tune = load_corpus().tunes[10]
        with Library.open(folkgen_home / LIBRARY_FILE) as library:
            added = library.add(tune, source="imported", in_tunebook=True)
        await wait_for(pilot, lambda: any(r.id == added for r in table.rows), "the new tune")
        assert len(table.rows) == 4 and table.rows[table.cursor].id == on

        # A reload under way while the cursor moves keeps the row the cursor is on when the rows
        # arrive (it went back to the one it was on when they were asked for).
        gate = threading.Event()
        screen.tunebook.call(lambda library: gate.wait(10))  # the tunebook's thread held
        screen.reload()
        await pilot.press("down")
        moved_to = table.rows[table.cursor].id
        assert moved_to != on
        gate.set()
        await wait_for(pilot, lambda: not screen.rows_loading, "the reload")
        assert table.rows[table.cursor].id == moved_to
        # An edit of the app's made while such a reload is under way is not undone by its rows
        # (read before the edit's write; the app's own writes set off no reload of their own).
        gate.clear()
        screen.tunebook.call(lambda library: gate.wait(10))
        screen.reload()
        await pilot.press("5", "f")
        gate.set()
        await wait_for(pilot, lambda: getattr(stored(folkgen_home, moved_to), "favourite", False),
                       "the edits written")  # fmt: skip
        await wait_for(pilot, lambda: not screen.rows_loading, "the reload")
        row = table.rows[table.cursor]
        assert row.id == moved_to and row.rating == 5 and row.favourite

        await pilot.press("d")  # hidden: another write is read when the screen comes back
        reloads = screen._reloads
        with Library.open(folkgen_home / LIBRARY_FILE) as library:
            library.delete(first[0])
        await pilot.pause(0.8)
        assert screen._reloads == reloads
        await pilot.press("l")
        await wait_for(pilot, lambda: len(table.rows) == 3 and not screen.rows_loading,
                       "the list without the deleted tune")  # fmt: skip
        assert first[0] not in {r.id for r in table.rows}
