"""Models: the checkpoints on disk with their corpus, size, step and validation loss; load one
for generation or to resume training."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable, Static

from core.paths import checkpoint_files, checkpoints_dir
from folkgen_tui.format import file_size, number, when_saved
from folkgen_tui.screens.base import StudioScreen
from folkgen_tui.widgets.row_table import RowTable

if TYPE_CHECKING:
    from core.checkpoint_meta import CheckpointMeta


@dataclass
class CheckpointInfo:
    """What the table shows of one checkpoint file (read by the engine: it needs torch)."""

    corpus: str
    tunes: int | None
    model: str
    parameters: int
    step: int
    val_bpc: float | None
    best_val_bpc: float | None
    detail: str


@dataclass
class CheckpointRead(Message):
    path: Path
    stamp: tuple[float, int]
    info: CheckpointInfo | None  # with error None too: not read (torch's process ended first)
    error: str | None


def describe(ckpt: CheckpointMeta) -> CheckpointInfo:
    m, t = ckpt.model_config, ckpt.train_config
    params = m.num_parameters()
    model = f"LSTM {m.hidden_size}" + (f"×{m.num_layers}" if m.num_layers > 1 else "")
    corpus = str(ckpt.corpus.get("name") or "?")
    counted = ckpt.corpus.get("tunes")
    tunes = counted if isinstance(counted, int) else None
    metrics = ckpt.metrics
    # What the corpus is (its content hash), not where it was on the machine that trained it.
    digest = ckpt.corpus.get("sha256")
    fingerprint = f", sha256 {digest[:12]}" if isinstance(digest, str) else ""
    schedule = f"{t.schedule}" + (f", warm-up {t.warmup_steps}" if t.warmup_steps else "")
    detail = (
        f"{ckpt.path}\n"
        f"model: {model}, embedding {m.embedding_dim}, dropout {m.dropout:g}, "
        f"{params:,} parameters, vocabulary {m.vocab_size}\n"
        f"recipe: {t.steps} steps, batch {t.batch_size} × {t.seq_length}, lr {t.learning_rate:g} "
        f"({schedule}), clip {t.grad_clip if t.grad_clip else 'off'}\n"
        f"corpus: {corpus} ({tunes if tunes is not None else '?'} tunes){fingerprint}\n"
        f"trained {ckpt.step} steps in {number(metrics.get('elapsed_s'), 0)} s; "
        f"validation {number(metrics.get('val_bpc'))} bits/char (best {number(metrics.get('best_val_bpc'))})"
    )
    return CheckpointInfo(
        corpus=corpus, tunes=tunes, model=model, parameters=params, step=ckpt.step,
        val_bpc=metrics.get("val_bpc"), best_val_bpc=metrics.get("best_val_bpc"), detail=detail,
    )  # fmt: skip


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def clip_middle(text: str, width: int) -> str:
    """Long file names keep their end (the date and suffix): 'irish-mi…-013434.pt'."""
    if len(text) <= width:
        return text
    tail = width * 3 // 5
    return text[: width - tail - 1] + "…" + text[-tail:]


CORPUS_WIDTH = 14  # the Corpus column's, widened by what a wide terminal has left
# (label, key, width): the File column takes what the others leave (its width 0 here).
COLUMNS = (
    ("", "use", 1), ("File", "file", 0), ("Corpus", "corpus", CORPUS_WIDTH),
    ("Model", "model", 9),
    ("Step", "step", 6), ("Val bpc", "val", 7), ("Size", "size", 7), ("Saved", "saved", 12),
)  # fmt: skip
MIN_NAME = 20  # columns of a file name, at least, before a column is left out for it
DROPPED_FIRST = ("saved", "corpus")  # left out in this order where the width is short
EDGES = 2  # the vertical scrollbar's columns
MAX_NAME = 60  # wider names are clipped in the middle even on a wide terminal
MAX_CORPUS = 40


def table_layout(width: int, longest: int = MAX_NAME) -> tuple[tuple[str, ...], int, int]:
    """The columns shown at `width` (their keys), the File column's width (`longest`: the
    longest name's) and the Corpus column's: at 80 columns the Size column was cut and Saved
    was past the edge, and at 140 the names and corpora were still cut at 28 and 14."""
    for drop in range(len(DROPPED_FIRST) + 1):
        keys = tuple(key for _, key, _ in COLUMNS if key not in DROPPED_FIRST[:drop])
        # DataTable pads each cell by a column on either side.
        room = width - EDGES - sum(w + 2 for _, key, w in COLUMNS if key in keys)
        if room >= MIN_NAME:
            name = max(MIN_NAME, min(room, longest, MAX_NAME))
            return keys, name, min(CORPUS_WIDTH + room - name, MAX_CORPUS)
    return keys, MIN_NAME, CORPUS_WIDTH


class ModelsScreen(StudioScreen):
    MODE = "models"
    # Focus starts on the table, as `mounted` sets it: keys that come while the screen is
    # built are commands, not text for its first field (Textual focuses the first focusable).
    AUTO_FOCUS = "#models-table"
    TITLE_TEXT = "Models"
    HELP = (
        "Every checkpoint in folkgen's folder (newest first) and the shipped default model. "
        "Pick one to generate with, or to continue its training on the Train screen."
    )
    BINDINGS = [
        Binding(
            "enter",
            "use",
            "Use to generate",
            tooltip="Generate with the selected model",
            priority=True,
        ),  # fmt: skip
        Binding("r", "resume", "Resume training", tooltip="Continue training the selected model"),
        Binding("f5", "rescan", "Rescan", tooltip="Look for checkpoints again"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[Path] = []
        self.infos: dict[Path, tuple[tuple[float, int], CheckpointInfo | None, str | None]] = {}
        self._reading: set[Path] = set()  # asked of the engine, not answered yet
        self._listed_in_use: Path | None = None  # the model in use at the last listing
        self._layout: tuple[tuple[str, ...], int, int] | None = None  # table_layout's, as listed

    def compose_body(self) -> ComposeResult:
        yield Static("", id="models-folder", markup=False)
        yield RowTable(id="models-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="model-detail", markup=False)

    def mounted(self) -> None:
        table = self.query_one("#models-table", DataTable)
        self.query_one("#model-detail").border_title = "Details"
        self.rescan()
        table.focus()

    def on_resize(self) -> None:
        layout = self._layout
        width, longest = self.app.size.width, self._longest_name()
        if self.composed and layout is not None and table_layout(width, longest) != layout:
            self.rescan()  # the columns that fit the new width

    def _longest_name(self) -> int:
        return max((len(path.name) for path in self.paths), default=0)

    def on_screen_resume(self) -> None:
        if self.is_current and self.composed:  # shown (a screen built ahead gets one too)
            self.rescan()

    # --- listing -----------------------------------------------------------------------------

    def found_paths(self) -> list[Path]:
        from core.paths import shipped_model_path

        paths = checkpoint_files()
        shipped = shipped_model_path()
        if shipped is not None:
            paths.append(shipped)
        return paths

    def rescan(self) -> None:
        self.query_one("#models-folder", Static).update(f"Checkpoints in {checkpoints_dir()}")
        table = self.query_one("#models-table", DataTable)
        selected = self.selected_path()
        self.paths = self.found_paths()
        layout = table_layout(self.app.size.width, self._longest_name())
        keys, name_width, _ = layout
        if layout != self._layout:  # the columns that fit this width
            table.clear(columns=True)
            for label, key, _ in COLUMNS:
                if key in keys:
                    table.add_column(label, key=key)
            self._layout = layout
        else:
            table.clear()
        in_use = self.studio.model.path if self.studio.model else None
        for path in self.paths:
            stamp = self._stamp(path)
            corpus, model, step, val = self._info_cells(path, stamp)
            cells = {
                "use": "●" if path == in_use else "", "file": clip_middle(path.name, name_width),
                "corpus": corpus, "model": model, "step": step, "val": val,
                "size": file_size(stamp[1]), "saved": when_saved(stamp[0]) if stamp[0] else "",
            }  # fmt: skip
            table.add_row(*(cells[key] for key in keys), key=str(path))
        if not self.paths:
            self.query_one("#model-detail", Static).update(
                "No checkpoints yet. Train a model on the Train screen (t): it is saved here."
            )
        else:
            # The cursor stays where it was, unless another model came into use meanwhile (a
            # run just trained): it then goes to that one. It stayed on default.pt, the one
            # row of a first start, below a screenful of the run's checkpoints.
            if in_use != self._listed_in_use and in_use in self.paths:
                selected = in_use
            if selected in self.paths:
                table.move_cursor(row=self.paths.index(selected))
        self._listed_in_use = in_use
        self._show_detail()
        if self.studio.torch_state == "ready":
            self._read_infos([p for p in self.paths if self._needs_read(p)])

    @staticmethod
    def _stamp(path: Path) -> tuple[float, int]:
        try:
            st = path.stat()
        except OSError:
            return (0.0, 0)
        return (st.st_mtime, st.st_size)

    def _known_now(
        self, path: Path
    ) -> tuple[tuple[float, int], CheckpointInfo | None, str | None] | None:
        """What the file was read as, if it has not changed since (else None: read it again)."""
        known = self.infos.get(path)
        return known if known is not None and known[0] == self._stamp(path) else None

    def _needs_read(self, path: Path) -> bool:
        return self._known_now(path) is None

    def _info_cells(self, path: Path, stamp: tuple[float, int]) -> list[str]:
        known = self.infos.get(path)
        if known is None or known[0] != stamp:
            return ["…", "…", "…", "…"]
        _, info, error = known
        if info is None:
            return ["unreadable", "", "", ""]
        corpus = self._layout[2] if self._layout is not None else CORPUS_WIDTH
        return [clip(info.corpus, corpus), info.model, f"{info.step:,}", number(info.val_bpc)]

    def _read_infos(self, paths: list[Path]) -> None:
        """Each checkpoint's settings, read by the model's engine (reading one needs torch)."""
        from core.engine import CheckpointRead as Read
        from core.engine import Failed, ReadCheckpoint, Reply

        engine = self.studio.engine
        if engine is None:
            return
        for path in paths:
            if path in self._reading:
                continue
            self._reading.add(path)
            stamp = self._stamp(path)

            def read(reply: Reply, path: Path = path, stamp: tuple[float, int] = stamp) -> None:
                if isinstance(reply, Read):  # on the engine's reader thread
                    self.post_message(CheckpointRead(path, stamp, describe(reply.meta), None))
                elif isinstance(reply, Failed):  # lost: not read, asked again once torch is back
                    error = None if reply.lost else reply.error
                    self.post_message(CheckpointRead(path, stamp, None, error))

            engine.request(ReadCheckpoint(path), read)

    def on_checkpoint_read(self, message: CheckpointRead) -> None:
        self._reading.discard(message.path)
        if message.info is None and message.error is None:
            return  # not read: torch's process ended first
        self.infos[message.path] = (message.stamp, message.info, message.error)
        if message.path not in self.paths:
            return
        table = self.query_one("#models-table", DataTable)
        row_key = str(message.path)
        shown = self._layout[0] if self._layout is not None else ()
        for column, value in zip(("corpus", "model", "step", "val"),
                                 self._info_cells(message.path, message.stamp), strict=True):  # fmt: skip
            if column in shown:  # (the Corpus column is left out of a narrow table)
                table.update_cell(row_key, column, value, update_width=True)
        self._show_detail()

    # --- selection ---------------------------------------------------------------------------

    def selected_path(self) -> Path | None:
        table = self.query_one("#models-table", DataTable)
        if not self.paths or not table.row_count:
            return None
        row = table.cursor_row
        return self.paths[row] if 0 <= row < len(self.paths) else None

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        path = self.selected_path()
        detail = self.query_one("#model-detail", Static)
        if path is None:
            return
        known = self.infos.get(path)
        if known is None:
            reading = "reading…" if self.studio.torch_state == "ready" else "waiting for torch…"
            detail.update(f"{path}\n{reading}")
        elif known[1] is None:
            detail.update(f"{path}\ncannot be read: {known[2]}")
        else:
            detail.update(known[1].detail)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_use()

    # --- actions -----------------------------------------------------------------------------

    def action_use(self) -> None:
        path = self.selected_path()
        if path is None:
            self.notify("No checkpoint to load: train a model first (t).", severity="warning")
            return
        if self.studio.torch_state != "ready":
            self.notify("torch is still loading — try again in a moment.", severity="warning")
            return
        self.studio.load_model(path, "chosen")

    def action_resume(self) -> None:
        path = self.selected_path()
        if path is None:
            self.notify("No checkpoint to resume: train a model first (t).", severity="warning")
            return
        job = self.studio.training
        if job is not None and job.running:
            self.notify("Training is running: stop it first (Train screen, x).", severity="warning")
            return
        if self.studio.torch_state != "ready":
            self.notify("torch is still loading — try again in a moment.", severity="warning")
            return
        known = self._known_now(path)
        if known is not None and known[2] is not None:
            # Read already and unreadable: said here, as enter says it, not on Train.
            self.notify(known[2], title="Cannot resume", severity="error", markup=False)
            return
        self.studio.resume_training(path)

    def action_rescan(self) -> None:
        self.rescan()

    # --- shared state ------------------------------------------------------------------------

    def model_changed(self) -> None:
        in_use = self.studio.model.path if self.studio.model else None
        table = self.query_one("#models-table", DataTable)
        for path in self.paths:
            table.update_cell(str(path), "use", "●" if path == in_use else "")
        if self.is_current and in_use in self.paths:  # seen to change: the cursor stays put
            self._listed_in_use = in_use

    def torch_changed(self) -> None:
        self.rescan()
