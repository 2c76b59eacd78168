"""folkgen-tui on a real pseudo-terminal, for the app benches: start it, write keys, and wait for
words to appear in what it draws (escape sequences removed)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import select
import signal
import struct
import sys
import termios
import time
from pathlib import Path

BIN = Path(sys.executable).parent
ANSI = re.compile(rb"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>]")
POLL = 0.05  # seconds a look for output waits at most (it returns as soon as some comes)
GONE_WITHIN = 5.0  # seconds close() waits for the app's processes to end
ENDING_SIGNALS = {signal.SIGHUP, signal.SIGTERM, signal.SIGINT}  # a terminal's end sends these
TAB, ENTER, UP, DOWN, ESC, CTRL_U = b"\t", b"\r", b"\x1b[A", b"\x1b[B", b"\x1b", b"\x15"


class Terminal:
    """One run of folkgen-tui (or `argv`) at `cols` x `rows`, with FOLKGEN_HOME=home (and
    extra env)."""

    def __init__(
        self, home: str, cols: int = 100, rows: int = 32, env: dict[str, str] | None = None,
        argv: list[str] | None = None, signals: str = "inherited",
    ) -> None:  # fmt: skip
        """`signals`: how the program starts with the signals a terminal's end sends (SIGHUP,
        SIGTERM, SIGINT): "inherited" from this process (a CI runner may ignore SIGHUP: a fork
        inherits that, and exec keeps it), "default" and unblocked (as a terminal window starts
        its shell), SIGHUP "ignored" (as under nohup) or all "blocked"."""
        argv = argv or [str(BIN / "folkgen-tui")]
        self.started = time.perf_counter()
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            if signals != "inherited":
                for sig in ENDING_SIGNALS:
                    signal.signal(sig, signal.SIG_DFL)
                if signals == "ignored":
                    signal.signal(signal.SIGHUP, signal.SIG_IGN)
                block = signal.SIG_BLOCK if signals == "blocked" else signal.SIG_UNBLOCK
                signal.pthread_sigmask(block, ENDING_SIGNALS)
            # COLUMNS/LINES win over the pty's size (shutil.get_terminal_size), and pytest's
            # process has COLUMNS=80: without these the app would run at 80 columns under pytest.
            os.environ.update(
                FOLKGEN_HOME=home, TERM="xterm-256color", COLUMNS=str(cols), LINES=str(rows)
            )
            os.environ.update(env or {})
            os.execv(argv[0], argv)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        # What was drawn, escape codes taken out; grown in place and searched from where the
        # last look ended: copying and scanning it all at every look (every 2 ms) took a core
        # from the app it measures once a training run had drawn a few hundred kB.
        self.text = bytearray()
        self._partial = b""  # the start of an escape code that the next read completes

    def read(self, timeout: float) -> None:
        if select.select([self.fd], [], [], timeout)[0]:
            try:
                data = self._partial + os.read(self.fd, 1 << 20)
            except OSError:
                time.sleep(timeout)
                return
            # An escape code cut by the end of a read waits for the rest: taken out in two
            # pieces, it left its tail in the text, amid a marker at times (a wait then failed).
            # (A true-colour code for fore- and background is ~33 bytes: 64 holds any Textual writes.)
            cut = data.rfind(b"\x1b")
            if cut >= 0 and len(data) - cut < 64 and not ANSI.match(data, cut):
                data, self._partial = data[:cut], data[cut:]
            else:
                self._partial = b""
            self.text += ANSI.sub(b"", data)

    def wait_for(self, marker: bytes, timeout: float = 60.0, since: int = 0) -> float:
        """Seconds until `marker` appears in what was drawn after offset `since`."""
        t0 = time.perf_counter()
        start = since
        while self.text.find(marker, start) < 0:
            start = max(since, len(self.text) - len(marker) + 1)
            if time.perf_counter() - t0 > timeout:
                tail = self.text[-400:].decode(errors="replace")
                raise TimeoutError(f"{marker!r} not shown after {timeout:g} s; last: {tail!r}")
            self.read(POLL)
        return time.perf_counter() - t0

    def keys(self, *keys: bytes, gap: float = 0.15) -> None:
        """Write keys one by one, reading the screen for `gap` seconds after each."""
        for key in keys:
            os.write(self.fd, key)
            self.idle(gap)

    def idle(self, seconds: float) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            self.read(min(0.05, max(0.0, end - time.perf_counter())))

    def rss_mb(self) -> float:
        """The app's memory with its descendants' (the spawner and the engines it forked, where
        the model and training live: core/spawner.py, core/engine.py), as proportional set
        size: pages the engines share with the spawner they were forked from count once."""
        from folkgen_tui.lifeline import child_pids

        total, todo = 0, [self.pid]
        while todo:
            pid = todo.pop()
            kb = _field(f"/proc/{pid}/smaps_rollup", "Pss:")
            if kb is None and pid == self.pid:
                raise RuntimeError("no Pss")
            total += kb or 0
            todo.extend(child_pids(pid))
        return total / 1024

    hang_up_at_end = ""  # how the app took SIGHUP as `end` hung up on it (signal_state)

    def end(self, how: str) -> None:
        """End the app's terminal: "close" closes its other end (as tmux and terminal windows
        do), or a signal by name (SIGHUP, SIGTERM, SIGINT) is sent to the app."""
        if how in ("close", "SIGHUP"):
            self.hang_up_at_end = signal_state(self.pid, signal.SIGHUP)
        if how == "close":
            os.close(self.fd)
            self.fd = -1
        else:
            os.kill(self.pid, getattr(signal, how))

    def ended_well(self, status: int) -> bool:
        """The app, given wait `status`, ended as it should after `end`: with status 0, or
        by the hang-up itself where it came before the app's watch was in (SIGHUP at its
        default: a slow start, under load), as it ends any program, with nothing to save yet."""
        if self.hang_up_at_end == "default" and os.WIFSIGNALED(status):
            return os.WTERMSIG(status) == signal.SIGHUP
        return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0

    def wait_gone(self, timeout: float) -> tuple[float, int] | None:
        """(seconds until the app's process ended, its wait status), or None if it still runs
        after `timeout`, reading what it draws meanwhile (a full pty would block it)."""
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < timeout:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.pid = 0
                return time.perf_counter() - t0, status
            if self.fd >= 0:
                self.read(0.01)
            else:
                time.sleep(0.01)
        return None

    def close(self) -> None:
        """End the app at once, with the processes it started: its torch spawner and engines run
        in sessions of their own, so killing the app alone left them running, and one still
        importing torch took a core for ~0.5-1 s of the next start (early_keys timed its keys
        against two torch imports, where a person's start has one)."""
        if self.pid:
            tree = descendants(self.pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.pid = 0
            tree += [pid for parent in tree for pid in descendants(parent) if pid not in tree]
            for pid in tree:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            until = time.monotonic() + GONE_WITHIN
            while any(_running(pid) for pid in tree) and time.monotonic() < until:
                time.sleep(0.005)
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def descendants(pid: int) -> list[int]:
    """The processes below `pid`: its children, theirs, and so on."""
    from folkgen_tui.lifeline import child_pids

    found: list[int] = []
    todo = [pid]
    while todo:
        for child in child_pids(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def _running(pid: int) -> bool:
    """`pid` is a process that has not ended (a zombie has: its parent reaps it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def adopt_orphans() -> None:
    """Make this process the subreaper of what it starts (Linux): a child process that an app
    leaves behind is re-parented here instead of to init, so `children()` finds it."""
    import ctypes

    PR_SET_CHILD_SUBREAPER = 36
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def children() -> dict[int, str]:
    """This process's child processes and their command names."""
    from folkgen_tui.lifeline import child_pids

    found = {}
    for pid in child_pids():
        with contextlib.suppress(OSError), open(f"/proc/{pid}/comm") as f:
            found[pid] = f.read().strip()
    return found


def _field(path: str, name: str) -> int | None:
    """A number field of a /proc file such as /proc/PID/status (kB for memory); None when the
    process has gone."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(name):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def signal_state(pid: int, sig: int) -> str:
    """How process `pid` takes signal `sig` now, from its masks in /proc: "blocked", "caught"
    (a handler of its own), "ignored" or "default"; "gone" once it has gone."""
    masks: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                name, _, value = line.partition(":")
                if name in ("SigBlk", "SigCgt", "SigIgn"):
                    masks[name] = int(value, 16) >> (sig - 1) & 1
    except OSError:
        return "gone"
    if len(masks) < 3:
        return "gone"
    for name, state in (("SigBlk", "blocked"), ("SigCgt", "caught"), ("SigIgn", "ignored")):
        if masks[name]:
            return state
    return "default"
