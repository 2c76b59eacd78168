"""core.spawner: children forked from a process that has imported torch, with the environment
of the moment they are asked for, in sessions of their own, their output where they were told,
their exit statuses reported; a spawner that has gone is replaced, and nothing outlives it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from core.spawner import Child, spawner

PROBE = "tests.spawn_probe"


def spawn(then: str) -> tuple[Child, int, tempfile._TemporaryFileWrapper[bytes]]:
    r, w = os.pipe()
    out = tempfile.NamedTemporaryFile(prefix="spawned-")  # noqa: SIM115
    try:
        child = spawner().spawn(PROBE, ["{fd}", then], [w, out.fileno()])
    finally:
        os.close(w)
    return child, r, out


def seen(r: int) -> dict[str, object]:
    with os.fdopen(r, "rb") as f:
        return dict(json.loads(f.readline()))


def test_a_child_has_the_environment_of_its_request_and_a_session_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spawner()  # started (and its environment taken) before the variable below is set
    monkeypatch.setenv("FOLKGEN_PROBE", "asked-for")
    child, r, out = spawn("3")
    assert seen(r) == {
        "probe": "asked-for",
        "session_leader": True,  # the terminal's hang-up does not reach it
        "stdin_tty": False,
        "torch_preloaded": True,
        "sighup": True,  # the spawner's ignored signals are not inherited
    }
    assert child.wait(timeout=10) == 3
    assert child.pid is not None and child.poll() == 3
    assert Path(out.name).read_text() == "said from the child\n"


def test_kill_wait_and_a_kill_before_the_pid_is_known() -> None:
    child, r, _ = spawn("wait")
    seen(r)
    with pytest.raises(subprocess.TimeoutExpired):
        child.wait(timeout=0.1)
    child.kill()
    assert child.wait(timeout=10) == -signal.SIGKILL
    early, r, _ = spawn("wait")  # killed as soon as it is there
    early.kill()
    assert early.wait(timeout=10) == -signal.SIGKILL
    os.close(r)


def test_a_spawner_killed_is_replaced_and_its_children_are_seen_to_end() -> None:
    child, r, _ = spawn("wait")
    seen(r)
    first = spawner()
    first.process.kill()
    first.process.wait(timeout=10)
    deadline = time.monotonic() + 10
    while not first.gone and time.monotonic() < deadline:
        time.sleep(0.01)
    assert first.gone and child.poll() is None  # orphaned, still running
    assert spawner() is not first
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(timeout=10) == -signal.SIGKILL  # its pid is gone (whoever reaped it)
    again, r, _ = spawn("0")
    seen(r)
    assert again.wait(timeout=10) == 0


def test_the_spawner_ends_with_its_process() -> None:
    """A process that started the spawner exits (here while the spawner is still importing
    torch): the spawner is gone and reaped at once, not left to finish its imports."""
    script = (
        "from core.spawner import spawner\n"
        "print(spawner().process.pid, flush=True)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, cwd=Path(__file__).parent.parent)  # fmt: skip
    assert done.returncode == 0, done.stderr
    pid = int(done.stdout.split()[-1])
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
