"""int4 sampling for one-layer models: W_hh in 4 bits, in groups of 64 columns with a float scale
each, the output layer in int8 (a scale a row), and the whole step (cell, products, logits) in
the C kernel core/q4_kernel.c (built and loaded by core/native.py).

The seed-size model's int8 weights (4.2 MB) stream from L3 at every character; as int4 they
take 2.2 MB, which two cores' L2 caches hold. Each group's scale is the one of nine clippings
of its largest weight that leaves the least squared error (plain rounding to the largest, and
the head in int4 too, lost 0.7 % in bits per character on a trained seed-size model; this
loses 0.12 %, and on the shipped model nothing: tests/int8_check.py measures it against float32
in the test suite)."""

from __future__ import annotations

import atexit
import ctypes
import os
import threading
import weakref

import numpy as np

from core import native

GROUP = 64  # columns that share a scale
TILE = 16  # rows the kernel takes at once
# The C kernel's numbers, slowest first; a CPU may run a faster one and not a slower (AVX-512 VNNI
# without AVX-VNNI: Ice Lake servers).
KERNELS = ("plain", "avx2", "avx-vnni", "avx512-vnni", "amx")
# Threads a step is split over: two cores' L2 caches hold the seed-size model's weights, which
# one core's does not. Only 2-core machines were at hand to measure, so more threads are not
# asked for by default (they spin between steps); FOLKGEN_SAMPLER_THREADS sets another number.
DEFAULT_THREADS = 2


class _Model(ctypes.Structure):
    _fields_ = [
        ("rows", ctypes.c_int32), ("tiles", ctypes.c_int32), ("cols", ctypes.c_int32),
        ("hidden", ctypes.c_int32), ("vocab", ctypes.c_int32), ("pad", ctypes.c_int32),
        ("w", ctypes.c_void_p), ("scale", ctypes.c_void_p),
        ("head", ctypes.c_void_p), ("head_scale", ctypes.c_void_p),
        ("in_table", ctypes.c_void_p), ("b_out", ctypes.c_void_p),
    ]  # fmt: skip


_lib: ctypes.CDLL | None = None


def library() -> ctypes.CDLL | None:
    """The kernels with the step's signatures set, or None where they are not built."""
    global _lib
    lib = native.library()
    if lib is not None and _lib is None:
        lib.q4_step.restype = ctypes.c_int
        lib.q4_step.argtypes = (ctypes.POINTER(_Model), ctypes.c_int, *[ctypes.c_void_p] * 8,
                                ctypes.c_int)
        lib.q4_settle.restype = None
        lib.q4_configure.restype = ctypes.c_int
        lib.q4_configure.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.q4_threads.restype = ctypes.c_int
        lib.q4_kernel.restype = ctypes.c_int
        lib.q4_supported.restype = ctypes.c_int
        lib.q4_supported.argtypes = [ctypes.c_int]
        # A product left running at exit would write into arrays the interpreter frees.
        atexit.register(lib.q4_settle)
        _lib = lib
    return _lib


def available() -> bool:
    return library() is not None


def configure(threads: int | None = None, kernel: str | None = None) -> str:
    """Sets the threads (default: FOLKGEN_SAMPLER_THREADS, else 2, at most the usable cores)
    and the kernel (default: FOLKGEN_Q4_KERNEL, else the best this CPU runs; tests ask for each
    to check they agree); returns the kernel's name. Threads are set once per process."""
    lib = library()
    if lib is None:
        raise RuntimeError("the C kernels are not built (make setup)")
    if threads is None:
        value = os.environ.get("FOLKGEN_SAMPLER_THREADS", str(DEFAULT_THREADS))
        try:
            threads = int(value)
        except ValueError:
            raise ValueError(f"FOLKGEN_SAMPLER_THREADS must be a whole number, not {value!r}") from None
    threads = max(1, min(threads, len(os.sched_getaffinity(0))))
    kernel = kernel or os.environ.get("FOLKGEN_Q4_KERNEL")
    if kernel and kernel not in KERNELS:
        raise ValueError(f"the int4 kernel (FOLKGEN_Q4_KERNEL) must be one of "
                         f"{', '.join(KERNELS)}, not {kernel!r}")  # fmt: skip
    global _configured
    got = lib.q4_configure(threads, KERNELS.index(kernel) if kernel else -1)
    _configured = True
    return KERNELS[got]


_configured = False
_configured_lock = threading.Lock()


