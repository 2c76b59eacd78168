"""What a training run reports and how it is steered (pause, resume, stop), without torch: the
app's process reads these from the engine's that trains (core/engine.py)."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path

# How far above uniform guessing (log2 of the vocabulary) a finished run's bits per character
# must be to count as diverged: an untrained model sits at about log2 itself (6.39 for the tiny
# recipe after one step, against 6.37), a diverged one far above (236.8 at a learning rate of 1).
DIVERGED_MARGIN_BITS = 1.0


class TrainError(ValueError):
    """Training cannot start as asked; the message says why."""


class NothingLeftToTrain(TrainError):
    """A checkpoint resumed with a step budget it has reached: `done` steps, `asked` in all. The
    CLI says it in its options' words."""

    def __init__(self, done: int, asked: int) -> None:
        from core.abc import plural  # here: the app imports this module ahead, core.abc not yet

        self.done, self.asked = done, asked
        super().__init__(
            f"the checkpoint is already at step {done}, and its recipe ends at step {asked}: "
            f"ask for more than {plural(done, 'step')} in all to train it on"
        )


def divergence(val_bpc: float | None, loss: float, vocab_size: int) -> str | None:
    """Why a finished run's model is worse than guessing each character uniformly, or None: a
    diverged run finishes and saves like any other. Judged by the validation figure, else by
    the training loss (nats); the CLI and the app's Train screen both say it."""
    if vocab_size < 2:
        return None
    guess = math.log2(vocab_size)
    what, bpc = ("validation", val_bpc) if val_bpc is not None else ("loss", loss / math.log(2))
    if math.isfinite(bpc) and bpc <= guess + DIVERGED_MARGIN_BITS:
        return None
    figure = f"{bpc:.1f} bits/char" if math.isfinite(bpc) else "not a finite number"
    return (
        f"the run diverged ({what} {figure}, worse than guessing among {vocab_size} characters "
        f"at {guess:.1f}): try a lower learning rate"
    )


@dataclass(frozen=True)
class TrainEvent:
    kind: str  # "step", "eval", "checkpoint", "paused", "resumed", "warning", "done"
    step: int
    total_steps: int | None  # None when a wall-clock budget decides the end
    loss: float
    smooth_loss: float
    lr: float
    chars_per_sec: float
    elapsed_s: float
    eta_s: float | None
    val_bpc: float | None = None
    best_val_bpc: float | None = None
    checkpoint: str | None = None
    message: str = ""
    threads: int = 0  # CPU threads torch trains with at this point


@dataclass(frozen=True)
class TrainResult:
    step: int
    stopped: bool  # ended by stop() rather than by reaching its steps / minutes
    loss: float
    val_bpc: float | None
    best_val_bpc: float | None
    elapsed_s: float
    chars_per_sec: float
    checkpoint: Path | None
    best_checkpoint: Path | None
    checkpoint_step: int | None = None  # the step `checkpoint` holds (the last save that worked)
    diverged: str | None = None  # core.train_events.divergence's warning, where it has one


class TrainControl:
    """Thread-safe pause / resume / stop flags, checked by the loop between steps."""

    def __init__(self) -> None:
        self._running = threading.Event()
        self._running.set()
        self._stop = threading.Event()
        self.hurry = False  # stopping because the process is ending: save, skip the last eval

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self, hurry: bool = False) -> None:
        """Stop between steps; the loop saves a checkpoint on its way out. `hurry` (the app's
        terminal has gone, and the process ends within seconds) skips the final evaluation."""
        self.hurry = self.hurry or hurry
        self._stop.set()
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def wait_while_paused(self) -> None:
        self._running.wait()
