"""The Library screen over a 10,000-tune tunebook, in the real app on a pseudo-terminal: how
long `l` takes to show the table once the app is idle (target 0.3 s; also shown: `l` pressed at
the first frame, while the corpus loads) and each keystroke of a filter (target 50 ms),
from the key written to the change drawn, beside a reference measured in the same run: Textual's
DataTable filled with the same rows, in-process (what the screen would cost with it).

The tunebook is bench/library_speed.py's (the corpus's tunes transposed and renamed)."""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent.parent))  # the repository, for core and the app

from library_speed import TYPED, variants  # noqa: E402
from machine import vector_extensions  # noqa: E402
from pty_app import Terminal  # noqa: E402

from core.judge import judge  # noqa: E402
from core.library import LIBRARY_FILE, Library, TuneRow  # noqa: E402

SIZE = (120, 40)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def make_tunebook(home: Path, count: int) -> None:
    texts = variants(count)
    t0 = time.perf_counter()
    with Library.open(home / LIBRARY_FILE) as library:
        for text in texts:
            verdict = judge(text + "\n\n", check=False)  # abc2midi left out: 10,000 would take long
            library.add(text + "\n\n", in_tunebook=True, verdict=verdict, seed=1, model_name="x.pt")
    print(f"{count:,} tunes in the tunebook ({time.perf_counter() - t0:.1f} s to make)")


async def until(pilot: Any, predicate: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.perf_counter() + timeout
    while not predicate():
        if time.perf_counter() > deadline:
            raise TimeoutError("the app did not get there")
        await asyncio.sleep(0.002)
    await pilot.pause()  # the frame that shows it


async def datatable_reference(rows: list[TuneRow], typed: str) -> tuple[float, float]:
    """Textual's DataTable with the same rows: (first fill and frame, slowest refill per key)."""
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable

    from core.library import filter_rows
    from folkgen_tui.widgets.tune_table import cells

    class Reference(App[None]):
        def compose(self) -> ComposeResult:
            yield DataTable()

    def fill(table: DataTable[str], shown: list[TuneRow]) -> None:
        table.clear()
        table.add_rows(cells(r) for r in shown)

    app = Reference()
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(DataTable)
        table.add_columns(" ", "♥", "Title", "Key", "M", "Bars", "Form", "Stars", "Created")
        t0 = time.perf_counter()
        fill(table, rows)
        await pilot.pause()
        first = time.perf_counter() - t0
        worst = 0.0
        for i in range(1, len(typed) + 1):
            t0 = time.perf_counter()
            fill(table, filter_rows(rows, typed[:i]))
            await pilot.pause()
            worst = max(worst, time.perf_counter() - t0)
    return first, worst


def keystroke(term: Terminal, key: bytes, marker: bytes, timeout: float = 30.0) -> float:
    """Seconds from writing `key` to `marker` drawn."""
    since = len(term.text)
    os.write(term.fd, key)
    return term.wait_for(marker, timeout=timeout, since=since)


def measure_app(home: str, count: int, typed: str) -> dict[str, Any]:
    """The app on a real pseudo-terminal: `l` during start-up (the screen built on the key or
    ahead, the corpus loading), `l` again once idle, then a filter typed key by key."""
    out: dict[str, Any] = {}
    term = Terminal(home, cols=SIZE[0], rows=SIZE[1])
    loaded = f"{count:,} tunes · sorted by date".encode()
    try:
        term.wait_for(b"Dataset", timeout=30)
        out["cold"] = keystroke(term, b"l", loaded)
        term.wait_for(b"model default", timeout=120)  # torch and the model: the app is idle
        term.idle(3.0)  # the screens prebuilt
        warm = []
        for _ in range(5):
            term.keys(b"d", gap=0.5)
            warm.append(keystroke(term, b"l", loaded))
            term.idle(0.3)
        out["warm"] = statistics.median(warm)
        # The floor: a key that redraws a row and the status line, nothing more (space selects).
        marks = [keystroke(term, b" ", f"{n} selected".encode()) for n in range(1, 8)]
        out["floor"] = statistics.median(marks)
        term.keys(b"/", gap=0.5)
        keys = []
        for i in range(1, len(typed) + 1):
            marker = f"filter “{typed[:i]}”".encode()
            keys.append((typed[:i], keystroke(term, typed[i - 1].encode(), marker)))
            term.idle(0.1)
        out["keys"] = keys
    finally:
        term.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tunes", type=int, default=10_000)
    args = parser.parse_args()
    print(f"CPU vector extensions: {vector_extensions()}; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="folkgen-library-screen-") as home:
        os.environ["FOLKGEN_HOME"] = home
        make_tunebook(Path(home), args.tunes)
        app = measure_app(home, args.tunes, TYPED)
        with Library.open() as library:
            rows = library.rows()
        table_first, table_refill = asyncio.run(datatable_reference(rows, TYPED))

    print(f"\nthe app in a {SIZE[0]}x{SIZE[1]} pseudo-terminal, key written to the table drawn")
    print(f"  l from the Dataset screen once idle (median of 5)                  {ms(app['warm'])}"
          "   target 300 ms")  # fmt: skip
    print(f"  first l, at the first frame (screen built, database opened, rows read) {ms(app['cold'])}"
          "\n    while the corpus loads and screens are built ahead: issue 14's keys at start-up")  # fmt: skip
    print(f"  reference: DataTable filled with the same rows and drawn          {ms(table_first)}"
          f"   first l / reference: {app['cold'] / table_first:.2f}x")  # fmt: skip
    print(f"\nfiltering as '{TYPED}' is typed, key written to the new rows drawn")
    for typed, seconds in app["keys"]:
        print(f"  {typed!r:14} {ms(seconds)}")
    worst = max(seconds for _, seconds in app["keys"])
    median = statistics.median(seconds for _, seconds in app["keys"])
    print(f"  slowest keystroke {ms(worst)}, median {ms(median)}   target 50 ms")
    print(f"  reference: a key that redraws one row and the status (space) {ms(app['floor'])}"
          f"   median keystroke / reference: {median / app['floor']:.2f}x")  # fmt: skip
    print(f"  reference: DataTable refilled for the slowest keystroke {ms(table_refill)}"
          f"   slowest keystroke / reference: {worst / table_refill:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