def _configure_once() -> None:
    """The defaults (`configure()`) on the first step's model of the process; a kernel set
    since (tests, benches) is kept."""
    global _configured
    with _configured_lock:
        if not _configured:
            configure()


def supported() -> list[str]:
    """The kernels this CPU runs, slowest first (none where they are not built)."""
    lib = library()
    return [k for i, k in enumerate(KERNELS) if lib is not None and lib.q4_supported(i)]


def kernel() -> str | None:
    """The kernel in force (None before the first configure)."""
    lib = library()
    got = int(lib.q4_kernel()) if lib is not None else -1
    return KERNELS[got] if got >= 0 else None


def threads() -> int:
    """The threads a step is split over (the caller's and the pool's)."""
    lib = library()
    return int(lib.q4_threads()) if lib is not None else 1


def quantise(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) float weights -> (packed nibbles, scales) in the kernel's layout, columns
    padded with zeros to a multiple of GROUP and rows to one of TILE."""
    rows, cols = weight.shape
    R, C = -(-rows // TILE) * TILE, -(-cols // GROUP) * GROUP
    w = np.zeros((R, C), np.float32)
    w[:rows, :cols] = weight
    groups = w.reshape(R, C // GROUP, GROUP)
    amax = np.abs(groups).max(axis=2, keepdims=True)
    best_q = np.zeros(groups.shape, np.int8)
    best_s = np.zeros(amax.shape, np.float32)
    best_err = np.full(amax.shape, np.inf, np.float32)
    for clip in np.linspace(0.6, 1.0, 9, dtype=np.float32):
        s = np.maximum(amax * clip / 7.0, 1e-12).astype(np.float32)
        q = np.clip(np.rint(groups / s), -8, 7)
        err = np.square(q * s - groups).sum(axis=2, keepdims=True)
        better = err < best_err
        best_q = np.where(better, q, best_q).astype(np.int8)
        best_s = np.where(better, s, best_s)
        best_err = np.where(better, err, best_err)
    u = (best_q.reshape(R, C) + 8).astype(np.uint8)
    # [tile][chunk of 8 columns][row of the tile][4]: low nibble column k, high nibble k + 4.
    u = u.reshape(R // TILE, TILE, C // 8, 2, 4).transpose(0, 2, 1, 3, 4)
    packed = np.ascontiguousarray(u[..., 0, :] | (u[..., 1, :] << 4)).reshape(-1)
    scales = best_s.reshape(R // TILE, TILE, C // GROUP).transpose(0, 2, 1)  # [tile][group][row]
    return packed, np.ascontiguousarray(scales, dtype=np.float32).reshape(-1)


def dequantised(packed: np.ndarray, scales: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """The float weights the kernel multiplies by (for tests)."""
    R, C = -(-rows // TILE) * TILE, -(-cols // GROUP) * GROUP
    b = packed.reshape(R // TILE, C // 8, TILE, 4)
    u = np.stack([b & 15, b >> 4], axis=3).transpose(0, 2, 1, 3, 4).reshape(R, C)
    s = scales.reshape(R // TILE, C // GROUP, TILE).transpose(0, 2, 1).reshape(R, C // GROUP)
    w: np.ndarray = (u.astype(np.float32) - 8) * np.repeat(s, GROUP, axis=1)
    return w[:rows, :cols]


def quantise_rows(weight: np.ndarray, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, n) float weights -> (int8 weights padded with zeros to `cols`, a scale a row)."""
    scale = np.maximum(np.abs(weight).max(axis=1) / 127.0, 1e-12).astype(np.float32)
    q = np.zeros((weight.shape[0], cols), np.int8)
    q[:, : weight.shape[1]] = np.clip(np.rint(weight / scale[:, None]), -127, 127)
    return q, scale


_models: weakref.WeakSet[Q4Step] = weakref.WeakSet()


def _fresh_locks() -> None:
    """In a forked child, each model's lock anew: a thread of the parent's stepping at the fork
    held its lock, and that thread is not in the child (the C side waits out a step, and
    forgets its threads and any product ahead, at the fork)."""
    for m in list(_models):
        m._lock = threading.Lock()


os.register_at_fork(after_in_child=_fresh_locks)


