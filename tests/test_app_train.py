"""The Train screen driven by keys with Textual's pilot, training for real on the small corpus:
the progress bar with a time budget, the recipe locked while a run exists, the keys that do not
apply, the state line after a resume or a corpus change, and the model a finished run replaces.
(tests/test_app.py has the screen's first tests.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Label, Log, ProgressBar, Select, Static

from core.paths import shipped_model_path
from folkgen_tui.app import FolkgenApp
from folkgen_tui.screens.dialogs import ConfirmDialog
from folkgen_tui.screens.train import MODEL_FIELDS, TRAIN_FIELDS, TrainScreen
from folkgen_tui.workers import TrainJob
from tests.app_helpers import (
    make_checkpoint,
    record_notices,
    set_fields,
    show_screen,
    wait_for,
    wait_ready,
)

pytestmark = pytest.mark.asyncio
SIZE = (100, 32)
# A model and batches far smaller than "tiny"'s: the app is tested here, not torch.
SMALL = {"hidden_size": "32", "embedding_dim": "8", "batch_size": "4", "seq_length": "16",
         "eval_every": "0", "checkpoint_every": "0"}  # fmt: skip


def state_of(screen: TrainScreen) -> str:
    return str(screen.query_one("#train-state", Static).content)


async def short_run(pilot: Pilot[Any], screen: TrainScreen, steps: int) -> TrainJob:
    """A run of `steps` steps of the SMALL recipe, started by `s` and waited for to its end."""
    set_fields(screen, **SMALL, steps=str(steps))
    await pilot.press("s")
    job = screen.job
    assert job is not None
    await wait_for(pilot, lambda: not job.running, "the short run", timeout=30)
    await wait_for(pilot, lambda: state_of(screen).startswith(f"Finished at step {steps}"),
                   "the end")  # fmt: skip
    return job


async def show_train(pilot: Pilot[Any]) -> TrainScreen:
    await wait_ready(pilot)
    return await show_screen(pilot, "t", TrainScreen)


def vocabulary_mismatch(small_corpus_file: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A corpus with a character the checkpoint (made on the default corpus) never saw, and the
    checkpoint: 120 steps done of its recipe's 300."""
    other = tmp_path / "other.abc"
    other.write_text(small_corpus_file.read_text(encoding="utf-8").replace("T:", "T:Ω ", 1),
                     encoding="utf-8")  # fmt: skip
    return other, make_checkpoint(tmp_path / "ck.pt", step=120)


