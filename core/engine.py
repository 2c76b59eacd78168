"""torch's own process. The app's model (loading it, sampling tunes, reading checkpoints) and each
training run live in processes of their own (forked by core.spawner, which has imported torch
already), so that the app's process never imports torch: torch's import holds the interpreter
for ~0.5 s at a time, and training holds it for as long as it runs, and a key pressed meanwhile
waited (issue 14). Apart, the app answers keys at once and training runs as fast as
`folkgen train`.

The app sends requests and reads replies over a pipe, as pickled dataclasses (both ends are this
program, started by the app; nothing else writes to it). An engine does one request at a time,
in order, on its main thread; a reader thread takes cancellations and training controls at once.
When the app goes, its end of the pipe closes: a training run stops and saves its checkpoint
(as `q` does), and the engine ends. The engine runs in a session of its own, so that closing the
terminal does not kill it before it has saved.

This module imports no torch itself; the engine's side imports it when it starts."""

from __future__ import annotations

import contextlib
import gc
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, Pipe
from pathlib import Path
from typing import IO, TYPE_CHECKING

from core.spawner import spawner

if TYPE_CHECKING:  # the app imports this module before numpy and the rest are needed
    from core.checkpoint_meta import CheckpointMeta
    from core.corpus import Corpus
    from core.generation import Generator
    from core.presets import ModelConfig, TrainConfig
    from core.sample_options import SampleOptions
    from core.threads import ThreadPolicy
    from core.train_events import TrainControl, TrainEvent, TrainResult

ENGINE_MODULE = "core.engine"
TRAINING_NICE = 5  # a training engine's niceness: the app's process gets a core when it wakes
STEP_REPORT_INTERVAL = 1.0  # seconds between training progress replies (other events at once):
# the app drawing each one takes a training thread's core for a few ms, and the run's other
# thread waits for it at the next operation (its main thread on the Train screen, from /proc:
# 3.8 % of a core at 0.25 s, 2.0 % at 0.5 s; on a 2-core AVX2 Zen 2, 2.7-3.2 % at 0.5 s, ~12 ms
# a frame, with the app training at 0.94-0.98x the CLI)
CHUNK_INTERVAL = 0.03  # seconds between sampled text chunks
POLL_EVERY = 0.01  # seconds between looks for a cancellation while sampling
# Seconds without a request after a model is loaded before the engine makes what its first
# tune would (Generator.prepare): the shipped model is ready ~1.4 s after the app starts, which
# builds its screens ahead until ~1.6 s; its keys then have the cores to themselves.
PREPARE_AFTER = 0.5
ERROR_TAIL = 400  # characters of an engine's last words quoted when it ends unexpectedly


# --- requests (app → engine) -------------------------------------------------------------------


@dataclass(frozen=True)
class Start:
    """Import torch and what the engine's work needs; answered with Started."""

    warm_training: bool = False  # also what a first training step imports (a training engine)


@dataclass(frozen=True)
class LoadModel:
    """Load a checkpoint to generate with (core.generation, as the CLI); answered ModelReady.
    `fallbacks`: where `path` cannot be loaded, the first of these that can (the defaults:
    core.paths.default_models)."""

    path: Path
    fallbacks: tuple[Path, ...] = ()


@dataclass(frozen=True)
class ReadCheckpoint:
    """Read a checkpoint's settings and metrics; answered with CheckpointRead."""

    path: Path


@dataclass(frozen=True)
class Sample:
    """Sample one tune with the loaded model: Chunk replies, then Sampled."""

    options: SampleOptions
    # torch threads: 1 while a training run holds the cores; None: all cores while the machine
    # is quiet, fewer while other processes keep them busy (core.threads), re-checked as it goes
    threads: int | None = None
    chunk_interval: float = CHUNK_INTERVAL


@dataclass(frozen=True)
class Train:
    """Train (or resume `resume`, a checkpoint file): Progress replies, then Trained."""

    corpus: Corpus
    model_config: ModelConfig
    train_config: TrainConfig
    checkpoint_path: Path
    resume: Path | None = None
    new_vocab: bool = False  # `resume` carried over to the corpus's characters (a new model)


@dataclass(frozen=True)
class Cancel:
    """Stop the sampling request `target` (it answers Sampled, cancelled)."""

    target: int


@dataclass(frozen=True)
class Control:
    """Steer the training request `target`: "pause", "resume", "stop" or "hurry" (stop, and skip
    the last evaluation: the app is ending)."""

    target: int
    action: str


# --- replies (engine → app) --------------------------------------------------------------------


@dataclass(frozen=True)
class Started:
    seconds: float  # torch's import and the rest


