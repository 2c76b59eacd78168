"""The app's terminal ended at random moments of start-up, many times: closed from the other end
(as tmux and terminal windows do), SIGHUP, SIGTERM or SIGINT. Every run must end the process
within 5 s with exit status 0 and leave no child process (or, for a hang-up before the app's watch
is in with SIGHUP at its default, be ended by it, as any program is). The failure this guards
against (the app alive for ever) depended on the moment to within a frame; `make test` runs a
short sweep (tests/test_app_terminal.py), this one runs `--runs` of them. `--ignore-hangup`
starts every app with SIGHUP ignored, as nohup and some CI runners leave it."""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.pty_app import Terminal, adopt_orphans, children  # noqa: E402

WAYS = ("close", "SIGHUP", "SIGTERM", "SIGINT")
GONE_WITHIN = 5.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=120)
    ap.add_argument("--latest", type=float, default=5.0, help="latest moment, seconds")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ignore-hangup", action="store_true", help="start each app ignoring SIGHUP")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    adopt_orphans()
    failures: list[str] = []
    gone: dict[str, list[float]] = {way: [] for way in WAYS}
    ends = Counter[str]()
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="folkgen-bench-") as home:
        for run in range(args.runs):
            how = WAYS[run % len(WAYS)]
            at = rng.uniform(0.05, args.latest)
            signals = "ignored" if args.ignore_hangup else "inherited"
            term = Terminal(str(Path(home) / f"run-{run}"), signals=signals)
            term.idle(at - (time.perf_counter() - term.started))
            ends["after first frame" if b"Dataset" in term.text else "before first frame"] += 1
            term.end(how)
            result = term.wait_gone(GONE_WITHIN)
            term.close()
            left = children()
            for pid in left:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
            if result is None:
                failures.append(f"run {run}: {how} at {at:.2f} s: still running after 5 s")
            elif not term.ended_well(result[1]):
                failures.append(f"run {run}: {how} at {at:.2f} s: wait status {result[1]}")
            if result is not None:
                gone[how].append(result[0])
            if left:
                failures.append(f"run {run}: {how} at {at:.2f} s: left {sorted(left.values())}")
    print(
        f"{args.runs} runs in {time.perf_counter() - t_start:.0f} s, moments 0.05-{args.latest} s"
    )
    print("  " + ", ".join(f"{n} {k}" for k, n in ends.items()))
    for how, times in gone.items():
        if times:
            times.sort()
            print(
                f"  {how:8s} {len(times)} ended; seconds to gone: median {times[len(times) // 2]:.2f}"
                f", worst {times[-1]:.2f}"
            )
    load = os.getloadavg()[0]
    print(
        f"load average {load:.1f} on {os.cpu_count()} cores ({'quiet' if load < 0.5 else 'busy'})"
    )
    for f in failures:
        print("FAIL", f)
    print("verdict:", "ok" if not failures else f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
