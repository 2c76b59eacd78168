"""The train and generate screens' work, done in torch's processes (core.engine) and reported to
the screens through messages.

A training run's engine reports a few times a second (and at once for every event worth seeing:
eval, checkpoint, pause, warning); the job keeps the loss history and posts a `TrainProgress`
with it. Sampling streams its text in chunks every ~30 ms. Replies arrive on the engine's reader
thread; post_message is thread-safe, so nothing here waits on the event loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from textual.dom import DOMNode
from textual.message import Message

from core.engine import (
    Chunk,
    Engine,
    Failed,
    Progress,
    Reply,
    Sample,
    Sampled,
    Train,
    Trained,
)
from core.train_events import TrainControl
from folkgen_tui.widgets.loss_chart import bucket_means

if TYPE_CHECKING:
    from core.checkpoint_meta import CheckpointMeta
    from core.corpus import Corpus
    from core.presets import ModelConfig, TrainConfig
    from core.sample_options import SampleOptions
    from core.train_events import TrainEvent, TrainResult

CHUNK_INTERVAL = 0.03  # seconds between streamed text chunks
SPARK_POINTS = 400  # loss points handed to a sparkline (bucket means of the whole history)


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


class EngineControl(TrainControl):
    """The job's pause / resume / stop: kept here (the screens read it) and sent to the run."""

    def __init__(self) -> None:
        super().__init__()
        self.engine: Engine | None = None
        self.request = 0

    def _send(self, action: str) -> None:
        if self.engine is not None and self.request:
            self.engine.control(self.request, action)

    def pause(self) -> None:
        super().pause()
        self._send("pause")

    def resume(self) -> None:
        super().resume()
        self._send("resume")

    def stop(self, hurry: bool = False) -> None:
        super().stop(hurry)
        self._send("hurry" if hurry else "stop")


@dataclass
class TrainJob:
    """One training run in an engine of its own: its settings, its control, its reports."""

    target: DOMNode  # the screen that receives the messages
    corpus: Corpus
    model_config: ModelConfig
    train_config: TrainConfig
    checkpoint_path: Path
    resume: CheckpointMeta | None = None
    new_vocab: bool = False  # `resume` carried over to the corpus's characters
    control: EngineControl = field(default_factory=EngineControl)
    engine: Engine | None = None
    losses: list[float] = field(default_factory=list)
    smooth: list[float] = field(default_factory=list)
    last_event: TrainEvent | None = None
    finished: bool = False
    error: str | None = None  # why it ended without a result (it may never have started)

    @property
    def running(self) -> bool:
        return self.engine is not None and not self.finished

    @property
    def paused(self) -> bool:
        return bool(self.control.paused) and self.running

    def start(self, engine: Engine) -> None:
        """Train in `engine` (a training engine: its process ends with the run)."""
        self.engine = self.control.engine = engine
        resume = self.resume.path if self.resume is not None else None
        request = Train(
            self.corpus, self.model_config, self.train_config, self.checkpoint_path, resume,
            self.new_vocab,
        )
        self.control.request = engine.request(request, self._on_reply)

    async def stop_and_wait(self) -> None:
        """Stop (the run saves a checkpoint on its way out) and wait for it to end."""
        self.control.stop()
        while self.running:
            await asyncio.sleep(0.02)

    def _on_reply(self, reply: Reply) -> None:
        """On the engine's reader thread."""
        if isinstance(reply, Progress):
            self.losses.extend(reply.losses)
            self.smooth.extend(reply.smooth)
            self.last_event = reply.event
            self.target.post_message(
                TrainProgress(
                    reply.event,
                    bucket_means(self.losses, SPARK_POINTS),
                    bucket_means(self.smooth, SPARK_POINTS),
                )
            )
            return
        if isinstance(reply, Trained):
            message = TrainFinished(reply.result, None, self.checkpoint_path)
        else:
            error = reply.error if isinstance(reply, Failed) else f"unexpected reply {reply!r}"
            message = TrainFinished(None, error, self.checkpoint_path)
            self.error = error
        # Finished before the message is posted: its handler reads `running` (on the app's thread)
        # and, the other way round, could show "Stopping…" for good.
        self.finished = True  # its engine ends by itself (core.engine)
        self.target.post_message(message)


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


@dataclass
class TuneStream:
    """One tune being sampled by the model's engine, posting its text to `target` in chunks."""

    target: DOMNode
    run: int
    engine: Engine
    request: int = 0
    ended: bool = False

    @classmethod
    def start(
        cls,
        target: DOMNode,
        run: int,
        engine: Engine,
        options: SampleOptions,
        threads: int | None = None,
    ) -> TuneStream:
        """`threads` sets the engine's torch threads (1 while a training run holds the cores)."""
        stream = cls(target, run, engine)
        stream.request = engine.request(Sample(options, threads, CHUNK_INTERVAL), stream._on_reply)
        return stream

    def cancel(self) -> None:
        """Stop it; a SampleDone (cancelled) follows, which the screen ignores."""
        if not self.ended:
            self.engine.cancel(self.request)

    def _on_reply(self, reply: Reply) -> None:
        if isinstance(reply, Chunk):
            self.target.post_message(SampleChunk(self.run, reply.text))
            return
        self.ended = True
        if isinstance(reply, Sampled):
            done = SampleDone(self.run, reply.text, reply.seconds, reply.cancelled)
            self.target.post_message(done)
        elif isinstance(reply, Failed):
            self.target.post_message(SampleFailed(self.run, reply.error))
