"""The studio's start-up (issue 14): what is imported, parsed and collected before the first frame
and the first model. Timings are bench/app_startup.py's; these check the means."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
from pathlib import Path

import pytest
from textual.css.stylesheet import Stylesheet
from textual.widgets import Input, Static

from folkgen_tui.app import FolkgenApp
from folkgen_tui.screens.generate import GenerateScreen
from folkgen_tui.screens.train import TrainScreen
from folkgen_tui.textual_internals import share_parsed_css
from tests.app_helpers import wait_for, wait_ready

CSS = "Probe { color: $primary; }"


def parsed(primary: str) -> Stylesheet:
    stylesheet = Stylesheet(variables={"primary": primary})
    stylesheet.add_source(CSS, read_from=("probe.tcss", ""))
    stylesheet.parse()
    return stylesheet


def test_css_is_parsed_once_per_source_and_theme() -> None:
    assert callable(getattr(Stylesheet, "_parse_rules", None)), "Textual renamed _parse_rules"
    share_parsed_css()
    share_parsed_css()  # a second call changes nothing
    red, again, blue = parsed("red"), parsed("red"), parsed("blue")
    assert again.rules[0] is red.rules[0]  # the same rules, not parsed again
    assert blue.rules[0] is not red.rules[0]  # other variables: parsed with them
    colours = [s.rules[0].styles.color for s in (red, blue)]
    assert [(c.r, c.g, c.b) for c in colours] == [(255, 0, 0), (0, 0, 255)]


def test_only_the_first_screens_module_is_imported_with_the_app() -> None:
    code = (
        "import sys, folkgen_tui.app\n"
        "print(sorted(m for m in sys.modules if m.startswith('folkgen_tui.screens.')))\n"
        "print([m for m in ('argparse', 'textual.widgets._data_table') if m in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    screens, later = done.stdout.splitlines()
    assert screens.split("'")[1::2] == ["folkgen_tui.screens.base", "folkgen_tui.screens.dataset"]
    assert later == "[]"  # the parser (only with arguments), the Tunes tab's table
    # The modes still name their screens' classes (imported when looked up).
    assert FolkgenApp.MODES["train"] is TrainScreen


@pytest.mark.asyncio
async def test_a_screens_own_css_is_read_when_the_screen_is_first_built() -> None:
    app = FolkgenApp(autoload_model=False)

    def ours() -> set[str]:
        return {Path(path).name for path, _ in app.stylesheet.source if path.endswith(".tcss")}

    async with app.run_test(size=(80, 24)) as pilot:
        assert ours() == {"folkgen.tcss", "dataset.tcss"}  # the first frame's
        assert app.screen.query_one("#corpus-numbers").styles.margin.top == 1
        # (The other screens may be built ahead meanwhile, with their rules.)
        await app.switch_mode("train")
        await pilot.pause()
        assert "train.tcss" in ours()
        assert app.screen.query_one("#recipe").styles.width.cells == 38  # type: ignore[union-attr]
        await app.switch_mode("library")  # the voice row's rules are shared (folkgen.tcss)
        await pilot.pause()
        assert app.screen.query_one("#instrument").styles.width.cells == 20  # type: ignore[union-attr]
        assert "library.tcss" in ours()


@pytest.mark.asyncio
async def test_quitting_at_the_first_frame_is_clean() -> None:
    # The Dataset screen fills its hidden tabs once the first frame is drawn: a quit then (q as
    # soon as the studio shows) left Textual mounting nothing, and the fill failed.
    app = FolkgenApp(autoload_model=False)
    async with app.run_test(size=(80, 24)):
        pass  # leaving run_test quits, and raises what the app raised meanwhile


@pytest.mark.asyncio
async def test_garbage_collection_off_at_start_up_comes_back_once_ready() -> None:
    gc.disable()  # as folkgen_tui.process.configure() starts the app
    try:
        app = FolkgenApp(autoload_model=False)
        async with app.run_test(size=(100, 32)) as pilot:
            assert not gc.isenabled()
            await wait_for(pilot, lambda: app.torch_state == "ready", "torch", timeout=60)
            await wait_for(pilot, gc.isenabled, "the garbage collector back on")
            # Then the other screens are built ahead; quitting amid a build is another matter.
            await wait_for(pilot, lambda: all(map(app.studio_screen, app.MODES)), "the screens")
    finally:
        gc.enable()


@pytest.mark.asyncio
async def test_the_corpus_index_is_built_once_when_the_model_was_trained_on_it() -> None:
    """The shipped model was trained on the default corpus, which the Dataset screen shows: its
    near-copy index (~0.1-0.3 s of the app's process at start-up) is built once, for both."""
    app = FolkgenApp()
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: app.model is not None and app.novelty is not None,
                       "the model and the corpus's index", timeout=60)  # fmt: skip
        assert app.model is not None and app.model.novelty is app.novelty


