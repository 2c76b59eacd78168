"""The tunebook at 10,000 tunes (issue 16): how long `Library.open` + `rows()` take (what the
Library screen does before its first frame; target with the screen: 0.3 s) and an in-memory
filter over the TuneRow list per keystroke (target 50 ms), with the CLI's `search`, sorting and
adding for scale. The tunes are the default corpus's, transposed and renamed to vary.

Each figure is printed beside a reference measured in the same run on the same data: a bare
SELECT of the same columns (rows), and one substring scan through all the rows' text (filter)."""

from __future__ import annotations

import argparse
import re
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from machine import vector_extensions

from core.corpus import load_corpus
from core.judge import judge
from core.library import Library, filter_rows, sort_rows
from core.music_analysis import distinct_tunes
from core.transpose import transpose_tune

TYPED = "kesh jig d"  # a search typed a key at a time
SHIFTS = (0, 1, -1, 2, -2, 3, -3, 4, -4, 5, -5, 6, -6)


def variants(count: int) -> list[str]:
    """`count` tunes: the corpus's, then transposed copies, each retitled with its variant."""
    tunes = distinct_tunes(load_corpus().tunes)
    out: list[str] = []
    for n, shift in enumerate(SHIFTS * 2):  # the second round: the same keys, other titles
        for tune in tunes:
            moved = transpose_tune(tune, shift) if shift else tune
            if moved is None:
                continue
            out.append(re.sub(r"^T:(.*)$", rf"T:\1 ({n + 1})", moved, count=1, flags=re.M))
            if len(out) == count:
                return out
    raise SystemExit(f"only {len(out)} variants of the corpus; ask for fewer")


def best_of(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(median, best) seconds of `repeat` calls."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tunes", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(f"CPU vector extensions: {vector_extensions()}")

    texts = variants(args.tunes)
    t0 = time.perf_counter()
    verdicts = [judge(t + "\n\n", check=False) for t in texts]  # abc2midi's check left out
    judge_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="folkgen-library-bench-") as tmp:
        path = Path(tmp) / "tunebook.sqlite3"
        with Library.open(path) as library:
            t0 = time.perf_counter()
            for text, verdict in zip(texts, verdicts, strict=True):
                library.add(text + "\n\n", in_tunebook=True, verdict=verdict, seed=1)
            add_s = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in Path(tmp).iterdir())
        print(f"{len(texts):,} tunes, {size / 1e6:.1f} MB; judged in {judge_s:.1f} s "
              f"(without abc2midi), added in {add_s:.2f} s ({add_s / len(texts) * 1e6:.0f} µs a tune, "
              "one transaction each)")  # fmt: skip

        def open_rows() -> int:
            with Library.open(path) as lib:
                return len(lib.rows())

        def open_only() -> None:
            Library.open(path).close()

        def raw_select() -> int:
            db = sqlite3.connect(path)
            n = len(
                db.execute(
                    "SELECT id, title, key, metre, bars, rating, favourite, created, form, abc "
                    "FROM tunes WHERE in_tunebook = 1 ORDER BY created DESC"
                ).fetchall()
            )
            db.close()
            return n

        open_med, open_best = best_of(open_only, args.repeat)
        rows_med, rows_best = best_of(open_rows, args.repeat)
        raw_med, _ = best_of(raw_select, args.repeat)
        print("\nopening (median / best of", args.repeat, "runs)")
        print(f"  Library.open (schema check, quick_check) {ms(open_med)} / {ms(open_best)}")
        print(f"  Library.open + rows()                    {ms(rows_med)} / {ms(rows_best)}"
              f"   target with the screen: 300 ms")  # fmt: skip
        print(f"  reference: bare SELECT of the columns    {ms(raw_med)}"
              f"   rows()/reference: {rows_med / raw_med:.2f}x")  # fmt: skip

        with Library.open(path) as library:
            rows = library.rows()
            search_med, _ = best_of(lambda: library.search(text="jig"), 3)
            sorts = {s: best_of(lambda s=s: sort_rows(rows, s), args.repeat)[0] for s in
                     ("created", "rating", "title", "key", "metre")}  # fmt: skip
        strings = [r.search_text for r in rows]
        # The floor: a four-letter substring scan through every row's text that finds nothing.
        ref, _ = best_of(lambda: [t for t in strings if "zqxw" in t], args.repeat)
        print(f"\nfiltering {len(rows):,} rows in memory as '{TYPED}' is typed (median of "
              f"{args.repeat}); reference, one full scan of their text: {ms(ref)}")  # fmt: skip
        worst = 0.0
        for i in range(1, len(TYPED) + 1):
            typed = TYPED[:i]
            med, _ = best_of(lambda typed=typed: filter_rows(rows, typed), args.repeat)
            shown = len(filter_rows(rows, typed))
            worst = max(worst, med)
            print(f"  {typed!r:14} {ms(med)}  {shown:6,} rows   {med / ref:.2f}x the reference")
        print(f"  slowest keystroke {ms(worst)}   target: 50 ms")
        print(
            "\nsorting the rows: " + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in sorts.items())
        )
        print(f"Library.search(text='jig') (the CLI's list, whole tunes) {ms(search_med)}")


if __name__ == "__main__":
    main()
