"""The studio driven by keys with Textual's pilot: real corpus, real training, real sampling,
real abc2midi / timidity, playback into ALSA's null device."""

from __future__ import annotations

import gc
import json
import re
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from textual.events import Paste
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Log, OptionList, ProgressBar, Select, Static

import core.judge
import folkgen_tui.app
import folkgen_tui.workers
from core.corpus import Credit, credited
from core.judge import Judgement, judge
from folkgen_tui.app import FolkgenApp
from folkgen_tui.screens.dataset import DatasetScreen
from folkgen_tui.screens.generate import GenerateScreen
from folkgen_tui.screens.help import HelpScreen
from folkgen_tui.screens.models import ModelsScreen
from folkgen_tui.screens.train import TrainScreen
from folkgen_tui.widgets import AbcView, BarChart, LossChart, VocabGrid
from folkgen_tui.widgets.footer import StudioFooter
from folkgen_tui.widgets.piano_roll import PianoRoll
from folkgen_tui.widgets.stat_cards import StatCards
from folkgen_tui.widgets.tab_bar import TabBar
from folkgen_tui.widgets.tune_table import CorpusRow, TuneTable
from tests.app_helpers import (
    plain_text,
    play_in_real_time,
    record_notices,
    run_from_palette,
    set_fields,
    show_screen,
    type_into,
    wait_for,
    wait_ready,
)

pytestmark = pytest.mark.asyncio
SIZE = (100, 32)


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The recipe of conftest's tiny_checkpoint (250 real steps on the Irish corpus), trained on
    one thread for the reason given in one_torch_thread."""
    import torch

    from core.corpus import load_corpus
    from core.presets import ModelConfig, TrainConfig
    from core.train import train

    out = tmp_path_factory.mktemp("app-model") / "tiny.pt"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(
            load_corpus(),
            ModelConfig(embedding_dim=32, hidden_size=128),
            TrainConfig(
                seq_length=64, batch_size=32, learning_rate=1e-2, steps=250, schedule="cosine",
                warmup_steps=10, grad_clip=1.0, eval_every=0, checkpoint_every=0,
            ),
            checkpoint_path=out,
        )  # fmt: skip
    finally:
        torch.set_num_threads(before)
    return out



def text_of(screen: object, selector: str) -> str:
    return str(screen.query_one(selector, Static).content)  # type: ignore[attr-defined]


def shown_step(screen: object) -> int:
    """The step the Train screen's state line shows (-1 when it shows none)."""
    found = re.search(r"step (\d+)", text_of(screen, "#train-state"))
    return int(found.group(1)) if found else -1


async def test_dataset_screen_shows_the_corpus_and_loads_another(small_corpus_file: Path) -> None:
    app = FolkgenApp(autoload_model=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.stats is not None, "the corpus")
        screen = app.screen
        assert isinstance(screen, DatasetScreen)
        cards = dict((caption, value) for value, caption in screen.query_one(StatCards).cards)
        assert cards["tunes"] == "817" and cards["characters"] == "200,679"
        assert cards["vocabulary"] == "83"
        meters = dict(screen.query_one("#meters-chart", BarChart).rows)
        assert meters["C"] == 400 and meters["6/8"] == 228
        assert dict(screen.query_one("#keys-chart", BarChart).rows)["G major"] == 249
        lengths = screen.query_one("#length-chart", BarChart).rows
        assert sum(n for _, n in lengths) == 817

        await pilot.press("v")
        grid = screen.query_one(VocabGrid)
        assert len(grid.entries) == 83 and sum(n for _, n in grid.entries) == 200_679

        await pilot.press("u")
        table = screen.query_one("#tune-table", TuneTable)
        assert len(table.rows) == 817 and app.focused is table
        await pilot.press("down", "down")
        assert screen.query_one(AbcView).text == app.corpus.tunes[2]  # type: ignore[union-attr]
        assert "T:Belfast" in screen.query_one(AbcView).text

        # Rows are formatted as they are drawn, not all when listed (Textual's DataTable measured
        # every row: 20,000 tunes held the app for seconds). Counted over the next corpus.
        drawn: list[int] = []

        def cells(row: CorpusRow, marked: bool) -> tuple[str, ...]:
            drawn.append(row.id)
            return CorpusRow.cells(row, marked)

        table.table_layout = replace(table.table_layout, cells=cells)

        # Open another corpus from the dialog, typing its path.
        await pilot.press("o")
        await pilot.pause()
        dialog_input = app.screen.query_one("#path-input", Input)
        dialog_input.value = str(small_corpus_file.parent) + "/"
        await pilot.press(*small_corpus_file.name, "enter")
        await wait_for(
            pilot, lambda: app.stats is not None and app.stats.tunes == 80, "the new corpus"
        )
        assert len(table.rows) == 80
        await pilot.pause()
        visible = table.scrollable_content_region.height - 1  # less the header line
        assert 0 < visible < 80 and set(drawn) == set(range(visible)), sorted(set(drawn))
        assert screen.query_one(StatCards).cards[0] == ("80", "tunes")

        # A path that is not a corpus is a notice; the loaded corpus stays.
        notices = record_notices(app)
        await pilot.press("o")
        await pilot.pause()
        app.screen.query_one("#path-input", Input).value = "/no/such/"
        await pilot.press(*"tunes.abc", "enter")
        await wait_for(pilot, lambda: notices, "the error notice")
        assert notices[0][1] == "error" and "no such file" in notices[0][0]
        assert app.stats.tunes == 80

        # An empty path opens the corpus the app starts with again.
        await pilot.press("o")
        await pilot.pause()
        app.screen.query_one("#path-input", Input).value = ""
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.stats.tunes == 817, "the default corpus again")

        # A folder with a file that is no text: named, with why (it said "1 file(s) skipped").
        # One in Latin-1 is read (it was refused whole for its é).
        folder = small_corpus_file.parent / "mixed"
        folder.mkdir(exist_ok=True)
        shutil.copy(small_corpus_file, folder / "good.abc")
        (folder / "latin1.abc").write_bytes(b"X:2\nT:Caf\xe9\nK:G\nGAB|\n")
        (folder / "tune.abc").write_bytes(b"MThd\x00\x00\x00\x06\x00\x01")  # a MIDI file
        notices.clear()
        app.load_corpus(folder)
        await wait_for(pilot, lambda: app.stats.tunes == 81, "the folder")
        assert app.corpus is not None and "X:2\nT:Café\nK:G\nGAB|" in app.corpus.tunes
        await wait_for(pilot, lambda: any(s == "warning" for _, s in notices), "the warning")
        assert any("tune.abc" in m and "binary" in m and s == "warning" for m, s in notices)
        assert not any("latin1.abc" in m for m, _ in notices), notices