@dataclass(frozen=True)
class ModelReady:
    meta: CheckpointMeta
    path: Path  # the file loaded: LoadModel's, or one of its fallbacks
    passed_over: tuple[str, ...] = ()  # a line for each file that could not be loaded first


@dataclass(frozen=True)
class CheckpointRead:
    meta: CheckpointMeta


@dataclass(frozen=True)
class Chunk:
    text: str


@dataclass(frozen=True)
class Sampled:
    text: str  # every character generated (without the prompt)
    seconds: float
    cancelled: bool


@dataclass(frozen=True)
class Progress:
    event: TrainEvent
    losses: list[float]  # the step losses since the last Progress
    smooth: list[float]


@dataclass(frozen=True)
class Trained:
    result: TrainResult


@dataclass(frozen=True)
class Failed:
    """The request could not be done; `error` says why, for a person. `lost`: not for anything
    in the request, but because the engine ended (closed, killed) before answering."""

    error: str
    lost: bool = False


Request = Start | LoadModel | ReadCheckpoint | Sample | Train
Reply = Started | ModelReady | CheckpointRead | Chunk | Sampled | Progress | Trained | Failed
FINAL = (Started, ModelReady, CheckpointRead, Sampled, Trained, Failed)  # a request's last reply


# --- the app's side ----------------------------------------------------------------------------


