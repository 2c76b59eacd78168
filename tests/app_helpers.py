"""Helpers shared by the app's pilot and snapshot tests."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from textual.command import CommandList
from textual.pilot import Pilot
from textual.widgets import Input

from folkgen_tui.app import FolkgenApp
from folkgen_tui.screens.base import StudioScreen
from folkgen_tui.screens.generate import GenerateScreen
from folkgen_tui.state import TuneRecord
from folkgen_tui.widgets.deferred import Deferred

S = TypeVar("S", bound=StudioScreen)
DATA = Path(__file__).parent / "data"
ALSA_NULL = DATA / "alsa-null.conf"
FIXED_MTIME = 1_700_000_000  # 2023-11-14 22:13:20 UTC: checkpoint dates in snapshots
_MOUNT_PART = Deferred._mount  # hold_parts replaces it


async def wait_for(
    pilot: Pilot[Any], predicate: Callable[[], object], what: str, timeout: float = 20.0
) -> None:
    """Let the app run until `predicate()` is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await pilot.pause(0.02)


async def wait_ready(pilot: Pilot[Any], model: bool = False) -> None:
    """The corpus is loaded and torch is imported (and, with model=True, a model is loaded)."""
    app = pilot.app
    assert isinstance(app, FolkgenApp)
    await wait_for(pilot, lambda: app.stats is not None or app.corpus_error, "the corpus")
    await wait_for(pilot, lambda: app.torch_state != "loading", "torch", timeout=60)
    assert app.torch_state == "ready", app.torch_error
    if model:
        await wait_for(pilot, lambda: app.model is not None, "the model")
    await pilot.pause()


async def wait_all_built(pilot: Pilot[Any]) -> None:
    """Torch is in and every screen has been built ahead (start-up's background work), then a
    moment to settle."""
    app = pilot.app
    assert isinstance(app, FolkgenApp)
    await wait_ready(pilot)
    await wait_for(pilot, lambda: all(app.studio_screen(m) for m in FolkgenApp.MODES),
                   "every screen built", timeout=10)  # fmt: skip
    await pilot.pause(0.2)


async def show_screen(pilot: Pilot[Any], key: str, cls: type[S]) -> S:
    """Press a screen's key; the screen once shown and set up (Train and Generate mount their
    fields once their panels are drawn, and take their keys then)."""
    app = pilot.app
    await pilot.press(key)
    await wait_for(pilot, lambda: isinstance(app.screen, cls) and app.screen.is_ready, cls.__name__)
    screen = app.screen
    assert isinstance(screen, cls)
    return screen


async def generate_tune(
    pilot: Pilot[Any], fields: dict[str, str]
) -> tuple[GenerateScreen, TuneRecord]:
    """Open Generate, set its fields (id: text, in order) and generate: the screen and the tune
    it then shows."""
    screen = await show_screen(pilot, "g", GenerateScreen)
    for field, text in fields.items():
        screen.query_one(f"#{field}", Input).value = text
    await pilot.press("enter")
    await wait_for(pilot, lambda: screen.shown is not None, "the tune")
    record = screen.shown
    assert record is not None
    return screen, record


def set_fields(screen: StudioScreen, **values: str) -> None:
    """Train form fields (#f-NAME) set directly: pilot key presses are slow."""
    for name, value in values.items():
        screen.query_one(f"#f-{name}", Input).value = value


async def type_into(pilot: Pilot[Any], selector: str, text: str) -> None:
    """Focus an input, replace its text by typing, and leave it with escape."""
    field = pilot.app.screen.query_one(selector, Input)
    field.focus()
    await pilot.pause()
    field.value = ""
    await pilot.press(*(text if text else []))
    await pilot.press("escape")
    assert field.value == text, (selector, field.value)


async def run_from_palette(pilot: Pilot[Any], typed: str, offered: str) -> None:
    """Open the command palette, type `typed`, and once its top command starts with `offered`
    (it searches as its own task), run it."""
    await pilot.press("ctrl+p")
    await pilot.pause()
    await pilot.press(*typed)

    def top_match() -> str:
        matches = pilot.app.screen.query_one(CommandList)
        return str(matches.get_option_at_index(0).prompt) if matches.option_count else ""

    await wait_for(pilot, lambda: top_match().startswith(offered), f"{offered!r} offered")
    await pilot.press("enter")