async def test_the_app_opens_the_corpus_it_had_open_last(
    small_corpus_file: Path, tmp_path: Path
) -> None:
    """A collection of one's own came back as the Irish corpus at the next start, beside the
    model trained on it. Now the corpus open last is opened again (by its absolute path), unless
    --corpus names another; gone since, the default comes, and a warning says why."""
    mine = tmp_path / "mine.abc"
    shutil.copy(small_corpus_file, mine)
    app = FolkgenApp(autoload_model=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.stats is not None, "the default corpus")
        app.load_corpus(mine)
        await wait_for(pilot, lambda: app.stats is not None and app.stats.tunes == 80, "mine")
    app = FolkgenApp(autoload_model=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.stats is not None, "the corpus")
        assert app.corpus_path == mine and app.stats is not None and app.stats.tunes == 80
    app = FolkgenApp(corpus_path=small_corpus_file, autoload_model=False)  # named: it wins
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.stats is not None, "the corpus")
        assert app.corpus_path == small_corpus_file
    mine.unlink()
    shutil.copy(small_corpus_file, tmp_path / "other.abc")
    app = FolkgenApp(corpus_path=tmp_path / "other.abc", autoload_model=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.stats is not None, "other")
    (tmp_path / "other.abc").unlink()  # the one open last, gone
    app = FolkgenApp(autoload_model=False)
    notices = record_notices(app)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.stats is not None, "the default corpus")
        assert app.stats is not None and app.stats.tunes == 817 and app.corpus_error is None
        assert any("other.abc" in m and s == "warning" for m, s in notices), notices
    # Not forgotten (a folder on a drive not mounted yet): back, it is opened again.
    shutil.copy(small_corpus_file, tmp_path / "other.abc")
    app = FolkgenApp(autoload_model=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.stats is not None, "the corpus")
        assert app.stats is not None and app.stats.tunes == 80


async def show_train(pilot: Pilot[Any], app: FolkgenApp) -> TrainScreen:
    """The Train screen, shown by its key once the app is ready."""
    await wait_ready(pilot)
    return await show_screen(pilot, "t", TrainScreen)


async def show_generate(pilot: Pilot[Any], app: FolkgenApp) -> GenerateScreen:
    """The Generate screen, shown by its key once the app is ready with its model."""
    await wait_ready(pilot, model=True)
    return await show_screen(pilot, "g", GenerateScreen)


async def test_the_tune_list_filters_as_one_types_and_keeps_the_corpus_numbers() -> None:
    """/ filters the Dataset's tune list as the Library's (core.search: every word, any case,
    in the ABC); each row keeps its number in the corpus, the tune shown and played is the row's,
    and escape lists them all again with the cursor on the same tune."""
    from core.search import matching

    app = FolkgenApp(autoload_model=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.stats is not None, "the corpus")
        screen = app.screen
        assert isinstance(screen, DatasetScreen) and app.corpus is not None
        tunes = app.corpus.tunes
        await wait_for(pilot, lambda: bool(screen.query("#tune-table")), "the tune list")
        await pilot.press("slash")  # from the Summary tab: the Tunes tab, the filter focused
        table = screen.query_one("#tune-table", TuneTable)
        field = screen.query_one("#tune-filter", Input)
        assert app.focused is field and table.display
        keys = ["J", "I", "G", "space", "6", "slash", "8"]
        await pilot.press(*keys)
        await pilot.pause()
        kept = matching(range(len(tunes)), "jig 6/8", lambda i: tunes[i].lower())
        assert 1 < len(kept) < len(tunes) and [row.id for row in table.rows] == kept
        bar = screen.query_one(TabBar).render().plain  # how many the filter keeps, of how many
        assert f"Tunes ({len(kept)} of {len(tunes)})" in bar, bar
        assert all("jig" in tunes[i].lower() and "6/8" in tunes[i] for i in kept)
        await pilot.press("enter", "down")  # the keys are the list's again; the filter stays
        assert app.focused is table and table.cursor == 1
        await pilot.pause()
        assert screen.query_one(AbcView).text == tunes[kept[1]]
        assert screen.selected_tune() == tunes[kept[1]]
        assert [row.cells()[0] for row in table.rows[:2]] == [str(kept[0] + 1), str(kept[1] + 1)]

        await pilot.press("slash", *"zzqq")  # nothing matches: the list says so
        await pilot.pause()
        assert not table.rows and "no tune matches" in table.empty_text
        assert screen.query_one(AbcView).text == ""  # no tune shown (the last one stayed)

        await pilot.press("escape")  # cleared: every tune again
        await pilot.pause()
        assert len(table.rows) == len(tunes) and screen.filter_text == ""
        assert "Tunes (" not in screen.query_one(TabBar).render().plain
        assert not field.display and app.focused is table
        await pilot.press("slash")
        await pilot.press(*keys, "enter", "down", "escape")
        await pilot.pause()
        assert len(table.rows) == len(tunes) and table.cursor == kept[1]
        await pilot.press("slash", "k", "down")  # down goes on to the list, as enter does
        await pilot.pause()
        assert app.focused is table and field.value == "k"


