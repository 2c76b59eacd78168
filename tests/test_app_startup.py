"""The studio's start-up (issue 14): what is imported, parsed and collected before the first frame
and the first model. Timings are bench/app_startup.py's; these check the means."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from textual import events
from textual.css.stylesheet import Stylesheet
from textual.widgets import Input, Static

from folkgen_tui.app import FolkgenApp
from folkgen_tui.screens.generate import GenerateScreen
from folkgen_tui.screens.train import TrainScreen
from folkgen_tui.textual_internals import laying_out_ahead, share_parsed_css
from tests.app_helpers import HeldParts, hold_parts, shown_with_parts_held, wait_for

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


def test_modules_ahead_are_imported_until_the_turns_slice_has_passed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from folkgen_tui.imports import import_next

    names = [f"folkgen_probe_{i}" for i in range(3)]
    for name in names:
        (tmp_path / f"{name}.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in names:
        monkeypatch.delitem(sys.modules, name, raising=False)
    assert import_next(names, slice_s=0.0) is False  # one, then the slice is spent
    assert [name in sys.modules for name in names] == [True, False, False]
    assert import_next(names, slice_s=60.0) is True  # the rest in one turn
    assert import_next(names, slice_s=0.0) is True  # nothing left to import


IMPORTED_AHEAD = """
import sys
import folkgen_tui.app
from folkgen_tui.app import SCREENS
from folkgen_tui.imports import import_next
from folkgen_tui.screens.dataset import TUNES_TAB_NEEDS, DatasetScreen

def ours():
    return {m for m in sys.modules if m.split(".")[0] in ("folkgen_tui", "core")}

target = sys.argv[1]
screen = SCREENS.get(target)  # its LazyScreen
modules = TUNES_TAB_NEEDS if target == "tunes" else screen.needs
for name in modules:
    before = ours()
    import_next([name])
    print(name, *sorted(ours() - before - {name}))
before = ours()
if target == "tunes":
    DatasetScreen().hidden_tabs()
else:
    SCREENS[target]
