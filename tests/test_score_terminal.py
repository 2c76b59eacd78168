"""The score view as a graphics terminal receives it (issue 15): the real app on a pseudo-terminal
answers its start-up questions as Kitty or as a Sixel terminal would, generates a tune and shows
its score; the bytes written to the terminal are decoded here as the terminal would decode them
(Kitty: base64 PNG chunks; Sixel: a DCS of six-pixel columns), and the picture must be the score:
a cell's pixels per column, light ink on the dark theme, and staves of five evenly spaced lines."""

from __future__ import annotations

import base64
import io
import os
import re
import select
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.pty_app import ANSI, ENTER, Terminal
from tests.app_helpers import ALSA_NULL

CELL = {"tgp": (9, 18), "sixel": (10, 20)}  # (width, height) in pixels, as each answers below
ANSWERS = {
    "tgp": b"\x1b_Gi=31;OK\x1b\\\x1b[6;18;9t\x1b[?62;22c",  # graphics OK, cell 9x18, no sixel
    "sixel": b"\x1b[6;20;10t\x1b[?63;1;2;4;6c",  # cell 10x20, attribute 4: sixel
}
KITTY = re.compile(rb"\x1b_G([^;\x1b]*)(?:;([^\x1b]*))?\x1b\\")
SIXEL = re.compile(rb"\x1bP[0-9;]*q(.*?)\x1b\\", re.S)
COLS = 120


class GraphicsTerminal(Terminal):
    """A Terminal that keeps every byte the app writes and answers the app's questions."""

    def __init__(self, home: str, answer: bytes) -> None:
        self.raw, self.answer = b"", answer
        super().__init__(home, cols=COLS, rows=40, env={"ALSA_CONFIG_PATH": str(ALSA_NULL)})

    def read(self, timeout: float) -> None:
        if not select.select([self.fd], [], [], timeout)[0]:
            return
        try:
            chunk = os.read(self.fd, 1 << 20)
        except OSError:
            time.sleep(timeout)
            return
        if b"\x1b[c" in self.raw + chunk and b"\x1b[c" not in self.raw:
            os.write(self.fd, self.answer)  # the device attributes are asked last
        self.raw += chunk
        self.text += ANSI.sub(b"", chunk)

    def wait_raw(self, pattern: re.Pattern[bytes], since: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not pattern.search(self.raw, since):
            assert time.monotonic() < deadline, f"{pattern.pattern!r} never written"
            self.read(0.05)


def kitty_image(raw: bytes) -> tuple[np.ndarray, tuple[int, int]]:
    """The image transmitted (f=100: PNG, in m=1 chunks) and its placement's (columns, rows)."""
    messages = [
        (dict(kv.split(b"=") for kv in keys.split(b",")), data) for keys, data in KITTY.findall(raw)
    ]
    png = b"".join(data for keys, data in messages if keys.get(b"f") == b"100")
    (place,) = [keys for keys, _ in messages if keys.get(b"a") == b"p"]
    image = np.asarray(Image.open(io.BytesIO(base64.b64decode(png))).convert("RGB"))
    return image, (int(place[b"c"]), int(place[b"r"]))


def sixel_image(body: bytes) -> np.ndarray:
    """A sixel DCS body (after `q`) -> an (h, w, 3) image: `"` raster size, `#n;2;r;g;b` colours
    in percent, `#n` picks one, `!k` repeats the next sixel k times, `$` returns, `-` is a new
    band of six rows."""
    text = body.decode("ascii")
    size = re.match(r'"\d+;\d+;(\d+);(\d+)', text)
    assert size, "no raster size"
    width, height = int(size.group(1)), int(size.group(2))
    image = np.zeros((height + 6, width, 3), np.uint8)
    colours: dict[int, tuple[int, ...]] = {}
    colour: tuple[int, ...] = (0, 0, 0)
    x = y = 0
    for m in re.finditer(
        r"#(\d+)(?:;2;(\d+);(\d+);(\d+))?|(\$)|(-)|(?:!(\d+))?([?-~])", text[size.end() :]
    ):
        if m.group(1) is not None:
            if m.group(2) is not None:
                colours[int(m.group(1))] = tuple(round(int(v) * 2.55) for v in m.group(2, 3, 4))
            colour = colours[int(m.group(1))]
        elif m.group(5):
            x = 0
        elif m.group(6):
            x, y = 0, y + 6
        else:
            count, bits = int(m.group(7) or 1), ord(m.group(8)) - 63
            for b in range(6):
                if bits >> b & 1:
                    image[y + b, x : x + count] = colour
            x += count
    return image[:height]


def staves(image: np.ndarray) -> list[list[float]]:
    """Groups of five evenly spaced light rows that span most of the width: the staff lines."""
    light = image.astype(float).mean(axis=2)
    paper = float(np.median(light))
    rows = np.flatnonzero((light > paper + 60).mean(axis=1) > 0.5)
    lines: list[list[int]] = []
    for r in rows:  # a line may be two pixels thick
        if lines and r - lines[-1][-1] <= 1:
            lines[-1].append(int(r))
        else:
            lines.append([int(r)])
    centres = [sum(line) / len(line) for line in lines]
    found, i = [], 0
    while i + 5 <= len(centres):
        gaps = np.diff(centres[i : i + 5])
        if gaps.max() - gaps.min() <= 1.5 and 4 <= gaps.mean() <= 30:
            found.append(centres[i : i + 5])
            i += 5
        else:
            i += 1
    return found


@pytest.mark.parametrize("kind", ["tgp", "sixel"])
def test_a_graphics_terminal_receives_the_score_as_a_picture(kind: str, tmp_path: Path) -> None:
    term = GraphicsTerminal(str(tmp_path), ANSWERS[kind])
    try:
        term.wait_for(b"model default", timeout=60)
        term.keys(b"g")
        term.wait_for(b"Temp")
        mark = len(term.text)
        term.keys(ENTER, gap=0.0)
        term.wait_for("✓".encode(), since=mark, timeout=30)  # the tune is done and valid
        start = len(term.raw)
        term.keys(b"v", gap=0.0)
        if kind == "tgp":
            term.wait_raw(re.compile(rb"\x1b_Ga=p,[^\x1b]*\x1b\\"), start)
            image, (columns, rows) = kitty_image(term.raw[start:])
            assert image.shape[1] == columns * CELL[kind][0]  # a cell's pixels per column
            assert rows == -(-image.shape[0] // CELL[kind][1])
        else:
            term.wait_raw(SIXEL, start)
            image = sixel_image(SIXEL.findall(term.raw, start)[-1])
            assert image.shape[1] % CELL[kind][0] == 0 and image.shape[0] % CELL[kind][1] == 0
            columns = image.shape[1] // CELL[kind][0]
        assert COLS // 2 < columns < COLS  # the score pane's width, not a thumbnail
    finally:
        term.close()
    light = image.astype(float).mean(axis=2)
    assert np.median(light) < 80  # the dark theme's paper
    found = staves(image)
    assert len(found) >= 2, f"staves found: {found}"  # a tune of 16+ bars wraps
    gaps = [s[1] - s[0] for s in found]
    assert max(gaps) - min(gaps) <= 1.5  # one staff size on the page