class Engine:
    """The app's end of one engine process. `request` sends a request and calls `on_reply` with
    each of its replies, on the engine's reader thread (post_message is thread-safe); when the
    engine ends, every request still waiting gets a Failed saying so."""

    module = ENGINE_MODULE  # the module run as the engine (tests run a slowed one)

    def __init__(
        self, *, training: bool = False, on_lost: Callable[[str], object] | None = None
    ) -> None:
        """`on_lost` is called (on the reader thread) with why, if the process ends before
        `close` (killed for memory, a crash)."""
        self.on_lost = on_lost
        ours, theirs = Pipe()
        self._conn = ours
        self._log: IO[bytes] = tempfile.TemporaryFile(prefix="folkgen-engine-")  # noqa: SIM115
        argv = ["{fd}", "--app", str(os.getpid())] + (["--training"] if training else [])
        try:
            self.process = spawner().spawn(self.module, argv, [theirs.fileno(), self._log.fileno()])
        finally:
            theirs.close()
        self._lock = threading.Lock()
        self._next_id = 0
        self._waiting: dict[int, Callable[[Reply], None]] = {}
        self._closed = False
        self._reader = threading.Thread(target=self._read, name="folkgen-engine", daemon=True)
        self._reader.start()

    @property
    def alive(self) -> bool:
        return not self._closed and self.process.poll() is None

    def request(self, request: Request, on_reply: Callable[[Reply], None]) -> int:
        """Send `request`; its replies go to `on_reply`. Returns its id (for Cancel, Control)."""
        with self._lock:
            self._next_id += 1
            rid = self._next_id
            self._waiting[rid] = on_reply
            gone = self._closed
            if not gone:
                try:
                    self._conn.send((rid, request))
                except OSError:
                    gone = True
        if gone:
            self._fail(rid, self._ended())
        return rid

    def cancel(self, rid: int) -> None:
        self._send_quietly((0, Cancel(rid)))

    def control(self, rid: int, action: str) -> None:
        self._send_quietly((0, Control(rid, action)))

    def _send_quietly(self, message: tuple[int, object]) -> None:
        with self._lock:
            if not self._closed:
                with contextlib.suppress(OSError):
                    self._conn.send(message)

    def close(self, kill_after: float | None = 0.0) -> None:
        """End the engine: its pipe closes, and it ends. A training run first stops and saves its
        checkpoint: pass None to let it (the process then ends by itself). Otherwise it is
        killed if it has not ended within `kill_after` seconds (it has nothing to save)."""
        with self._lock:
            self._closed = True
            _shut(self._conn)
        if kill_after is None:
            return
        try:
            self.process.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            self.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=2)

    def _read(self) -> None:
        while True:
            try:
                rid, reply = self._conn.recv()
            except (EOFError, OSError):
                break
            with self._lock:
                on_reply = self._waiting.get(rid)
                if isinstance(reply, FINAL):
                    self._waiting.pop(rid, None)
            if on_reply is not None:
                on_reply(reply)
        with self._lock:
            closed_here, self._closed = self._closed, True
            with contextlib.suppress(OSError):
                self._conn.close()
            waiting, self._waiting = self._waiting, {}
        lost = not closed_here and self.on_lost is not None
        why = ""
        if waiting or lost:  # else closed here, or a training engine ended with its run
            why = "torch's process was closed" if closed_here else self._ended()
        self._log.close()
        for on_reply in waiting.values():
            on_reply(Failed(why, lost=True))
        if lost and self.on_lost is not None:
            self.on_lost(why)

    def _fail(self, rid: int, why: str) -> None:
        with self._lock:
            on_reply = self._waiting.pop(rid, None)
        if on_reply is not None:
            on_reply(Failed(why, lost=True))

    def _ended(self) -> str:
        """Why the engine is gone, with its last words."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=2)
        code = self.process.returncode
        try:
            self._log.seek(0, os.SEEK_END)
            size = self._log.tell()
            self._log.seek(max(0, size - ERROR_TAIL))
            said = self._log.read().decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            said = ""
        how = "was closed" if code is None or code == 0 else f"ended ({_exit_reason(code)})"
        return f"torch's process {how}" + (f": …{said[-ERROR_TAIL:]}" if said else "")


def _shut(conn: Connection) -> None:
    """End the pipe both ways, at once: a close alone leaves it open while the reader thread's
    recv holds it, and the engine would not see the app go."""
    try:
        with socket.fromfd(conn.fileno(), socket.AF_UNIX, socket.SOCK_STREAM) as end:
            end.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _exit_reason(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


# --- the engine's side -------------------------------------------------------------------------


@dataclass
class Served:
    """What the engine holds between requests."""

    conn: Connection
    generator: Generator | None = None
    threads: ThreadPolicy | None = None  # sampling's, kept to compare CPU use across requests
    unprepared: Generator | None = None  # loaded, its first tune's needs not made yet
    cancelled: set[int] = field(default_factory=set)
    controls: dict[int, TrainControl] = field(default_factory=dict)
    gone: threading.Event = field(default_factory=threading.Event)

    def send(self, rid: int, reply: Reply) -> None:
        try:
            self.conn.send((rid, reply))
        except OSError:  # the app has gone: the run in hand stops at its next look
            self.gone.set()

    def stopping(self, rid: int) -> bool:
        return rid in self.cancelled or self.gone.is_set()


def serve(conn: Connection) -> None:
    """The engine: requests in order on this thread, until the app's end of the pipe closes."""
    from core.train_events import TrainControl

    served = Served(conn)
    requests: queue.SimpleQueue[tuple[int, Request] | None] = queue.SimpleQueue()

    def read() -> None:
        while True:
            try:
                rid, request = conn.recv()
            except (EOFError, OSError):
                break
            if isinstance(request, Cancel):
                served.cancelled.add(request.target)
            elif isinstance(request, Control):
                _steer(served.controls.get(request.target), request.action)
            else:
                if isinstance(request, Train):  # steerable from now, before it starts
                    served.controls[rid] = TrainControl()
                requests.put((rid, request))
        served.gone.set()
        if not served.controls:  # nothing to save: end now, even mid-import (a model's engine)
            os._exit(0)
        for control in list(served.controls.values()):
            control.stop(hurry=True)  # the app has gone: the run saves, and the engine ends
        requests.put(None)

    threading.Thread(target=read, name="engine-reader", daemon=True).start()
    while (item := _next_request(requests, served)) is not None:
        rid, request = item
        if served.gone.is_set():
            break  # nobody to answer (a run under way saw it: it has saved)
        try:
            reply = _handle(served, rid, request)
        except Exception as e:  # never a traceback for the app to show: a sentence
            reply = Failed(_sentence(e))
        served.send(rid, reply)
        served.controls.pop(rid, None)
        served.cancelled.discard(rid)
        if isinstance(request, Train):
            break  # a training engine ends with its run, and its memory with it


def _next_request(
    requests: queue.SimpleQueue[tuple[int, Request] | None], served: Served
) -> tuple[int, Request] | None:
    """The next request (None: the app has gone). A model loaded since the engine was last idle
    is prepared (Generator.prepare) where no request comes within PREPARE_AFTER seconds, and
    what exists then is frozen out of the garbage collector's sight."""
    if served.unprepared is not None:
        try:
            return requests.get(timeout=PREPARE_AFTER)
        except queue.Empty:
            generator, served.unprepared = served.unprepared, None
            # What lives as long as this model (torch, its weights, then the grammar's table)
            # out of the cyclic collector's sight, as the app does its own (folkgen_tui.process):
            # each full collection, which sampling's allocations set off, walked it all again
            # (and the grammar's making took 70 ms, not 26). What was frozen for a model loaded
            # before is looked at again first, and freed if gone.
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            with contextlib.suppress(Exception):  # its first tune meets it again, and says it
                generator.prepare()
            gc.freeze()
    return requests.get()