async def test_training_updates_the_screen_and_pauses_resumes_and_stops(
    small_corpus_file: Path, folkgen_home: Path, one_torch_thread: None
) -> None:
    app = FolkgenApp(small_corpus_file, autoload_model=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await show_train(pilot, app)
        # A smaller model than "tiny", and more steps than we will wait for (two fields typed,
        # the rest set directly: pilot key presses are slow).
        await type_into(pilot, "#f-hidden_size", "64")
        await type_into(pilot, "#f-steps", "100000")
        set_fields(screen, embedding_dim="16", batch_size="8", seq_length="32", eval_every="25",
                   checkpoint_every="0")  # fmt: skip
        assert "(edited)" in text_of(screen, "#preset-about")
        await pilot.press("s")
        job = screen.job
        assert job is not None and app.training is job
        await wait_for(pilot, lambda: job.last_event and job.last_event.step >= 30, "30 steps")
        await wait_for(pilot, lambda: len(screen.query_one("#loss-raw", LossChart).data or []) >= 5,
                       "the sparkline")  # fmt: skip
        assert screen.query_one("#loss-smooth", LossChart).data
        # job.last_event is set on the engine's reader thread before its TrainProgress is posted:
        # the screen shows that step once the message has been handled.
        await wait_for(pilot, lambda: shown_step(screen) >= 30, "the state to show step 30")
        state = text_of(screen, "#train-state")
        assert state.startswith("Training: step ") and state.endswith("/100000"), state
        assert int(state.split()[2].split("/")[0]) >= 30
        assert "training" in app.status_line

        footer = screen.query_one(StudioFooter)
        await pilot.click(StudioFooter, offset=(footer.render().plain.index("Pause"), 0))
        await wait_for(pilot, lambda: job.last_event.kind == "paused", "the pause (clicked)")
        paused_at = job.last_event.step
        # As above: the paused event's message is handled after last_event is set. (A step's
        # message handled meanwhile shows "Paused at" an earlier step.)
        await wait_for(pilot, lambda: text_of(screen, "#train-state").startswith(
            f"Paused at step {paused_at}/"), "the state to say where it paused")  # fmt: skip
        await pilot.pause(0.3)
        assert job.last_event.step == paused_at
        # The status line beside the screen keys says that a run is under way: its step on the
        # other screens, not on Train's, whose panel shows it (each report redrew the recipe
        # too). Paused, no report comes: the switch itself shows it.
        assert "training (paused)" in app.status_line and "/100000" not in app.status_line
        await pilot.press("g")
        step = f"training {paused_at}/100000 (paused)"
        await wait_for(pilot, lambda: step in app.status_line, "the step in the status line")
        await pilot.press("t")
        await wait_for(pilot, lambda: "/100000" not in app.status_line, "the step left out again")
        assert "training (paused)" in app.status_line and app.screen is screen

        await pilot.press("p")  # resume
        await wait_for(pilot, lambda: job.last_event.step > paused_at + 5, "steps after resuming")
        await pilot.press("x")
        await wait_for(pilot, lambda: not job.running, "the stop", timeout=30)
        await wait_for(pilot, lambda: text_of(screen, "#train-state").startswith("Stopped at step"),
                       "the state to say the run finished")  # fmt: skip
        # What s does next, and how to go on with this run ("train again" read as the latter).
        assert text_of(screen, "#train-state").endswith(". s: a new model; Models, r: go on with it.")
        log = "\n".join(screen.query_one("#train-log").lines)  # type: ignore[attr-defined]
        assert "stopped after" in log and "validation" in log
        # Which file each save wrote, said in a line the panel's width does not cut.
        assert "step 25: best model so far saved" in log, log
        saved = list((folkgen_home / "checkpoints").glob("*.pt"))
        assert any(".best." not in p.name for p in saved)
        # The new checkpoint becomes the model to generate with.
        await wait_for(pilot, lambda: app.model is not None, "the trained model")
        assert app.model.path in saved  # type: ignore[union-attr]


async def test_a_run_that_cannot_start_says_so_and_shows_no_earlier_numbers(
    small_corpus_file: Path, tiny_checkpoint: Path, tmp_path: Path, folkgen_home: Path,
    one_torch_thread: None,
) -> None:
    """Resuming a model for fewer steps than it has done is refused by the engine. The state
    said "Finished at step 0" beside the last run's numbers; the reason was only in a notice."""
    app = FolkgenApp(small_corpus_file, autoload_model=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await show_train(pilot, app)
        screen.request_resume(tiny_checkpoint)
        await wait_for(pilot, lambda: screen.resume_checkpoint is not None, "the resume")
        set_fields(screen, steps="1")
        await pilot.press("s", "y")  # (yes, train it on this corpus)
        job = screen.job
        assert job is not None
        await wait_for(pilot, lambda: not job.running, "the refusal", timeout=30)
        await wait_for(pilot, lambda: text_of(screen, "#train-state").startswith("Could not start: "),
                       "the state to say why")  # fmt: skip
        assert "already at step" in text_of(screen, "#train-state")
        numbers = str(screen.query_one("#train-numbers", Static).content).split()
        assert numbers[:2] == ["step", "–"], numbers
        # The log's lines wrapped at its edge (Log cuts them: the reason was cut mid-word).
        log = screen.query_one("#train-log", Log)
        assert len(log.lines) > 2 and all(
            len(line) < log.scrollable_content_region.width for line in log.lines
        ), log.lines
        assert "already at step" in " ".join(log.lines) and log.lines[-1].startswith("  ")
        # Nor the checkpoint's steps on the bar (it showed them); n, a new model, is ready.
        assert screen.query_one("#train-progress", ProgressBar).percentage == 0.0
        await pilot.press("n")
        await pilot.pause()
        assert text_of(screen, "#train-state") == "Ready to train on 80 tunes: press s."


async def test_a_time_budget_fills_the_progress_bar_by_the_time_spent(
    small_corpus_file: Path, folkgen_home: Path, one_torch_thread: None
) -> None:
    """With minutes and no steps (left blank, as Minutes is when off: it said "Steps: '' is not
    a number") the bar had no total: it pulsed, and went on after the run."""
    app = FolkgenApp(small_corpus_file, autoload_model=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await show_train(pilot, app)
        set_fields(screen, hidden_size="32", steps="", minutes="0.03", eval_every="0",
                   checkpoint_every="0")  # fmt: skip
        await pilot.press("s")
        job = screen.job
        assert job is not None
        bar = screen.query_one("#train-progress", ProgressBar)
        assert bar.total == pytest.approx(1.8)
        await wait_for(pilot, lambda: not job.running, "the run's end", timeout=60)
        await pilot.pause()
        assert bar.percentage is not None and bar.percentage > 0.5, bar.percentage


async def test_a_run_has_ended_when_its_finished_message_is_posted(small_corpus_file: Path) -> None:
    """The screen's handler for TrainFinished reads `job.running` to say how the run stands. The
    message is posted from the engine's reader thread, so the job must have ended before it is
    posted: the other way round, a handler that ran first showed "Stopping…" for good."""
    from core.corpus import load_corpus
    from core.engine import Failed
    from core.presets import ModelConfig, TrainConfig
    from folkgen_tui.workers import TrainFinished, TrainJob

    class Target:
        def __init__(self) -> None:
            self.running_when_posted: list[bool] = []

        def post_message(self, message: object) -> bool:
            if isinstance(message, TrainFinished):
                self.running_when_posted.append(job.running)
            return True

    target = Target()
    job = TrainJob(target, load_corpus(small_corpus_file), ModelConfig(), TrainConfig(),  # type: ignore[arg-type]
                   small_corpus_file.with_suffix(".pt"))  # fmt: skip
    job.engine = object()  # type: ignore[assignment]  # started: an engine it never talks to
    assert job.running
    job._on_reply(Failed("the engine ended"))
    assert target.running_when_posted == [False]


async def test_train_screen_focuses_no_field_when_shown(
    small_corpus_file: Path, folkgen_home: Path
) -> None:
    """Shown, first or again, the Train screen focuses nothing (as escape leaves it): letter
    keys are commands, and tab goes to the first field. (Its recipe's scroll took the focus,
    and each show restyled the whole form under it: ~25 ms, issue 14.)"""
    app = FolkgenApp(small_corpus_file, autoload_model=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await show_train(pilot, app)
        await pilot.pause()
        assert app.focused is None
        await pilot.press("tab")
        assert app.focused is screen.query_one("#preset")
        screen.query_one("#f-steps", Input).focus()
        await pilot.pause()
        await pilot.press("escape")  # leaves the text field
        assert app.focused is None
        for key in ("g", "t"):
            await pilot.press(key)
            await pilot.pause()
        assert app.screen is screen and app.focused is None


async def test_no_next_run_process_is_started_while_a_run_trains(
    small_corpus_file: Path, folkgen_home: Path, one_torch_thread: None
) -> None:
    """The next run's process (~300 MB, forked when Train is shown) waits while a run trains:
    its fork and set-up took the cores that keys are drawn on (issue 14). It starts once the
    run has ended, Train being shown."""
    app = FolkgenApp(small_corpus_file, autoload_model=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await show_train(pilot, app)
        await wait_for(pilot, lambda: app._spare_engine is not None, "the next run's process")
        set_fields(screen, hidden_size="32", embedding_dim="8", steps="100000", batch_size="4",
                   seq_length="16", eval_every="0", checkpoint_every="0")  # fmt: skip
        await pilot.press("s")
        job = screen.job
        assert job is not None
        await wait_for(pilot, lambda: job.last_event is not None, "the run's first step")
        assert app._spare_engine is None  # the run took it
        for key in ("g", "t"):
            await pilot.press(key)
        await pilot.pause(1.0)  # past the delay a show starts one after
        assert app._spare_engine is None and job.running
        await pilot.press("x")
        await wait_for(pilot, lambda: not job.running, "the stop", timeout=30)
        await wait_for(pilot, lambda: app._spare_engine is not None, "the next run's process")


async def test_the_session_list_cuts_titles_to_its_width_as_it_changes(
    trained_model: Path,
) -> None:
    """A long title is cut to the session list's width, and shown longer once the terminal
    (and the list with it) widens; narrower again, cut again."""
    title = "The Very Long Title Of A Reel That Goes On And On Past Any Narrow List"
    app = FolkgenApp(model_path=trained_model)
    async with app.run_test(size=SIZE) as pilot:
        screen = await show_generate(pilot, app)
        screen.query_one("#prompt", Input).value = f"X:1\\nT:{title}\\n"
        await type_into(pilot, "#seed", "3")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.shown is not None, "the tune")
        record = screen.shown
        assert record is not None  # its check relabels it: wait for that before resizing
        await wait_for(pilot, lambda: record.check is not None or record.check_error, "the check")
        history = screen.query_one("#history", OptionList)

        def shown_title() -> str:
            return str(history.get_option_at_index(0).prompt).splitlines()[0][2:]

        narrow = shown_title()
        assert narrow.endswith("…") and title.startswith(narrow[:-1]), narrow
        await pilot.resize_terminal(200, SIZE[1])
        await wait_for(pilot, lambda: len(shown_title()) > len(narrow), "a longer title")
        wide = shown_title()
        assert title.startswith(wide.rstrip("…")) and history.size.width > 30
        await pilot.resize_terminal(*SIZE)
        await wait_for(pilot, lambda: shown_title() == narrow, "the title cut again")


async def test_generation_streams_checks_and_keeps_a_history(
    trained_model: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(folkgen_tui.workers, "CHUNK_INTERVAL", 0.002)
    streamed: list[str] = []  # the view's text after each piece
    append = AbcView.append

    def appended(view: AbcView, chunk: str) -> None:
        append(view, chunk)
        streamed.append(view.text)

    monkeypatch.setattr(AbcView, "append", appended)
    checked: list[str] = []  # the texts checked

    def judged(text: str, *args: Any) -> Judgement:
        checked.append(text)
        return judge(text, *args)

    monkeypatch.setattr(core.judge, "judge", judged)
    app = FolkgenApp(model_path=trained_model)
    async with app.run_test(size=SIZE) as pilot:
        screen = await show_generate(pilot, app)
        await type_into(pilot, "#seed", "7")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.shown is not None, "the tune")
        first = screen.shown
        assert first is not None and first.seed == 7
        assert screen.stream_chunks >= 3  # the text arrived in pieces while it was sampled
        view = screen.query_one("#gen-abc", AbcView)
        # Shown credited to its making, as saved, while it streams and after; not with the Z:
        # line the model wrote, which names a tune of the corpus.
        assert view.text == first.shared_abc and first.text.startswith("X:")
        assert [line for line in view.text.splitlines() if line.startswith("Z:")] == [
            f"Z:{first.credit.line}"
        ]
        assert len(streamed) >= 2 and all(first.shared_abc.startswith(t) for t in streamed)
        await wait_for(pilot, lambda: first.check is not None or first.check_error, "the check")
        assert checked == [first.shared_abc]  # the text shown: an error's line is its line
        badge = text_of(screen, "#badge")
        assert badge.startswith("✓" if first.check.valid else "✗"), badge
        music = judge(first.text, check=False).musical_verdict  # "16 bars · AABB · ends on G"
        assert " bars" in music and f"· {music}" in badge, (music, badge)
        if not first.check.valid and first.check.first_error.line:
            assert view.error is not None  # the first error's line and column are marked

        # The same seed gives the same tune; the temperature keys step by 0.1.
        await pilot.press("r")
        await wait_for(pilot, lambda: len(app.history) == 2, "the second tune")
        assert app.history[1].text == first.text and app.history[1].seed == 7
        await pilot.press("plus", "minus")
        assert screen.query_one("#temperature", Input).value == "1.0"  # as it starts
        await pilot.press("plus", "plus", "minus")
        assert screen.query_one("#temperature", Input).value == "1.1"
        await pilot.press("n")
        await wait_for(pilot, lambda: len(app.history) == 3, "the next tune")
        assert app.history[2].temperature == pytest.approx(1.1)
        assert screen.query_one("#history", OptionList).option_count == 3

        # Revisit the first tune from the session list.
        await wait_for(pilot, lambda: app.history[2].check is not None or app.history[2].check_error,
                       "the third check")  # fmt: skip
        screen.query_one("#history", OptionList).focus()
        await pilot.press("home", "enter")
        assert screen.shown is first and view.text == first.shared_abc

        # The quick pickers write the prompt.
        screen.query_one("#meter").focus()
        await pilot.press("enter", "down", "enter")  # the first meter after "any"
        await pilot.pause()
        prompt = screen.query_one("#prompt", Input).value
        assert prompt.startswith("X:1\\nM:") and prompt.endswith("\\n")
        # ... their own line of it: a prompt written by hand keeps its title, key and first bar.
        mine = "X:1\\nT:Mine\\nM:6/8\\nL:1/8\\nK:E Dorian\\n|:B|e2B"
        screen.query_one("#prompt", Input).value = mine
        await pilot.pause()  # the pickers show what it says (they kept their last choice)
        assert screen.query_one("#meter", Select).value == "6/8"
        assert screen.query_one("#key", Select).value == "E Dorian"
        assert screen.query_one("#title", Input).value == "Mine"
        # A \n typed in the title is no line break: it broke the header in two.
        screen.query_one("#title", Input).value = "Jig\\nM:6/8"
        await pilot.pause()
        assert "\\nT:Jig M:6/8\\n" in screen.query_one("#prompt", Input).value
        screen.query_one("#title", Input).value = "Mine"
        await pilot.pause()
        screen.query_one("#meter").focus()
        await pilot.press("enter", "down", "down", "enter")  # the second meter
        await pilot.pause()
        meter = screen.query_one("#meter", Select).value
        assert isinstance(meter, str) and meter != "6/8"
        assert screen.query_one("#prompt", Input).value == mine.replace("M:6/8", f"M:{meter}")
        assert app.focused is screen.query_one("#meter")
        await pilot.press("escape")  # leaves the picker, as it leaves a text field
        assert app.focused is screen.query_one("#gen-abc")
        written = screen.query_one("#prompt", Input).value
        screen.corpus_changed()  # another corpus's choices: the pickers reset, the prompt stays
        await pilot.pause()
        assert screen.query_one("#prompt", Input).value == written
        # A key with the metre left to "any": M: must come before K:, so the corpus's commonest
        # metre comes with it, in the prompt and in its picker (without M:, abc2midi counted
        # bars of 4/4 the model's did not fit).
        screen.query_one("#prompt", Input).value = "X:"
        screen.query_one("#key").focus()
        await pilot.press("enter", "down", "enter")  # the first key after "any"
        await pilot.pause()
        key, commonest = screen.query_one("#key", Select).value, "C"  # the Irish corpus: 400 of 817
        assert screen.query_one("#meter", Select).value == commonest
        assert screen.query_one("#prompt", Input).value == f"X:1\\nM:{commonest}\\nL:1/8\\nK:{key}\\n"
        # ... and "any" metre picked with a key set takes it again, saying why (it removed the
        # M: line, and the tune was read as 4/4).
        notices = record_notices(app)
        screen.query_one("#meter").focus()
        await pilot.press("enter", "home", "enter")  # "any"
        await pilot.pause()
        assert screen.query_one("#meter", Select).value == commonest
        assert screen.query_one("#prompt", Input).value == f"X:1\\nM:{commonest}\\nL:1/8\\nK:{key}\\n"
        assert any("M: before K:" in m for m, _ in notices)
        await pilot.press("escape")

        # A tune's header pasted in whole (Input kept its first line), its line breaks as \n.
        prompt = screen.query_one("#prompt", Input)
        prompt.value = ""
        prompt.focus()
        prompt.post_message(Paste("X:1\r\nT:Pasted Reel\nM:C\nL:1/8\nK:Bb\n"))
        await pilot.pause()
        assert prompt.value == "X:1\\nT:Pasted Reel\\nM:C\\nL:1/8\\nK:Bb\\n"
        assert screen.query_one("#title", Input).value == "Pasted Reel"
        # A prompt refused (a key the model's corpus lacks) leaves the tune shown as it was.
        assert screen.shown is first
        await pilot.press("enter")
        await wait_for(pilot, lambda: not screen.streaming, "the refusal")
        assert screen.shown is first and view.text == first.shared_abc
        assert text_of(screen, "#badge").startswith(("✓", "✗"))  # its verdict, not the intro
        # A key typed in another spelling shows in its picker ("K:Ador" is "A Dorian"), its
        # settings aside, as the model reads it.
        prompt.value = "X:1\\nM:C\\nK:Ador\\n"
        await pilot.pause()
        assert screen.query_one("#key", Select).value == "A Dorian"
        prompt.value = "X:1\\nM:C\\nK:G clef=bass\\n"
        await pilot.pause()
        assert screen.query_one("#key", Select).value == "G Major"
        # A tune another model made says so (the line named the model in use).
        screen.shown = replace(first, model_label="other.pt", model_path=tmp_path / "other.pt")
        screen._show_status()
        assert f"#{first.number} by other.pt seed" in text_of(screen, "#gen-status")
        screen.shown = first
        screen._show_status()
        assert " by " not in text_of(screen, "#gen-status")
        # Another corpus in Dataset: the keys offered stay the model's (its grammar writes no
        # other: a Bb from the Dataset corpus was refused).
        other = tmp_path / "flat.abc"
        other.write_text("X:1\nT:Flat\nM:C\nL:1/8\nK:Bb\nB2dB F2DF|\n\n" * 3
                         + "X:2\nT:G\nM:C\nL:1/8\nK:G Major\nG2BG D2GB|\n", encoding="utf-8")
        app.load_corpus(other)
        await wait_for(pilot, lambda: app.corpus is not None and app.corpus.name == "flat.abc",
                       "the other corpus")  # fmt: skip
        await pilot.pause()
        keys = screen._keys
        assert "Bb" not in keys and "A Dorian" in keys and keys[0] == "G Major", keys


async def test_the_shipped_models_keys_are_offered_whatever_corpus_is_open(
    tmp_path: Path, folkgen_home: Path
) -> None:
    """The shipped model records no keys of its own: its training corpus's are found as the
    CLI finds them (model_key_spellings). The picker offered the Dataset corpus's instead, and
    the model refused a Bb from there."""
    from core.paths import shipped_model_path

    shipped = shipped_model_path()
    assert shipped is not None
    app = FolkgenApp(model_path=shipped)
    async with app.run_test(size=SIZE) as pilot:
        screen = await show_generate(pilot, app)
        other = tmp_path / "flat.abc"
        other.write_text("X:1\nT:Flat\nM:C\nL:1/8\nK:Bb\nB2dB F2DF|\n", encoding="utf-8")
        app.load_corpus(other)
        await wait_for(pilot, lambda: app.corpus is not None and app.corpus.name == "flat.abc",
                       "the other corpus")  # fmt: skip
        await pilot.pause()
        assert "Bb" not in screen._keys and "G Major" in screen._keys, screen._keys


async def test_the_meter_picker_offers_only_meters_the_grammar_writes(tmp_path: Path) -> None:
    """A corpus's `M:none` was offered; picked, the prompt's M: was left to the model, which
    wrote a second M: of its own."""
    corpus = tmp_path / "odd.abc"
    corpus.write_text(
        "X:1\nT:Free\nM:none\nL:1/8\nK:D\nDEF|\n\nX:2\nT:Slow\nM:none\nL:1/8\nK:G\nGAB|\n\n"
        "X:3\nT:Jig\nM:6/8\nL:1/8\nK:D\nDFA dAF|\n", encoding="utf-8",
    )  # fmt: skip
    app = FolkgenApp(corpus_path=corpus, autoload_model=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        screen = await show_screen(pilot, "g", GenerateScreen)
        await wait_for(pilot, lambda: app.stats is not None, "the corpus")
        await wait_for(pilot, lambda: "6/8" in screen._meters, "its meters")
        assert "none" not in screen._meters and screen._meters == ("6/8",), screen._meters


async def test_a_title_typed_fast_is_not_set_back() -> None:
    """Each keystroke in Title writes the prompt's T: line, and the prompt's change set the
    title back to what that keystroke made, keystrokes after it since: typed in a burst,
    qwertyuiop came out qwtyuiope (the cursor moved, letters lost)."""
    app = FolkgenApp(autoload_model=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        screen = await show_screen(pilot, "g", GenerateScreen)
        await wait_for(pilot, lambda: screen.is_ready, "the fields")
        title = screen.query_one("#title", Input)
        title.focus()
        await pilot.pause()
        values: list[str] = []
        screen.watch(title, "value", lambda value: values.append(value), init=False)
        title.value = "qwe"  # two keystrokes' changes queued before the first is answered
        title.value = "qwer"
        await wait_for(pilot, lambda: "T:qwer" in screen.query_one("#prompt", Input).value,
                       "the prompt's title")  # fmt: skip
        await pilot.pause(0.1)
        assert values == ["qwe", "qwer"] and title.value == "qwer"


async def test_generate_settings_out_of_range_are_refused_with_their_range(
    trained_model: Path,
) -> None:
    """Max: said "at least 1 character" for 0 and "between 0 and 1000000" for too many; a
    field that is no number said "not a number: invalid literal for int() with base 10"."""
    app = FolkgenApp(model_path=trained_model)
    async with app.run_test(size=SIZE) as pilot:
        screen = await show_generate(pilot, app)
        notices = record_notices(app)
        for field, typed, said in (
            ("max-chars", "0", "max chars must be at least 1, not 0"),
            ("max-chars", "9999999", "max chars must be at most 1,000,000, not 9999999"),
            ("max-chars", "1e3", "Max chars: '1e3' is not a number"),  # (Python's words, before)
            ("temperature", "warm", "Temperature: 'warm' is not a number"),
            ("temperature", "0.0001", "temperature must be 0 (greedy) or at least 0.001, not 0.0001"),
        ):
            screen.query_one(f"#{field}", Input).value = typed
            screen.query_one("#gen-abc").focus()
            await pilot.pause()
            notices.clear()
            await pilot.press("enter")
            await wait_for(pilot, lambda: bool(notices), "the refusal")
            assert notices == [(said, "error")] and not screen.streaming
            # The cursor in the field at fault, as on the Train form.
            wanted = screen.query_one(f"#{field}")
            await wait_for(pilot, lambda w=wanted: app.focused is w, field)
            screen.query_one(f"#{field}", Input).value = {"max-chars": "1000"}.get(field, "1.0")


async def test_play_piano_roll_and_save(
    trained_model: Path, monkeypatch: pytest.MonkeyPatch, folkgen_home: Path
) -> None:
    play_in_real_time(monkeypatch)
    app = FolkgenApp(model_path=trained_model)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot, model=True)
        notices = record_notices(app)
        screen = await show_screen(pilot, "g", GenerateScreen)
        # A Z: line of the user's own in the prompt: the save keeps it, before the credit.
        screen.query_one("#prompt", Input).value = "X:1\\nZ:transcribed by me\\n"

        # Tunes from a tiny model are often broken: take the first one abc2midi accepts.
        def checked() -> bool:
            return bool(app.history) and (
                app.history[-1].check is not None or app.history[-1].check_error is not None
            )

        for attempt in range(30):
            await pilot.press("n")
            await wait_for(pilot, lambda n=attempt + 1: len(app.history) == n, "a tune")
            await wait_for(pilot, checked, "the check")
            record = app.history[-1]
            if record.check is not None and record.check.valid:
                break
        else:
            pytest.fail("no valid tune in 30 tries")
        await pilot.press("p")
        roll = screen.query_one(PianoRoll)
        await wait_for(pilot, lambda: roll.notes, "playback to start", timeout=30)
        assert not [n for n in notices if n[1] == "error"], notices
        assert app.sound.now_playing.key == f"tune-{record.number}"  # type: ignore[union-attr]
        assert min(n.pitch for n in roll.notes) > 20 and roll.duration > 0
        await wait_for(pilot, lambda: roll.position > 0.2, "the playhead moving")
        await pilot.press("p")  # stop
        await wait_for(pilot, lambda: not roll.display, "the roll hidden")
        assert not app.sound.is_playing

        await pilot.press("s", "s")  # the second while the first is saving: said, not done
        out = folkgen_home / "tunes"
        await wait_for(pilot, lambda: len(list(out.glob("*"))) == 6 and any(
            "Saved" in m for m, _ in notices), "the saved files", timeout=30)  # fmt: skip
        assert any(m.startswith("Still saving") for m, _ in notices), notices
        files = sorted(p.suffix for p in out.iterdir())
        assert files == [".abc", ".mid", ".pdf", ".png", ".svg", ".wav"]
        # The tune, credited to its making (the CLI's credit: core.corpus.credited).
        made = f"model {trained_model.name}, seed {record.seed}, temperature 1"
        credit = Credit(f"generated by folkgen: {made}", "X:1\nZ:transcribed by me\n")
        saved = (out / next(p.name for p in out.iterdir() if p.suffix == ".abc")).read_text()
        assert saved.strip() == credited(record.text, credit).strip()
        assert [line for line in saved.splitlines() if line.startswith("Z:")][:2] == [
            "Z:transcribed by me", f"Z:{credit.line}"
        ]
        assert all(p.stat().st_size > 0 for p in out.iterdir())
        # Saved once: `s` again says where, and writes no second set of files.
        notices.clear()
        await pilot.press("s")
        await wait_for(pilot, lambda: bool(notices), "the notice")
        assert notices[0][0].startswith("Already saved: ") and str(out) in notices[0][0]
        await pilot.pause(0.3)
        assert len(list(out.iterdir())) == 6 and record.saved_voice == app.voice


async def test_no_sound_device_keeps_the_wav_and_says_where(
    monkeypatch: pytest.MonkeyPatch, folkgen_home: Path
) -> None:
    from core.audio import PlaybackUnavailable

    def no_device(self: object, playable: Any) -> None:
        raise PlaybackUnavailable(playable.rendered.wav_path, "no audio device could be opened")

    monkeypatch.setattr("folkgen_tui.sound.Sound.play", no_device)
    app = FolkgenApp(autoload_model=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.stats is not None, "the corpus")
        notices = record_notices(app)
        await pilot.press("u", "down", "p")
        await wait_for(pilot, lambda: any(s == "error" for _, s in notices), "the notice", 30)
        (wav,) = (folkgen_home / "tunes").glob("*.wav")  # not the scratch folder, deleted on quit
        assert wav.name == "an-buachaill-dreoite.wav" and wav.stat().st_size > 10_000
        assert "T:An Buachaill Dreoite" in app.corpus.tunes[1]  # type: ignore[union-attr]
        assert any("no audio device" in m and str(wav) in m for m, _ in notices)
        await pilot.press("p")  # again: the same file, not a second copy
        await wait_for(pilot, lambda: len([s for _, s in notices if s == "error"]) == 2, "again")
        assert list((folkgen_home / "tunes").glob("*.wav")) == [wav]
        assert app.is_running
    assert wav.exists()


async def test_models_screen_lists_loads_and_resumes(
    trained_model: Path, folkgen_home: Path
) -> None:
    folder = folkgen_home / "checkpoints"
    folder.mkdir(parents=True)
    shutil.copy(trained_model, folder / "tiny.pt")
    (folder / "broken.pt").write_bytes(b"not a checkpoint")
    app = FolkgenApp(autoload_model=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        notices = record_notices(app)
        await pilot.press("m")
        screen = app.screen
        assert isinstance(screen, ModelsScreen)
        mine = {folder / "tiny.pt", folder / "broken.pt"}
        await wait_for(pilot, lambda: mine <= set(screen.infos), "the checkpoint details")
        table = screen.query_one("#models-table", DataTable)
        rows = {table.get_row_at(i)[1]: table.get_row_at(i) for i in range(table.row_count)}
        assert rows["tiny.pt"][4] == "250" and rows["tiny.pt"][2].startswith("irish")
        assert rows["broken.pt"][2] == "unreadable"
        order = [table.get_row_at(i)[1] for i in range(table.row_count)]
        await pilot.press(*["down"] * order.index("broken.pt"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: any(s == "error" for _, s in notices), "the error notice")
        assert app.model is None and app.is_running
        notices.clear()
        await pilot.press("r")  # said here, as enter says it (it went to Train and said it there)
        await wait_for(pilot, lambda: any(s == "error" for _, s in notices), "the resume notice")
        assert app.screen is screen and "not a folkgen checkpoint" in notices[-1][0]

        await pilot.press("end")  # the last row, and back to the first
        assert table.cursor_row == table.row_count - 1
        await pilot.press("home", *["down"] * order.index("tiny.pt"), "enter")
        await wait_for(pilot, lambda: app.model is not None, "the model")
        assert app.model.path == folder / "tiny.pt"  # type: ignore[union-attr]
        assert table.get_row_at(order.index("tiny.pt"))[0] == "●"

        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, TrainScreen), "the train screen")
        train = app.screen
        assert isinstance(train, TrainScreen)
        await wait_for(pilot, lambda: train.resume_checkpoint is not None, "the resume")
        assert "Resuming tiny.pt: step 250" in text_of(train, "#resume-note")
        assert train.query_one("#f-hidden_size", Input).value == "128"
        assert int(train.query_one("#f-steps", Input).value) > 250
        # The model's fields show the checkpoint's and take no edits (the run trains it as it
        # is); tab goes through the training settings only. A new model frees them.
        model_fields = [train.query_one(f"#f-{name}", Input)
                        for name in ("embedding_dim", "hidden_size", "num_layers", "dropout")]  # fmt: skip
        assert all(field.disabled for field in model_fields)
        await pilot.press("tab", "tab")  # the preset, then past the model's fields
        assert app.focused is not None and app.focused.id == "f-steps"
        await pilot.press("escape")
        train.action_new_model()
        assert not any(field.disabled for field in model_fields)
        train.request_resume(folder / "tiny.pt")
        await wait_for(pilot, lambda: model_fields[0].disabled, "the resume again")
        # The preset picker shows the checkpoint's (it kept its last choice, and the run's file
        # was named after it); another chosen while resuming says the model stays.
        train.action_new_model()
        picker = train.query_one("#preset", Select)
        picker.value = "default"
        await wait_for(pilot, lambda: train.query_one("#f-hidden_size", Input).value == "384",
                       "the default preset")  # fmt: skip
        train.request_resume(folder / "tiny.pt")
        await wait_for(pilot, lambda: train.resume_checkpoint is not None, "the second resume")
        assert picker.value == "tiny" and train.preset.name == "tiny"
        assert text_of(train, "#preset-about").startswith("A small, fast model")
        picker.value = "default"
        await pilot.pause()  # its training settings, the checkpoint's model (it changed nothing)
        assert train.query_one("#f-hidden_size", Input).value == "128"
        from core.presets import get_preset

        default = get_preset("default").train
        assert train.query_one("#f-batch_size", Input).value == str(default.batch_size)
        assert int(train.query_one("#f-steps", Input).value) > 250  # more than it has done
        assert text_of(train, "#preset-about").startswith("default's training settings; resuming")


async def test_models_cursor_goes_to_a_model_that_came_into_use_meanwhile(
    trained_model: Path, folkgen_home: Path
) -> None:
    """The cursor stays on the row picked, unless another model came into use while the screen
    was away (a run just trained): it stayed on default.pt, the one row of a first start, below
    the run's checkpoints."""
    folder = folkgen_home / "checkpoints"
    folder.mkdir(parents=True)
    for name in ("a.pt", "b.pt", "c.pt"):
        shutil.copy(trained_model, folder / name)
    app = FolkgenApp(autoload_model=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        screen = await show_screen(pilot, "m", ModelsScreen)
        assert screen.paths[-1].name == "default.pt"
        await pilot.press("end")  # the shipped model, last
        await pilot.press("g", "m")
        assert screen.selected_path() == screen.paths[-1]  # kept: nothing changed
        await pilot.press("g")
        app.load_model(folder / "b.pt", "just trained")
        await wait_for(pilot, lambda: app.model is not None, "the model")
        await pilot.press("m")
        await wait_for(pilot, lambda: screen.selected_path() == folder / "b.pt", "the cursor")
        table = screen.query_one("#models-table", DataTable)
        assert table.get_row_at(table.cursor_row)[0] == "●"
        await pilot.press("up", "g", "m")  # picked again: it stays
        assert screen.selected_path() != folder / "b.pt"


async def test_models_table_fits_100_columns_beside_its_scrollbar(
    trained_model: Path, folkgen_home: Path
) -> None:
    """A screenful of runs brings a scrollbar, which cut the Saved column's last character."""
    folder = folkgen_home / "checkpoints"
    folder.mkdir(parents=True)
    for n in range(30):
        shutil.copy(trained_model, folder / f"irish-mitdeeplearning-tiny-20261204-0146{n:02}.best.pt")
    app = FolkgenApp(autoload_model=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        screen = await show_screen(pilot, "m", ModelsScreen)
        await wait_for(pilot, lambda: len(screen.infos) >= 30, "the checkpoint details")
        await pilot.pause()
        table = screen.query_one("#models-table", DataTable)
        assert table.max_scroll_y > 0 and table.max_scroll_x == 0


@pytest.mark.parametrize("columns", [80, 140])
async def test_models_table_fits_the_width_it_has(
    columns: int, trained_model: Path, folkgen_home: Path
) -> None:
    """At 80 columns the Size column was cut ("1.1" without its MB) and Saved was past the
    edge; at 140 the file names were still cut at 28, and corpora at 14. Now a narrow table
    leaves Saved out, and a wide one shows whole names and corpora."""
    folder = folkgen_home / "checkpoints"
    folder.mkdir(parents=True)
    name = "irish-mitdeeplearning-tiny-20261204-014601.best.pt"  # 50 characters
    shutil.copy(trained_model, folder / name)
    app = FolkgenApp(autoload_model=False)
    async with app.run_test(size=(columns, 24)) as pilot:
        await wait_ready(pilot)
        screen = await show_screen(pilot, "m", ModelsScreen)
        await wait_for(pilot, lambda: len(screen.infos) >= 1, "the checkpoint details")
        await pilot.pause()
        table = screen.query_one("#models-table", DataTable)
        assert table.max_scroll_x == 0, table.virtual_size
        labels = [str(c.label) for c in table.columns.values()]
        row = [str(cell) for cell in table.get_row(str(folder / name))]
        assert "Size" in labels and row[labels.index("Size")].endswith("MB"), row
        assert ("Saved" in labels) == (columns == 140)
        assert (row[labels.index("File")] == name) == (columns == 140), row
        if columns == 140:  # the room the names leave goes to the corpus ("irish (mitdee…")
            assert not row[labels.index("Corpus")].endswith("…"), row


async def test_help_palette_theme_and_no_model_notices(folkgen_home: Path) -> None:
    app = FolkgenApp(autoload_model=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_ready(pilot)
        notices = record_notices(app)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        help_text = plain_text(app.screen.query_one("#help-text", Static).content)
        for words in ("Start training", "Play the tune shown", "Continue training", "Dataset"):
            assert words in help_text
        # Dataset's two `v`s say which tab each is for.
        assert "On the Tunes tab: the tune as sheet music" in help_text
        assert "Every character with its count (from the other tabs)" in help_text
        await pilot.press("escape")
        assert isinstance(app.screen, DatasetScreen)

        titles = [c.title for c in app.get_system_commands(app.screen)]
        for title in ("Train: Start", "Train: Pause", "Train: Stop", "Generate: Generate",
                      "Generate: Play", "Generate: Save", "Models: Use to generate",
                      "Dataset: Open ABC", "Theme"):  # fmt: skip
            assert title in titles
        # One command a rating (one "Rate" gave every tune rated from the palette 1 star).
        rates = [t for t in titles if t.startswith("Library: Rate") or "rating" in t]
        assert rates == [*(f"Library: Rate {n} star{'s' * (n > 1)}" for n in range(1, 6)),
                         "Library: Clear the rating"]  # fmt: skip
        await run_from_palette(pilot, "Dataset: Vocabulary", "Dataset: Vocabulary")
        await wait_for(pilot, lambda: app.screen.query_one("#dataset-tabs").current == "vocabulary",
                       "the palette command")  # type: ignore[attr-defined]  # fmt: skip

        await pilot.press("g", "enter")
        await pilot.pause()
        assert notices and notices[-1][1] == "warning" and "no model yet" in notices[-1][0]
        assert app.is_running

        # The theme switcher works, and the choice is remembered.
        assert app.theme == "gruvbox"
        app.theme = "nord"
        await pilot.pause(0.1)
        assert json.loads((folkgen_home / "tui.json").read_text())["theme"] == "nord"
    assert FolkgenApp().theme == "nord"


async def test_unknown_prompt_characters_are_a_notice(trained_model: Path) -> None:
    app = FolkgenApp(model_path=trained_model)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot, model=True)
        notices = record_notices(app)
        screen = await show_screen(pilot, "g", GenerateScreen)
        screen.query_one("#prompt", Input).value = "X:1\\nT:Café\\n"
        await pilot.press("enter")
        await pilot.pause()
        assert notices[-1][1] == "error" and "'é'" in notices[-1][0]
        assert not app.history


async def test_garbage_collections_wait_while_a_key_is_answered(
    folkgen_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key's work and frame go without the collector's passes (process.KeyHold), which come
    back after; and an app that ends during a hold leaves the collector on."""
    monkeypatch.setattr(folkgen_tui.app, "KEY_HOLD", 1.0)  # longer than any switch here
    app = FolkgenApp(autoload_model=False)
    collecting: list[bool] = []
    switch_mode = app.switch_mode

    def switching(mode: str) -> Any:
        collecting.append(gc.isenabled())
        return switch_mode(mode)

    monkeypatch.setattr(app, "switch_mode", switching)
    try:
        assert gc.isenabled()
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.stats is not None, "the corpus")
            await pilot.press("t")
            await wait_for(pilot, lambda: isinstance(app.screen, TrainScreen), "Train")
            assert collecting == [False]
            await wait_for(pilot, gc.isenabled, "the collector back on", timeout=5)
            await pilot.click(offset=(50, 20))  # a click is held back as a key is
            assert not gc.isenabled()
            await wait_for(pilot, gc.isenabled, "the collector back on", timeout=5)
            await pilot.press("g")
            assert collecting == [False, False]
        assert gc.isenabled()  # ended within the hold
    finally:
        gc.enable()
