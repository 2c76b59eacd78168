"""A corpus of 20,150 tunes (the default corpus 25 times over) opened in folkgen-tui, in a real
pseudo-terminal (100x32): seconds from start to its summary drawn, against the default corpus's
in the same run; then the Tunes tab's key (`u`: the list of the first 20,000 tunes drawn) and
the next screen switch (`g`), key to frame. Textual's DataTable, which the Tunes tab used
before, built and measured every row as the corpus arrived: run with this script on the
AVX-512 machine of the README, the summary of this corpus came 2.75-2.88 s after start (the
default one's 0.47-0.53 s) and `u` took 344-359 ms (now 0.95-1.02 s, 0.34-0.38 s, 66-73 ms)."""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from machine import describe, load_average
from pty_app import BIN, Terminal

from core.paths import default_corpus_path

COPIES = 25


def run(corpus: Path | None, tunes_shown: bytes) -> tuple[float, float, float]:
    """(seconds to the summary, `u` key to the list, `g` key to Generate) for one start."""
    argv = [str(BIN / "folkgen-tui")] + (["--corpus", str(corpus)] if corpus else [])
    with tempfile.TemporaryDirectory() as home:
        term = Terminal(home, argv=argv)
        try:
            term.wait_for(tunes_shown, timeout=120)
            summary = time.perf_counter() - term.started
            mark = len(term.text)
            os.write(term.fd, b"u")
            tunes = term.wait_for(b"Title", timeout=120, since=mark)
            term.idle(0.5)
            mark = len(term.text)
            os.write(term.fd, b"g")
            generate = term.wait_for(b"Prompt", timeout=60, since=mark)
        finally:
            term.close()
    return summary, tunes, generate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3, help="starts of each corpus, taken in turn")
    args = ap.parse_args()
    print(describe())
    text = default_corpus_path().read_text(encoding="utf-8").strip()
    with tempfile.TemporaryDirectory() as folder:
        big = Path(folder) / "large.abc"
        big.write_text("\n\n".join([text] * COPIES) + "\n", encoding="utf-8")
        small: list[tuple[float, float, float]] = []
        large: list[tuple[float, float, float]] = []
        for _ in range(args.runs):
            small.append(run(None, b"817"))
            large.append(run(big, b"20,150"))
    for name, runs in (("default corpus (817 tunes)", small), ("large corpus (20,150)", large)):
        best = [min(r[i] for r in runs) for i in range(3)]
        worst = [max(r[i] for r in runs) for i in range(3)]
        print(f"{name:28} summary drawn {best[0]:.2f}-{worst[0]:.2f} s after start; "
              f"u {best[1] * 1000:.0f}-{worst[1] * 1000:.0f} ms; "
              f"then g {best[2] * 1000:.0f}-{worst[2] * 1000:.0f} ms")  # fmt: skip
    ratio = min(r[0] for r in large) / min(r[0] for r in small)
    print(f"the large corpus's summary: {ratio:.2f}x the default corpus's (best of {args.runs})")
    print(load_average() + " (at the end)")


if __name__ == "__main__":
    main()
