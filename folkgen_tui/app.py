"""folkgen's studio: a full-screen Textual app over `core` (dataset, training, generation, models).

Nothing the first frame does not show is imported or made before it (issue 14): the screens other
than Dataset are imported when first built, and after the first frame come, one at a time, the
corpus, torch (and the core modules that need it) on worker threads, the model, and then the rest
(the near-copy indexes, the training warm-up, the other screens). One at a time, because threads
share one interpreter lock: two that run together each take about twice as long."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import events, work
from textual.app import SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.reactive import var
from textual.screen import ModalScreen, Screen
from textual.worker import Worker, WorkerState, get_current_worker

from core.paths import data_home, release_claims, replace_file
from core.words import plural
from folkgen_tui import graphics
from folkgen_tui.imports import IMPORT_PAUSE, import_next
from folkgen_tui.lifeline import Lifeline, WorkUnderWay
from folkgen_tui.process import (
    KEY_HOLD,
    KeyHold,
    configure,
    giving_way,
    settle_long_lived_objects,
)
from folkgen_tui.screens.base import StudioScreen
from folkgen_tui.screens.dataset import DatasetScreen
from folkgen_tui.sound import Playable, Sound
from folkgen_tui.textual_internals import (
    AppKeysAtOnce,
    InputFirst,
    QuickModeSwitch,
    StyledWhenMounted,
    app_ending,
    build_mode,
    built_modes,
    lay_out_ahead,
    laying_out_ahead,
    share_parsed_css,
    start_in_theme,
)
from folkgen_tui.tunebook import Tunebook

if TYPE_CHECKING:
    import argparse

    from textual.actions import ActionParseResult
    from textual.dom import DOMNode
    from textual.timer import Timer
    from textual.widget import AwaitMount

    from core.checkpoint_meta import CheckpointMeta
    from core.corpus import Corpus, CorpusStats
    from core.engine import Engine, Reply
    from core.novelty import NoveltyIndex
    from core.voice import Voice
    from folkgen_tui.state import LoadedModel, TuneRecord
    from folkgen_tui.studio import Studio
    from folkgen_tui.workers import TrainJob

DEFAULT_THEME = "gruvbox"
SETTINGS_FILE = "tui.json"
CORPUS_SETTING = "corpus"  # the corpus open last (an absolute path; None: the default)
# Screens built ahead from just after the first frame, the likeliest first: Textual takes ~110 ms
# to build Generate, ~60 Train, ~30 Library and ~15 Models (more while torch loads on the other
# core), where showing one built takes ~20 ms. A key waits for the piece of a build under way, so
# every screen's modules come first (a few a loop turn), then every screen's frame (its panels,
# ~15 ms each, with the sketch of what its fields will show; Models, which has no parts, whole),
# a few ms apart, then their fields (Deferred parts) one part at a time, each screen drawn ahead
# once its parts are in. Library and Models, built 0.3 s after the others' parts, were built by
# a key in the first half second: Library's table came 50-60 ms after an `l` (issue 14's target
# here: 22-23 ms).
PREBUILD_ORDER = ("generate", "train", "library", "models")
PREBUILD_PAUSE = 0.3  # seconds before the next step ahead once no part is queued
# Seconds from the first frame to the first build ahead, or sooner once the corpus is shown: at
# once, its first steps being modules, a few a loop turn (LazyScreen). From the corpus (~0.1 s
# after the first frame), keys 0.1-0.6 s after the first frame found the frames still being
# built: 90th percentile 47 and 55 ms against 38 and 34 from 0.05 s (36 starts a version).
PREBUILD_START = IMPORT_PAUSE
PART_PAUSE = 0.005  # seconds between two steps of the frames and parts built ahead
# Seconds between two pieces of a part (a key is looked for between them): at PART_PAUSE, Train's
# fields, shown by a key 0.3 s after the first frame, came 68-108 ms after it against 32-66.
PIECE_PAUSE = 0.001
# Seconds at most that the next part waits for a screen being laid out and drawn ahead. Keys
# 0.1-0.7 s after the first frame, 36 starts a version, three times: median 27, 17, 29 ms ->
# 20, 16, 22; 90th percentile 59, 39, 52 -> 41, 40, 54; worst 103, 59, 80 -> 72, 61, 71.
DRAW_FIRST = 0.3
LAY_OUT_PAUSE = 0.02  # seconds between two screens laid out again once the first model is in
NOVELTY_WAIT = 30.0  # seconds the corpus's near-copy index waits at most for the first model
WARM_UP_AFTER = 0.1  # seconds from the first model's arrival to the work that waited for it
SPARE_ENGINE_AFTER = 0.3  # seconds from the Train screen shown to its next run's engine started
SAVE_WAIT = 4.0  # seconds the app, closing, waits for a training run to save and end, and then
# for the screens' work under way (Generate's saves: StudioScreen.finish)
ENGINE_RESTARTS = 3  # times torch's process is started again after it ended on its own


# --- the screens, imported when first built -----------------------------------------------------


class LazyScreen:
    """A screen class named by its module, imported when first needed: a MODES value, which
    Textual calls to build the screen. The other screens' modules are ~40 ms of start-up that the
    first frame, which shows Dataset, need not wait for. Built ahead, they come a few a loop turn
    (folkgen_tui/imports.py): `needs`, the modules of ours (and Textual's costlier ones) that its
    module imports, then its own."""

    def __init__(self, module: str, name: str, needs: tuple[str, ...] = ()) -> None:
        self.module = module
        self.name = name
        self.needs = needs

    @property
    def cls(self) -> type[StudioScreen]:
        cls = getattr(importlib.import_module(self.module), self.name)
        assert isinstance(cls, type) and issubclass(cls, StudioScreen)
        return cls

    def import_next(self) -> bool:
        """Import its next modules not imported yet (`needs`, then its own), a turn's slice of
        them (folkgen_tui/imports.py): True once all are."""
        return import_next((*self.needs, self.module))

    def __call__(self) -> StudioScreen:
        return self.cls()


class ScreenModes(dict[str, "str | Callable[[], Screen[Any]]"]):
    """The app's MODES. Looked up by mode it gives the screen's class (importing it); Textual
    copies the dict and calls its values, so that a screen's module is imported only when the
    screen is built. Iterate the modes and look each up to see the classes (not `values()`)."""

    def __getitem__(self, mode: str) -> type[StudioScreen]:
        value = super().__getitem__(mode)
        if isinstance(value, LazyScreen):
            return value.cls
        assert isinstance(value, type) and issubclass(value, StudioScreen)
        return value

    def imported(self, mode: str) -> bool:
        """The mode's screen class is at hand: its module imported (looking it up imports it)."""
        value = super().__getitem__(mode)
        return not isinstance(value, LazyScreen) or value.module in sys.modules

    def import_next(self, mode: str) -> bool:
        """More of the mode's screen's modules imported (LazyScreen.import_next): True once its
        class is at hand."""
        value = super().__getitem__(mode)
        return value.import_next() if isinstance(value, LazyScreen) else True


_WIDGETS = "folkgen_tui.widgets."
SCREENS = ScreenModes(
    dataset=DatasetScreen,  # the first frame's
    train=LazyScreen("folkgen_tui.screens.train", "TrainScreen", needs=(
        "textual.widgets._log", "textual.widgets._progress_bar", "core.presets",
        _WIDGETS + "loss_chart", _WIDGETS + "clamped", _WIDGETS + "run_numbers",
        _WIDGETS + "select", _WIDGETS + "sketch", "core.spawner", "core.engine",
        "core.train_events", "folkgen_tui.workers",
    )),  # fmt: skip
    generate=LazyScreen("folkgen_tui.screens.generate", "GenerateScreen", needs=(
        "core.voice", "folkgen_tui.state", _WIDGETS + "abc_view", _WIDGETS + "clamped",
        _WIDGETS + "piano_roll", _WIDGETS + "prompt_input", "folkgen_tui.graphics",
        _WIDGETS + "score_view", _WIDGETS + "select", _WIDGETS + "sketch", _WIDGETS + "voice_row",
        "core.spawner", "core.engine", "core.train_events", _WIDGETS + "loss_chart",
        "folkgen_tui.workers",
    )),  # fmt: skip
    models=LazyScreen("folkgen_tui.screens.models", "ModelsScreen", needs=(
        "textual.widgets._data_table", _WIDGETS + "row_table",
    )),  # fmt: skip
    library=LazyScreen("folkgen_tui.screens.library", "LibraryScreen", needs=(
        "core.search", "core.words", "core.voice", "folkgen_tui.screens.dialogs", _WIDGETS + "abc_view",
        _WIDGETS + "filter_input", _WIDGETS + "piano_roll", "folkgen_tui.graphics",
        _WIDGETS + "score_view", _WIDGETS + "tune_table", _WIDGETS + "select",
        _WIDGETS + "sketch", _WIDGETS + "voice_row",
    )),  # fmt: skip
)


# --- messages from the app's own workers -------------------------------------------------------


@dataclass
class TorchLoaded(Message):
    error: str | None
    seconds: float


@dataclass
class EngineLost(Message):
    """torch's process for the model ended on its own (killed for memory, a crash)."""

    why: str


class TerminalLost(Message):
    """The terminal has gone (posted by folkgen_tui.lifeline from its thread): quit as q does."""


@dataclass
class CorpusLoaded(Message):
    corpus: Corpus
    stats: CorpusStats
    path: Path | None


@dataclass
class NoveltyReady(Message):
    corpus: Corpus
    novelty: NoveltyIndex


@dataclass
class CorpusFailed(Message):
    error: str


@dataclass
class ModelLoaded(Message):
    model: LoadedModel
    announce: bool
    engine: Engine  # the process it is loaded in


@dataclass
class ModelFailed(Message):
    error: str


@dataclass
class ModelPassedOver(Message):
    """A model file that could not be loaded, passed over for the next (FolkgenApp.load_model)."""

    line: str


@dataclass
class PlaybackStarted(Message):
    playable: Playable


@dataclass
class PlaybackFailed(Message):
    error: str


def _import_numpy() -> None:
    """numpy, which a tune's options, its notes and sound and the loss charts need (~45 ms
    holding the interpreter), on a worker thread at start-up: once the first model is drawn
    (_model_ready), or once it is known none comes (_load_corpus). Not in the first half second
    of keys (the corpus's thread imported it once the corpus was drawn: keys 0.15 s after the
    first frame took twice as long), nor on the UI thread at the first tune or chart."""
    with giving_way():
        import numpy  # noqa: F401


def _wait_for(event: threading.Event, seconds: float) -> bool:
    """On a worker thread: until `event` is set or `seconds` have passed; False when the worker
    is cancelled (a quitting app cancels it)."""
    worker = get_current_worker()
    deadline = time.monotonic() + seconds
    while not event.wait(0.05) and time.monotonic() < deadline:
        if worker.is_cancelled:
            break
    return not worker.is_cancelled


class FolkgenApp(QuickModeSwitch, StyledWhenMounted, InputFirst, AppKeysAtOnce):
    """The studio. `corpus_path` / `model_path` pick what to open (default: the Irish corpus and
    the newest checkpoint); tests turn `autoload_model` off for a known start."""

    TITLE = "folkgen"
    CSS_PATH = Path(__file__).parent / "folkgen.tcss"
    MODES = SCREENS
    DEFAULT_MODE = "dataset"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (36, "-tall")]
    BINDINGS = [
        Binding("d", "switch_mode('dataset')", "Dataset", show=False),
        Binding("t", "switch_mode('train')", "Train", show=False),
        Binding("g", "switch_mode('generate')", "Generate", show=False),
        Binding("m", "switch_mode('models')", "Models", show=False),
        Binding("l", "switch_mode('library')", "Library", show=False),
        Binding("question_mark,f1", "help", "Help", show=False),
        Binding("q", "quit", "Quit", show=False),
    ]

    # `var`, not `reactive`: a reactive on the App repaints the whole screen when it changes,
    # and the training status changes several times a second (the nav bar watches these).
    status_line: var[str] = var("")
    torch_state: var[str] = var("loading")  # loading, ready, failed
    train_status: var[str] = var("")

    def __init__(
        self,
        corpus_path: str | Path | None = None,
        model_path: str | Path | None = None,
        *,
        autoload_model: bool = True,
        theme: str | None = None,
    ) -> None:
        share_parsed_css()  # Textual re-parsed all CSS four times before the first frame
        settings = self._read_settings()
        wanted = theme or settings.get("theme")
        if not isinstance(wanted, str):
            wanted = DEFAULT_THEME
        # Started in it rather than changed to it: the CSS is parsed once, in this theme.
        in_theme = start_in_theme(self, wanted) or start_in_theme(self, DEFAULT_THEME)
        super().__init__()
        self._settings = settings
        if in_theme:
            self.add_class(f"-theme-{self.theme}", update=False)  # as a theme change marks it
        else:
            self.theme = wanted if wanted in self.available_themes else DEFAULT_THEME
        self.corpus_path: Path | None = Path(corpus_path).expanduser() if corpus_path else None
        # Without --corpus, the one open when the app last ended (a collection of one's own
        # came back as the Irish corpus, beside a model trained on it).
        last = settings.get(CORPUS_SETTING)
        self._corpus_remembered = corpus_path is None and isinstance(last, str) and bool(last)
        self._corpus_missing = False  # the remembered one failed: the default comes instead
        if self._corpus_remembered:
            self.corpus_path = Path(str(last))
        self.corpus: Corpus | None = None
        self.stats: CorpusStats | None = None
        self.novelty: NoveltyIndex | None = None
        self.corpus_error: str | None = None
        self.model: LoadedModel | None = None
        self.model_loading = False
        self.model_path = Path(model_path).expanduser() if model_path else None
        self.autoload_model = autoload_model
        self.history: list[TuneRecord] = []
        self.sound = Sound()
        self.tunebook = Tunebook(self.call_later)  # the database opens on first use, on a thread
        self.training: TrainJob | None = None  # the train screen's job while one exists
        self.engine: Engine | None = None  # torch's process for the model (core.engine)
        self._spare_engine: Engine | None = None  # the next training run's, started early
        self._spare_due = False  # a timer will start it
        self._engine_restarts = 0
        self.torch_error: str | None = None
        self.torch_seconds = 0.0
        self._screens: list[StudioScreen] = []
        self._first_frame_drawn = False
        self._quitting = False
        self._settle_pending = False
        self._warm_started = False  # the training warm-up and the hidden screens' layout
        self._prebuilds_started = False  # the screens built ahead (start-up)
        self._prebuild_timer: Timer | None = None  # the next of them
        self._framed: set[str] = set()  # screens built ahead whose frame is in, parts to come
        self._parts: list[Callable[[], AwaitMount | None]] = []  # their parts' mounts, in turn
        self._filling = False  # the parts are being mounted, one at a time
        self._model_settled = threading.Event()  # the first model loaded, failed, or none
        # folkgen-tui starts with the garbage collector off (__main__): start-up makes hundreds of
        # thousands of objects, all long-lived, that each full collection walked again (~50 ms
        # before the first frame, more during torch's import). It comes back on once the first
        # model is ready, after they are moved out of its sight (_settle).
        self._gc_off_for_start_up = not gc.isenabled()
        self._key_hold = KeyHold()
        # Files being written (a tune's save, a tunebook's export): a lost terminal waits for them.
        self.writing = WorkUnderWay()
        self._terminal_gone = False
        self._ending = False  # quitting (q, or the terminal gone): no torch process starts now
        self._voice: Voice | None = None  # read from the settings when first asked for

    @property
    def quitting(self) -> bool:
        """On the way out (q, or the terminal gone): a training run that ends now is not loaded
        for generation."""
        return self._ending

    # --- start-up ----------------------------------------------------------------------------

    def on_mount(self) -> None:
        self.theme_changed_signal.subscribe(self, lambda theme: self._save_theme(theme.name))
        self._refresh_status()
        self.set_interval(0.25, self._watch_playback)
        self.tunebook.on_open = self._tunebook_opened
        self.tunebook.on_error = self._tunebook_failed

    def on_ready(self) -> None:
        """The first frame is drawn (Textual's Ready; call_after_refresh may come before it):
        now torch's process (its import takes seconds, on another core), the corpus, and what
        the screens left for later."""
        self._first_frame_drawn = True
        self._start_engine()
        self.load_corpus(self.corpus_path)
        self._each_screen("first_frame_drawn")
        # torch loads in its own process: nothing here waits for the model any more. The screens
        # are built ahead from this timer, or from when the corpus is shown (on_corpus_loaded).
        self.set_timer(PREBUILD_START, self._start_prebuilds)

    def on_terminal_lost(self, _: TerminalLost) -> None:
        if not self._terminal_gone:
            self._terminal_gone = self._ending = True
            self.call_later(self.action_quit)

    def terminal_lost(self) -> None:
        """For the lifeline, from its thread (post_message is thread-safe)."""
        self._ending = True  # before any reply of a torch process the lifeline then kills
        self.post_message(TerminalLost())

    def finish_work(self, deadline: float) -> None:
        """For the lifeline, on its own thread, when the terminal has gone: stop a training run
        (its loop saves a checkpoint on the way out) and wait for it until `deadline`, and for
        files being written (`writing`: a save's abc2midi is among the children the lifeline
        ends next), then stop the sound. Works while the UI thread is blocked: nothing here
        waits on the event loop."""
        job = self.training
        if job is not None and job.running:
            job.control.stop(hurry=True)
            while not job.finished and time.monotonic() < deadline:
                time.sleep(0.02)
            if job.engine is not None:  # its process ends once it has said so
                with contextlib.suppress(Exception):
                    job.engine.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        self.writing.wait(deadline)
        with contextlib.suppress(Exception):  # the UI may be closing it at the same moment
            self.sound.close()
        release_claims()  # the run's checkpoint is saved (the forced exit skips atexit)

    # --- screens -----------------------------------------------------------------------------

    def _start_prebuilds(self) -> None:
        if not self._prebuilds_started:
            self._prebuilds_started = True
            self._prebuild_next_screen()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, (events.Key, events.MouseUp)) and self._key_hold.hold():
            self.set_timer(KEY_HOLD, self._key_hold.release)
        await super().on_event(event)

    async def run_action(
        self,
        action: str | ActionParseResult,
        default_namespace: DOMNode | None = None,
        namespaces: Mapping[str, DOMNode] | None = None,
    ) -> bool:
        """A screen's key pressed before its fields are in (Train and Generate mount them once
        their panels are drawn) waits for them, and the keys after it wait in turn: `t s`
        typed at once starts training (the `s` was dropped)."""
        if isinstance(default_namespace, StudioScreen) and not default_namespace.is_ready:
            await default_namespace.ready.wait()
        return await super().run_action(action, default_namespace, namespaces)

    def _prebuild_next_screen(self) -> None:
        """Build the screens not visited yet, one at a time from just after the first frame
        (PREBUILD_START, or the corpus shown if sooner): a screen's first build would otherwise
        be the wait after its key. (A built screen is then
        shown at once: QuickModeSwitch.) The next comes once this one's frame is mounted
        (frame_built), or the whole of one with no parts (register_screen): not while one is
        being built, for a key's show or ahead, as a key would then wait for both. Once every
        frame is in, their parts (queue_part), in the order queued.

        Every screen's modules first, then the frames, then the parts. A key 0.15 s after the
        first frame, before any frame is in, builds its screen: with Generate's modules alone
        imported before its frame, Train's key also imported Train's (11-13 ms of the ~80 ms it
        took on a 2-core AVX2 Zen 2; 4 starts a key: t 73-93, l 54-73, m 51-72, g 27-50 ms),
        against g 45-61, t 48-63, l 37-50, m 54-58 ms with them all imported first
        (bench/early_keys.py's worst from 0.15 s on: 67 ms against 80, its target 85). Frames
        before parts: a key 0.1-0.35 s after the first frame found Train unbuilt while
        Generate's fields were mounting, and waited for Train's build after them (worst 73-85 ms
        against 38-47, 40 starts a version, alternating)."""
        if not self.is_running:  # closing: Textual is going through the screens it has
            return
        put_off = self.later(self._prebuild_next_screen)  # not while a key is answered
        if put_off is not None:
            self._prebuild_timer = put_off  # (register_screen's stop holds for it too)
            return
        if self._filling:
            return  # the parts' fill calls again once done
        built = built_modes(self)
        if set(built) - {screen.MODE for screen in self._screens} - self._framed:
            return  # a build under way: its screen's mount calls again
        unbuilt = [mode for mode in PREBUILD_ORDER if mode not in built]
        for mode in unbuilt:  # every screen's modules first (a few a loop turn: LazyScreen)
            if not SCREENS.imported(mode):
                SCREENS.import_next(mode)
                self._prebuild_soon(IMPORT_PAUSE)
                return
        if unbuilt:  # then the frames, one a turn: a module's import and a build together
            build_mode(self, unbuilt[0])  # held a key 10-40 ms
            return
        if self._parts:
            self._filling = True
            self._fill_parts()

    def _prebuild_soon(self, seconds: float) -> None:
        if self._prebuild_timer is not None:  # one due after another screen: later
            self._prebuild_timer.stop()
        self._prebuild_timer = self.set_timer(seconds, self._prebuild_next_screen)

    def frame_built(self, screen: StudioScreen) -> None:
        """The frame of a screen built ahead is mounted, its parts queued (Deferred): the next
        screen's frame, or the parts. (One a key built mounts its own parts, and holds the next
        build until they are in.)"""
        self._framed.add(screen.MODE)
        if self._prebuilds_started:
            self._prebuild_soon(PART_PAUSE)

    def queue_part(self, mount: Callable[[], AwaitMount | None]) -> None:
        """A part of a screen built ahead (Deferred): `mount` is called in its turns, after
        the frames and the parts queued before it, and not while a key is answered, until it
        returns None."""
        self._parts.append(mount)
        if self._prebuilds_started and not self._filling:
            self._prebuild_soon(PART_PAUSE)

    @work(group="parts")  # (its coroutine made as it runs: none left unawaited on the way out)
    async def _fill_parts(self) -> None:
        """Mount the queued parts one at a time, each a piece at a time (Deferred, PIECE_PAUSE
        apart): mounted together, their widgets' pieces of work made loop turns of 30-70 ms,
        and a key waited for two of them. A screen being laid out and drawn ahead (one whose
        parts are all in, or a frame just built) is let finish before the next piece
        (DRAW_FIRST at most): a key for it meanwhile paid its first layout and draw
        (Generate's ~36 ms)."""
        waited = 0.0
        try:
            while self._parts and not self._ending:  # quitting: no more widgets
                drawing = laying_out_ahead(self) and waited < DRAW_FIRST
                if self.answering_input() or drawing:
                    await asyncio.sleep(PART_PAUSE)
                    waited += PART_PAUSE
                    continue
                waited = 0.0
                mounting = self._parts[0]()  # its next piece
                if mounting is None:
                    self._parts.pop(0)  # all in
                    await asyncio.sleep(PART_PAUSE)
                    continue
                await mounting
                await asyncio.sleep(PIECE_PAUSE)
        finally:
            self._filling = False
        self._prebuild_soon(PREBUILD_PAUSE)

    def _lay_out_hidden_screens(self, screens: list[StudioScreen]) -> None:
        """Once the corpus and the model are in, lay out again, one after another (LAY_OUT_PAUSE
        apart), the screens built ahead before they came (what they show changed since): a first
        show then costs what a later one does (bench/screen_switch.py)."""
        if self.later(lambda: self._lay_out_hidden_screens(screens)) is not None:
            return  # not while a key is answered
        while screens:
            screen = screens.pop(0)
            if screen.is_attached and not screen.is_current:
                lay_out_ahead(screen)
                self.set_timer(LAY_OUT_PAUSE, lambda: self._lay_out_hidden_screens(screens))
                return

    def register_screen(self, screen: StudioScreen) -> None:
        if screen not in self._screens:
            self._screens.append(screen)
            self._settle_soon()  # its widgets live as long as the app
            if self._first_frame_drawn:  # built after start-up
                screen.first_frame_drawn()
            if self._prebuilds_started:  # the next step ahead: the parts, or the next screen
                self._prebuild_soon(PART_PAUSE if self._parts else PREBUILD_PAUSE)

    def _settle_soon(self) -> None:
        """Long-lived objects were just made (torch's modules, the corpus's index, a screen):
        move them out of the garbage collector's sight after the next frame, once for all that
        came together (folkgen_tui.process says why)."""
        if not self._settle_pending:
            self._settle_pending = True
            self.call_after_refresh(self._settle)

    def _settle(self) -> None:
        self._settle_pending = False
        if not self._model_settled.is_set():
            return  # start-up: one settling for all, once the first model is ready
        # Start-up's objects are frozen as they are (a collection of them all held every key
        # for ~130 ms); what comes later is collected first.
        settle_long_lived_objects(collect=not self._gc_off_for_start_up)
        if self._gc_off_for_start_up:
            self._gc_off_for_start_up = False
            gc.enable()

    def switch_mode(self, mode: str) -> AwaitMount:
        screen = self.studio_screen(mode)
        if screen is not None and mode != self.current_mode:
            screen.before_show()
        return super().switch_mode(mode)

    def studio_screen(self, mode: str) -> StudioScreen | None:
        return next((s for s in self._screens if mode == s.MODE), None)

    def _each_screen(self, hook: str) -> None:
        for screen in list(self._screens):
            if not app_ending(screen):  # not a screen whose widgets Textual is taking down
                getattr(screen, hook)()

    def _start_engine(self) -> None:
        """torch's process for the model: started now, answering once torch is in."""
        from core.engine import Engine, Failed, Start, Started

        t0 = time.perf_counter()
        try:
            self.engine = Engine(on_lost=lambda why: self.post_message(EngineLost(why)))
        except OSError as e:
            self.post_message(TorchLoaded(f"cannot start torch's process: {e}", 0.0))
            return

        def started(reply: Reply) -> None:  # on the engine's reader thread
            seconds = time.perf_counter() - t0
            if isinstance(reply, Failed) and reply.lost:
                return  # the process ended: EngineLost says so and starts another
            error = reply.error if isinstance(reply, Failed) else None
            if isinstance(reply, Started | Failed):
                self.post_message(TorchLoaded(error, seconds))

        self.engine.request(Start(), started)

    def on_engine_lost(self, message: EngineLost) -> None:
        """Start torch's process again, and reload the model it had: a model too large for
        the memory left ends it again, so only a few times."""
        if self._ending or not self.is_running:  # ended on the way out (the lifeline kills it)
            return
        lost = self.model
        self.model, self.model_loading = None, False
        self._engine_restarts += 1
        if self._engine_restarts > ENGINE_RESTARTS:
            self.torch_state, self.torch_error = "failed", message.why
            self.notify(f"{message.why}. It ended {ENGINE_RESTARTS + 1} times, so training and "
                        "generation are off until folkgen is started again.",
                        title="torch", severity="error", timeout=30, markup=False)  # fmt: skip
        else:
            again = f", and {lost.label} is loaded again" if lost and lost.path else ""
            self.notify(f"{message.why}. It is started again{again}.", title="torch",
                        severity="warning", timeout=15, markup=False)  # fmt: skip
            if lost is not None and lost.path is not None:
                self.model_path = lost.path
            self.torch_state = "loading"
            self._start_engine()
        self._each_screen("torch_changed")
        self._each_screen("model_changed")
        self._refresh_status()

    def training_engine(self) -> Engine:
        """An engine for a training run (its own process, ended with the run): the one started
        when the Train screen was shown, or a new one."""
        engine = self._spare_engine
        self._spare_engine = None
        if engine is None or not engine.alive:
            engine = self._new_training_engine()
        return engine

    def warm_training_engine(self) -> None:
        """Start the next training run's engine ahead (the Train screen is shown): torch's import
        and a first step's set-up are done by the time `s` is pressed. Once the screen is drawn:
        the fork and the first step's set-up took the cores its first frame was drawn on."""
        if self._spare_engine is None and not self._spare_due:
            self._spare_due = True
            self.set_timer(SPARE_ENGINE_AFTER, self._start_spare_engine)

    def _start_spare_engine(self) -> None:
        self._spare_due = False
        if self.training is not None and self.training.running:
            return  # not while a run trains: its fork and set-up took the cores keys are drawn on
        if self._spare_engine is None and self.torch_state == "ready" and not self._ending:
            with contextlib.suppress(OSError):
                self._spare_engine = self._new_training_engine()

    def _new_training_engine(self) -> Engine:
        from core.engine import Engine, Start

        engine = Engine(training=True)
        engine.request(Start(warm_training=True), lambda reply: None)  # a failure is Train's
        return engine

    def _after_model_settles(self) -> None:
        """Once the first model has loaded (or failed, or none was asked for), and the frame
        that says so is drawn (due within a frame's time; call_after_refresh may come before
        it): the work that would only slow it down, as the GIL shares one core among threads
        (start-up, issue 14)."""
        if not self._warm_started:
            self._warm_started = True
            # The screens built ahead, stale since the model's name and state changed: laid out
            # again at once, where a key after the model's frame drew one stale (keys 0-0.1 s
            # after it: 90th percentile 39-45 ms against 28-35, 40 starts a version).
            self.call_after_refresh(self._lay_out_hidden_screens, list(self._screens))
            self.set_timer(WARM_UP_AFTER, self._warm_up)

    def _warm_up(self) -> None:
        self._model_settled.set()  # numpy and the near-copy indexes may come now (threads)
        self._settle_soon()  # what start-up made: the model, the corpus, the screens

    def on_torch_loaded(self, message: TorchLoaded) -> None:
        self.torch_seconds = message.seconds
        if message.error:
            self.torch_error = message.error
            self.torch_state = "failed"
            self.notify(
                f"torch could not be loaded, so training and generation are off: {message.error}",
                severity="error", timeout=15, markup=False,
            )  # fmt: skip
        else:
            self.torch_state = "ready"
            if self.model_path is not None:
                self.load_model(self.model_path, "chosen")
            elif self.autoload_model:
                self._autoload_model()
        self._each_screen("torch_changed")
        self._refresh_status()
        if not self.model_loading:
            self._after_model_settles()

    @property
    def model_coming(self) -> bool:
        waiting = self.model_path is not None or self.autoload_model  # on_torch_loaded's choice
        return self.model_loading or (self.torch_state == "loading" and waiting)

    def _autoload_model(self) -> None:
        from core.paths import default_models

        models = default_models()  # the CLI's order; one that cannot be loaded is passed over
        if models:
            (path, why), *rest = models
            self.load_model(path, why, announce=False, fallbacks=rest)

    # --- corpus ------------------------------------------------------------------------------

    def load_corpus(self, path: str | Path | None) -> None:
        self._load_corpus(Path(path).expanduser() if path else None)

    @work(thread=True, group="corpus", exclusive=True, exit_on_error=False)
    def _load_corpus(self, path: Path | None) -> None:
        from core.corpus import CorpusError, compute_stats, load_corpus

        try:
            corpus = load_corpus(path)
            stats = compute_stats(corpus)
        except (CorpusError, OSError) as e:  # DefaultCorpusMissing is a FileNotFoundError
            self.post_message(CorpusFailed(str(e)))
            return
        worker = get_current_worker()
        if worker.is_cancelled:
            return
        self.post_message(CorpusLoaded(corpus, stats, path))
        # The near-copy index (generated tunes are compared with the corpus) comes after, and
        # at start-up after the first model (the model's own corpus index comes first; it is
        # only a fallback).
        if not _wait_for(self._model_settled, NOVELTY_WAIT):
            return
        _import_numpy()  # where no model came (none, or torch failed): the first model's did
        from core.novelty import NoveltyIndex

        model = self.model  # trained on this very corpus (the default one): its index serves.
        # Its tunes are this corpus's, or the same tunes read again where the model came before
        # the corpus was shown (the spawner warm, the UI thread busy: the suite on 2 cores).
        tunes = model.index.tunes if model else None
        same = tunes is corpus.tunes or (tunes is not None and list(tunes) == list(corpus.tunes))
        shared = model.index.get() if model and same else None
        novelty = shared or NoveltyIndex(corpus.tunes)
        if not worker.is_cancelled:
            self.post_message(NoveltyReady(corpus, novelty))

    def on_novelty_ready(self, message: NoveltyReady) -> None:
        if message.corpus is self.corpus:
            self.novelty = message.novelty
            self._settle_soon()

    def on_corpus_loaded(self, message: CorpusLoaded) -> None:
        first = self.corpus is None
        self.corpus, self.stats, self.novelty = message.corpus, message.stats, None
        self.corpus_path = message.path
        self.corpus_error = None
        opened = str(message.path.resolve()) if message.path is not None else None
        # Opened again at the next start; not the default in place of one that is missing
        # now (a folder on a drive not mounted yet): that one is looked for again.
        if self.setting(CORPUS_SETTING) != opened and not self._corpus_missing:
            self.remember(CORPUS_SETTING, opened)
        self._corpus_missing = False
        if not first:
            self.notify(
                f"Loaded {message.stats.name}: {message.stats.tunes:,} tunes.", markup=False
            )
        skipped = message.corpus.skipped
        if skipped:  # each named, with why, as the CLI names them (it said "2 file(s) skipped")
            more = f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
            self.notify("; ".join(skipped[:3]) + more, title=f"Skipped {plural(len(skipped), 'file')}",
                        severity="warning", timeout=10, markup=False)  # fmt: skip
        self._each_screen("corpus_changed")
        self._refresh_status()
        if first:
            self.call_after_refresh(self._start_prebuilds)

    def on_corpus_failed(self, message: CorpusFailed) -> None:
        if self._corpus_remembered and self.corpus is None:  # moved or gone since: the default
            self._corpus_remembered = False
            self._corpus_missing = True
            self.notify(f"{message.error}. The Irish corpus instead (that one is looked for "
                        "again at the next start).",
                        title="Cannot open the corpus you had open last", severity="warning",
                        timeout=10, markup=False)  # fmt: skip
            self.load_corpus(None)
            return
        if self.corpus is None:
            self.corpus_error = f"No corpus: {message.error}"
            self._each_screen("corpus_changed")
        self.notify(message.error, title="Cannot load the corpus", severity="error",
                    timeout=10, markup=False)  # fmt: skip

    # --- model -------------------------------------------------------------------------------

    def load_model(
        self, path: Path, why: str = "chosen", announce: bool = True,
        fallbacks: Sequence[tuple[Path, str]] = (),
    ) -> None:  # fmt: skip
        """Load `path` in torch's process, or where it cannot be loaded, the first of
        `fallbacks` (path, why) that can (the defaults at start: one damaged file, the newest,
        left the app with no model, and told the user to train one)."""
        self.model_loading = True
        self._refresh_status()
        self._load_model(path, why, announce, tuple(fallbacks))

    def _load_model(
        self, path: Path, why: str, announce: bool, fallbacks: tuple[tuple[Path, str], ...] = ()
    ) -> None:
        from core.engine import Failed, LoadModel, ModelReady

        engine = self.engine
        if engine is None:
            self.post_message(ModelFailed(f"{path}: torch's process is not running"))
            return
        whys = {path: why, **dict(fallbacks)}

        def loaded(reply: Reply) -> None:  # on the engine's reader thread
            if isinstance(reply, ModelReady):
                for line in reply.passed_over:
                    self.post_message(ModelPassedOver(line))
                self._model_ready(reply.path, whys.get(reply.path, why), announce, reply.meta,
                                  engine)  # fmt: skip
            elif isinstance(reply, Failed) and not reply.lost:  # lost: EngineLost says it
                self.post_message(ModelFailed(reply.error))

        engine.request(LoadModel(path, tuple(p for p, _ in fallbacks)), loaded)

    @work(thread=True, group="model", exclusive=True, exit_on_error=False)
    def _model_ready(
        self, path: Path, why: str, announce: bool, meta: CheckpointMeta, engine: Engine
    ) -> None:
        """The model is loaded in its engine: here, its training corpus for near-copy checks,
        as the CLI finds it (the app's corpus when it is that one)."""
        from core.corpus import model_key_spellings, training_corpus
        from core.novelty import CorpusIndex
        from folkgen_tui.state import LoadedModel

        corpus = self.corpus
        if corpus is None or not corpus.is_described_by(meta.corpus):
            corpus = training_corpus(meta.corpus)
        keys = model_key_spellings(meta.corpus, corpus)  # as the CLI finds them
        model = LoadedModel(path, why, meta, CorpusIndex(corpus.tunes if corpus else None), keys)
        if not get_current_worker().is_cancelled:
            self.post_message(ModelLoaded(model, announce, engine))
            # numpy and the training corpus's near-copy index (~45 + ~50 ms, mostly holding the
            # interpreter) on this thread, not at the first tune's check; at start-up only once
            # the model's frame is drawn and the hidden screens are laid out again (_warm_up):
            # at once, they doubled that work's time, and keys 0-0.3 s after the model's name
            # showed took up to 62 ms, against 23 (30 starts a version).
            if _wait_for(self._model_settled, NOVELTY_WAIT):
                _import_numpy()
                model.index.get()

    def on_model_loaded(self, message: ModelLoaded) -> None:
        if message.engine is not self.engine or not message.engine.alive:
            # Its process ended while the model's corpus index was made (EngineLost has said
            # so, and loads it again in the new one where it may): nothing to generate with.
            # Ended for the last time, it stays the app's engine (none is started again).
            return
        self.model = message.model
        self.model_loading = False
        if message.announce:
            self.notify(f"Generating with {message.model.label}.", markup=False)
        self._each_screen("model_changed")
        self._refresh_status()
        self._after_model_settles()

    def on_model_passed_over(self, message: ModelPassedOver) -> None:
        self.notify(message.line[:1].upper() + message.line[1:], title="Cannot load a model",
                    severity="warning", timeout=10, markup=False)  # fmt: skip

    def on_model_failed(self, message: ModelFailed) -> None:
        self.model_loading = False
        self.notify(message.error, title="Cannot load the model", severity="error",
                    timeout=10, markup=False)  # fmt: skip
        self._refresh_status()
        self._after_model_settles()

    def resume_training(self, path: Path) -> None:
        """Go to the Train screen, ready to continue training the checkpoint at `path`."""

        from folkgen_tui.screens.train import TrainScreen

        async def go() -> None:
            await self.switch_mode("train")
            screen = self.studio_screen("train")
            if isinstance(screen, TrainScreen):
                screen.request_resume(path)

        self.call_later(go)

    # --- sound -------------------------------------------------------------------------------

    @property
    def voice(self) -> Voice:
        """The instrument, tempo and transpose tunes are played and saved in (set on Generate,
        remembered in the settings; every screen that plays a tune uses this one)."""
        if self._voice is None:
            from core.voice import Voice

            self._voice = Voice.from_dict(self._settings.get("voice"))
        return self._voice

    @voice.setter
    def voice(self, voice: Voice) -> None:
        if voice != self.voice:
            self._voice = voice
            self.remember("voice", voice.to_dict())
            self._each_screen("voice_changed")

    def toggle_play(
        self, abc_text: str, title: str, key: str = "", voice: Voice | None = None
    ) -> None:
        """Play a tune (rendering it first) in `voice` (default: the app's), or stop it when it
        is the one playing."""
        playing = self.sound.now_playing
        if self.sound.is_playing and playing is not None and playing.key == (key or abc_text):
            self.stop_playback()
            return
        self.sound.stop()
        self.notify(f"Rendering {title}…", timeout=2, markup=False)
        self._play(abc_text, title, key or abc_text, voice or self.voice)

    def stop_playback(self) -> None:
        self.sound.stop()
        self._each_screen("playback_changed")

    @work(thread=True, group="play", exclusive=True, exit_on_error=False)
    def _play(self, abc_text: str, title: str, key: str, voice: Voice) -> None:
        from core.abc import SoundError
        from core.audio import PlaybackUnavailable
        from core.paths import output_dir

        try:
            playable = self.sound.prepare(key, abc_text, title, voice)
            if get_current_worker().is_cancelled:
                return
            self.sound.play(playable)
        except PlaybackUnavailable as e:  # no sound card: the WAV is the sound, kept for later
            try:
                kept = self.sound.keep_wav(playable, output_dir(), abc_text, voice)
            except OSError as copy_error:
                self.post_message(PlaybackFailed(f"{e}; it could not be kept: {copy_error}"))
                return
            self.post_message(
                PlaybackFailed(f"cannot play sound here ({e.reason}); the tune is saved as {kept}")
            )
            return
        except SoundError as e:
            self.post_message(PlaybackFailed(str(e)))
            return
        except OSError as e:
            self.post_message(PlaybackFailed(f"cannot render the tune: {e}"))
            return
        self.post_message(PlaybackStarted(playable))

    def on_playback_started(self, message: PlaybackStarted) -> None:
        self._each_screen("playback_changed")

    def on_playback_failed(self, message: PlaybackFailed) -> None:
        self.notify(message.error, title="Cannot play", severity="error", timeout=10,
                    markup=False)  # fmt: skip
        self._each_screen("playback_changed")

    def _watch_playback(self) -> None:
        if self.sound.now_playing is not None and not self.sound.is_playing:
            self.sound.now_playing = None  # played to its end
            self._each_screen("playback_changed")

    def on_unmount(self) -> None:
        """However the app ends, a training run must not be left waiting (paused): it stops and
        saves a checkpoint in its own process, which ends then. The model's process ends now."""
        # No torch process starts from now (a spare engine's timer due meanwhile started one
        # after the spare was closed here, and its reader outlived the app): however it ends,
        # not only by `q`.
        self._ending = True
        self._key_hold.release()  # first: a timer due after the end never comes
        job = self.training
        if job is not None and job.engine is not None:
            job.engine.close(kill_after=None)  # a run still going stops and saves first
            # and is waited for: left running, it outlived the app (and was never reaped)
            with contextlib.suppress(subprocess.TimeoutExpired):
                job.engine.process.wait(timeout=SAVE_WAIT)
        for engine in (self.engine, self._spare_engine):
            if engine is not None:
                engine.close()
        self.sound.close()
        self.tunebook.close()

    # --- tunebook ----------------------------------------------------------------------------

    def _tunebook_opened(self, tunebook: Tunebook) -> None:
        if tunebook.error is not None:
            self.notify(f"The tunebook cannot be opened, so tunes are not kept: {tunebook.error}",
                        title="Tunebook", severity="error", timeout=15, markup=False)  # fmt: skip
        elif tunebook.recovered_from is not None:
            self.notify(
                f"The tunebook could not be read: the damaged file is kept as "
                f"{tunebook.recovered_from} and a new, empty tunebook was started.",
                title="Tunebook", severity="warning", timeout=15, markup=False,
            )  # fmt: skip

    def _tunebook_failed(self, error: str) -> None:
        self.notify(error, title="Tunebook", severity="error", timeout=10, markup=False)

    # --- status line -------------------------------------------------------------------------

    def watch_train_status(self) -> None:
        self._refresh_status()

    def _refresh_status(self) -> None:
        parts = []
        if self.torch_state == "loading":
            parts.append("loading torch…")
        elif self.torch_state == "failed":
            parts.append("torch unavailable")
        if self.train_status:
            parts.append(self.train_status)
        if self.model_loading:
            parts.append("loading model…")
        elif self.model is not None:
            parts.append(f"model {self.model.label}")
        elif self.torch_state == "ready":
            parts.append("no model yet")
        self.status_line = " · ".join(parts)

    # --- actions -----------------------------------------------------------------------------

    def action_help(self) -> None:
        from folkgen_tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_command_palette(self) -> None:
        """Not over a dialog, which waits for its answer: "Go to Generate" from the palette
        left a delete's question on the Library, open behind the next screen."""
        if not isinstance(self.screen, ModalScreen):
            super().action_command_palette()

    async def action_quit(self) -> None:
        """Quit; a running training is stopped first, which saves its checkpoint."""
        self._ending = True
        job = self.training
        if job is not None and job.running:
            if self._quitting:
                return
            self._quitting = True
            self.notify("Stopping training and saving a checkpoint before quitting…", timeout=60)
            # WorkerFailed / WorkerCancelled: nothing left to wait for.
            with contextlib.suppress(Exception):
                await job.stop_and_wait()
        with contextlib.suppress(asyncio.TimeoutError):  # what the screens have under way (a save)
            screens = [screen.finish() for screen in self._screens if not app_ending(screen)]
            await asyncio.wait_for(asyncio.gather(*screens), SAVE_WAIT)
        self.sound.close()
        self.exit()

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for key, label, mode in (("d", "Dataset", "dataset"), ("t", "Train", "train"),
                                 ("g", "Generate", "generate"), ("m", "Models", "models"),
                                 ("l", "Library", "library")):  # fmt: skip
            yield SystemCommand(
                f"Go to {label}", f"Switch to the {label} screen (key {key})",
                lambda mode=mode: self.switch_mode(mode),
            )  # fmt: skip
        yield SystemCommand("Help", "List every key (? or F1)", self.action_help)
        for mode in SCREENS:
            cls = SCREENS[mode]
            for binding in cls.BINDINGS:
                if not isinstance(binding, Binding):
                    continue
                name = cls.PALETTE_NAMES.get(binding.action, binding.description)
                if not name or binding.action == "leave_field":  # (a key for typing)
                    continue
                yield SystemCommand(
                    f"{cls.TITLE_TEXT}: {name}",
                    f"{name} (key {binding.key})" if name != binding.description
                    else binding.tooltip or f"{name} (key {binding.key})",
                    lambda mode=mode, action=binding.action: self.run_in_mode(mode, action),
                )  # fmt: skip

    def run_in_mode(self, mode: str, action: str) -> None:
        """Switch to a screen and run one of its actions (the command palette uses this)."""

        async def go() -> None:
            await self.switch_mode(mode)
            await self.run_action(action, self.screen)

        self.call_later(go)

    # --- settings ----------------------------------------------------------------------------

    def _read_settings(self) -> dict[str, Any]:
        try:
            data = json.loads((data_home() / SETTINGS_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def setting(self, name: str) -> object:
        """A remembered setting (None when unset); the caller checks its type: the file is
        the user's and may hold anything."""
        return self._settings.get(name)

    def remember(self, name: str, value: object) -> None:
        """Keep a setting (a JSON value) in the settings file for the next start."""
        self._settings[name] = value
        text = json.dumps(self._settings).encode("utf-8")
        try:
            data_home().mkdir(parents=True, exist_ok=True)
            replace_file(data_home() / SETTINGS_FILE, lambda f: f.write(text))  # whole or not
        except OSError:
            pass  # a read-only home or a full disk only loses this choice

    def _save_theme(self, name: str) -> None:
        self.remember("theme", name)

    # --- errors from workers -----------------------------------------------------------------

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker that failed unexpectedly: say so instead of showing a traceback."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            error = event.worker.error
            self.notify(
                f"{event.worker.name or 'background task'} failed: {type(error).__name__}: {error}",
                severity="error", timeout=15, markup=False,
            )  # fmt: skip


if TYPE_CHECKING:  # the screens' view of the app (folkgen_tui.studio) is what the app offers
    _studio: type[Studio] = FolkgenApp


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    import argparse  # here: with no arguments `run` needs no parser (~2 ms of start-up)

    parser = argparse.ArgumentParser(
        prog="folkgen-tui", description="folkgen's studio: dataset, training, generation, models."
    )
    parser.add_argument(
        "--corpus", help="an .abc file or a folder of them (default: the Irish corpus)"
    )
    parser.add_argument("--model", help="a checkpoint to generate with, a path or a name the "
                        "Models screen shows (default: the newest)")
    parser.add_argument("--theme", help="a Textual theme name (default: the last one chosen)")
    return parser.parse_args(argv)


def run(argv: Sequence[str] | None, lifeline: Lifeline | None = None) -> None:
    """The app on this terminal (folkgen_tui/__main__.py installs the lifeline first)."""
    configure()  # the process's settings, if __main__ has not made them yet
    argv = sys.argv[1:] if argv is None else argv
    # The terminal's answer about images (folkgen_tui/graphics.py), asked as the modules were
    # imported, is awaited only once the app is made (~3 ms: its settings, Textual's driver
    # imported), just before Textual reads the terminal: a terminal that never answers is waited
    # for until 0.1 s after the question, ~12 ms past the imports' end on a fast machine. Awaited
    # however this ends (--help, a refused argument): the question has the terminal's echo off.
    try:
        if argv:
            from core.paths import named_model

            args = parse_args(argv)
            model = named_model(args.model) if args.model else None  # a name, as the CLI takes it
            app = FolkgenApp(args.corpus, model, theme=args.theme)
        else:  # the usual start: no parser to import
            app = FolkgenApp()
        if lifeline is not None:
            lifeline.attach(app.terminal_lost, app.finish_work)
    finally:
        graphics.wait()
    app.run()
