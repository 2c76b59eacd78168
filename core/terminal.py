"""Whether a process's terminal has gone (its window closed, its SSH link dropped), for the app's
lifeline (folkgen_tui/lifeline.py) and `folkgen train`. Standard library only: the lifeline
imports it before the app's modules."""

from __future__ import annotations

import contextlib
import os
import select
import stat


def hung_up(fd: int) -> bool:
    """The terminal on `fd` has gone: its other end was closed."""
    poller = select.poll()
    poller.register(fd, 0)  # hang-ups and errors are reported whatever is asked for
    return bool(poller.poll(0))


def gone_terminal(fd: int) -> bool:
    """`fd` is a terminal that has hung up. It no longer passes for a terminal: isatty's ioctl
    fails on it (EIO)."""
    try:
        return stat.S_ISCHR(os.fstat(fd).st_mode) and hung_up(fd)
    except OSError:
        return False


def leave_gone_terminal() -> None:
    """Standard output and error, where they are a terminal that has gone, write to /dev/null
    from now on: what is still said there (a progress bar's last draw, a run's summary) failed
    with EIO, and a run that had saved its work ended in a traceback and status 1."""
    with contextlib.suppress(OSError):
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            for fd in (1, 2):
                if gone_terminal(fd):
                    os.dup2(null, fd)
        finally:
            os.close(null)
