"""A module the spawner runs in tests (tests/test_spawner.py): writes what its process looks
like to the descriptor it is given, prints a line to its output, and exits with the status asked
for, or waits to be killed."""

from __future__ import annotations

import json
import os
import signal
import sys


def main(argv: list[str]) -> None:
    fd, then = int(argv[0]), argv[1]
    seen = {
        "probe": os.environ.get("FOLKGEN_PROBE"),
        "session_leader": os.getsid(0) == os.getpid(),
        "stdin_tty": os.isatty(0),
        "torch_preloaded": "torch" in sys.modules,
        "sighup": signal.getsignal(signal.SIGHUP) == signal.SIG_DFL,
    }
    os.write(fd, json.dumps(seen).encode() + b"\n")
    os.close(fd)
    print("said from the child", flush=True)
    if then == "wait":
        signal.pause()
    sys.exit(int(then))