def _steer(control: TrainControl | None, action: str) -> None:
    if control is None:
        return
    if action == "pause":
        control.pause()
    elif action == "resume":
        control.resume()
    elif action in ("stop", "hurry"):
        control.stop(hurry=action == "hurry")


def _sentence(e: BaseException) -> str:
    if isinstance(e, ValueError):  # CheckpointError, TrainError…: said for a person already
        return str(e)
    return f"{type(e).__name__}: {e}"


def _handle(served: Served, rid: int, request: Request) -> Reply:
    if isinstance(request, Start):
        return _start(request)
    if isinstance(request, LoadModel):
        from core.generation import load_first_generator  # as the CLI: the same keys, tunes

        # A file that fails keeps the model in use.
        generator, path, passed_over = load_first_generator([request.path, *request.fallbacks])
        served.generator = served.unprepared = generator
        return ModelReady(generator.checkpoint.meta, path, tuple(passed_over))
    if isinstance(request, ReadCheckpoint):
        from core.checkpoint import load_checkpoint

        return CheckpointRead(load_checkpoint(request.path).meta)
    if isinstance(request, Sample):
        return _sample(served, rid, request)
    return _train(served, rid, request)


def _start(request: Start) -> Started:
    t0 = time.perf_counter()
    import torch  # noqa: F401

    import core.generation  # noqa: F401

    if request.warm_training:
        import core.train

        core.train.import_optimizer_modules()
    return Started(time.perf_counter() - t0)


def _sample(served: Served, rid: int, request: Sample) -> Sampled | Failed:
    if served.generator is None:
        return Failed("no model is loaded")
    policy = None
    if request.threads is not None:
        import torch

        torch.set_num_threads(request.threads)
    else:
        # Two threads that wait for each other at every step stall when another process holds
        # a core: one stream of the seed-size model ran at ~170 chars/s instead of ~1,800.
        from core.threads import ThreadPolicy

        policy = served.threads = served.threads or ThreadPolicy()
        policy.apply()
    t0 = last = last_poll = time.perf_counter()
    parts: list[str] = []
    pending: list[str] = []
    for ch in served.generator.sampler.stream(request.options):
        parts.append(ch)
        pending.append(ch)
        now = time.perf_counter()
        if now - last_poll >= POLL_EVERY:
            last_poll = now
            if served.stopping(rid):
                return Sampled("".join(parts), now - t0, cancelled=True)
            if policy is not None:
                policy.maybe_update()
        if now - last >= request.chunk_interval:
            served.send(rid, Chunk("".join(pending)))
            pending.clear()
            last = now
    if pending:
        served.send(rid, Chunk("".join(pending)))
    return Sampled("".join(parts), time.perf_counter() - t0, cancelled=served.stopping(rid))


def _train(served: Served, rid: int, request: Train) -> Trained:
    from core.checkpoint import load_checkpoint
    from core.train import TrainControl, check_training_destination, train

    control = served.controls.get(rid) or TrainControl()
    resumed = None if request.new_vocab else request.resume  # carried over: never written to
    check_training_destination(request.checkpoint_path, resumed=resumed)  # before step 1
    resume = load_checkpoint(request.resume) if request.resume is not None else None
    losses: list[float] = []
    smooth: list[float] = []
    last = 0.0
    latest: TrainEvent | None = None

    def on_event(event: TrainEvent) -> None:
        nonlocal last, latest
        latest = event
        if event.kind == "step":
            losses.append(event.loss)
            smooth.append(event.smooth_loss)
        now = time.monotonic()
        if event.kind == "step" and now - last < STEP_REPORT_INTERVAL:
            return
        last = now
        served.send(rid, Progress(event, losses.copy(), smooth.copy()))
        losses.clear()
        smooth.clear()

    result = train(
        request.corpus, request.model_config, request.train_config,
        checkpoint_path=request.checkpoint_path, resume=resume, on_event=on_event,
        control=control, allow_new_vocab=request.new_vocab,
    )  # fmt: skip
    if losses and latest is not None:  # the steps since the last report
        served.send(rid, Progress(latest, losses, smooth))
    return Trained(result)


def main(argv: list[str]) -> None:
    """`FD --app PID [--training]`: run by the spawner (core.spawner) for Engine."""
    args = list(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the app decides when this ends
    from core import threads

    app = int(args[args.index("--app") + 1])
    threads.count_as_ours(app)  # the app's drawing is not other programs' load
    if "--training" in args and sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.nice(TRAINING_NICE)
    serve(Connection(int(args[0])))
