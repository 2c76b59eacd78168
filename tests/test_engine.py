"""torch's own process (core.engine), driven as the app drives it: the same tune for the same
seed as in-process sampling (the CLI's), cancellation, errors said as sentences, and what happens
to requests when the process goes."""

from __future__ import annotations

import queue
from pathlib import Path

import pytest

from core.engine import (
    CheckpointRead,
    Chunk,
    Engine,
    Failed,
    LoadModel,
    ModelReady,
    ReadCheckpoint,
    Reply,
    Request,
    Sample,
    Sampled,
    Start,
    Started,
)
from core.sample_options import SampleOptions
from tests.app_helpers import make_checkpoint

TIMEOUT = 60.0


class Replies:
    """Each request's replies, in order, waited for from the test's thread."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.got: queue.SimpleQueue[Reply] = queue.SimpleQueue()

    def send(self, request: Request) -> int:
        return self.engine.request(request, self.got.put)

    def next(self) -> Reply:
        return self.got.get(timeout=TIMEOUT)

    def final(self) -> tuple[list[Reply], Reply]:
        """The replies up to and with the request's last."""
        before: list[Reply] = []
        while True:
            reply = self.next()
            if not isinstance(reply, Chunk):
                return before, reply
            before.append(reply)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("engine") / "small.pt", hidden=48)


def test_the_engine_samples_what_the_cli_samples_and_cancels(model: Path, tmp_path: Path) -> None:
    from core.generation import load_generator

    engine = Engine()
    replies = Replies(engine)
    try:
        replies.send(Start())
        assert isinstance(replies.next(), Started)
        replies.send(LoadModel(model))
        ready = replies.next()
        assert isinstance(ready, ModelReady)
        assert ready.meta.path == model and ready.meta.step == 120
        options = SampleOptions(seed=7, max_chars=300, grammar=True)
        replies.send(Sample(options, chunk_interval=0.0))
        chunks, done = replies.final()
        assert isinstance(done, Sampled) and not done.cancelled
        in_process = "".join(load_generator(model).sampler.stream(options))
        streamed = "".join(c.text for c in chunks if isinstance(c, Chunk))
        assert done.text == in_process == streamed

        endless = SampleOptions(seed=8, max_chars=100_000, stop_at_tune_end=False)
        rid = replies.send(Sample(endless, chunk_interval=0.0))
        assert isinstance(replies.next(), Chunk)
        engine.cancel(rid)
        _, done = replies.final()
        assert isinstance(done, Sampled) and done.cancelled and len(done.text) < 100_000

        stranger = tmp_path / "notes.pt"
        stranger.write_text("not a checkpoint", encoding="utf-8")
        replies.send(LoadModel(stranger))  # refused: the model in use stays
        refused = replies.next()
        assert isinstance(refused, Failed) and not refused.lost
        replies.send(Sample(options, chunk_interval=0.0))
        _, again = replies.final()
        assert isinstance(again, Sampled) and again.text == in_process
        # With fallbacks (the app's defaults at start): the first that loads, and what it passed.
        other = tmp_path / "other.pt"
        other.write_bytes(b"")
        replies.send(LoadModel(stranger, (other, model)))
        ready = replies.next()
        assert isinstance(ready, ModelReady) and ready.path == model
        assert ready.passed_over == (f"passed over {stranger}: not a folkgen checkpoint",
                                     f"passed over {other}: empty file, not a checkpoint")  # fmt: skip
        replies.send(LoadModel(stranger, (other,)))  # none loads: the first one's error
        refused = replies.next()
        assert isinstance(refused, Failed) and refused.error.startswith(f"{stranger}: not a ")
        replies.send(ReadCheckpoint(stranger))
        failed = replies.next()
        assert isinstance(failed, Failed) and not failed.lost
        assert failed.error.startswith(f"{stranger}: ")  # a sentence, not a traceback
        replies.send(ReadCheckpoint(model))
        read = replies.next()
        assert isinstance(read, CheckpointRead) and read.meta.model_config.hidden_size == 48
    finally:
        engine.close()
    assert engine.process.returncode is not None


def test_requests_fail_as_lost_when_the_engine_goes(model: Path) -> None:
    lost: list[str] = []
    engine = Engine(on_lost=lost.append)
    replies = Replies(engine)
    replies.send(Start())
    replies.send(LoadModel(model))
    assert isinstance(replies.next(), Started) and isinstance(replies.next(), ModelReady)
    endless = SampleOptions(seed=8, max_chars=100_000, stop_at_tune_end=False)
    replies.send(Sample(endless, chunk_interval=0.0))
    assert isinstance(replies.next(), Chunk)
    engine.process.kill()
    _, failed = replies.final()
    assert isinstance(failed, Failed) and failed.lost
    assert "killed by SIGKILL" in failed.error
    assert lost == [failed.error]
    replies.send(Start())  # after it: at once, the same way
    again = replies.next()
    assert isinstance(again, Failed) and again.lost
    engine.close()


class Cycle:
    me: object = None


def test_a_loaded_model_is_prepared_once_the_engine_is_idle(model: Path) -> None:
    """After a model loads, the engine makes its grammar (Generator.prepare) where no request
    comes for PREPARE_AFTER seconds, not while requests keep coming, and freezes what it holds
    out of the garbage collector's sight, freeing first what an earlier model left frozen."""
    import gc
    import threading
    import weakref
    from multiprocessing import Pipe

    from core.engine import PREPARE_AFTER, Served, _next_request
    from core.generation import load_generator

    app_end, engine_end = Pipe()
    served = Served(engine_end)
    requests: queue.SimpleQueue[tuple[int, Request] | None] = queue.SimpleQueue()
    busy = load_generator(model)
    served.unprepared = busy
    requests.put((1, ReadCheckpoint(model)))
    assert _next_request(requests, served) == (1, ReadCheckpoint(model))
    assert busy.sampler._grammar is None and served.unprepared is busy  # a request came first

    idle = load_generator(model)
    served.unprepared = idle
    earlier = Cycle()  # what an earlier model left: frozen, then dropped in a reference cycle
    earlier.me = earlier
    gone = weakref.ref(earlier)
    gc.freeze()
    del earlier
    later = threading.Timer(PREPARE_AFTER + 0.5, requests.put, [(2, ReadCheckpoint(model))])
    later.start()
    try:
        assert _next_request(requests, served) == (2, ReadCheckpoint(model))
        assert gc.get_freeze_count() > 0  # what the engine holds, out of the collector's sight
        assert gone() is None
    finally:
        gc.unfreeze()  # this is pytest's process, not an engine's
    assert idle.sampler._grammar is not None and served.unprepared is None
    requests.put(None)  # the app has gone
    assert _next_request(requests, served) is None
    app_end.close()
    engine_end.close()
