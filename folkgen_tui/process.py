"""Memory housekeeping for a long-running app: malloc arenas and the cyclic garbage collector."""

from __future__ import annotations

import gc

M_ARENA_MAX = -8  # glibc mallopt: how many malloc arenas threads may create
MALLOC_ARENAS = 2


def limit_malloc_arenas() -> None:
    """glibc gives threads their own malloc arenas; with worker threads coming and going (each
    training run, each tune), freed memory stayed spread over many of them and the app's
    resident memory grew by ~25 MB per train-and-generate round of bench/long_session.py. Two
    arenas keep it flat. Elsewhere than glibc this does nothing."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(M_ARENA_MAX, MALLOC_ARENAS)
    except (OSError, AttributeError):
        pass


def settle_long_lived_objects() -> None:
    """Move what exists now (corpus, near-copy index, torch, the model, the screens: hundreds of
    thousands of objects) out of the cyclic garbage collector's sight. Each full collection
    walked them all, 150-200 ms with the UI frozen, a few times a minute while keys were
    pressed; now a collection only looks at what came later. Reference counting still frees
    them when they go, but cycles among them would stay: so this runs only for what lives as
    long as the app (at start-up, and when a screen is first built), never on every round of
    work, where it would also catch passing widgets such as notifications."""
    gc.collect()
    gc.freeze()
