"""How the default corpus fares in abc2midi: tunes that give MIDI, valid ones, and clean ones.

    .venv/bin/python bench/corpus_check.py [--limit N]

Valid: MIDI written and no `Error` line. Clean: valid and no warning worth showing (in this
corpus those are bar lengths against the meter); the near-universal repeat notices don't count.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.abc import check_tune  # noqa: E402
from core.corpus import load_corpus  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="check only the first N tunes")
    args = parser.parse_args()
    tunes = load_corpus().tunes[: args.limit]
    start = time.perf_counter()
    checks = [check_tune(t) for t in tunes]
    elapsed = time.perf_counter() - start
    n = len(checks)
    midi = sum(c.midi_written for c in checks)
    valid = sum(c.valid for c in checks)
    clean = sum(c.clean for c in checks)
    bar_warned = sum(bool(c.bar_warnings) for c in checks)
    errors = Counter(e.text for c in checks for e in c.errors)
    print(
        f"tunes checked:            {n}  ({elapsed:.1f} s, {1000 * elapsed / max(n, 1):.1f} ms each)"
    )
    print(f"MIDI written:             {midi}  ({100 * midi / n:.1f}%)")
    print(f"valid (no Error line):    {valid}  ({100 * valid / n:.1f}%)")
    print(f"with bar-length warnings: {bar_warned}")
    print(f"clean (no warnings):      {clean}  ({100 * clean / n:.1f}%)")
    for text, count in errors.most_common(8):
        print(f"  {count:4d} x error: {text}")
    # Training's transposition augmentation (every tune up and down 1-2 scale steps) runs before
    # each training run's clock starts: its time against abc2midi's check of the same tunes.
    from core.transpose import augment

    start = time.perf_counter()
    copies = augment(tunes)
    augment_s = time.perf_counter() - start
    print(
        f"transposition augment:    {len(copies)} copies in {augment_s:.2f} s "
        f"({augment_s / max(elapsed, 1e-9):.2f}x the abc2midi checks above)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
