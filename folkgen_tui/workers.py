"""Background work of the train and generate screens, reporting through throttled messages.

Training calls back once per step (thousands a second for small models); the job keeps the loss
history on its own thread and posts a `TrainProgress` at most a few times a second, plus one for
every event worth seeing at once (eval, checkpoint, pause, warning). Sampling yields one
character at a time; `stream_tune` posts the text in chunks every ~30 ms. Both check for
cancellation between steps / characters, so quitting never waits on them.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from textual.dom import DOMNode
from textual.message import Message
from textual.worker import Worker, get_current_worker

from folkgen_tui.widgets.loss_chart import bucket_means

if TYPE_CHECKING:  # core's torch modules load on a worker, after the first frame
    from core.checkpoint import Checkpoint
    from core.corpus import Corpus
    from core.presets import ModelConfig, TrainConfig
    from core.sample import SampleOptions, Sampler
    from core.train import TrainControl, TrainEvent, TrainResult

PROGRESS_INTERVAL = 0.25  # seconds between step reports
TRAINING_NICE = 5  # the training thread's niceness (the UI thread's is 0)
CHUNK_INTERVAL = 0.03  # seconds between streamed text chunks
SPARK_POINTS = 400  # loss points handed to a sparkline (bucket means of the whole history)


P = ParamSpec("P")
R = TypeVar("R")


def own_thread(fn: Callable[P, R]) -> Callable[P, R]:
    """Run a thread worker's function on a thread made for the call and ended with it (the pool
    thread Textual gives the worker waits for it). For every worker that uses torch.

    torch's OpenMP keeps a team of helper threads for each thread that ran a parallel operation,
    for as long as that thread lives. Textual's thread workers run on a pool whose threads live
    on, so the teams of earlier work (loading a model, sampling) stayed; with more OpenMP
    threads than cores, OpenMP stops spinning between operations and sleeps instead, and
    training in the app ran at ~0.8x the speed of `folkgen train` (bench/app_training.py)."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        context = contextvars.copy_context()  # the worker, the app: get_current_worker() works
        results: list[R] = []
        errors: list[BaseException] = []

        def target() -> None:
            try:
                results.append(context.run(fn, *args, **kwargs))
            except BaseException as e:  # handed to the worker, which reports it
                errors.append(e)

        thread = threading.Thread(target=target, name=f"folkgen-{fn.__name__}", daemon=True)
        thread.start()
        thread.join()
        if errors:
            raise errors[0]
        return results[0]

    return run


# --- training ----------------------------------------------------------------------------------


@dataclass
class TrainProgress(Message):
    event: TrainEvent
    losses: list[float]
    smooth: list[float]


@dataclass
class TrainFinished(Message):
    result: TrainResult | None  # None when training failed
    error: str | None
    checkpoint_path: Path | None


