"""The app on a real terminal that goes away: a closed window (SIGHUP), or a terminal that
vanished without a signal (its input hung up). No training run may be lost, and the app must
not linger (it once spun at 100 % of a core on a dead terminal)."""

from __future__ import annotations

import os
import pty
import re
import signal
import time
from pathlib import Path

from bench.pty_app import CTRL_U, ENTER, ESC, TAB, UP, Terminal
from core.checkpoint import load_checkpoint
from folkgen_tui.app import hung_up


def test_a_hung_up_terminal_is_noticed() -> None:
    master, slave = pty.openpty()
    try:
        assert not hung_up(slave)
        os.close(master)
        master = -1
        assert hung_up(slave)
    finally:
        os.close(slave)
        if master >= 0:
            os.close(master)


def test_closing_the_terminal_while_training_saves_the_run(tmp_path: Path) -> None:
    """The real app on a pseudo-terminal, training; then the terminal closes (SIGHUP, as when
    its window is closed). The app quits as q does: the run's checkpoint is saved, and the
    process ends instead of lingering."""
    term = Terminal(str(tmp_path))
    ended = (0, 0)
    try:
        term.wait_for(b"model default", timeout=60)
        term.keys(b"t")
        term.wait_for(b"Recipe")
        term.keys(TAB, ENTER, UP, ENTER)  # the default preset (one above tiny)
        term.wait_for(b"folkgen's recipe")
        term.keys(TAB, TAB, TAB, TAB, TAB, CTRL_U, b"9", b"9", b"9", b"9", ESC)  # steps
        mark = len(term.text)
        term.keys(b"s")
        deadline = time.monotonic() + 60
        while not re.search(rb"Training: step [1-9]", term.text[mark:]):  # a step done
            assert time.monotonic() < deadline, "no training step shown"
            term.read(0.05)
        os.kill(term.pid, signal.SIGHUP)
        deadline = time.monotonic() + 20
        while (ended := os.waitpid(term.pid, os.WNOHANG))[0] == 0:
            assert time.monotonic() < deadline, "the app is still running"
            term.read(0.05)
        status = ended[1]
    finally:
        if ended[0] == 0:  # still running: do not leave it behind
            os.kill(term.pid, signal.SIGKILL)
            os.waitpid(term.pid, 0)
        os.close(term.fd)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    (saved,) = [p for p in (tmp_path / "checkpoints").glob("*.pt") if ".best." not in p.name]
    assert load_checkpoint(saved).step >= 1
