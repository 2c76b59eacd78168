"""Time from launch to the first frame of folkgen-tui in a real pseudo-terminal (80x24), and to
the moment torch and the model are loaded in the background. Target: first frame < 1 s."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import sys
import tempfile
import termios
import time
from pathlib import Path

APP = Path(sys.executable).with_name("folkgen-tui")


def measure(home: str) -> tuple[float | None, float | None]:
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.update(FOLKGEN_HOME=home, TERM="xterm-256color")
        os.execv(str(APP), [str(APP)])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    t0 = time.perf_counter()
    buf = b""
    first = ready = None
    while time.perf_counter() - t0 < 20:
        if select.select([fd], [], [], 0.01)[0]:
            try:
                buf += os.read(fd, 65536)
            except OSError:
                break
            if first is None and b"Dataset" in buf:
                first = time.perf_counter() - t0
            if b"model default" in buf or b"no model yet" in buf:
                ready = time.perf_counter() - t0
                break
    os.kill(pid, signal.SIGTERM)
    os.waitpid(pid, 0)
    return first, ready


def main() -> None:
    with tempfile.TemporaryDirectory() as home:
        for _ in range(3):
            first, ready = measure(home)
            shown = f"{first:.2f} s" if first else "not seen"
            verdict = "ok" if first and first < 1 else "MISSED"
            loaded = f"{ready:.2f} s" if ready else "not seen"
            print(f"first frame {shown} (target < 1 s: {verdict}); torch + model ready {loaded}")


if __name__ == "__main__":
    main()
