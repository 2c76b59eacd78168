"""Modules imported a few at a time, ahead of the screen or tab that needs them (issue 14).

Imported at once, Generate's modules held the UI thread 11-25 ms, Dataset's Tunes tab's 8-13:
loop turns a key waited behind, in the first half second. One module takes 0.3-4 ms; a turn
imports them until IMPORT_SLICE has passed. (One a turn, each waited for a round of the other
work under way, and Generate's fields came later.) Each list is in an order where a module
imports none of ours not before it (tests/test_app_startup.py checks each)."""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Sequence

IMPORT_SLICE = 0.004  # seconds of imports in one loop turn (the last may run over)
IMPORT_PAUSE = 0.001  # seconds between two turns: a loop turn for what waits (a key)


def import_next(modules: Sequence[str], slice_s: float = IMPORT_SLICE) -> bool:
    """Import the first of `modules` not imported yet, and the next ones until `slice_s` has
    passed: True once all of them are."""
    start = time.perf_counter()
    for name in modules:
        if name not in sys.modules:
            importlib.import_module(name)
            if time.perf_counter() - start >= slice_s:
                break
    return all(name in sys.modules for name in modules)
