"""Train: pick a preset or edit the recipe; start, pause, resume and stop; watch the loss fall.

Training runs in a process of its own (core.engine), whose job this screen owns (screens of modes
stay alive, so leaving the screen does not stop it); progress arrives as `TrainProgress` messages."""

from __future__ import annotations

import textwrap
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widgets import Input, Label, Log, ProgressBar, Static

from core.paths import continued_in_place, output_recipe, training_output_path
from core.presets import (
    BATCHINGS,
    PRESETS,
    ConfigError,
    ModelConfig,
    Preset,
    TrainConfig,
    get_preset,
)
from folkgen_tui.format import duration, number
from folkgen_tui.screens.base import LEAVE_FIELD, StudioScreen
from folkgen_tui.widgets import LossChart
from folkgen_tui.widgets.clamped import ClampedStatic, fit_lines
from folkgen_tui.widgets.deferred import Deferred
from folkgen_tui.widgets.run_numbers import Row, RunNumbers, fitted_table
from folkgen_tui.widgets.select import Select
from folkgen_tui.widgets.sketch import MUTED, field, picker, row
from folkgen_tui.workers import TrainFinished, TrainJob, TrainProgress

if TYPE_CHECKING:
    from core.checkpoint_meta import CheckpointMeta
    from core.corpus import Corpus
    from core.train_events import TrainEvent

DEFAULT_PRESET = "tiny"
NOTIFY_EVERY = 20.0  # seconds between checkpoint notices (the log has every checkpoint)

# (field, label, kind): kind is int, float, "int?" / "float?" (blank means off), "auto" (an int;
# blank means 0, which lets the trainer choose), "int0" (an int; blank means 0, off: Steps with
# Minutes, as Minutes takes blank) or a choice tuple.
MODEL_FIELDS: tuple[tuple[str, str, Any], ...] = (
    ("embedding_dim", "Embedding", int),
    ("hidden_size", "LSTM units", int),
    ("num_layers", "Layers", int),
    ("dropout", "Dropout", float),
)
TRAIN_FIELDS: tuple[tuple[str, str, Any], ...] = (
    ("steps", "Steps", "int0"),
    ("minutes", "Minutes", "float?"),
    ("batch_size", "Batch size", int),
    ("seq_length", "Sequence", int),
    ("learning_rate", "Learning rate", float),
    ("schedule", "Schedule", ("constant", "cosine")),
    ("warmup_steps", "Warm-up steps", int),
    ("grad_clip", "Grad clip", "float?"),
    ("weight_decay", "Weight decay", float),
    ("batching", "Batching", BATCHINGS),
    ("transpose", "Transpose ±", int),
    ("eval_every", "Eval every", int),
    ("checkpoint_every", "Save every", int),
    ("seed", "Seed", int),
    ("threads", "Threads", "auto"),
)


class FormError(ValueError):
    """What is wrong with the recipe in the form; `field`, the field at fault (focused)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


LABELS = {name: label for name, label, _ in MODEL_FIELDS + TRAIN_FIELDS}
LABEL_WIDTH = 15  # the form's label column (train.tcss: .form's grid-columns)
PLACEHOLDERS = {"float?": "off", "int?": "off", "int0": "off", "auto": "auto"}
NO_RUN: list[Row] = [
    ("step", "–", "chars/s", "–"), ("loss (nats)", "–", "elapsed", "–"),
    ("smoothed", "–", "ETA", "–"), ("val bits/char", "–", "best", "–"),
]  # fmt: skip


def checkpoint_name(ckpt: CheckpointMeta) -> str:
    """The checkpoint's file name, as the screen names it (a loaded one has its path)."""
    return ckpt.path.name if ckpt.path else "the checkpoint"


def show_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def minutes_ending(cfg: TrainConfig) -> float | None:
    """The minutes that end a run that has Steps too (the Minutes say when it ends)."""
    return cfg.minutes if cfg.steps else None


def field_text(kind: Any, value: Any) -> str:
    """A value as its field shows it: blank for "auto" and "int0" fields at 0."""
    return "" if kind in ("auto", "int0") and not value else show_value(value)