@dataclass
class TrainJob:
    """One training run: its settings, its control, and the reporting from its thread."""

    target: DOMNode  # the screen that receives the messages
    corpus: Corpus
    model_config: ModelConfig
    train_config: TrainConfig
    checkpoint_path: Path
    resume: Checkpoint | None = None
    interval: float = PROGRESS_INTERVAL
    control: TrainControl = field(init=False)  # made in __post_init__
    worker: Worker[None] | None = None
    losses: list[float] = field(default_factory=list)
    smooth: list[float] = field(default_factory=list)
    last_event: TrainEvent | None = None
    finished: bool = False
    _last_post: float = 0.0

    def __post_init__(self) -> None:
        from core.train import TrainControl  # torch is loaded before a job is made

        self.control = TrainControl()

    @property
    def running(self) -> bool:
        return self.worker is not None and not self.finished

    @property
    def paused(self) -> bool:
        return bool(self.control.paused) and self.running

    def start(self) -> Worker[None]:
        self.worker = self.target.run_worker(
            self.run, name="training", group="train", thread=True, exit_on_error=False
        )
        return self.worker

    async def stop_and_wait(self) -> None:
        """Stop (the loop saves a checkpoint on its way out) and wait for the thread."""
        self.control.stop()
        if self.worker is not None:
            await self.worker.wait()

    @own_thread
    def run(self) -> None:
        """The worker thread: train, reporting through messages; never raises."""
        worker = get_current_worker()
        # Training keeps every core busy; at a lower priority, the UI thread gets a core as soon
        # as it wakes (a key answered in a median of 17 ms instead of 21, the 90th percentile
        # 25 instead of 40, measured here). Linux niceness is per thread, and torch's OpenMP
        # helpers, started from this thread, inherit it; the thread ends with the run.
        if sys.platform.startswith("linux"):  # elsewhere the id is not a thread's: no change
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), TRAINING_NICE)
        try:
            result = self._train(worker)
        finally:
            # The checkpoint resumed from holds the model's tensors; the job outlives the run
            # (and the garbage collector does not look at long-lived objects), so drop it.
            self.resume = None
        self.finished = True
        if isinstance(result, str):
            self.target.post_message(TrainFinished(None, result, self.checkpoint_path))
        else:
            self.target.post_message(TrainFinished(result, None, self.checkpoint_path))

    def _train(self, worker: Worker[None]) -> TrainResult | str:
        """core.train.train's result, or the sentence saying why it failed."""
        from core.checkpoint import CheckpointError
        from core.train import TrainError, train

        try:
            return train(
                self.corpus,
                self.model_config,
                self.train_config,
                checkpoint_path=self.checkpoint_path,
                resume=self.resume,
                on_event=lambda e: self.on_event(e, worker),
                control=self.control,
            )
        except (TrainError, CheckpointError, ValueError) as e:
            return str(e)
        except Exception as e:  # out of memory, a torch error: a notice, not a traceback
            return f"training failed: {type(e).__name__}: {e}"

    def on_event(self, event: TrainEvent, worker: Worker[None]) -> None:
        """Called by the training loop on its thread, once per step and per event."""
        if event.kind == "step":
            self.losses.append(event.loss)
            self.smooth.append(event.smooth_loss)
        self.last_event = event
        if worker.is_cancelled and not self.control.stopped:
            self.control.stop()  # the app is closing: stop, which saves a checkpoint
        now = time.monotonic()
        if event.kind == "step" and now - self._last_post < self.interval:
            return
        self._last_post = now
        self.target.post_message(
            TrainProgress(
                event,
                bucket_means(self.losses, SPARK_POINTS),
                bucket_means(self.smooth, SPARK_POINTS),
            )
        )


# --- sampling ----------------------------------------------------------------------------------


@dataclass
class SampleChunk(Message):
    run: int
    text: str


@dataclass
class SampleDone(Message):
    run: int
    text: str  # the generated characters (without the prompt)
    seconds: float
    cancelled: bool


@dataclass
class SampleFailed(Message):
    run: int
    error: str


@own_thread
def stream_tune(
    target: DOMNode, run: int, sampler: Sampler, options: SampleOptions, threads: int | None = None
) -> None:
    """Worker thread: sample one tune, posting chunks of text; stops when cancelled. `threads`
    sets this thread's torch threads (1 while a training run holds the cores)."""
    worker = get_current_worker()
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    parts: list[str] = []
    pending: list[str] = []
    last = t0
    try:
        for ch in sampler.stream(options):
            if worker.is_cancelled:
                target.post_message(SampleDone(run, "".join(parts), time.perf_counter() - t0, True))
                return
            parts.append(ch)
            pending.append(ch)
            now = time.perf_counter()
            if now - last >= CHUNK_INTERVAL:
                target.post_message(SampleChunk(run, "".join(pending)))
                pending.clear()
                last = now
    except ValueError as e:  # UnknownCharacters is a ValueError
        target.post_message(SampleFailed(run, str(e)))
        return
    except Exception as e:
        target.post_message(SampleFailed(run, f"sampling failed: {type(e).__name__}: {e}"))
        return
    if pending:
        target.post_message(SampleChunk(run, "".join(pending)))
    target.post_message(SampleDone(run, "".join(parts), time.perf_counter() - t0, False))