@pytest.mark.asyncio
async def test_the_costly_screens_are_built_ahead_once_the_corpus_is_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Generate and Train are built as soon as the corpus is drawn, a frame apart (a key in the
    first second waits for a build under way); the cheap screens a pause later."""
    import folkgen_tui.app as studio_app

    monkeypatch.setattr(studio_app, "PREBUILD_PAUSE", 60.0)  # the timers' pause: never, here
    app = FolkgenApp(autoload_model=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: app.stats is not None, "the corpus")
        built = "the Generate and Train screens"
        await wait_for(pilot, lambda: app.studio_screen("train") is not None, built, timeout=10)
        assert app.studio_screen("generate") is not None
        await pilot.pause(0.3)
        assert app.studio_screen("library") is None and app.studio_screen("models") is None


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("key", "panel", "field"), [("t", "Recipe", "#f-steps"), ("g", "Session", "#prompt")]
)
async def test_a_key_shows_a_costly_screens_panels_before_its_fields(
    monkeypatch: pytest.MonkeyPatch, key: str, panel: str, field: str
) -> None:
    """Train and Generate draw their panels first and mount their fields after (Deferred): a
    key in the first second shows the screen in a third of its build. Until its fields are in,
    its keys do nothing (they would look for the fields: with torch in, Train's start reads
    them); once in, the screen is set up as it was when all came at once."""
    import folkgen_tui.app as studio_app
    from folkgen_tui.screens.base import StudioScreen
    from folkgen_tui.widgets.deferred import Deferred

    monkeypatch.setattr(studio_app, "PREBUILD_ORDER", ())  # built by the key
    held: list[Deferred] = []
    mount_part = Deferred._mount_part
    monkeypatch.setattr(Deferred, "_mount_part", lambda d: held.append(d))  # fields held back
    app = FolkgenApp(autoload_model=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_ready(pilot)  # the corpus and torch
        await pilot.press(key)
        screen = app.screen
        assert isinstance(screen, StudioScreen) and screen.MODE != "dataset"
        await wait_for(pilot, lambda: len(held) == 2, "the screen's two parts")
        assert not screen.is_ready and not screen.query(field)
        assert panel in app.export_screenshot()  # drawn without them
        assert app.studio_screen(screen.MODE) is None  # the app's hooks do not reach it yet
        await pilot.press("s", "enter")  # Train's start, Generate's generate: nothing yet
        assert app.training is None and not app.history
        for deferred in held:
            mount_part(deferred)
        await asyncio.wait_for(screen.ready.wait(), timeout=10)
        assert app.studio_screen(screen.MODE) is screen and screen.query(field)
        if isinstance(screen, TrainScreen):  # the fields came with the preset's values
            assert screen.read_form() == (screen.preset.model, screen.preset.train)
            about = str(screen.query_one("#preset-about", Static).render())
            assert about.startswith(screen.preset.description)
        else:  # the pickers offer the corpus's metres and keys, as mounted() shows them
            assert isinstance(screen, GenerateScreen) and screen._meters
            assert screen.query_one("#prompt", Input).value == "X:"