class Q4Step:
    """One-layer LSTM step, W_hh in int4 and the output layer in int8: `step(ids, h, c, rec)`
    updates h, c and rec (the pending W_hh @ h) of a batch of streams in place and returns
    their logits. Pass the same arrays from step to step (not fresh views of them): their
    pointers are taken once. With `ahead`, step returns as soon as the logits are made and the
    kernel's threads go on making rec while the caller draws (the draw's Python, ~40 us a step
    of 16 streams, otherwise leaves the other core idle): the next step, or `settle`, waits for
    it, and nothing else may read that rec before."""

    def __init__(
        self, in_table: np.ndarray, w_hh: np.ndarray, w_head: np.ndarray, b_out: np.ndarray
    ):
        lib = library()
        if lib is None:
            raise RuntimeError("the C kernels are not built (make setup)")
        self.lib = lib
        _configure_once()
        rows, hidden = w_hh.shape
        vocab = b_out.shape[0]
        self.hidden, self.vocab = hidden, vocab
        self.cols = -(-hidden // GROUP) * GROUP
        self.w, self.scale = quantise(w_hh)
        self.head, self.head_scale = quantise_rows(w_head, self.cols)
        self.in_table = np.ascontiguousarray(in_table, np.float32)
        self.b_out = np.ascontiguousarray(b_out, np.float32)
        self.model = _Model(
            rows, -(-rows // TILE), self.cols, hidden, vocab, 0,
            self.w.ctypes.data, self.scale.ctypes.data,
            self.head.ctypes.data, self.head_scale.ctypes.data,
            self.in_table.ctypes.data, self.b_out.ctypes.data,
        )  # fmt: skip
        self.model_ref = ctypes.byref(self.model)
        self._work: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        # The last step's state arrays, batch and the pointers passed for them (under _lock): a
        # stream's arrays stay the same from step to step, and asking numpy for six pointers
        # took ~5 us a step.
        empty = np.zeros(0, np.float32)
        self._ahead = False  # a step of this model's may still be making rec (step's `ahead`)
        self._lock = threading.Lock()
        _models.add(self)
        self._bound: tuple[np.ndarray, np.ndarray, np.ndarray, int, tuple[int, ...]] = (
            empty, empty, empty, -1, ()
        )

    def step(
        self, ids: np.ndarray, h: np.ndarray, c: np.ndarray, rec: np.ndarray, ahead: bool = False
    ) -> np.ndarray:
        ids64 = np.ascontiguousarray(ids, np.int64)
        batch = len(ids64)
        # Under the lock, the arrays bound and whether a product may still run on them change
        # together: two threads stepping this model must not free arrays a product writes.
        with self._lock:
            bound = self._bound
            if bound[0] is not h or bound[1] is not c or bound[2] is not rec or bound[3] != batch:
                self._settle()  # (a product running ahead may write into the arrays bound now)
                if ids64.ndim != 1:
                    raise ValueError("ids must be one character a stream")
                for a, width in ((h, self.hidden), (c, self.hidden), (rec, 4 * self.hidden)):
                    if a.dtype != np.float32 or not a.flags.c_contiguous or a.size != batch * width:
                        raise ValueError("state arrays must be C-contiguous float32, a row a stream")
                pointers = tuple(a.ctypes.data for a in (h, c, rec)) + self._workspace(batch)
                bound = self._bound = (h, c, rec, batch, pointers)
            logits = np.empty((batch, self.vocab), np.float32)
            hp, cp, rp, aq, asum, ascale = bound[4]
            self._ahead = self._ahead or ahead
            if self.lib.q4_step(self.model_ref, batch, ids64.ctypes.data, hp, cp, rp,
                                logits.ctypes.data, aq, asum, ascale, ahead) != 0:  # fmt: skip
                raise IndexError("character id outside the vocabulary")
        return logits

    def settle(self) -> None:
        """Waits for a step taken `ahead` to finish rec."""
        with self._lock:
            self._settle()

    def _settle(self) -> None:
        if self._ahead:
            self.lib.q4_settle()
            self._ahead = False

    def __del__(self) -> None:
        # The arrays a product left running reads and writes are this object's (and those
        # bound in _bound): they must outlive it.
        if hasattr(self, "_ahead"):  # (not where __init__ failed before setting it)
            self._settle()

    def _workspace(self, batch: int) -> tuple[int, int, int]:
        """Pointers to the kernel's scratch arrays for `batch` streams (kept per batch size)."""
        if batch not in self._work:
            self._work[batch] = (
                np.zeros((batch, self.cols), np.int8),
                np.zeros((batch, self.cols // GROUP), np.int32),
                np.zeros(batch, np.float32),
            )
        aq, asum, ascale = self._work[batch]
        return aq.ctypes.data, asum.ctypes.data, ascale.ctypes.data
