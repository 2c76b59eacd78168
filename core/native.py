"""The C kernels (core/q4_kernel.c: the int4 sampler's step; core/copy_kernel.c: the copy
model's push and predict), built by `make setup` (`python -m core.native`) into one shared
library and loaded with ctypes. Without them (no C compiler) the sampler runs on numpy and
torch alone, with the same tunes from the copy model and int8 in place of int4.

The library carries an id of the sources it was built from: one built from other sources (a
checkout updated without `make setup`) is built again on first use, or left unused where that
fails, never called with another layout of its structures."""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

HERE = Path(__file__).parent
SOURCES = (HERE / "q4_kernel.c", HERE / "copy_kernel.c")
LIBRARY = HERE / "_native.so"

FAILED = HERE / "_native.failed"  # the sources id of a build that failed: not tried again
_lib: ctypes.CDLL | None = None
_lib_tried = False
_problem = ""  # why library() is None
_lock = threading.Lock()  # one build at a time; no thread sees "not built" while one is under way


# -ffp-contract=off: no fused multiply-adds the sources do not write, so that every instruction
# set computes the same floats.
FLAGS = ("-O3", "-shared", "-fPIC", "-pthread", "-ffp-contract=off")


def sources_id() -> str:
    """What the library must be built from: its sources and flags, hashed."""
    h = hashlib.sha256(" ".join(FLAGS).encode())
    for path in SOURCES:
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _umask() -> int:
    """This process's umask, read without setting it (os.umask sets it, for every thread)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def build(quiet: bool = False) -> bool:
    """Compiles the kernels with the C compiler (cc); False where there is none or it fails.
    Written beside and moved into place, so that a process loading it never sees half a file."""
    try:
        fd, tmp = tempfile.mkstemp(prefix="_native.", suffix=".building", dir=HERE)
        os.close(fd)
        os.chmod(tmp, 0o755 & ~_umask())  # mkstemp's 0600 would keep it from other users
    except OSError as e:  # a read-only install
        if not quiet:
            print(f"C kernels not built: {e}", file=sys.stderr)
        return False
    cmd = ["cc", *FLAGS, f'-DFOLKGEN_NATIVE_ID="{sources_id()}"', "-o", tmp,
           *map(str, SOURCES), "-lm"]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
        ok = proc.returncode == 0
        if ok:
            os.replace(tmp, LIBRARY)
            with contextlib.suppress(OSError):
                FAILED.unlink(missing_ok=True)
        elif not quiet:
            print(f"C kernels not built:\n{proc.stderr}", file=sys.stderr)
        return ok
    except OSError as e:
        if not quiet:
            print(f"C kernels not built: {e}", file=sys.stderr)
        return False
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _current() -> bool:
    """Whether the library on disk was built from these sources. Read from the file, not by
    loading it: a process keeps a loaded library by its path, so a stale one, once loaded,
    could not be replaced by its rebuild in the same process."""
    try:
        return b"folkgen-native-id:" + sources_id().encode() in LIBRARY.read_bytes()
    except OSError:
        return False


def library() -> ctypes.CDLL | None:
    """The built kernels, built now where they are missing or stale (~1 s, once); None where
    they cannot be (no C compiler, a read-only install: `problem()` says which) or
    FOLKGEN_NO_NATIVE is set to anything but 0 (the numpy and torch path). A build that failed
    is not tried again for the same sources (`python -m core.native` always tries, and says
    why it fails)."""
    global _lib, _lib_tried, _problem
    with _lock:
        if not _lib_tried:
            _lib_tried = True
            if os.environ.get("FOLKGEN_NO_NATIVE", "0") not in ("", "0"):
                _problem = "FOLKGEN_NO_NATIVE is set"
                return None
            if not _current() and (
                _failed_before() or not (build(quiet=True) and _current())
            ):
                _problem = "they could not be built (python -m core.native says why)"
                _remember_failure()
                return None
            try:
                _lib = ctypes.CDLL(str(LIBRARY))
            except OSError as e:
                _problem = f"they could not be loaded ({e})"
                return None
        return _lib


def problem() -> str:
    """Why the kernels are not in use ("" where they are, or were not asked for yet)."""
    return _problem


def _failed_before() -> bool:
    try:
        return FAILED.read_text() == sources_id()
    except OSError:
        return False


def _remember_failure() -> None:
    with contextlib.suppress(OSError):  # a read-only install: tried again next time
        FAILED.write_text(sources_id())


if __name__ == "__main__":  # make setup
    sys.exit(0 if build() else 1)
