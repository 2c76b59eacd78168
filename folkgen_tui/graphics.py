"""Which images this terminal can show: asked once, before the app starts.

A terminal says so only in answer to escape codes, read from stdin, which Textual owns once it
runs. textual-image asks on import, one question at a time with a 0.1 s wait each (0.3 s on a
terminal that answers nothing), so folkgen asks itself, in one round trip on a thread while the
app's modules import: a Kitty graphics query, the cell size when the kernel does not know it,
and the device attributes (Sixel is attribute 4), which every terminal answers last. textual-image
is then imported later without asking (`load_textual_image`). No textual import here.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import select
import struct
import sys
import termios
import threading
import time
from types import ModuleType
from typing import NamedTuple

ANSWER_SECONDS = 0.1  # a terminal answers in milliseconds; one that does not, never
DEFAULT_CELL = (10, 20)  # textual-image's own guess (a VT340's cell)
_KITTY_QUERY = b"\x1b_Gi=31,s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\"
_CELL_QUERY = b"\x1b[16t"
_ATTRIBUTES_QUERY = b"\x1b[c"
_ATTRIBUTES = re.compile(rb"\x1b\[\?([\d;]*)c")
_KITTY_OK = re.compile(rb"\x1b_Gi=31;OK\x1b\\")
_CELL = re.compile(rb"\x1b\[6;(\d+);(\d+)t")


class Graphics(NamedTuple):  # not a dataclass: `dataclasses` (inspect) would add ~5 ms before
    # the question is asked, and a terminal that never answers holds the first frame that much
    kind: str  # "tgp" (Kitty graphics), "sixel", "halfcell" (Unicode half blocks)
    cell: tuple[int, int]  # a cell's (width, height) in pixels


_found: Graphics | None = None
_thread: threading.Thread | None = None


def _kernel_cell(fd: int) -> tuple[int, int] | None:
    """The cell size from the terminal's window size in pixels, when the kernel has it."""
    with contextlib.suppress(OSError):
        rows, cols, width, height = struct.unpack(
            "HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
        )
        if rows and cols and width and height:
            return width // cols, height // rows
    return None


def _read_answer(fd: int) -> bytes:
    """What the terminal writes back, up to its device attributes or the time limit."""
    answer = b""
    end = time.monotonic() + ANSWER_SECONDS
    while not _ATTRIBUTES.search(answer):
        left = end - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        chunk = os.read(fd, 1024)
        if not chunk:
            break
        answer += chunk
    return answer


def ask_terminal() -> Graphics:
    """One round trip of questions (only when stdin and stdout are a terminal)."""
    stdin, stdout = sys.__stdin__, sys.__stdout__
    if not (stdin and stdout and stdin.isatty() and stdout.isatty()):
        return Graphics("halfcell", DEFAULT_CELL)
    fd_in, fd_out = stdin.fileno(), stdout.fileno()
    cell = _kernel_cell(fd_out)
    saved = termios.tcgetattr(fd_in)
    quiet = termios.tcgetattr(fd_in)
    quiet[3] &= ~(termios.ICANON | termios.ECHO)  # answers are read, not shown
    try:
        termios.tcsetattr(fd_in, termios.TCSANOW, quiet)
        os.write(fd_out, _KITTY_QUERY + (b"" if cell else _CELL_QUERY) + _ATTRIBUTES_QUERY)
        answer = _read_answer(fd_in)
    finally:
        termios.tcsetattr(fd_in, termios.TCSANOW, saved)
    if cell is None and (m := _CELL.search(answer)):
        cell = (int(m.group(2)), int(m.group(1)))
    attributes = _ATTRIBUTES.search(answer)
    if _KITTY_OK.search(answer):
        kind = "tgp"
    elif attributes and b"4" in attributes.group(1).split(b";"):
        kind = "sixel"
    else:
        kind = "halfcell"
    return Graphics(kind, cell or DEFAULT_CELL)


def _ask() -> None:
    global _found
    try:
        _found = ask_terminal()
    except (OSError, termios.error):  # a terminal that went away: draw in half blocks
        _found = Graphics("halfcell", DEFAULT_CELL)


def start() -> None:
    global _thread
    if _thread is None and _found is None:
        _thread = threading.Thread(target=_ask, name="folkgen-graphics", daemon=True)
        _thread.start()


def wait() -> None:
    """Join the questions: called before Textual starts reading the terminal."""
    if _thread is not None:
        _thread.join(ANSWER_SECONDS * 5)


def graphics() -> Graphics:
    """What the terminal said it can show; asked here when `start` never ran (tests, where
    stdout is no terminal and nothing is asked)."""
    if _found is None:
        if _thread is not None:
            return Graphics("halfcell", DEFAULT_CELL)  # never answered in time
        _ask()
    assert _found is not None
    return _found


def load_textual_image() -> ModuleType:
    """textual_image.widget, imported without its questions to the terminal (Textual owns the
    terminal by now): its cell size is ours, and with no stdin to read, its queries give up."""
    import textual_image._terminal as terminal

    cell = graphics().cell
    setattr(terminal.get_cell_size, "_result", terminal.CellSize(*cell))  # noqa: B010
    stdin = sys.__stdin__
    sys.__stdin__ = None  # type: ignore[misc]
    try:
        import textual_image.widget as widget
    finally:
        sys.__stdin__ = stdin  # type: ignore[misc]
    return widget
