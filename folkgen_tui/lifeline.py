"""However its terminal ends, the app saves its work and exits: a watch that does not depend on
the UI's event loop, nor on Textual writing to a terminal that is gone.

Closing a terminal (its window, tmux, an SSH link) comes as SIGHUP, as a hang-up on the terminal
with no signal at all, or as the process being sent SIGTERM or SIGINT. Any of them can arrive
while the UI thread is blocked: Textual's shutdown once waited for ever on its writer thread,
which had stopped writing to the dead terminal. So the signals are caught by a handler that only
writes a byte to a socket (`signal.set_wakeup_fd`, done by the C-level handler whatever the main
thread is doing), and a thread of its own waits on that socket and on the terminal. When the
terminal is lost it asks the app to quit as `q` does, finishes the work itself (a training run
stops and saves its checkpoint), ends any child process (abc2midi, timidity), and if the process
is still alive a moment later, restores the terminal's settings and ends it. Standard library
only (core.terminal is too): it is installed before the app's modules are imported. Linux and
other POSIX systems.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import sys
import termios
import threading
import time
from collections.abc import Callable
from typing import Any

from core.terminal import gone_terminal, hung_up

SIGNALS = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)
DEADLINE = 4.5  # seconds from the terminal's end to the process's end, whatever happens
SETTLE = 1.0  # once the work is finished, how long the UI may take to close by itself
POLL = 0.25  # seconds between looks at the terminal when no signal comes
REAP_WITHIN = 0.5  # seconds to wait for killed children to be gone
# What the terminal is given back on a forced exit: the main screen, the cursor, no mouse
# reporting, no bracketed paste (Textual turns these on; its own shutdown turns them off).
RESET = b"\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?1015l\x1b[?2004l\x1b[?25h\x1b[?1049l"


def child_pids(pid: int | None = None) -> list[int]:
    """The direct children of a process (default: this one), from /proc; [] where there is none."""
    pid = pid or os.getpid()
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/children") as f:
                found.extend(int(p) for p in f.read().split())
    return found


def end_children() -> None:
    """Kill this process's children and grandchildren, with their process groups (abc2midi,
    timidity, the spawner and the engines it forked run in sessions of their own, so no signal to
    ours would reach them), and see them reaped: one not reaped outlived the app as a zombie,
    handed to whoever adopts orphans. Grandchildren (core.spawner's engines) go first, reaped by
    their parent, which goes next."""
    until = time.monotonic() + REAP_WITHIN
    children = child_pids()
    grandchildren = [pid for child in children for pid in child_pids(child)]
    for pid in _killed(grandchildren):
        while _exists(pid) and time.monotonic() < until:
            time.sleep(0.002)
    for pid in _killed(children):
        while True:
            try:
                if os.waitpid(pid, os.WNOHANG)[0] or time.monotonic() > until:
                    break
            except OSError:  # reaped already (a Popen's wait)
                break
            time.sleep(0.002)


def _killed(pids: list[int]) -> list[int]:
    killed = []
    for pid in pids:
        with contextlib.suppress(OSError):
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    return killed


def _exists(pid: int) -> bool:
    """`pid` is a process or a zombie not reaped yet."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


class WorkUnderWay:
    """Work that a lost terminal must not cut short (a tune's files being written): `with
    under_way:` around it, on any thread; `wait(deadline)` returns once none is under way, or
    at `deadline` (time.monotonic()). The lifeline ends the app's children (abc2midi among them)
    only after the app's `finish_work`, which waits for it."""

    def __init__(self) -> None:
        self._done = threading.Condition()
        self._count = 0

    def begin(self) -> None:
        """One more under way (`end` says it is done): for work counted from where it is asked
        for, before the thread that does it starts."""
        with self._done:
            self._count += 1

    def end(self) -> None:
        with self._done:
            self._count -= 1
            self._done.notify_all()

    def __enter__(self) -> WorkUnderWay:
        self.begin()
        return self

    def __exit__(self, *exc: object) -> None:
        self.end()

    def wait(self, deadline: float) -> bool:
        """True once none is under way; False at `deadline` with some still going."""
        with self._done:
            return self._done.wait_for(
                lambda: self._count == 0, timeout=max(0.0, deadline - time.monotonic())
            )


class Lifeline:
    """The watch over one run of the app. `install()` on the main thread before anything else;
    `attach()` gives it the app's two hooks once the app exists:
    `request_quit()` asks the UI to quit as `q` does (called from the watch's thread, so it must
    be thread-safe), and `finish_work(deadline)` stops and saves what is running, returning by
    `deadline` (time.monotonic())."""

    def __init__(self, fd: int | None = None) -> None:
        self.fd = fd if fd is not None else _terminal_fd()
        self.lost_at: float | None = None
        self.reason = ""
        self._request_quit: Callable[[], None] | None = None
        self._finish_work: Callable[[float], None] | None = None
        self._attrs: list[Any] | None = None  # termios attributes, restored on a forced exit
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(target=self._watch, name="folkgen-lifeline", daemon=True)

    def install(self) -> None:
        for sock in (self._wake_r, self._wake_w):
            sock.setblocking(False)
        if self.fd is not None:
            with contextlib.suppress(termios.error):
                self._attrs = termios.tcgetattr(self.fd)
        # The C-level handler writes the signal's number to the socket at once; the Python-level
        # handler (run whenever the main thread gets to it) has nothing left to do.
        signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        for sig in SIGNALS:
            signal.signal(sig, _ignore)
        # A mask is inherited across exec, as a disposition is: a parent that blocked these
        # left them pending for ever, and the app ran on after them.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
        self._thread.start()

    def attach(
        self, request_quit: Callable[[], None], finish_work: Callable[[float], None]
    ) -> None:
        self._request_quit = request_quit
        self._finish_work = finish_work

    def _watch(self) -> None:
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        if self.fd is not None:
            poller.register(self.fd, 0)  # hang-ups are reported whatever is asked for
        while True:
            events = dict(poller.poll(POLL * 1000))
            if self._wake_r.fileno() in events:
                # Every signal with a Python handler comes here (Textual's SIGWINCH too).
                with contextlib.suppress(OSError):
                    ours = [n for n in self._wake_r.recv(64) if n in SIGNALS]
                    if ours:
                        self._end(f"signal {signal.Signals(ours[0]).name}")
                        return
            if self.fd is not None and self.fd in events:
                self._end("terminal hung up")
                return

    def _end(self, reason: str) -> None:
        self.lost_at = now = time.monotonic()
        self.reason = reason
        deadline = now + DEADLINE
        if self._request_quit is not None:
            with contextlib.suppress(Exception):  # an app not running yet: the exit below
                self._request_quit()
        if self._finish_work is not None:
            with contextlib.suppress(Exception):
                self._finish_work(deadline)
        end_children()
        settle = min(deadline, time.monotonic() + SETTLE) if self._request_quit else 0.0
        while time.monotonic() < settle:  # the UI closes by itself and restores the terminal
            time.sleep(0.02)
        self._force_exit()

    def _force_exit(self) -> None:
        end_children()
        if self.fd is not None and not hung_up(self.fd):
            with contextlib.suppress(OSError, termios.error):
                if self._attrs is not None:
                    termios.tcsetattr(self.fd, termios.TCSANOW, self._attrs)
                os.set_blocking(self.fd, False)
                os.write(self.fd, RESET)
        os._exit(0)


def _ignore(signum: int, frame: object) -> None:
    """The wakeup socket carries the signal to the watch."""


def _terminal_fd() -> int | None:
    """The terminal's descriptor (standard input's), None when the app has none. A terminal that
    hung up before the watch began is one too: it no longer passes for a terminal (isatty's
    ioctl fails with EIO), and its SIGHUP may have been lost, as when the app's parent ignores
    it (`nohup`, some launchers and CI runners): the app then ran on for ever."""
    stdin = sys.__stdin__
    if stdin is None:
        return None
    with contextlib.suppress(OSError, ValueError):
        fd = stdin.fileno()
        if os.isatty(fd) or gone_terminal(fd):
            return fd
    return None
