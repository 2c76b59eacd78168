"""Keys in the first seconds after start: one key per start of `folkgen-tui` (a real
pseudo-terminal, 100x32, a fresh FOLKGEN_HOME), pressed at a delay after the first frame shows
"Dataset"; three latencies from writing the key: to the terminal showing the screen (its panels,
by their titles), to it showing the screen's fields (a field's label, or the Library table's
header: drawn as a sketch with the panels until the fields are in), and to the fields live:
Generate, Train and Library mount them once their panels are drawn
(folkgen_tui/widgets/deferred.py), and what comes only with them shows then (Train's charts,
Generate's and Library's status lines, written once their parts are in). "shown/filled/live" in
each cell; for a screen already built all come in one frame, whose first write may hold the
panel's title. A key typed before the fields are live waits for them (FolkgenApp.run_action).

At start-up the app loads the corpus, builds the other screens ahead and reads torch's replies,
each on its main thread: a key waits for any of that under way (bench/app_training.py times four
keys at a fixed rhythm; this shows the whole window). `g` (Generate), `t` (Train), `l` (Library)
and `m` (Models) at each delay, --repeats times each. Issue 14's target is 100 ms on its AVX2
machine, scaled by the lab loop as app_training.py scales it (printed first)."""

from __future__ import annotations

import argparse
import os
import tempfile

from app_training import key_bench_start
from machine import load_average
from pty_app import Terminal

DELAYS = (0.15, 0.3, 0.45, 0.6, 0.75, 0.9, 1.05, 1.2, 1.35, 1.5, 1.65, 1.8)
# key, a panel's title (the screen shown), a field's label (its fields shown), and words that
# only its live fields bring
KEYS = (
    (b"g", b"Session", b"Prompt", b"next T"),
    (b"t", b"Recipe", b"LSTM units", b"loss per step"),
    (b"l", "Tune ─".encode(), b"Title", b"sorted by"),  # the table's header; the status line
    (b"m", b"Checkpoints in", b"Val bpc", b"Val bpc"),  # no parts: built whole
)
SEEN = ("shown", "filled", "live")


def key_after_start(
    delay: float, key: bytes, markers: tuple[bytes, ...], extra: dict[str, str]
) -> tuple[float, ...]:
    with tempfile.TemporaryDirectory() as home:
        term = Terminal(home, env=extra)
        try:
            term.wait_for(b"Dataset", timeout=60)
            term.idle(delay)
            mark = len(term.text)
            os.write(term.fd, key)
            times, waited = [], 0.0
            for marker in markers:  # each after the one before it (0 where it came with it)
                waited += term.wait_for(marker, timeout=10, since=mark)
                times.append(waited)
            return tuple(times)
        finally:
            term.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=1, help="starts per key and delay")
    args, extra, target = key_bench_start(ap)
    print(f"{'after the first frame':>22}  "
          + "  ".join(f"{k.decode() + ' (ms)':>{13 * args.repeats}}" for k, *_ in KEYS))  # fmt: skip
    worst: dict[str, dict[float, float]] = {seen: {} for seen in SEEN}  # by delay
    for delay in DELAYS:
        cells = []
        for key, *markers in KEYS:
            ms = [
                tuple(1000 * t for t in key_after_start(delay, key, tuple(markers), extra))
                for _ in range(args.repeats)
            ]
            for i, seen in enumerate(SEEN):
                worst[seen][delay] = max(worst[seen].get(delay, 0.0), *(m[i] for m in ms))
            cells.append(", ".join("/".join(f"{t:.0f}" for t in m) for m in ms))
        print(f"{delay:21.2f}s  " + "  ".join(f"{c:>{13 * args.repeats}}" for c in cells))
    for what, times in worst.items():
        fast = [d for d in DELAYS if all(times[e] <= target for e in DELAYS if e >= d)]
        since = f"from {fast[0]:.2f} s on" if fast else "at no delay"
        print(f"screens {what + ':':7} every key within the target {since}; "
              f"worst {max(times.values()):.0f} ms")
    print(load_average() + " (at the end)")


if __name__ == "__main__":
    main()
