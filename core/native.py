"""The C kernels (core/q4_kernel.c: the int4 sampler's step; core/copy_kernel.c: the copy
model's push and predict), built by `make setup` (`python -m core.native`) into one shared
library and loaded with ctypes. Without them (no C compiler) the sampler runs on numpy and
torch alone, with the same tunes from the copy model and int8 in place of int4."""

from __future__ import annotations

import ctypes
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
SOURCES = (HERE / "q4_kernel.c", HERE / "copy_kernel.c")
LIBRARY = HERE / "_native.so"

_lib: ctypes.CDLL | None = None
_lib_tried = False


def build(quiet: bool = False) -> bool:
    """Compiles the kernels with the C compiler (cc); False where there is none or it fails.
    -ffp-contract=off: no fused multiply-adds the source does not write, so that every
    instruction set computes the same floats."""
    cmd = ["cc", "-O3", "-shared", "-fPIC", "-pthread", "-ffp-contract=off",
           "-o", str(LIBRARY), *map(str, SOURCES), "-lm"]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        if not quiet:
            print(f"C kernels not built: {e}", file=sys.stderr)
        return False
    if proc.returncode != 0 and not quiet:
        print(f"C kernels not built:\n{proc.stderr}", file=sys.stderr)
    return proc.returncode == 0


def library() -> ctypes.CDLL | None:
    """The built kernels, or None (not built, or built for another machine)."""
    global _lib, _lib_tried
    if not _lib_tried:
        _lib_tried = True
        try:
            _lib = ctypes.CDLL(str(LIBRARY))
        except OSError:
            return None
    return _lib


if __name__ == "__main__":  # make setup
    sys.exit(0 if build() else 1)
