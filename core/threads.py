"""How many threads torch trains with. All cores on a quiet machine; fewer when other processes
keep cores busy: torch's OpenMP threads wait for each other at every operation, and when one of
them has to share its core, a 5 ms step can take seconds (measured here: two 2-thread trainings
side by side on 2 cores slowed a tiny model's step from 4 ms to over half a second; with one
thread each, 8 ms). The choice is re-made every few seconds from /proc (Linux); elsewhere,
or when a number is asked for, it stays fixed.

torch's thread count belongs to the calling thread, so `ThreadPolicy` is used on the thread
that trains."""

from __future__ import annotations

import math
import os
import time

CHECK_EVERY_S = 2.0
MIN_WINDOW_TICKS = 25  # per CPU (0.25 s at 100 Hz): in a shorter look, one tick of another
# process reads as a busy core (training started in the app with 1 thread on an idle machine)


_family: tuple[int, ...] = ()  # other processes whose CPU time counts as this one's


def count_as_ours(*pids: int) -> None:
    """Count these processes' CPU time as this process's own: torch's processes of the app
    (core/engine.py) count the app's, whose drawing is not another program's load (counted as
    one, the app drawing a training run at ~0.5 core could drop the run to one thread)."""
    global _family
    _family = pids


def cpu_ticks(task: str) -> int | None:
    """The CPU time (user + system), in clock ticks, of a process ("PID", "self") or of one of
    its threads ("PID/task/TID"); None when it has gone, or where there is no /proc."""
    try:
        with open(f"/proc/{task}/stat", encoding="ascii") as f:
            stat = f.read()
        # The fields after the ")" closing the command name; utime and stime are 14 and 15.
        after = stat.rsplit(")", 1)[1].split()
        return int(after[11]) + int(after[12])
    except (OSError, ValueError, IndexError):
        return None


def _cpu_sample() -> tuple[int, int, int, int] | None:
    """(all CPU time, idle CPU time, this process's CPU time) in clock ticks, and the number of
    CPUs they are summed over; None where /proc cannot tell."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            lines = f.read().splitlines()
        fields = [int(v) for v in lines[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    ours = cpu_ticks("self")
    if ours is None:
        return None
    ours += sum(cpu_ticks(str(pid)) or 0 for pid in _family)
    cpus = sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit())
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal
    return total, idle, ours, max(cpus, 1)


def all_cores() -> int:
    """The cores this process may run on."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else (os.cpu_count() or 1)


def threads_for(cores: int, others_busy: float) -> int:
    """Threads to use when other processes keep `others_busy` cores busy."""
    if others_busy < 0.5:
        return cores
    return max(1, cores - math.ceil(others_busy - 0.25))


class ThreadPolicy:
    """`requested` threads (0: choose from what other processes use, and keep choosing)."""

    def __init__(self, requested: int = 0, cores: int | None = None) -> None:
        if requested < 0:
            raise ValueError("threads must be 0 (chosen automatically) or more")
        self.requested = requested
        self.cores = cores or all_cores()
        self._last = _cpu_sample() if not requested else None
        self._checked = time.monotonic()
        self.threads = requested or self.cores

    def others_busy(self) -> float | None:
        """Cores other processes used since the last look (None without /proc, or when the last
        look was too recent to judge)."""
        now = _cpu_sample()
        last, self._last = self._last, now
        if now is None or last is None:
            return None
        total, idle, ours = (a - b for a, b in zip(now[:3], last[:3], strict=True))
        if total < MIN_WINDOW_TICKS * now[3]:
            self._last = last  # too short to judge: keep looking from the earlier sample
            return None
        return max(0.0, (total - idle - ours) / (total / now[3]))

    def apply(self) -> int:
        """Set torch's thread count for the calling thread; returns it."""
        import torch

        if not self.requested:
            others = self.others_busy()
            if others is not None:
                self.threads = threads_for(self.cores, others)
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        self._checked = time.monotonic()
        return self.threads

    def maybe_update(self) -> int:
        """Between steps: look again every CHECK_EVERY_S seconds (auto only)."""
        if not self.requested and time.monotonic() - self._checked >= CHECK_EVERY_S:
            return self.apply()
        return self.threads
