"""The terminal's image support, asked in one round trip (folkgen_tui/graphics.py): a child on a
real pseudo-terminal asks, and this side answers as a Kitty, a Sixel terminal, a plain one, or
not at all."""

from __future__ import annotations

import os
import pty
import select
import sys
import time

import pytest

ASK = "from folkgen_tui.graphics import ask_terminal; g = ask_terminal(); print('GOT', g.kind, g.cell)"


def asked(answer: bytes | None) -> tuple[str, float]:
    """What the child concluded, and how long it took, when the terminal answers `answer`."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(sys.executable, [sys.executable, "-c", ASK])
    out, t0, replied = b"", time.monotonic(), False
    while b"GOT" not in out or not out.endswith(b"\n"):
        if not select.select([fd], [], [], 10)[0]:
            break
        try:
            out += os.read(fd, 4096)
        except OSError:
            break
        if not replied and b"\x1b[c" in out:
            replied = True
            t0 = time.monotonic()
            if answer is not None:
                os.write(fd, answer)
    os.waitpid(pid, 0)
    line = out.split(b"GOT", 1)[1].split(b"\n", 1)[0].decode().strip()
    return line, time.monotonic() - t0


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (b"\x1b_Gi=31;OK\x1b\\\x1b[6;18;9t\x1b[?62;22c", "tgp (9, 18)"),
        (b"\x1b[6;20;10t\x1b[?63;1;2;4;6c", "sixel (10, 20)"),
        (b"\x1b[6;16;8t\x1b[?65;1;9c", "halfcell (8, 16)"),
        (None, "halfcell (10, 20)"),  # says nothing: the default cell, after the time limit
    ],
)
def test_one_round_trip_tells_the_kind_and_cell(answer: bytes | None, kind: str) -> None:
    got, seconds = asked(answer)
    assert got == kind
    assert seconds < 2