async def test_steps_and_minutes_fill_the_bar_by_the_time_spent(
    small_corpus_file: Path, one_torch_thread: None
) -> None:
    """Every preset fills Steps, so typing Minutes gives both; the time then ends the run
    (core.train counts steps only without it). The bar counted the seconds against the steps:
    "Finished at step 734" beside 0 %."""
    app = FolkgenApp(small_corpus_file, autoload_model=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await show_train(pilot)
        set_fields(screen, **SMALL, steps="20", minutes="0.03")
        await pilot.pause()  # said before the run too, beside the preset
        about = str(screen.query_one("#preset-about", Static).content)
        assert about.endswith("(edited); 0.03 min ends the run, whatever Steps say"), about
        await pilot.press("s")
        job = screen.job
        assert job is not None
        bar = screen.query_one("#train-progress", ProgressBar)
        assert bar.total == pytest.approx(1.8)
        await wait_for(pilot, lambda: job.last_event is not None and job.last_event.elapsed_s > 0.6,
                       "0.6 s of training")  # fmt: skip
        await pilot.pause(0.1)
        assert bar.percentage is not None and bar.percentage > 0.2, bar.percentage
        await wait_for(pilot, lambda: not job.running, "the run's end", timeout=30)
        await wait_for(pilot, lambda: state_of(screen).startswith("Finished at step"), "the end")
        assert job.last_event is not None and job.last_event.step > 20  # the time ended it
        assert bar.percentage == 1.0  # full once done, whenever its last report came
        log = " ".join(line.strip() for line in screen.query_one("#train-log", Log).lines)
        assert "the run ends after 0.03 min (Steps count without Minutes)" in log, log


async def test_the_recipe_takes_no_edits_while_a_run_exists_and_keys_say_why_not(
    small_corpus_file: Path, one_torch_thread: None
) -> None:
    """The recipe's fields took edits while a run trained or paused, and the run left them out
    without a word; s during a run, and p or x with none, did nothing."""
    app = FolkgenApp(small_corpus_file, autoload_model=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await show_train(pilot)
        notices = record_notices(app)
        await pilot.press("p", "x")
        await pilot.pause()
        assert ("No run to pause: s starts one.", "information") in notices, notices
        assert ("No run to stop: s starts one.", "information") in notices, notices
        set_fields(screen, **SMALL, steps="100000")
        await pilot.press("s")
        job = screen.job
        assert job is not None
        await wait_for(pilot, lambda: job.last_event is not None, "the run's first step")
        ids = ["preset"] + [f"f-{name}" for name, _, _ in MODEL_FIELDS + TRAIN_FIELDS]
        fields = [screen.query_one(f"#{id_}", Input | Select) for id_ in ids]
        assert all(field.is_disabled for field in fields)
        await pilot.press("tab")  # nothing in the recipe to go to
        assert not any(field.has_focus for field in fields)
        await pilot.press("s")
        await pilot.pause()
        assert ("Training is already running: p pauses it, x stops it.", "information") in notices

        await pilot.press("p")
        await wait_for(pilot, lambda: job.paused and state_of(screen).startswith("Paused"), "pause")
        assert all(field.is_disabled for field in fields)
        await pilot.press("s")  # it said "p pauses it" of the paused run
        await pilot.pause()
        assert ("Training is paused: p resumes it, x stops it.", "information") in notices
        await pilot.press("x")
        await wait_for(pilot, lambda: not job.running, "the stop", timeout=30)
        await pilot.pause()
        assert not any(field.is_disabled for field in fields)  # (no checkpoint to resume)
        await pilot.press("tab")
        assert fields[0].has_focus


async def test_the_state_line_follows_a_resume_and_a_corpus_change(
    small_corpus_file: Path, tmp_path: Path, one_torch_thread: None
) -> None:
    """The state line kept how the last run ended: "Finished… s: a new model" once a checkpoint
    to resume was chosen (s then resumes it), and a refusal once another corpus was open."""
    other, ckpt = vocabulary_mismatch(small_corpus_file, tmp_path)
    app = FolkgenApp(small_corpus_file, autoload_model=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await show_train(pilot)
        job = await short_run(pilot, screen, 10)

        screen.request_resume(ckpt)
        await wait_for(pilot, lambda: screen.resume_checkpoint is not None, "the resume")
        await pilot.pause()
        assert state_of(screen) == "Ready to resume ck.pt from step 120 on 80 tunes: press s."

        set_fields(screen, steps="100")
        await pilot.press("s", "y")  # (yes, on this corpus) refused: it has done 120 steps
        second = screen.job
        assert second is not None and second is not job
        await wait_for(pilot, lambda: state_of(screen).startswith("Could not start"), "refusal")
        app.load_corpus(other)
        await wait_for(pilot, lambda: app.corpus is not None and "Ω" in app.corpus.text,
                       "the other corpus")  # fmt: skip
        await pilot.pause()
        assert state_of(screen) == "Ready to resume ck.pt from step 120 on 80 tunes: press s."


async def test_a_finished_run_says_which_model_it_takes_the_place_of(
    small_corpus_file: Path, tmp_path: Path, one_torch_thread: None
) -> None:
    """Generate takes up the model just trained: it said only that the new one "is ready",
    and the model picked in Models was gone without a word."""
    picked = make_checkpoint(tmp_path / "picked.pt")
    app = FolkgenApp(small_corpus_file, model_path=picked)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot, model=True)
        screen = await show_screen(pilot, "t", TrainScreen)
        notices = record_notices(app)
        set_fields(screen, **SMALL, steps="10")
        await pilot.press("s")
        job = screen.job
        assert job is not None
        await wait_for(pilot, lambda: not job.running, "the short run", timeout=30)
        await wait_for(pilot, lambda: app.model is not None and app.model.path != picked,
                       "the new model")  # fmt: skip
        assert app.model is not None and app.model.path is not None
        said = f"Training done: Generate now uses {app.model.path.name}, in place of picked.pt"
        assert any(m.startswith(said) for m, _ in notices), notices


async def test_a_bad_value_is_named_by_its_label_and_its_field_focused(
    small_corpus_file: Path,
) -> None:
    """Core's check named "hidden size" for LSTM units, a negative number had a rule of the
    form's own ("must not be negative", where 0 was refused too), and the field at fault could
    be out of sight (Threads, at 100x32)."""
    from core.presets import MAX_WIDTH

    app = FolkgenApp(small_corpus_file, autoload_model=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await show_train(pilot)
        notices = record_notices(app)
        for field, typed, said in (
            ("hidden_size", "100000",
             f"LSTM units must be a whole number from 1 to {MAX_WIDTH:,}, not 100000"),
            ("learning_rate", "-1",
             "Learning rate must be a number more than 0 and at most 1, not -1"),
            ("threads", "abc", "Threads: 'abc' is not a number"),
        ):  # fmt: skip
            set_fields(screen, **{field: typed})
            notices.clear()
            screen.set_focus(None)
            await pilot.press("s")
            await wait_for(pilot, lambda: bool(notices), "the refusal")
            assert notices == [(said, "error")] and screen.job is None
            focused = app.focused
            assert focused is not None and focused.id == f"f-{field}"
            assert screen.query_one("#recipe").region.contains_region(focused.region)
            await pilot.press("escape")
            set_fields(screen, **{field: {"hidden_size": "32", "learning_rate": "0.01"}.get(field, "")})


async def start_resuming(pilot: Pilot[Any], screen: TrainScreen, ckpt: Path) -> Label:
    """s on a checkpoint chosen to resume, to 130 steps in small batches (the model's fields
    are the checkpoint's): the question it asks first."""
    screen.request_resume(ckpt)
    await wait_for(pilot, lambda: screen.resume_checkpoint is not None, "the resume")
    set_fields(screen, batch_size="4", seq_length="16", eval_every="0", steps="130")
    await pilot.press("s")
    await wait_for(pilot, lambda: isinstance(screen.app.screen, ConfirmDialog), "the question")
    return screen.app.screen.query_one(Label)


async def test_a_checkpoint_resumed_on_new_characters_is_carried_over_when_asked(
    small_corpus_file: Path, tmp_path: Path, one_torch_thread: None
) -> None:
    """The engine refused the run, and its reason named the CLI's --new-vocab: the app had no
    way to carry a model over to a corpus with characters it never saw. It asks now."""
    from core.checkpoint import load_checkpoint

    other, ckpt = vocabulary_mismatch(small_corpus_file, tmp_path)
    kept = ckpt.read_bytes()
    app = FolkgenApp(other, autoload_model=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await show_train(pilot)
        question = await start_resuming(pilot, screen, ckpt)
        assert "ck.pt never saw 'Ω', which other.abc (80 tunes) has" in str(question.content)
        assert question.size.height > 1  # wrapped: one line showed its first 56 characters
        await pilot.press("n")  # not now: nothing starts
        await wait_for(pilot, lambda: app.screen is screen, "the Train screen")
        assert screen.job is None
        await pilot.press("s", "y")
        job = screen.job
        assert job is not None and job.new_vocab
        await wait_for(pilot, lambda: not job.running, "the run", timeout=60)
        assert job.error is None and ckpt.read_bytes() == kept  # the checkpoint stays as it was
        saved = job.checkpoint_path
        assert saved != ckpt and saved.parent != tmp_path
        carried = load_checkpoint(saved)
        assert "Ω" in carried.vocab.chars and carried.step == 130
        # The form keeps the resumed run's recipe: said beside the preset, which it is not
        # (it said the preset alone, and s then trained a new model to the resumed steps).
        await wait_for(pilot, lambda: screen.resume_checkpoint is None, "the resume over")
        await pilot.pause()
        assert "(edited)" in str(screen.query_one("#preset-about", Static).content)


async def test_a_checkpoint_resumed_on_another_corpus_is_asked_about_first(
    small_corpus_file: Path, tmp_path: Path, one_torch_thread: None
) -> None:
    """The app trained a checkpoint on whatever corpus the Dataset screen had open (a folder of
    four tunes, for a model of the 817), saving over it, where the CLI wants --corpus."""
    ckpt = make_checkpoint(tmp_path / "irish.pt", step=120)  # of the default corpus
    kept = ckpt.read_bytes()
    app = FolkgenApp(small_corpus_file, autoload_model=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await show_train(pilot)
        question = str((await start_resuming(pilot, screen, ckpt)).content)
        assert question.startswith("irish.pt was trained on irish (mitdeeplearning) (817 tunes). "
                                   "Train it on small.abc (80 tunes), the corpus open now?")  # fmt: skip
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, "the Train screen")
        assert screen.job is None and ckpt.read_bytes() == kept
        await pilot.press("s", "enter")  # yes
        job = screen.job
        assert job is not None and not job.new_vocab and job.checkpoint_path == ckpt
        await wait_for(pilot, lambda: not job.running, "the run", timeout=60)
        assert job.error is None and ckpt.read_bytes() != kept
        # The shipped model is never written to: the question says where the run goes.
        shipped = shipped_model_path()
        assert shipped is not None
        screen.request_resume(shipped)
        await wait_for(pilot, lambda: screen.resume_checkpoint is not None
                       and screen.resume_checkpoint.path == shipped, "the shipped model")  # fmt: skip
        set_fields(screen, steps="2500")
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the question")
        assert "It trains on as a new model file; default.pt stays as it is" in str(
            app.screen.query_one(Label).content
        )
        await pilot.press("escape")


async def test_the_state_line_says_when_there_is_no_corpus_to_train_on(
    small_corpus_file: Path, tmp_path: Path
) -> None:
    """With no corpus loaded (its file failed) the state line said "Ready to train: press s.",
    and s then said that it could not: it says so up front, and follows the corpus arriving."""
    app = FolkgenApp(tmp_path / "missing.abc", autoload_model=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await show_train(pilot)
        assert app.corpus is None and app.corpus_error is not None
        state = state_of(screen)
        assert state.startswith("Nothing to train on: open an .abc file or folder in Dataset "
                                "(d, then o). No corpus: "), state  # fmt: skip
        app.load_corpus(small_corpus_file)
        await wait_for(pilot, lambda: app.corpus is not None, "the corpus")
        await pilot.pause()
        assert state_of(screen) == "Ready to train on 80 tunes: press s."


async def test_the_state_says_a_run_ended_only_with_its_log_and_bar(
    small_corpus_file: Path, one_torch_thread: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A last progress report handled after the run had ended (its reader thread marks the job
    finished, then posts the end) said "Finished at step N" before the end's handler had written
    its log line and filled the bar: a test reading the log once the state said so found no
    end in it. Here the run's last report comes after the job is marked finished, as it can."""
    from core.engine import Progress, Trained

    reply = TrainJob._on_reply
    held: list[Any] = []

    def late_last_report(job: TrainJob, message: Any) -> None:
        if isinstance(message, Progress) and message.event.kind == "done":
            held.append(message)  # until the end: then after the job is marked finished
            return
        if isinstance(message, Trained):
            job.finished = True
            for report in held:
                reply(job, report)
        reply(job, message)

    monkeypatch.setattr(TrainJob, "_on_reply", late_last_report)
    ahead: list[str] = []  # states that said the end before the log did
    progress = TrainScreen.on_train_progress

    def watched(screen: TrainScreen, message: Any) -> None:
        progress(screen, message)
        log = " ".join(screen.query_one("#train-log", Log).lines)
        if state_of(screen).startswith("Finished") and "done after" not in log:
            ahead.append(state_of(screen))

    monkeypatch.setattr(TrainScreen, "on_train_progress", watched)
    app = FolkgenApp(small_corpus_file, autoload_model=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await show_train(pilot)
        await short_run(pilot, screen, 5)
        assert held  # the last report did come late
        assert ahead == []
        log = " ".join(line.strip() for line in screen.query_one("#train-log", Log).lines)
        assert "done after 5 steps" in log, log
        assert screen.query_one("#train-progress", ProgressBar).percentage == 1.0


async def test_a_diverged_run_says_so_in_the_log(
    small_corpus_file: Path, one_torch_thread: None
) -> None:
    """A run whose model ended worse than guessing was reported as any other; the warning is
    core's, as `folkgen train` prints it."""
    app = FolkgenApp(small_corpus_file, autoload_model=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await show_train(pilot)
        notices = record_notices(app)
        set_fields(screen, **SMALL, steps="10", learning_rate="1", grad_clip="", warmup_steps="0")
        await pilot.press("s")
        job = screen.job
        assert job is not None
        await wait_for(pilot, lambda: not job.running, "the short run", timeout=30)
        await wait_for(pilot, lambda: state_of(screen).startswith("Finished at step 10"), "the end")
        log = " ".join(line.strip() for line in screen.query_one("#train-log", Log).lines)
        assert "warning: the run diverged (validation " in log, log
        assert "try a lower learning rate" in log
        assert any(m.startswith("the run diverged") and severity == "warning"
                   for m, severity in notices), notices  # fmt: skip
