"""The one place verovio runs: a child process that turns ABC text into SVG pages.

verovio is not thread-safe and crashes (SIGSEGV) on some malformed ABC ("[[[", "]]", text with
no header); in the app's process that would take the whole app down. So its toolkit lives in a
child (`python -m core.engraver`) that answers one JSON line per request; the parent sends
requests one at a time under a lock and starts a new child when one dies. Nothing here imports
verovio in the caller's process.
"""

from __future__ import annotations

import atexit
import json
import select
import signal
import subprocess
import sys
import threading
import time
from typing import IO, Any

from core.abc import MIB, Limits, SoundError, _limiter

ENGRAVE_TIMEOUT = 20.0  # a reel takes ~50 ms; this bounds a pathological tune
START_TIMEOUT = 20.0  # python + verovio's import and fonts: ~0.1 s when idle
# verovio needs ~150 MB of address space for a tune; a hostile one is stopped at this bound.
ENGRAVER_LIMITS = Limits(memory=1024 * MIB, file_size=MIB)


class EngraverCrashed(SoundError):
    """verovio ended its process (a crash, or a limit) while reading the tune."""


class EngraverTimeout(SoundError):
    """verovio took longer than ENGRAVE_TIMEOUT on one tune."""


class _Engraver:
    """The parent's handle on the child; `engrave` is safe to call from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "core.engraver"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # verovio's warnings must never reach the app's screen
            start_new_session=True,  # Ctrl+C in a terminal is for the parent
            preexec_fn=_limiter(ENGRAVER_LIMITS),
        )
        return self._proc

    def engrave(self, abc: str, options: dict[str, Any]) -> list[str]:
        """SVG pages of one tune; EngraverCrashed when verovio dies on it."""
        with self._lock:
            proc = self._start()
            assert proc.stdin is not None and proc.stdout is not None
            try:
                proc.stdin.write(json.dumps({"abc": abc, "options": options}).encode() + b"\n")
                proc.stdin.flush()
            except BrokenPipeError:
                raise self._died(proc) from None
            line = _read_line(proc.stdout, ENGRAVE_TIMEOUT)
            if line is None:
                self._stop(proc)
                raise EngraverTimeout(f"verovio took over {ENGRAVE_TIMEOUT:g} s on this tune")
            if not line:
                raise self._died(proc)
            reply = json.loads(line)
            pages: list[str] = reply["pages"]
            return pages

    def _died(self, proc: subprocess.Popen[bytes]) -> EngraverCrashed:
        rc = proc.wait()
        self._proc = None
        how = f"signal {-rc}" if rc < 0 else f"exit status {rc}"
        return EngraverCrashed(f"verovio crashed on it: {how}")

    def _stop(self, proc: subprocess.Popen[bytes]) -> None:
        proc.kill()
        proc.wait()
        self._proc = None

    def close(self) -> None:
        with self._lock:
            if self._proc is not None:
                self._stop(self._proc)


def _read_line(stream: IO[bytes], timeout: float) -> bytes | None:
    """One line from the child, b"" when it has gone, None when none came in time."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([stream], [], [], left)
        if ready:
            return stream.readline()


ENGRAVER = _Engraver()
atexit.register(ENGRAVER.close)


# --- the child ----------------------------------------------------------------------------------


def serve() -> None:
    """Answer {"abc", "options"} lines with {"pages": [svg, ...]} lines until stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import verovio

    verovio.enableLog(verovio.LOG_OFF)
    toolkit = verovio.toolkit()
    for line in sys.stdin.buffer:
        request = json.loads(line)
        toolkit.resetOptions()
        toolkit.setOptions({"inputFrom": "abc", **request["options"]})
        pages: list[str] = []
        if toolkit.loadData(request["abc"]):
            pages = [toolkit.renderToSVG(n) for n in range(1, toolkit.getPageCount() + 1)]
        sys.stdout.write(json.dumps({"pages": pages}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    serve()
