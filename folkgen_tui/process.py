"""Process-wide settings of the studio, in one place: glibc's malloc arenas, Textual's frame rate
and the garbage collector held off, set once at start-up, the cyclic garbage collector's view
of what lives as long as the app, its collections held while a key is answered, and the
interpreter handed back to the UI thread sooner while a worker imports numpy.

They act on the whole process, not on one app object: they are made here, from the process's
start (folkgen_tui/__main__.py, before any thread exists), from the app's one settling call
(FolkgenApp._settle) and from its key hold (FolkgenApp.on_event, released when the app ends too),
never from screens or constructors (tests build many apps in one process)."""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import threading
from collections.abc import Iterator

M_ARENA_MAX = -8  # glibc mallopt: how many malloc arenas threads may create
MALLOC_ARENAS = 2
FRAME_RATE = 120  # frames a second Textual may draw (its own default: 60)

_configured = False


def configure() -> None:
    """The process's settings, once (later calls do nothing). First thing at start-up: glibc
    gives each thread that allocates its own arena when it starts, so the limit must come before
    the lifeline's and the terminal query's threads."""
    global _configured
    if _configured:
        return
    _configured = True
    # No garbage collection during start-up: the app turns it back on once its first model is
    # ready, after one collection of what start-up made (FolkgenApp._settle; see below).
    gc.disable()
    limit_malloc_arenas()
    raise_frame_rate()


def raise_frame_rate() -> None:
    """Textual draws a change at its screen's next frame tick, so at its default 60 frames a
    second a key waits up to 17 ms for its frame, and a Library filter keystroke (the field
    changes, then the table) up to two: 120 took the keystroke's median from 47 to 30 ms
    (bench/library_screen.py) and a screen switch's wait with it. A frame is drawn only when
    something changed, so an idle app draws no more. Textual reads TEXTUAL_FPS once, when it is
    imported: hence here, before it is; a value the user set wins."""
    os.environ.setdefault("TEXTUAL_FPS", str(FRAME_RATE))


def limit_malloc_arenas() -> None:
    """glibc gives threads their own malloc arenas; with worker threads coming and going (each
    training run, each tune), freed memory stayed spread over many of them and the app's
    resident memory grew by ~25 MB per train-and-generate round of bench/long_session.py. Two
    arenas keep it flat. Elsewhere than glibc this does nothing."""
    import ctypes

    try:  # find_library runs ldconfig (~20 ms of start-up): glibc's own name first
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        import ctypes.util  # only here: it imports subprocess and more (~20 ms before Textual)

        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c"))
        except OSError:
            return
    with contextlib.suppress(AttributeError):  # not glibc
        libc.mallopt(M_ARENA_MAX, MALLOC_ARENAS)


def settle_long_lived_objects(collect: bool = True) -> None:
    """Move what exists now (corpus, near-copy index, torch, the model, the screens: hundreds of
    thousands of objects) out of the cyclic garbage collector's sight. Each full collection
    walked them all, 150-200 ms with the UI frozen, a few times a minute while keys were
    pressed; now a collection only looks at what came later. Reference counting still frees
    them when they go, but cycles among them would stay: so this runs only for what lives as
    long as the app (torch, the corpus's index, each screen's first build: the app calls it
    once after each), never on every round of work, where it would also catch passing widgets
    such as notifications.

    Without `collect`, what is garbage now is frozen with the rest: the app's first settling,
    after start-up made ~290,000 objects with the collector off, found ~35,000 of them garbage (a
    few MB) in a collection that held the interpreter, and every key, for 120-140 ms."""
    if collect:
        gc.collect()
    gc.freeze()


KEY_HOLD = 0.1  # seconds a key holds collections back: its work and its frame (~10-30 ms here)


class KeyHold:
    """Cyclic garbage collections held back while the app answers a key. A screen's draw makes
    tens of thousands of objects, so the collections that allocations trigger fell on keys more
    than on any other moment: a full one (5-13 ms while a run trains: the screens' caches, the
    charts) came into one key in twenty, a third of its time. Held, they come once the key's
    frame is out. Only the collector that runs is held: not at start-up, when it is off anyway."""

    def __init__(self) -> None:
        self.holding = False

    def hold(self) -> bool:
        """Hold collections back; False when they already are (then do not release them)."""
        if self.holding or not gc.isenabled():
            return False
        gc.disable()
        self.holding = True
        return True

    def release(self) -> None:
        if self.holding:
            self.holding = False
            gc.enable()


GIVE_WAY_INTERVAL = 0.0005  # seconds; CPython's own switch interval is 0.005


class _GiveWay:
    """The switch interval shortened while any thread is within giving_way(), and restored as
    the last leaves: two model loads in a row overlap there, and each restoring what it found
    left it short for good."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.inside = 0
        self.before = 0.0


_give_way = _GiveWay()


@contextlib.contextmanager
def giving_way() -> Iterator[None]:
    """For a worker thread's burst of Python work while the UI thread is mostly idle (numpy's
    import, ~45 ms, at start-up: FolkgenApp._import_numpy): the UI thread, waking for a key,
    gets the interpreter within GIVE_WAY_INTERVAL instead of CPython's 5 ms switch interval,
    each time its event loop waits and wakes. Keys 0.9-1.0 s after the first frame, with the
    import then: worst 29 ms this way, 55 without (4 starts a delay)."""
    with _give_way.lock:
        if _give_way.inside == 0:
            _give_way.before = sys.getswitchinterval()
            sys.setswitchinterval(GIVE_WAY_INTERVAL)
        _give_way.inside += 1
    try:
        yield
    finally:
        with _give_way.lock:
            _give_way.inside -= 1
            if _give_way.inside == 0:
                sys.setswitchinterval(_give_way.before)