def parse_value(name: str, kind: Any, text: str) -> Any:
    """A field's text as its value; its range is core's to check (ConfigError), as the CLI's."""
    text = text.strip()
    if isinstance(kind, tuple):
        return text
    if kind in ("float?", "int?") and not text:
        return None
    if kind in ("auto", "int0") and not text:
        return 0
    try:
        value = float(text) if kind in (float, "float?") else int(text)
    except ValueError:
        raise FormError(f"{LABELS[name]}: {text!r} is not a number", name) from None
    return value


@dataclass
class ResumeLoaded(Message):
    checkpoint: CheckpointMeta


@dataclass
class ResumeFailed(Message):
    error: str


class TrainScreen(StudioScreen):
    MODE = "train"
    TITLE_TEXT = "Train"
    # Nothing focused when shown, as escape leaves it: letter keys are commands, and tab goes to
    # the first field (the recipe's scroll takes no focus: focused, it restyled the whole form
    # under it, ~25 ms a show, and a tab more reached the first field).
    AUTO_FOCUS = ""
    HELP = (
        "Pick a preset (seed is the MIT lab's exact recipe) or edit the numbers, then start. "
        "Training runs in the background: switch screens freely; quitting saves a checkpoint."
    )
    BINDINGS = [
        Binding("s", "start", "Start", tooltip="Start training with this recipe"),
        Binding("p", "pause", "Pause", tooltip="Pause training"),
        Binding("p", "resume", "Resume", tooltip="Resume paused training"),
        Binding("x", "stop", "Stop", tooltip="Stop training (saves a checkpoint)"),
        Binding("n", "new_model", "New model", tooltip="Train a new model, not the checkpoint"),
        # Tried after the key's own binding, when that one does not apply (shown dimmed: Textual
        # runs nothing for it): a word on why, not silence. No description: not in the footer,
        # the help or the palette.
        Binding("s", "unavailable('start')", show=False),
        Binding("p", "unavailable('pause')", show=False),
        Binding("x", "unavailable('stop')", show=False),
        LEAVE_FIELD,
    ]

    def __init__(self) -> None:
        super().__init__()
        self.job: TrainJob | None = None
        self.preset: Preset = get_preset(DEFAULT_PRESET)
        self.resume_checkpoint: CheckpointMeta | None = None
        self._checkpoint_notified = -NOTIFY_EVERY  # when the last checkpoint notice showed
        # The state line says what s does next rather than how the last run ended: since a
        # checkpoint was chosen, a new model asked for or the corpus changed.
        self._show_next = True

    def compose_body(self) -> ComposeResult:
        # The panels first; their fields made and mounted once the screen is drawn (Deferred): a
        # key shows the screen in a fraction of its build (issue 14).
        with Horizontal(id="train-body"):
            with VerticalScroll(id="recipe", can_focus=False) as recipe:
                recipe.border_title = "Recipe"
                yield Deferred(Vertical(id="recipe-parts"), self._recipe, self._recipe_sketch)
            with Vertical(id="progress-panel") as panel:
                panel.border_title = "Progress"
                yield Deferred(
                    Vertical(id="progress-parts"), self._progress, self._progress_sketch
                )

    def _recipe(self) -> ComposeResult:
        model, train = self.preset.model, self.preset.train
        yield Select(
            [(name, name) for name in PRESETS], value=DEFAULT_PRESET,
            allow_blank=False, compact=True, id="preset",
        )  # fmt: skip
        yield Static("", id="preset-about", markup=False)
        yield Static("", id="resume-note", markup=False)
        # Each section's fields in one grid beside one column of their labels, not a row
        # container and a label each: Textual's work on every show grows with the widgets
        # (Train 94 -> 60).
        for section, section_fields, config in (
            ("Model", MODEL_FIELDS, model), ("Training", TRAIN_FIELDS, train),
        ):  # fmt: skip
            yield Label(section, classes="form-section")
            with Grid(classes="form"):
                labels = Static("\n".join(f[1] for f in section_fields), classes="form-labels")
                labels.styles.row_span = len(section_fields)  # one line beside each field
                yield labels
                for name, _, kind in section_fields:
                    yield self._field(name, kind, getattr(config, name))

    def _recipe_sketch(self, width: int) -> Content:
        """The recipe as its fields first show it (the preset's), until they are in (Deferred);
        the fields' colours come with them."""
        about = self._preset_about(False, minutes_ending(self.preset.train))
        lines = [picker(self.preset.name, width), Content.styled(about, MUTED)]
        lines.append(Content(""))  # the resume note's line
        for section, section_fields, config in (
            ("Model", MODEL_FIELDS, self.preset.model), ("Training", TRAIN_FIELDS, self.preset.train),
        ):  # fmt: skip
            lines += [Content(""), Content.styled(section, "bold $accent")]
            for name, text, kind in section_fields:
                value = getattr(config, name)
                shown = (
                    picker(value, width - LABEL_WIDTH) if isinstance(kind, tuple)
                    else field(field_text(kind, value), 0, PLACEHOLDERS.get(kind, ""))
                )  # fmt: skip
                lines.append(row((text.ljust(LABEL_WIDTH), MUTED), shown))
        return Content("\n").join(lines)

    def _progress_sketch(self, width: int) -> Content:
        """The progress panel before any run, until its parts are in (Deferred): the state's
        two lines, the empty bar (Textual's: its colour $surface; 5 columns of percentage), a
        blank line and the figures (train.tcss); the charts and the log come with the parts."""
        text = fit_lines(self._ready_text(), width, 2)  # as #train-state (ClampedStatic) fits it
        state = Content.styled(text, "bold").wrap(width)[:2] if width else []
        state += [Content("")] * (2 - len(state))
        bar = Content.assemble(("━" * max(0, width - 5), "$surface"), "0%".rjust(5))
        return Content("\n").join([*state, bar, Content(""), fitted_table(NO_RUN, width)])

    def _progress(self) -> ComposeResult:
        yield ClampedStatic("", max_lines=2, id="train-state")
        yield ProgressBar(id="train-progress", show_eta=False)
        yield RunNumbers(id="train-numbers")
        yield Label("loss per step", classes="spark-label")
        yield LossChart(id="loss-raw")
        yield Label("smoothed loss", classes="spark-label")
        yield LossChart(id="loss-smooth")
        yield Log(id="train-log", max_lines=500)

    @staticmethod
    def _field(name: str, kind: Any, value: Any) -> Select[str] | Input:
        """A field holding `value` from the start: set once mounted, each Input restyled itself
        as it validated (a third of the screen's set-up)."""
        if isinstance(kind, tuple):
            return Select([(c, c) for c in kind], value=value, allow_blank=False, compact=True,
                          id=f"f-{name}")  # fmt: skip
        placeholder = PLACEHOLDERS.get(kind, "")
        return Input(
            field_text(kind, value), placeholder=placeholder, compact=True, id=f"f-{name}",
            type="integer" if kind in (int, "int?", "int0", "auto") else "number",
        )  # fmt: skip

    def mounted(self) -> None:
        self._show_preset_note()  # the fields came with the preset's values
        self._show_numbers(None)
        self.query_one("#train-progress", ProgressBar).update(total=1, progress=0)
        self._show_state()
        self.call_after_refresh(self.refresh_bindings)

    # --- the form ----------------------------------------------------------------------------

    def fill_form(self, model: ModelConfig, cfg: TrainConfig) -> None:
        for name, _, kind in MODEL_FIELDS:
            self._set_field(name, kind, getattr(model, name))
        for name, _, kind in TRAIN_FIELDS:
            self._set_field(name, kind, getattr(cfg, name))
        self._show_preset_note()

    def _set_field(self, name: str, kind: Any, value: Any) -> None:
        if isinstance(kind, tuple):
            self.query_one(f"#f-{name}", Select).value = value
        else:
            self.query_one(f"#f-{name}", Input).value = field_text(kind, value)

    def read_form(self) -> tuple[ModelConfig, TrainConfig]:
        """The recipe in the form, on top of the preset's; FormError says what is wrong."""
        values: dict[str, Any] = {}
        for name, _, kind in MODEL_FIELDS + TRAIN_FIELDS:
            if isinstance(kind, tuple):
                values[name] = self.query_one(f"#f-{name}", Select).value
            else:
                values[name] = parse_value(name, kind, self.query_one(f"#f-{name}", Input).value)
        model_names = {f.name for f in fields(ModelConfig)}
        model = replace(self.preset.model, **{k: v for k, v in values.items() if k in model_names})
        cfg = replace(
            self.preset.train, **{k: v for k, v in values.items() if k not in model_names}
        )
        try:  # core's one check of a recipe, as for the CLI and checkpoints
            model.validate()
            cfg.validate()
        except ConfigError as e:  # named by the form's label ("LSTM units", not "hidden size")
            if e.field in LABELS and e.problem != str(e):
                raise FormError(f"{LABELS[e.field]} {e.problem}", e.field) from None
            raise FormError(str(e), e.field if e.field in LABELS else None) from None
        return model, cfg

    @on(Select.Changed, "#preset")
    def preset_chosen(self, event: Select.Changed) -> None:
        if not isinstance(event.value, str) or event.value == self.preset.name:
            return
        self.preset = get_preset(event.value)
        ckpt = self.resume_checkpoint
        if ckpt is None:
            self.fill_form(self.preset.model, self.preset.train)
        else:  # the preset's training settings; the model stays the checkpoint's
            self.fill_form(ckpt.model_config, self._resumed(ckpt.step, self.preset.train))

    @on(Input.Changed)
    @on(Select.Changed)
    def field_edited(self, event: Input.Changed | Select.Changed) -> None:
        # Not while the fields mount (a Select says Changed as it mounts; the rest may not be
        # in yet): `mounted` shows the note once they are all in.
        if event.control.id != "preset" and self.is_ready:
            self._show_preset_note()

    @staticmethod
    def _same_model(a: ModelConfig, b: ModelConfig) -> bool:
        return replace(a, vocab_size=b.vocab_size) == b  # a preset's for any vocabulary

    def _show_preset_note(self) -> None:
        ckpt = self.resume_checkpoint
        about = self.query_one("#preset-about", Static)
        if ckpt is not None and not self._same_model(self.preset.model, ckpt.model_config):
            size = ckpt.model_config.hidden_size
            about.update(f"{self.preset.name}'s training settings; resuming keeps the "
                         f"checkpoint's model (LSTM {size})")  # fmt: skip
            return
        try:
            model, cfg = self.read_form()
        except FormError:
            edited, minutes = True, None
        else:
            edited = (model, cfg) != (self.preset.model, self.preset.train)
            minutes = minutes_ending(cfg)
        about.update(self._preset_about(edited and ckpt is None, minutes))

    def _preset_about(self, edited: bool, minutes: float | None) -> str:
        """The preset's note: its description, whether the form's recipe is edited, and that
        `minutes` ends a run that has Steps too."""
        note = " (edited)" if edited else ""
        if minutes is not None:  # said before the run, not only in its log
            note += f"; {minutes:g} min ends the run, whatever Steps say"
        return self.preset.description + note

    def action_leave_field(self) -> None:
        self.set_focus(None)

    # --- resuming a checkpoint ---------------------------------------------------------------

    def request_resume(self, path: Path) -> None:
        """Prepare to resume training from a checkpoint (the Models screen calls this)."""
        self.query_one("#resume-note", Static).update(f"reading {path.name}…")
        self._read_checkpoint(path)

    def _read_checkpoint(self, path: Path) -> None:
        """Read by the model's engine (reading a checkpoint needs torch)."""
        from core.engine import CheckpointRead, Failed, ReadCheckpoint, Reply

        def read(reply: Reply) -> None:  # on the engine's reader thread
            if isinstance(reply, CheckpointRead):
                self.post_message(ResumeLoaded(reply.meta))
            elif isinstance(reply, Failed):
                self.post_message(ResumeFailed(reply.error))

        engine = self.studio.engine
        if engine is None:
            self.post_message(ResumeFailed("torch's process is not running"))
            return
        engine.request(ReadCheckpoint(path), read)

    @staticmethod
    def _resumed(step: int, cfg: TrainConfig) -> TrainConfig:
        """A recipe to resume at `step` with: where its steps are done, as many again."""
        return replace(cfg, steps=step + cfg.steps) if step >= cfg.steps and not cfg.minutes else cfg

    def on_resume_loaded(self, message: ResumeLoaded) -> None:
        ckpt = message.checkpoint
        self.resume_checkpoint = ckpt
        cfg = self._resumed(ckpt.step, ckpt.train_config)
        # The preset of the checkpoint's model, where one has it (the picker kept its last).
        same = [name for name, p in PRESETS.items() if self._same_model(p.model, ckpt.model_config)]
        if same and same[0] != self.preset.name:
            self.preset = get_preset(same[0])
            with self.prevent(Select.Changed):
                self.query_one("#preset", Select).value = same[0]
        self.fill_form(ckpt.model_config, cfg)
        self._show_resume_note()
        self._show_next = True
        self._show_state()
        self.refresh_bindings()
        name = checkpoint_name(ckpt)
        self.notify(f"Ready to resume {name} from step {ckpt.step}: press s.", markup=False)

    def on_resume_failed(self, message: ResumeFailed) -> None:
        self._show_resume_note()
        self.notify(message.error, title="Cannot resume", severity="error", markup=False)

    def _show_resume_note(self) -> None:
        note = self.query_one("#resume-note", Static)
        ckpt = self.resume_checkpoint
        # A resumed run trains the checkpoint's model as it is (core.train takes its config):
        # its fields show it and take no edits, which the run would leave out without a word.
        for name, _, _ in MODEL_FIELDS:
            self.query_one(f"#f-{name}").disabled = ckpt is not None
        self._lock_recipe()
        if ckpt is None:
            note.update("")
            return
        corpus = ckpt.corpus.get("name", "?")
        name = checkpoint_name(ckpt)
        note.update(f"Resuming {name}: step {ckpt.step}, trained on {corpus}. "
                    "The model is the checkpoint's (n: a new model).")  # fmt: skip

    def _lock_recipe(self) -> None:
        """No edits while a run exists (running or paused): it has its recipe, and left them out
        without a word. The fields inside take it on (Textual: a disabled container's are)."""
        job = self.job
        self.query_one("#recipe-parts").disabled = job is not None and job.running

    def action_new_model(self) -> None:
        self.resume_checkpoint = None
        self._show_resume_note()
        self.fill_form(self.preset.model, self.preset.train)
        self._show_next = True
        self._show_state()
        self.refresh_bindings()

    # --- start / pause / stop ----------------------------------------------------------------

    def action_state(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "leave_field":
            return self.typing()
        job = self.job
        running = job is not None and job.running
        if action == "start":
            return None if running else True
        paused = running and job is not None and bool(job.control.paused)
        if action == "pause":
            return False if paused else (True if running else None)
        if action == "resume":
            return paused
        if action == "stop":
            return True if running else None
        if action == "new_model":
            return self.resume_checkpoint is not None and not running
        return True

    def action_unavailable(self, action: str) -> None:
        """A key whose action does not apply now (see BINDINGS)."""
        job = self.job
        if action == "start" and job is not None and job.running:
            if job.control.stopped:
                self.notify("The run is stopping (saving a checkpoint): press s once it has.")
            elif job.control.paused:  # (it said "p pauses it" of a paused run)
                self.notify("Training is paused: p resumes it, x stops it.")
            else:
                self.notify("Training is already running: p pauses it, x stops it.")
        elif action in ("pause", "stop") and (job is None or not job.running):
            self.notify(f"No run to {action}: s starts one.")

    def action_start(self) -> None:
        self._start()

    def _start(self, asked: bool = False) -> None:
        """Start a run. A checkpoint resumed on another corpus than its own is asked about
        first (`asked`: said yes to); where the corpus has characters it never saw, it is
        carried over to them, as `folkgen train --new-vocab` does."""
        studio = self.studio
        if self.job is not None and self.job.running:
            self.notify("Training is already running.", severity="warning")
            return
        if studio.torch_state != "ready":
            why = (
                "torch is still loading — try again in a moment"
                if studio.torch_state == "loading"
                else "torch is not available"
            )
            self.notify(f"Cannot train yet: {why}.", severity="warning")
            return
        corpus = studio.corpus
        if corpus is None:
            self.notify("Cannot train: no corpus is loaded.", severity="error")
            return
        try:
            model, cfg = self.read_form()
        except FormError as e:
            self.notify(str(e), title="Check the recipe", severity="error", markup=False)
            if e.field is not None:  # in sight, and ready to mend
                self.query_one(f"#f-{e.field}").focus()
            return
        ckpt = self.resume_checkpoint
        new = sorted(set(corpus.vocab.chars) - set(ckpt.vocab.chars)) if ckpt else []
        carry_over = bool(new)
        if ckpt is not None and not asked and (new or not corpus.is_described_by(ckpt.corpus)):
            self._ask_about_corpus(ckpt, corpus, new)  # the CLI wants --corpus for it
            return
        # Carried over, the model is a new one: it never replaces the checkpoint (as the CLI).
        source = Path(ckpt.path) if ckpt is not None and ckpt.path is not None else None
        recipe = output_recipe(self.preset.name, source)
        path = training_output_path(corpus.name, recipe, None if carry_over else source)
        # A run that could never save is refused by its engine before its first step.
        self.job = TrainJob(self, corpus, model, cfg, path, resume=ckpt, new_vocab=carry_over)
        studio.training = self.job
        self.query_one("#loss-raw", LossChart).data = []
        self.query_one("#loss-smooth", LossChart).data = []
        bar = self.query_one("#train-progress", ProgressBar)
        # A time budget fills the bar by the time spent (it pulsed with no end, even once done).
        # It ends the run whatever the steps, which count only without one (core.train): with
        # both, the bar counted seconds against steps and stayed at 0 %.
        if cfg.minutes is not None:
            bar.update(total=cfg.minutes * 60, progress=0)
        else:
            bar.update(total=cfg.steps, progress=0 if ckpt is None else ckpt.step)
        self._show_numbers(None)  # not the last run's
        what = f"resuming {path.name} at step {ckpt.step}" if ckpt else f"new model → {path.name}"
        if ckpt is not None and carry_over:
            name = checkpoint_name(ckpt)
            what = f"{name} at step {ckpt.step}, carried over to new characters → {path.name}"
        self._log(f"start: {what}; {corpus.name}, {len(corpus.tunes):,} tunes")
        if cfg.minutes is not None and cfg.steps:
            self._log(f"the run ends after {cfg.minutes:g} min (Steps count without Minutes)")
        self.job.start(studio.training_engine())
        self._show_next = False
        self._lock_recipe()
        self._show_state()
        self.refresh_bindings()

    def _ask_about_corpus(self, ckpt: CheckpointMeta, corpus: Corpus, new: list[str]) -> None:
        """Ask before a checkpoint trains on another corpus than its own (the Dataset screen's):
        unasked, a model of the default corpus trained on a folder of four tunes, and was saved
        over itself."""
        from folkgen_tui.screens.dialogs import ConfirmDialog  # (not built ahead with the screen)

        name = checkpoint_name(ckpt)
        theirs = f"{ckpt.corpus.get('name', '?')} ({ckpt.corpus.get('tunes', '?')} tunes)"
        ours = f"{corpus.name} ({len(corpus.tunes):,} tunes)"
        if new:
            shown = " ".join(repr(c) for c in new[:12]) + (" …" if len(new) > 12 else "")
            title = "New characters"
            question = (f"{name} never saw {shown}, which {ours} has. Carry it over to the "
                        "corpus's characters? It trains on as a new model file (the characters "
                        f"they share keep what they learnt); {name} stays as it is.")  # fmt: skip
        else:
            title = "Another corpus"
            where = (f"It is saved over {name}" if ckpt.path and continued_in_place(ckpt.path)
                     else f"It trains on as a new model file; {name} stays as it is")  # fmt: skip
            question = (f"{name} was trained on {theirs}. Train it on {ours}, the corpus open "
                        f"now? {where}; its best so far counts again, on this corpus's held-out "
                        "tunes.")  # fmt: skip

        def answered(yes: bool | None) -> None:
            if yes:
                self._start(asked=True)

        self.app.push_screen(ConfirmDialog(title, question), answered)

    def action_pause(self) -> None:
        if self.job is not None and self.job.running:
            self.job.control.pause()
            self._show_state("pausing…")
            self.refresh_bindings()

    def action_resume(self) -> None:
        if self.job is not None and self.job.running:
            self.job.control.resume()
            self._show_state("resuming…")
            self.refresh_bindings()

    def action_stop(self) -> None:
        if self.job is not None and self.job.running:
            self.job.control.stop()
            self._show_state("stopping: saving a checkpoint…")
            self.refresh_bindings()

    # --- progress ----------------------------------------------------------------------------

    def on_train_progress(self, message: TrainProgress) -> None:
        if self.job is None:
            return
        e = message.event
        if len(message.losses) > 1:  # one point would fill the whole chart
            self.query_one("#loss-raw", LossChart).data = message.losses
            self.query_one("#loss-smooth", LossChart).data = message.smooth
        bar = self.query_one("#train-progress", ProgressBar)
        if e.total_steps:
            bar.update(total=e.total_steps, progress=e.step)
        elif (minutes := self.job.train_config.minutes) is not None:
            bar.update(total=minutes * 60, progress=min(e.elapsed_s, minutes * 60))
        self._show_numbers(e)
        if e.kind == "eval":
            self._log(f"step {e.step}: validation {e.val_bpc:.3f} bits/char")
        elif e.kind == "checkpoint" and e.checkpoint:
            name = Path(e.checkpoint).name
            # Which of the two files, not the run's long name (the log started with it): cut at
            # the panel's edge, it hid whether the best model or the checkpoint was saved.
            saved = "best model so far" if ".best." in name else "checkpoint"
            self._log(f"step {e.step}: {saved} saved")
            if ".best." not in name and time.monotonic() - self._checkpoint_notified > NOTIFY_EVERY:
                # At most one a while: a small recipe saves every ~0.6 s, and the toasts piled
                # up over the numbers they report.
                self._checkpoint_notified = time.monotonic()
                self.notify(f"Checkpoint saved at step {e.step}: {name}", markup=False)
        elif e.kind == "warning":
            self._log(f"warning: {e.message}")
            self.notify(e.message, severity="warning", markup=False)
        elif e.kind in ("paused", "resumed"):
            self._log(f"step {e.step}: {e.kind}")
            self.refresh_bindings()
        if self.job.running:  # ended, its TrainFinished (next) says how, after its log line and
            self._show_state()  # the full bar: a last report handled first said "Finished" first

    def on_train_finished(self, message: TrainFinished) -> None:
        job = self.job
        bar = self.query_one("#train-progress", ProgressBar)
        if message.error:
            if job is not None and job.last_event is None:  # it never started
                bar.update(total=1, progress=0)  # not the checkpoint's step it was to start at
            self._log(f"failed: {message.error}")
            title = "Cannot train" if job is None or job.last_event is None else "Training stopped"
            self.notify(message.error, title=title, severity="error", markup=False)
        elif message.result is not None:
            r = message.result
            if not r.stopped and bar.total is not None:  # its last report came before the end
                bar.update(progress=bar.total)
            how = "stopped" if r.stopped else "done"
            val = f", validation {r.val_bpc:.3f} bits/char" if r.val_bpc is not None else ""
            self._log(f"{how} after {r.step} steps in {duration(r.elapsed_s)}{val}")
            if r.diverged:  # core's verdict, as the CLI says it: finished, but no model to use
                self._log(f"warning: {r.diverged}")
                self.notify(r.diverged, title="Diverged", severity="warning", markup=False)
            if r.checkpoint is not None:
                self._log(f"checkpoint: {Path(r.checkpoint).name}")
                # Generate takes it up in place of the model in use: said, as that one may have
                # been picked in Models (m gives it back).
                name, before = Path(r.checkpoint).name, self.studio.model
                instead = ""
                if before is not None and before.path != Path(r.checkpoint):
                    instead = f", in place of {before.label} (m to go back)"
                self.notify(f"Training {how}: Generate now uses {name}{instead}.", markup=False)
                if not self.studio.quitting:
                    self.studio.load_model(Path(r.checkpoint), "just trained", announce=False)
            self.resume_checkpoint = None
            self._show_resume_note()
            # The form keeps the resumed run's recipe (its steps): said "(edited)" beside the
            # preset, as it said the preset alone and s then trained a new model 10,000 steps.
            self._show_preset_note()
        if job is not None and job.last_event is not None:
            self._show_numbers(job.last_event)
        self._show_next = False  # how it ended, even if the corpus changed while it ran
        self._lock_recipe()
        self._show_state()
        self.refresh_bindings()
        if self.is_current:
            self.studio.warm_training_engine()  # the next run's, not started while this one ran

    def _log(self, line: str) -> None:
        """A line of the run's log, wrapped to its width (Log cuts a line at its edge: a
        refusal's reason was cut mid-word), its later lines indented."""
        log = self.query_one("#train-log", Log)
        width = max(20, log.scrollable_content_region.width - 1)
        log.write_lines(textwrap.wrap(line, width, subsequent_indent="  ") or [""])

    def _ready_text(self) -> str:
        corpus = self.studio.corpus
        if corpus is None:  # s would say it only once pressed; corpus_changed follows the load
            error = self.studio.corpus_error
            if error is None:
                return "Loading the corpus…"
            return f"Nothing to train on: open an .abc file or folder in Dataset (d, then o). {error}"
        where = f" on {len(corpus.tunes):,} tunes"
        ckpt = self.resume_checkpoint
        if ckpt is not None:
            name = checkpoint_name(ckpt)
            return f"Ready to resume {name} from step {ckpt.step}{where}: press s."
        return f"Ready to train{where}: press s."

    def _show_state(self, override: str | None = None) -> None:
        job = self.job
        state = self.query_one("#train-state", Static)
        if override:
            text = override
        elif job is None or (self._show_next and not job.running):
            text = self._ready_text()
        else:
            e = job.last_event
            step = e.step if e else 0
            total = f"/{e.total_steps}" if e and e.total_steps else ""
            if not job.running and job.error is not None:  # the panel shows no earlier run's
                text = (f"Could not start: {job.error}" if e is None
                        else f"Failed at step {step}{total}: {job.error}")  # fmt: skip
            elif not job.running:
                how = "Stopped" if job.control.stopped else "Finished"
                # s trains a new model: "train again" read as going on with this one.
                text = f"{how} at step {step}{total}. s: a new model; Models, r: go on with it."
            elif job.control.stopped:
                text = "Stopping: saving a checkpoint…"
            elif job.control.paused:
                text = f"Paused at step {step}{total}. Press p to resume."
            else:
                text = f"Training: step {step}{total}"
        state.update(text, layout=False)  # fixed height: no relayout of the screen
        self._show_run_status()

    def _show_run_status(self) -> None:
        """The run in the studio's status line (beside the screen keys, on every screen): its
        step, but only that it runs while this screen, whose panel shows the step, is current.
        Textual redraws the box around all that changed: the panel's numbers and the status
        line at the bottom took in every field of the recipe too, and the app's main thread
        took 2.5-3.2 % of a core while a run trained, against 2.0-2.1 % (bench/app_training.py
        prints it: each wake-up takes a core from one of the run's two threads)."""
        job = self.job
        if job is None or not job.running:
            self.studio.train_status = ""
            return
        paused = " (paused)" if job.control.paused else ""
        e = job.last_event
        if self.is_current or e is None:  # (no step before the run's first report)
            self.studio.train_status = f"training{paused}"
            return
        at = f"{e.step}/{e.total_steps}" if e.total_steps else str(e.step)
        self.studio.train_status = f"training {at}{paused}"

    def _show_numbers(self, e: TrainEvent | None) -> None:
        rows: list[Row]
        if e is None:
            rows = NO_RUN
        else:
            step = f"{e.step:,}" + (f" / {e.total_steps:,}" if e.total_steps else "")
            threads = f" ({e.threads} thread{'s' if e.threads != 1 else ''})" if e.threads else ""
            rows = [
                ("step", step, "chars/s", f"{e.chars_per_sec:,.0f}{threads}"),
                ("loss (nats)", number(e.loss), "elapsed", duration(e.elapsed_s)),
                ("smoothed", number(e.smooth_loss), "ETA", duration(e.eta_s)),
                ("val bits/char", number(e.val_bpc), "best", number(e.best_val_bpc)),
            ]
        self.query_one("#train-numbers", RunNumbers).show(rows)

    def corpus_changed(self) -> None:
        if self.job is None or not self.job.running:
            self._show_next = True  # the last run's end (a refusal) was about the corpus before
        self._show_state()

    def torch_changed(self) -> None:
        self.refresh_bindings()
        if self.is_current:
            self.studio.warm_training_engine()

    def on_screen_resume(self) -> None:
        self._show_run_status()
        if self.is_current:  # shown (a screen built ahead gets a resume too)
            self.studio.warm_training_engine()  # torch is in by the time `s` is pressed

    def on_screen_suspend(self) -> None:
        self._show_run_status()
