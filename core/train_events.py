"""What a training run reports and how it is steered (pause, resume, stop), without torch: the
app's process reads these from the engine's that trains (core/engine.py)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path


class TrainError(ValueError):
    """Training cannot start as asked; the message says why."""


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