print("last", *sorted(ours() - before - {getattr(screen, "module", "")}))
"""


@pytest.mark.parametrize("target", ["generate", "train", "library", "models", "tunes"])
def test_what_is_imported_ahead_comes_one_module_of_ours_at_a_time(target: str) -> None:
    """Each list of modules imported a few a loop turn (folkgen_tui/imports.py: a screen's
    `needs`, the Tunes tab's) names every module of ours its screen or tab imports, in an order
    where each brings no other of ours (a fresh process, the app's modules alone imported)."""
    done = subprocess.run(
        [sys.executable, "-c", IMPORTED_AHEAD, target], capture_output=True, text=True, check=True
    )
    brought = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines()}
    assert len(brought) > 1 and all(not more for more in brought.values()), brought


def test_the_app_is_made_while_the_terminal_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """The terminal's answer about images is awaited after the app is made (its settings read,
    Textual's driver imported) and just before Textual reads the terminal: a terminal that never
    answers holds the first frame until 0.1 s after the question, ~12 ms past the imports' end
    on a fast machine, which the app's making now fills."""
    import folkgen_tui.app as studio_app
    from folkgen_tui import graphics

    order: list[str] = []
    make = FolkgenApp.__init__

    def made(app: FolkgenApp, *args: Any, **kwargs: Any) -> None:
        make(app, *args, **kwargs)
        order.append("made")

    monkeypatch.setattr(FolkgenApp, "__init__", made)
    monkeypatch.setattr(studio_app, "configure", lambda: None)  # (the process's: not here)
    monkeypatch.setattr(graphics, "wait", lambda: order.append("asked"))
    monkeypatch.setattr(FolkgenApp, "run", lambda app: order.append("run"))
    studio_app.run([])
    assert order == ["made", "asked", "run"]
    order.clear()
    with pytest.raises(SystemExit):  # a refused argument: the answer is awaited all the same
        studio_app.run(["--no-such-option"])
    assert order == ["asked"]


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
        assert app.model is not None and app.model.index.get() is app.novelty


@pytest.mark.asyncio
async def test_the_corpus_index_is_shared_when_the_model_came_before_the_corpus(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The model ready before the corpus is shown (the spawner warm, the UI thread busy: it
    happened in the suite on 2 cores) finds its training corpus itself, the same tunes read
    again: the corpus's index is the model's all the same, not a second one."""
    import time

    import core.corpus

    load = core.corpus.load_corpus
    calls: list[int] = []

    def model_first(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:  # the app's corpus: held until the model is in
            deadline = time.monotonic() + 30
            while app.model is None and time.monotonic() < deadline:
                time.sleep(0.01)
        return load(*args, **kwargs)

    monkeypatch.setattr(core.corpus, "load_corpus", model_first)
    app = FolkgenApp()
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: app.model is not None and app.novelty is not None,
                       "the model and the corpus's index", timeout=60)  # fmt: skip
        assert app.model is not None and app.model.index.tunes is not app.corpus.tunes  # type: ignore[union-attr]
        assert app.model.index.get() is app.novelty


@pytest.mark.asyncio
async def test_the_corpus_summary_keeps_its_width_as_its_scrollbar_comes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The corpus overflows the Summary at 100x32: room for its scrollbar is kept, so the charts
    keep their width as it comes. They narrowed, and the whole screen was drawn again (~20 ms of
    the first half second, issue 14)."""
    held: list[object] = []
    monkeypatch.setattr(FolkgenApp, "_load_corpus", lambda app, path: held.append(path))
    app = FolkgenApp(autoload_model=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: bool(held), "the corpus asked for")
        scroll, charts = app.screen.query_one("#summary-scroll"), app.screen.query_one("#charts")
        width = charts.region.width
        assert width > 0 and not scroll.show_vertical_scrollbar
        monkeypatch.undo()
        app.load_corpus(None)
        await wait_for(pilot, lambda: app.stats is not None, "the corpus", timeout=20)
        await pilot.pause()
        assert scroll.show_vertical_scrollbar and charts.region.width == width


@pytest.mark.asyncio
async def test_every_screen_is_built_ahead_once_the_corpus_is_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The other screens are built as soon as the corpus is drawn, their frames one after
    another, then their parts, with no pause between: Library's and Models', built 0.3 s
    after the others', were built by the key in the first half second (Library's table 50-60 ms
    after an `l`, against issue 14's 22-23 ms here)."""
    import folkgen_tui.app as studio_app

    monkeypatch.setattr(studio_app, "PREBUILD_PAUSE", 60.0)  # the timers' pause: never, here
    monkeypatch.setattr(studio_app, "PREBUILD_START", 60.0)
    app = FolkgenApp(autoload_model=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: app.stats is not None, "the corpus")
        await wait_for(pilot, lambda: all(app.studio_screen(mode) for mode in app.MODES),
                       "every screen", timeout=10)  # fmt: skip


@pytest.mark.asyncio
async def test_the_screens_are_built_ahead_from_just_after_the_first_frame(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The builds ahead do not wait for the corpus (~0.1 s after the first frame): keys then
    found the frames still being built."""
    import folkgen_tui.app as studio_app

    monkeypatch.setattr(studio_app, "PREBUILD_ORDER", ("generate", "train"))  # no Library nor Models
    loads: list[object] = []
    monkeypatch.setattr(FolkgenApp, "_load_corpus", lambda app, path: loads.append(path))
    app = FolkgenApp(autoload_model=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: app.studio_screen("train") is not None, "Train set up",
                       timeout=10)  # fmt: skip
        assert loads and app.corpus is None  # asked for, never come
        assert app.studio_screen("generate") is not None


@pytest.mark.asyncio
async def test_the_costly_screens_frames_come_before_their_fields_one_part_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Built ahead, Generate's and Train's frames come first, then their four parts (fields)
    one at a time, each mounted whole before the next: a key for Train 0.15-0.3 s after the
    first frame found it unbuilt while Generate's fields mounted, and both screens' parts
    mounting together made loop turns a key waited for (30-70 ms). A screen whose parts are in
    is drawn ahead before the next screen's parts come (a key for it paid that draw)."""
    import folkgen_tui.app as studio_app
    from folkgen_tui.widgets.deferred import Deferred

    monkeypatch.setattr(studio_app, "PREBUILD_ORDER", ("generate", "train"))  # no Library nor Models
    frames: dict[str, bool] = {}  # screen: whether any part was in when its frame was
    mounting: list[Deferred] = []  # parts begun, in order
    overlapped: list[str] = []
    drawing: list[bool] = []  # at another screen's first part: one still being drawn ahead
    frame_built, mount = FolkgenApp.frame_built, Deferred._mount

    def framed(app: FolkgenApp, screen: Any) -> None:
        frames[screen.MODE] = bool(mounting)
        frame_built(app, screen)

    def mounted(deferred: Deferred, most: int | None = None) -> Any:
        if deferred not in mounting:  # its first piece (the part's mount begins)
            overlapped.extend(d.part.id or "" for d in mounting if not d.in_place)
            if mounting and deferred.screen is not mounting[-1].screen:
                drawing.append(laying_out_ahead(deferred.app))
            mounting.append(deferred)
        return mount(deferred, most)

    monkeypatch.setattr(FolkgenApp, "frame_built", framed)
    monkeypatch.setattr(Deferred, "_mount", mounted)
    app = FolkgenApp(autoload_model=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: app.studio_screen("train") is not None, "Train set up",
                       timeout=20)  # fmt: skip
        assert app.studio_screen("generate") is not None
        assert frames == {"generate": False, "train": False}  # both frames before any field
        assert [d.screen.MODE for d in mounting] == ["generate", "generate", "train", "train"]
        assert overlapped == []  # each part whole before the next began
        assert drawing == [False]  # Generate whole, and drawn ahead, before Train's fields
        train = app.studio_screen("train")  # built ahead, whole: Dataset still shown
        assert train is not None and not train.is_current and len(train.query("#f-steps")) == 1


@pytest.mark.asyncio
async def test_the_other_screens_are_built_ahead_a_piece_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Library's frame and Models come after the costly screens' frames and before any part,
    every screen's modules imported in loop turns of their own before the first build (a module
    and a build together held a key 10-15 ms; a key for Train 0.15 s after the first frame, with
    Train's modules still to import, took 80-93 ms against ~60 ms), and Library's table and tune
    after the others' parts, in the app's queue (built whole, its layout as it was built held a
    key ~20 ms)."""
    import folkgen_tui.app as studio_app
    import folkgen_tui.screens as screens_package
    from folkgen_tui.widgets.deferred import Deferred

    for name in ("library", "models"):  # imported by other tests: here, as in a fresh app
        monkeypatch.delitem(sys.modules, f"folkgen_tui.screens.{name}", raising=False)
        monkeypatch.delattr(screens_package, name, raising=False)
    monkeypatch.setattr(studio_app, "PREBUILD_PAUSE", 0.05)
    imported: list[dict[str, bool]] = []  # the modules imported as each prebuild turn began
    builds: list[tuple[str, bool]] = []  # a screen built, every screen's module imported before
    # that turn
    frames: dict[str, bool] = {}  # screen: whether a part of it was in when its frame was
    mounting: list[str] = []  # the parts' screens, in the order they were mounted
    begun: list[Deferred] = []
    parts_begun: list[bool] = []  # at each build: whether any part had begun to mount
    prebuild, build, framed, mount = (
        FolkgenApp._prebuild_next_screen, studio_app.build_mode,
        FolkgenApp.frame_built, Deferred._mount,
    )  # fmt: skip

    def prebuilding(app: FolkgenApp) -> None:
        imported.append({mode: studio_app.SCREENS.imported(mode) for mode in app.MODES})
        prebuild(app)

    def building(app: FolkgenApp, mode: str) -> bool:
        builds.append((mode, all(imported[-1].values())))
        parts_begun.append(bool(begun))
        return build(app, mode)

    def frame_built(app: FolkgenApp, screen: Any) -> None:
        frames[screen.MODE] = any(d.part.is_attached for d in screen.query(Deferred))
        framed(app, screen)

    def mounted(deferred: Deferred, most: int | None = None) -> Any:
        if deferred not in begun:  # its first piece (the part's mount begins)
            begun.append(deferred)
            mounting.append(deferred.screen.MODE)
        return mount(deferred, most)

    monkeypatch.setattr(FolkgenApp, "_prebuild_next_screen", prebuilding)
    monkeypatch.setattr(studio_app, "build_mode", building)
    monkeypatch.setattr(FolkgenApp, "frame_built", frame_built)
    monkeypatch.setattr(Deferred, "_mount", mounted)
    app = FolkgenApp(autoload_model=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: app.studio_screen("library") is not None, "Library set up",
                       timeout=20)  # fmt: skip
        assert [mode for mode, _ in builds] == ["generate", "train", "library", "models"]
        assert parts_begun == [False] * 4  # every frame (Models whole) before any part
        assert all(before for _, before in builds), builds  # all modules, in turns before
        assert frames == {"generate": False, "train": False, "library": False}
        assert mounting == ["generate"] * 2 + ["train"] * 2 + ["library"] * 3  # its voice row too
        library = app.studio_screen("library")  # built ahead, whole: Dataset still shown
        assert library is not None and not library.is_current
        assert len(library.query("#lib-table")) == 1


@pytest.mark.asyncio
async def test_a_part_built_ahead_is_mounted_a_few_widgets_at_a_time_and_hidden_until_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The app's queue mounts a part built ahead in pieces of a few widgets of one parent, each
    mounted before the next begins: mounted whole, Train's recipe made loop rounds of 25-30 ms
    that a key waited for twice. The part stays hidden until all of it is in (a key meanwhile
    draws the frame alone), and the screen sets itself up only then."""
    import folkgen_tui.app as studio_app
    from folkgen_tui.widgets.deferred import PIECE, Deferred

    monkeypatch.setattr(studio_app, "PREBUILD_ORDER", ("generate", "train"))  # no Library nor Models
    pieces: dict[str, list[int]] = {}  # part: the widgets in each piece, in order
    unmounted: list[str] = []  # a piece begun before the one before it was in
    shown_early: list[str] = []  # a part on display before all of it was in
    set_up_early: list[str] = []  # a screen ready before its parts were all in
    mount = Deferred._mount

    def mounted(deferred: Deferred, most: int | None = None) -> Any:
        part = deferred.part.id or ""
        if pieces.get(part) and not all(w.is_mounted for w in before[part]):
            unmounted.append(part)
        if deferred.part.is_attached and deferred.part.display:
            shown_early.append(part)
        if deferred.screen.is_ready:
            set_up_early.append(part)
        mounting = mount(deferred, most)
        widgets = list(getattr(mounting, "_widgets", []))
        pieces.setdefault(part, []).append(len(widgets))
        before[part] = widgets
        return mounting

    before: dict[str, list[Any]] = {}
    monkeypatch.setattr(Deferred, "_mount", mounted)
    app = FolkgenApp(autoload_model=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: app.studio_screen("train") is not None, "Train set up",
                       timeout=20)  # fmt: skip
        train = app.studio_screen("train")
        assert train is not None and not train.is_current
        recipe = pieces["recipe-parts"]
        fields = len(train.query_one("#recipe-parts").query("*").exclude(".-internal"))
        assert len(recipe) > 3 and max(recipe) <= PIECE <= 5, recipe  # a few widgets a time
        assert unmounted == shown_early == set_up_early == []
        assert train.query_one("#recipe-parts").display  # shown once in
        assert len(train.query("#f-steps")) == 1 and fields > PIECE


@pytest.mark.asyncio
async def test_a_key_between_a_parts_pieces_draws_the_frame_alone_then_the_whole_part(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A key for a screen whose part is half mounted ahead shows the frame laid out and drawn
    ahead, the part still hidden (its fields so far were a first layout and draw: Train's
    35-45 ms); the rest is mounted after the draw and the part shown whole."""
    import folkgen_tui.app as studio_app
    from folkgen_tui.textual_internals import laid_out_for
    from folkgen_tui.widgets.deferred import Deferred

    filled: list[bool] = []
    at_draw: list[tuple[bool, bool]] = []  # the part on display, its screen on show (drawn)
    mount_part = Deferred._mount_part

    def held(app: FolkgenApp) -> None:  # the queue is not filled: the test mounts from it
        filled.append(True)

    def after_draw(deferred: Deferred, put_off: bool = False) -> None:
        if deferred.part.id == "recipe-parts":
            at_draw.append((deferred.part.display, deferred.screen.is_current))
        mount_part(deferred, put_off)

    monkeypatch.setattr(FolkgenApp, "_fill_parts", held)
    monkeypatch.setattr(Deferred, "_mount_part", after_draw)
    monkeypatch.setattr(studio_app, "PREBUILD_ORDER", ("generate", "train"))  # no Library's
    app = FolkgenApp(autoload_model=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: filled and len(app._parts) == 4, "both frames, four parts")
        train = app._screen_stacks["train"][-1]
        await wait_for(pilot, lambda: not laying_out_ahead(app), "the frames drawn ahead")
        assert laid_out_for(train, app.size)  # its frame, before any of its fields
        recipe_mount = app._parts[2]
        for _ in range(3):  # the part and two pieces of it
            mounting = recipe_mount()
            assert mounting is not None
            await mounting
        part = train.query_one("#recipe-parts")
        assert part.children and not part.display
        await pilot.press("t")
        assert app.screen is train
        await asyncio.wait_for(train.ready.wait(), timeout=10)
        assert at_draw[0] == (False, True)  # the frame drawn alone, its fields to come
        await pilot.pause()
        assert part.display and len(train.query("#f-steps")) == 1
        assert recipe_mount() is None  # its turn then mounts nothing more


@pytest.mark.asyncio
@pytest.mark.parametrize("key", ["t", "g"])
async def test_a_key_as_a_screen_is_drawn_ahead_with_its_fields_draws_its_frame_first(
    monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    """A key for a screen just set up, whose layout and draw ahead with its fields are not done
    yet, draws its frame alone (as drawn ahead before its fields came) and its fields once that
    is out: it paid their first layout and draw (Train's ~30 ms). Its focus stays. Once that
    draw ahead is done, a screen is shown whole."""
    import folkgen_tui.app as studio_app
    import folkgen_tui.screens.base as base
    from folkgen_tui.widgets.deferred import Deferred

    monkeypatch.setattr(studio_app, "PREBUILD_ORDER", ("generate", "train"))  # no Library nor Models
    draws: dict[str, Any] = {}  # a screen set up: what its draw ahead calls once done (held)
    at_draw: list[tuple[str, bool, bool]] = []  # part, on display, its screen on show
    show_part = Deferred._show_part

    def shown(deferred: Deferred) -> None:
        at_draw.append((deferred.part.id or "", deferred.part.display, deferred.screen.is_current))
        show_part(deferred)

    def held(screen: Any, then: Any = None) -> None:  # (a frame's, before its set-up: no then)
        if then is not None:
            draws[screen.MODE] = then

    monkeypatch.setattr(base, "lay_out_ahead_soon", held)
    monkeypatch.setattr(Deferred, "_show_part", shown)
    app = FolkgenApp(autoload_model=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: len(draws) == 2, "both set up", timeout=20)
        mode, other = ("train", "generate") if key == "t" else ("generate", "train")
        screen = app.studio_screen(mode)
        assert screen is not None
        focused = screen.focused
        holding = focused.ancestors_with_self if focused is not None else []
        hidden = sorted((d.part.id or "", False, True) for d in screen.query(Deferred)
                        if d.part not in holding)  # fmt: skip
        assert hidden  # (Generate's tune view holds the focus: its fields are hidden)
        await pilot.press(key)
        await wait_for(pilot, lambda: len(at_draw) == len(hidden), "its parts after the draw")
        assert app.screen is screen
        assert sorted(at_draw) == hidden
        assert all(d.part.display for d in screen.query(Deferred))
        assert screen.focused is focused
        draws[other]()  # the other's draw ahead done: it is shown whole
        await pilot.press({"train": "t", "generate": "g"}[other])
        await pilot.pause(0.1)
        assert app.screen is app.studio_screen(other) and len(at_draw) == len(hidden)


@pytest.mark.asyncio
async def test_a_screen_built_ahead_takes_its_queued_fields_when_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A key for a screen whose frame was built ahead and whose fields still wait in the app's
    queue shows the frame and mounts the fields after its draw, without waiting for the queue;
    the queue's turn then mounts nothing twice."""
    import folkgen_tui.app as studio_app
    from folkgen_tui.screens.base import StudioScreen

    filled: list[bool] = []

    def held(app: FolkgenApp) -> None:  # the queue is not filled: the parts stay in it
        filled.append(True)

    monkeypatch.setattr(FolkgenApp, "_fill_parts", held)
    monkeypatch.setattr(studio_app, "PREBUILD_ORDER", ("generate", "train"))  # no Library's
    app = FolkgenApp(autoload_model=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: filled and len(app._parts) == 4, "both frames, four parts")
        await pilot.press("t")
        screen = app.screen
        assert isinstance(screen, TrainScreen)
        await asyncio.wait_for(screen.ready.wait(), timeout=10)
        assert screen.query("#f-steps") and app.studio_screen("train") is screen
        results = [mount() for mount in app._parts]  # their turn comes: Train's are in already
        assert results[2:] == [None, None]
        await pilot.pause()
        assert len(screen.query("#f-steps")) == 1
        assert all(r is not None for r in results[:2])  # Generate's, still hidden, mount in
        for mount, mounting in zip(app._parts[:2], results[:2], strict=True):  # their turns
            while mounting is not None:  # piece by piece
                await mounting
                mounting = mount()
        generate_screen = app._screen_stacks["generate"][-1]
        assert isinstance(generate_screen, StudioScreen)
        await asyncio.wait_for(generate_screen.ready.wait(), timeout=10)


@pytest.mark.asyncio
async def test_the_screens_built_ahead_are_laid_out_again_as_the_first_model_is_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The model's name and state change what the hidden screens show: they are laid out again
    once the frame that says the model is in is drawn, not with the warm-up after it (a key
    then drew a stale screen); the model's near-copy index is made after the warm-up."""
    import folkgen_tui.app as studio_app

    monkeypatch.setattr(studio_app, "WARM_UP_AFTER", 60.0)  # the warm-up: never, here
    laid_out: list[str] = []
    lay_out = studio_app.lay_out_ahead

    def counted(screen: Any) -> None:
        laid_out.append(screen.MODE)
        lay_out(screen)

    monkeypatch.setattr(studio_app, "lay_out_ahead", counted)
    loads: list[tuple[Any, ...]] = []  # the first model's load, held until every screen is in
    load = FolkgenApp._load_model
    monkeypatch.setattr(FolkgenApp, "_load_model", lambda app, *args: loads.append(args))
    app = FolkgenApp()
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: len(app._screens) == 5 and bool(loads),
                       "every screen built, the model asked for", timeout=60)  # fmt: skip
        await pilot.pause(0.3)
        laid_out.clear()
        load(app, *loads[0])
        await wait_for(pilot, lambda: app.model is not None, "the model", timeout=60)
        await wait_for(pilot, lambda: len(laid_out) == 4, "the hidden screens laid out again")
        assert sorted(laid_out) == ["generate", "library", "models", "train"]
        # The model's near-copy index (and numpy) wait for the warm-up: made meanwhile on a
        # thread, they doubled the UI thread's work just then.
        await pilot.pause(0.3)
        assert app.model is not None and not app.model.index.built
        app._warm_up()
        await wait_for(pilot, lambda: app.model is not None and app.model.index.built,
                       "the model's index, after the warm-up")  # fmt: skip


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("key", "panel", "field", "action"),
    [("t", "Recipe", "#f-steps", "start"), ("g", "Session", "#gen-score", "toggle_score")],
)
async def test_a_key_shows_a_costly_screens_panels_before_its_fields(
    monkeypatch: pytest.MonkeyPatch, key: str, panel: str, field: str, action: str
) -> None:
    """Train and Generate draw their panels first and mount their fields after (Deferred): a
    key in the first second shows the screen in a third of its build. A key of the screen's
    pressed before its fields are in waits for them (`t s` typed at once: the s was dropped, or
    it looked for fields not there yet); once in, the screen is set up as it was when all came
    at once."""
    from folkgen_tui.screens.base import StudioScreen

    held = hold_parts(monkeypatch)  # the screen built by the key, its fields held back
    ran: list[bool] = []  # whether the screen's fields were there when its key's action ran
    cls = TrainScreen if key == "t" else GenerateScreen
    monkeypatch.setattr(cls, f"action_{action}", lambda screen: ran.append(bool(screen.query(field))))
    made: list[Input] = []  # the fields are made with their mount, not with the panels: an
    make = Input.__init__  # Input styles itself as it is made (half of Train's panels' build)

    def counted(field: Input, *args: Any, **kwargs: Any) -> None:
        made.append(field)
        make(field, *args, **kwargs)

    monkeypatch.setattr(Input, "__init__", counted)
    app = FolkgenApp(autoload_model=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: app.stats is not None, "the corpus")
        made.clear()
        await pilot.press(key)
        screen = app.screen
        assert isinstance(screen, StudioScreen) and screen.MODE != "dataset"
        await wait_for(pilot, lambda: len(held) == 2, "the screen's two parts")
        assert not screen.is_ready and not screen.query(field) and made == []
        assert panel in app.export_screenshot()  # drawn without them
        assert app.studio_screen(screen.MODE) is None  # the app's hooks do not reach it yet
        letter = "s" if key == "t" else "v"  # not the pilot's press: that waits for the screen
        app.post_message(events.Key(letter, letter))
        await asyncio.sleep(0.2)
        assert ran == []  # waiting
        held.mount()
        await asyncio.wait_for(screen.ready.wait(), timeout=10)
        await wait_for(pilot, lambda: bool(ran), "the key pressed before")
        assert ran == [True]  # once, with the fields in
        assert app.studio_screen(screen.MODE) is screen
        if isinstance(screen, TrainScreen):  # the fields came with the preset's values
            assert screen.read_form() == (screen.preset.model, screen.preset.train)
            about = str(screen.query_one("#preset-about", Static).render())
            assert about.startswith(screen.preset.description)
        else:  # the pickers offer the corpus's metres and keys, as mounted() shows them
            assert isinstance(screen, GenerateScreen) and screen._meters
            assert screen.query_one("#prompt", Input).value == "X:"


def drawn(app: FolkgenApp, selector: str, rows: int | None = None) -> list[str]:
    """The lines the screen draws in the region of the widget `selector` (its first `rows`)."""
    region = app.screen.query_one(selector).region
    update = app.screen._compositor.render_update(full=True)
    lines = ["".join(strip.text for strip in line) for line in update.strips]
    end = region.y + (region.height if rows is None else rows)
    return [line[region.x : region.right] for line in lines[region.y : end]]


@pytest.mark.asyncio
@pytest.mark.parametrize("size", [(100, 32), (80, 24), (160, 45)])
@pytest.mark.parametrize(
    ("key", "regions", "word"),
    [
        # the recipe whole; the progress panel's border, state (2), bar, gap and figures (4)
        ("t", (("#recipe", None), ("#progress-panel", 9)), "LSTM units"),
        # the four rows of fields; the tune panel's border and the badge's two lines
        ("g", (("#gen-controls", None), ("#tune-panel", 3)), "Temp"),
        # the table's header (its rows are read after); the voice row
        ("l", (("#lib-list", 1), ("#lib-voice", None)), "Title"),
    ],
)
async def test_a_sketch_shows_the_fields_as_they_will_be_until_they_are_in(
    monkeypatch: pytest.MonkeyPatch, key: str, regions: tuple[tuple[str, int | None], ...],
    word: str, size: tuple[int, int],
) -> None:  # fmt: skip
    """A key that shows Train, Generate or Library before their fields are in draws them at
    once as a sketch (Deferred's), character for character as the fields then show (issue 14's
    early keys): the fields take its place, not a layout of their own."""
    from folkgen_tui.widgets.deferred import Deferred

    held = hold_parts(monkeypatch)
    # The longest of their texts, cut and wrapped in the panels (each screen's own words)
    monkeypatch.setattr(TrainScreen, "_ready_text", lambda screen: "Nothing to train on: open "
                        "an .abc file or folder in Dataset (d, then o). " + "no tunes " * 9)
    monkeypatch.setattr(GenerateScreen, "_intro_text", lambda screen: "Press enter to generate "
                        "a tune (n: another one, p: play it, s: save it). " * 3)  # fmt: skip
    app = FolkgenApp(autoload_model=False)
    async with app.run_test(size=size) as pilot:
        screen = await shown_with_parts_held(pilot, held, key)
        await pilot.pause()
        sketched = [drawn(app, selector, rows) for selector, rows in regions]
        deferreds = [d for d in screen.query(Deferred) if d.has_class("-sketch")]
        assert deferreds and all(d.display and not d.part.is_mounted for d in deferreds)
        held.mount()
        await asyncio.wait_for(screen.ready.wait(), timeout=10)
        await pilot.pause()
        assert all(not d.display and d.part.display for d in deferreds)  # the fields in place
        for (selector, rows), sketch in zip(regions, sketched, strict=True):
            assert sketch == drawn(app, selector, rows), selector
        assert word in "\n".join(sketched[0])  # (not two empty panels)


@pytest.mark.asyncio
async def test_a_screens_parts_are_shown_with_its_set_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """A screen's parts take their sketches' places all in one turn with the set-up that fills
    them: shown as each came in, Train's recipe was drawn with its preset note still blank
    (between the sketch and the note) while its progress panel mounted."""
    from folkgen_tui.widgets.deferred import Deferred

    held = hold_parts(monkeypatch)
    shown: list[tuple[str, bool]] = []  # a part shown: whether its screen's parts were all in
    display = Deferred._display_part

    def displayed(deferred: Deferred, on: bool) -> None:
        if on:
            parts = deferred.screen.query(Deferred)
            shown.append((deferred.part.id or "", all(d.in_place for d in parts)))
        display(deferred, on)

    monkeypatch.setattr(Deferred, "_display_part", displayed)
    app = FolkgenApp(autoload_model=False)
    async with app.run_test(size=(100, 32)) as pilot:
        screen = await shown_with_parts_held(pilot, held, "t")
        first, second = HeldParts(held[:1]), HeldParts(held[1:])
        first.mount()  # the recipe in, its screen drawn meanwhile, then the progress panel
        await pilot.pause(0.1)
        second.mount()
        await asyncio.wait_for(screen.ready.wait(), timeout=10)
        assert sorted(shown) == [("progress-parts", True), ("recipe-parts", True)]
        about = screen.query_one("#preset-about", Static)
        assert str(about.render()).startswith("A small")  # filled as it was shown


@pytest.mark.asyncio
async def test_a_part_mounted_keeps_the_apps_queue_free(monkeypatch: pytest.MonkeyPatch) -> None:
    """A part's stand-in stays, hidden, once the part is mounted: removed, Textual queued a
    wait for its removal on the app's own queue, and a key in the first half second waited
    there while the part's fields mounted (22-34 ms of the loop)."""
    from folkgen_tui.widgets.deferred import Deferred

    held = hold_parts(monkeypatch)
    pruned: list[str] = []
    prune = FolkgenApp._prune

    def counted(app: FolkgenApp, *nodes: Any, parent: Any = None) -> Any:
        pruned.extend(type(node).__name__ for node in nodes)
        return prune(app, *nodes, parent=parent)

    monkeypatch.setattr(FolkgenApp, "_prune", counted)
    app = FolkgenApp(autoload_model=False)
    async with app.run_test(size=(100, 32)) as pilot:
        screen = await shown_with_parts_held(pilot, held, "t")
        held.mount()
        await asyncio.wait_for(screen.ready.wait(), timeout=10)
        await pilot.pause()
        assert "Deferred" not in pruned
        stand_ins = list(screen.query(Deferred))
        assert len(stand_ins) == 2 and not any(d.display for d in stand_ins)
        for deferred in stand_ins:  # each part mounted right after its stand-in
            siblings = list(deferred.parent.children) if deferred.parent else []
            assert siblings[siblings.index(deferred) + 1] is deferred.part
        assert screen.query("#f-steps")


@pytest.mark.asyncio
async def test_a_screen_awaiting_one_being_built_does_not_hold_its_fields(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A screen's parts are mounted from its own loop. Queued on the screen on show (Textual's
    call_after_refresh), the Library's fields-waiting switch to a Generate being built ahead
    (enter on a tune) held them for ever: Generate stayed an empty frame, its keys dead."""
    import folkgen_tui.app as studio_app
    from folkgen_tui.textual_internals import build_mode
    from folkgen_tui.widgets.deferred import Deferred

    monkeypatch.setattr(studio_app, "PREBUILD_ORDER", ("library",))  # Generate: built here
    app = FolkgenApp(autoload_model=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: app.stats is not None, "the corpus")
        await pilot.press("l")
        library = app.screen
        await pilot.pause(0.3)
        switched: list[bool] = []

        async def open_in_generate() -> None:  # as the Library's enter on a tune does
            await app.switch_mode("generate")
            switched.append(True)

        assert build_mode(app, "generate")
        generate = app._screen_stacks["generate"][-1]

        def parts_queued() -> bool:  # on a screen's loop, or with the app (built ahead)
            queued = [*library._callbacks, *generate._callbacks]
            on_a_loop = any("_mount_part" in repr(callback) for callback, _ in queued)
            return on_a_loop or any(part.queued for part in generate.query(Deferred))

        for _ in range(100_000):  # no pause: the Library would repaint and run what it holds
            if parts_queued() or generate.query("#prompt"):
                break
            await asyncio.sleep(0)
        assert parts_queued()  # the switch comes with the fields still to mount
        library.refresh()  # a repaint due on the Library: its queued callbacks wait for it
        library.call_later(open_in_generate)
        await wait_for(pilot, lambda: switched, "the switch to Generate", timeout=10)
        assert app.screen is generate and isinstance(generate, GenerateScreen)
        assert generate.is_ready and generate.query("#prompt")


@pytest.mark.asyncio
async def test_a_theme_changed_while_a_screen_waits_for_its_fields_reaches_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A screen built ahead whose theme changed between its panels and its fields was marked
    styled as built: shown, its frame kept the old theme's colours."""
    from folkgen_tui.textual_internals import build_mode
    from folkgen_tui.widgets.nav_bar import NavBar

    held = hold_parts(monkeypatch)
    app = FolkgenApp(autoload_model=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: app.stats is not None, "the corpus")
        assert build_mode(app, "train")
        train = app._screen_stacks["train"][-1]
        await wait_for(pilot, lambda: len(held) == 2, "the parts")
        before = app.screen.query_one(NavBar).styles.background
        app.theme = "nord" if app.theme != "nord" else "gruvbox"
        await pilot.pause(0.1)
        wanted = app.screen.query_one(NavBar).styles.background  # Dataset's, restyled
        assert wanted != before
        held.mount()
        await asyncio.wait_for(train.ready.wait(), timeout=10)
        await pilot.press("t")
        await pilot.pause(0.2)
        assert app.screen is train
        assert train.query_one(NavBar).styles.background == wanted
