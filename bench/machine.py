"""What the benches print about the machine they ran on, and `--avx2`: the benches' figures
from an AVX-512 machine emulating an AVX2-only x86 (a laptop-class CPU: no AVX-512, no VNNI);
`--avx-vnni` (bench/sampling_speed.py) the same with AVX-VNNI, as Intel's laptops from Alder
Lake on have.

The emulation picks the AVX2 kernels of every library that dispatches on the CPU: torch's own
(ATEN_CPU_CAPABILITY), fbgemm's int8 GEMMs (FBGEMM_ENABLE_INSTRUCTIONS), OpenBLAS (numpy's
matrix products: OPENBLAS_CORETYPE), MKL, numpy's ufuncs (NPY_DISABLE_CPU_FEATURES) and
folkgen's C kernels (FOLKGEN_Q4_KERNEL: core/q4.py). Each
library reads its variable once, at load: the emulation holds in child processes started with
its environment (EMULATIONS). It does not emulate a smaller cache or less memory bandwidth."""

from __future__ import annotations

import os
import subprocess
import sys
import time

AVX2_ENV = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "FBGEMM_ENABLE_INSTRUCTIONS": "AVX2",
    "OPENBLAS_CORETYPE": "Haswell",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
    "FOLKGEN_Q4_KERNEL": "avx2",
}
# A laptop of Intel's from Alder Lake on (or AMD's from Zen 5): AVX2 and AVX-VNNI, no AVX-512.
# torch, fbgemm, OpenBLAS, MKL and numpy use no VNNI without AVX-512: only folkgen's kernel differs.
AVX_VNNI_ENV = {**AVX2_ENV, "FOLKGEN_Q4_KERNEL": "avx-vnni"}
EMULATIONS = {
    "avx2": (AVX2_ENV, "an AVX2-only CPU"),
    "avx-vnni": (AVX_VNNI_ENV, "an AVX2 CPU with AVX-VNNI"),
}
EXTENSIONS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            return next((set(line.split()[2:]) for line in f if line.startswith("flags")), set())
    except OSError:
        return set()


def emulation() -> str | None:
    """The CPU this process emulates (a key of EMULATIONS), if any."""
    return next((name for name, (env, _) in EMULATIONS.items()
                 if all(os.environ.get(k) == v for k, v in env.items())), None)  # fmt: skip


def vector_extensions() -> str:
    """The CPU's vector extensions that decide which kernels run, e.g. "avx2 avx512f"."""
    flags = cpu_flags()
    return " ".join(e for e in EXTENSIONS if e in flags) or "none of " + "/".join(EXTENSIONS)


def load_average() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "load average unknown"
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def wake_up_cost(idle: float = 8.0) -> tuple[float, float]:
    """Milliseconds the same few milliseconds of Python take (a walk over ~100,000 dicts and
    lists, as a screen's first draw walks its widgets and styles) 0.3 s and `idle` s after this
    process last ran. A VM that shares its host with other jobs runs it several times slower
    after seconds of idleness (here 6-10x), its caches having served the others meanwhile: a
    key pressed then pays that, whatever the app does."""
    data = [{f"k{i}": list(range(20)) for i in range(50)} for _ in range(2000)]

    def walk() -> float:
        t0 = time.perf_counter()
        sum(v[3] for d in data for v in d.values())
        return 1000 * (time.perf_counter() - t0)

    walk()
    time.sleep(0.3)
    warm = walk()
    time.sleep(idle)
    return warm, walk()


def describe() -> str:
    """One line for a bench's header: the CPU's extensions, the load, and the emulation."""
    line = f"CPU vector extensions: {vector_extensions()}; {load_average()}"
    name = emulation()
    if name is not None:
        env, what = EMULATIONS[name]
        line += f"\nemulating {what}: " + " ".join(f"{k}={v}" for k, v in env.items())
    return line


def rerun_emulating(name: str, script: str, argv: list[str]) -> None:
    """Run this bench again in a child process with the kernels of EMULATIONS[name] chosen, and
    exit with its status (the libraries read their variables when they load: too late in this
    process). The emulation's flag (--avx2, --avx-vnni) is left out of the child's arguments."""
    args = [a for a in argv if a != f"--{name}"]
    env = {**os.environ, **EMULATIONS[name][0]}
    sys.exit(subprocess.run([sys.executable, script, *args], env=env).returncode)

