"""A long session in the app (issue 6): folkgen-tui on a real pseudo-terminal, driven by keys for
30 minutes (--minutes), alternating a short training run (the tiny preset) with a burst of
generated tunes, some played (ALSA's null device) and saved. The app's resident memory is read
after every round and compared with the first round and between the quarters of the session."""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from pty_app import Terminal

ALSA_NULL = Path(__file__).parents[1] / "tests" / "data" / "alsa-null.conf"
DRIFT_BOUND_MB = 25.0  # allowed rise of median resident memory, second to last quarter


def one_round(term: Terminal, tunes: int) -> None:
    term.keys(b"t")
    mark = len(term.text)
    term.keys(b"s")  # the tiny preset: 300 steps
    term.wait_for(b"Finished at step", timeout=300, since=mark)
    term.keys(b"g")
    for i in range(tunes):
        for attempt in range(5):  # a key pressed while the new model loads only gets a notice
            mark = len(term.text)
            term.keys(b"n")
            try:
                term.wait_for("chars · next T".encode(), timeout=15, since=mark)  # a tune shown
                break
            except TimeoutError:
                if attempt == 4:
                    raise
        term.idle(0.5)
        if i % 5 == 0:
            term.keys(b"p", gap=1.0)  # play a second of it (stops when the next one starts)
        if i % 10 == 0:
            term.keys(b"s", gap=0.5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--minutes", type=float, default=30.0, help="length of the session")
    ap.add_argument("--tunes", type=int, default=20, help="tunes generated in each round")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as home:
        term = Terminal(home, env={"ALSA_CONFIG_PATH": str(ALSA_NULL)})
        samples: list[tuple[float, float]] = []
        try:
            term.wait_for(b"model default", timeout=60)
            start_rss = term.rss_mb()
            t0 = time.perf_counter()
            rounds = 0
            while time.perf_counter() - t0 < args.minutes * 60:
                one_round(term, args.tunes)
                rounds += 1
                term.text = term.text[-100_000:]  # the bench's own copy of the screen output
                samples.append((time.perf_counter() - t0, term.rss_mb()))
                print(f"  round {rounds:3d}  {samples[-1][0] / 60:5.1f} min  "
                      f"rss {samples[-1][1]:7.1f} MB", flush=True)  # fmt: skip
        finally:
            term.close()
        tunes = len(list((Path(home) / "tunes").glob("*.abc")))
        models = len(list((Path(home) / "checkpoints").glob("*.pt")))
    if len(samples) < 2:
        print("too short: give it more --minutes")
        return
    base = samples[0][1]
    peak = max(rss for _, rss in samples)
    growth = samples[-1][1] - base
    # A leak keeps growing; warming up (caches, allocator pools) does not. So the verdict is on
    # the drift between the second and the last quarter of the session.
    q = max(1, len(samples) // 4)
    second = statistics.median(rss for _, rss in samples[q : 2 * q])  # medians: a spike
    last = statistics.median(rss for _, rss in samples[-q:])  # does not decide

    drift = last - second
    print(
        f"{len(samples)} rounds in {samples[-1][0] / 60:.1f} min ({models} checkpoints, "
        f"{tunes} tunes saved): resident memory at start {start_rss:.0f} MB, after the first "
        f"round {base:.0f} MB, at the end {samples[-1][1]:.0f} MB, peak {peak:.0f} MB "
        f"(growth after the first round: {growth:+.0f} MB at the end, {peak - base:+.0f} MB at "
        f"the peak); drift from the second to the last quarter {drift:+.0f} MB "
        f"(bound {DRIFT_BOUND_MB:.0f} MB: {'ok' if drift <= DRIFT_BOUND_MB else 'EXCEEDED'})"
    )


if __name__ == "__main__":
    main()