def plain_text(renderable: Any, width: int = 100) -> str:
    """What a rich renderable shows, as plain text."""
    console = Console(width=width, file=io.StringIO(), record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def record_notices(app: FolkgenApp) -> list[tuple[str, str]]:
    """Collect (message, severity) of every notification the app shows from now on."""
    notices: list[tuple[str, str]] = []
    original = app.notify

    def notify(message: str, **kwargs: Any) -> None:
        notices.append((message, kwargs.get("severity", "information")))
        original(message, **kwargs)

    app.notify = notify  # type: ignore[method-assign]
    return notices


def make_checkpoint(path: Path, step: int = 120, hidden: int = 32) -> Path:
    """A small untrained model saved as a real checkpoint, the same bytes on every run."""
    import torch

    from core.checkpoint import Checkpoint, save_checkpoint
    from core.corpus import load_corpus
    from core.model import CharLSTM
    from core.presets import ModelConfig, TrainConfig

    vocab = load_corpus().vocab
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=len(vocab), embedding_dim=8, hidden_size=hidden)
    model = CharLSTM(config)
    ckpt = Checkpoint(
        model_config=config,
        train_config=TrainConfig(steps=300),
        vocab=vocab,
        model_state={k: v.detach().clone() for k, v in model.state_dict().items()},
        step=step,
        metrics={"loss": 1.9, "val_bpc": 2.5, "best_val_bpc": 2.4, "elapsed_s": 12.0},
        corpus={"name": "irish (mitdeeplearning)", "path": "", "tunes": 817},
    )
    save_checkpoint(ckpt, path)
    os.utime(path, (FIXED_MTIME, FIXED_MTIME))
    return path


class RealtimePlay:
    """What simpleaudio's PlayObject reports on a real sound card: playing until the samples
    have had time to sound. (ALSA's null device, which the app tests play into, takes them all
    at once.)"""

    def __init__(self, played: Any, seconds: float) -> None:
        self._played = played
        self._end = time.monotonic() + seconds

    def is_playing(self) -> bool:
        return time.monotonic() < self._end

    def stop(self) -> None:
        self._played.stop()
        self._end = 0.0

    def wait_done(self) -> None:
        while self.is_playing():
            time.sleep(0.01)


def play_in_real_time(monkeypatch: Any) -> None:
    """Playback into ALSA's null device (the real simpleaudio path) that lasts as long as the
    tune, so the piano roll, the playhead and quitting mid-tune can be tested."""
    import simpleaudio

    monkeypatch.setenv("ALSA_CONFIG_PATH", str(ALSA_NULL))
    real = simpleaudio.WaveObject.play

    def play(self: Any) -> RealtimePlay:
        frames = len(self.audio_data) / (self.num_channels * self.bytes_per_sample)
        return RealtimePlay(real(self), frames / self.sample_rate)

    monkeypatch.setattr(simpleaudio.WaveObject, "play", play)


class HeldParts(list[Deferred]):
    """The screens' deferred parts (their fields), held back as they come: `mount` mounts them
    as Deferred would have."""

    def mount(self) -> None:
        for deferred in self:
            _MOUNT_PART(deferred)


async def shown_with_parts_held(pilot: Pilot[Any], held: HeldParts, key: str) -> StudioScreen:
    """Once the corpus is in, the screen `key` shows, its parts held back (hold_parts)."""
    app = pilot.app
    await wait_for(pilot, lambda: getattr(app, "stats", None) is not None, "the corpus")
    await pilot.press(key)
    screen = app.screen
    assert isinstance(screen, StudioScreen)
    parts = len(screen.query(Deferred))
    await wait_for(pilot, lambda: parts > 0 and len(held) == parts, "the screen's parts")
    return screen


def hold_parts(monkeypatch: Any) -> HeldParts:
    """No screen built ahead, and every screen's fields held back until the test mounts them."""
    import folkgen_tui.app as studio_app

    monkeypatch.setattr(studio_app, "PREBUILD_ORDER", ())
    held = HeldParts()
    monkeypatch.setattr(Deferred, "_mount", lambda deferred, most=None: held.append(deferred))
    return held
