"""What folkgen_tui/textual_internals.py leans on in Textual: fails loudly when an upgrade
renames it or changes how it behaves (the app would still work, only slower)."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from functools import partial
from typing import Any

import pytest
from textual import events
from textual._compositor import Compositor
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.color import Color
from textual.command import CommandPalette, DiscoveryHit, Hit, Hits, Provider
from textual.containers import Vertical
from textual.driver import Driver
from textual.geometry import Size
from textual.message import Message
from textual.screen import UPDATE_PERIOD, ModalScreen, Screen
from textual.theme import BUILTIN_THEMES
from textual.widget import Widget
from textual.widgets import Input, Log, Static

from folkgen_tui.textual_internals import (
    ANSWERING,
    AppKeysAtOnce,
    InputFirst,
    QuickModeSwitch,
    QuickShowScreen,
    StyledWhenMounted,
    build_mode,
    built_modes,
    laid_out_for,
    lay_out_ahead,
    laying_out_ahead,
    may_take_keys,
    skip_restyle,
    start_frame_clock,
    start_in_theme,
    styled_as_built,
)
from tests.app_helpers import wait_for


class Blank(Screen[None]):
    pass


class Probe(QuickModeSwitch):
    """Counts Textual's own delay_update calls, and whether they came inside switch_mode."""

    MODES = {"one": Blank, "two": Blank, "three": Blank, "four": Blank}
    DEFAULT_MODE = "one"

    def __init__(self) -> None:
        super().__init__()
        self.in_switch = False
        self.delays: list[bool] = []  # in_switch at each call that reached Textual

    def switch_mode(self, mode: str) -> Any:
        self.in_switch = True
        try:
            return super().switch_mode(mode)
        finally:
            self.in_switch = False


async def built_ahead(app: App[Any], pilot: Any, mode: str) -> Screen[Any]:
    """`mode`'s screen, built (not shown) and mounted."""
    assert build_mode(app, mode)
    await pilot.pause()
    return app._screen_stacks[mode][0]


def layouts_of(screen: Screen[Any]) -> list[str]:
    """From now on, each layout of `screen` ("layout (width, height)"), in order."""
    calls: list[str] = []
    layout = screen._refresh_layout

    def laid_out(size: Size | None = None, scroll: bool = False) -> None:
        calls.append(f"layout {tuple(size or screen.size)}")
        layout(size, scroll)

    screen._refresh_layout = laid_out  # type: ignore[method-assign]
    return calls


def draws_of(screen: Screen[Any]) -> list[str]:
    """From now on, what each draw of `screen`'s compositor drew: "full", "part" or "nothing"."""
    calls: list[str] = []
    compositor = screen._compositor
    render = compositor.render_update

    def drawn(full: bool = False, **kwargs: Any) -> Any:
        dirty = compositor._dirty_regions
        whole = full or compositor.size.region in dirty
        calls.append("full" if whole else "part" if dirty else "nothing")
        return render(full, **kwargs)

    compositor.render_update = drawn  # type: ignore[method-assign]
    return calls


def test_textual_still_has_the_names_we_use() -> None:
    assert list(inspect.signature(App._init_mode).parameters) == ["self", "mode"]
    assert list(inspect.signature(App.switch_mode).parameters) == ["self", "mode"]
    assert list(inspect.signature(App.delay_update).parameters) == ["self", "delay"]
    resume = inspect.signature(Screen._on_screen_resume)
    assert list(resume.parameters) == ["self", "event"]
    # Screen's handler reads the field skip_restyle sets.
    assert "event.refresh_styles" in inspect.getsource(Screen._on_screen_resume)
    assert events.ScreenResume().refresh_styles is True
    assert isinstance(App()._screen_stacks, dict)
    # lay_out_ahead: what a screen's show runs, the widgets it draws (region and clip each), and
    # a widget's lines drawn for a crop (kept for the show).
    assert list(inspect.signature(Screen._refresh_layout).parameters) == ["self", "size", "scroll"]
    assert isinstance(inspect.getattr_static(Compositor, "visible_widgets"), property)
    assert list(inspect.signature(Widget.render_lines).parameters) == ["self", "crop"]
    # (draws_of, the tests' own spy on what a draw drew, wraps render_update.)
    assert "full" in inspect.signature(Compositor.render_update).parameters
    # set_virtual_size_quietly: what a layout does for a scrolling widget's scrollbars.
    assert list(inspect.signature(Widget._scroll_update).parameters) == ["self", "virtual_size"]
    # start_frame_clock: the screen's update timer, made when first asked for.
    assert isinstance(inspect.getattr_static(Screen, "_update_timer"), property)
    # QuickShowScreen: what switch_mode calls, and what a screen keeps of its layout.
    assert "self.screen._screen_resized(self.size)" in inspect.getsource(App.switch_mode)
    screen = Screen[None]()
    assert screen._layout_required is False and screen._layout_widgets == {}
    assert isinstance(screen._size, Size)
    # ...and a layout as it is shown: within a batch, its draw is left to a queued call, which
    # draws the compositor's dirty regions.
    assert "self.call_later(self._compositor_refresh)" in inspect.getsource(Screen._refresh_layout)
    assert isinstance(Compositor()._dirty_regions, set)
    # InputFirst: the driver sends input as App._post_message's coroutine, made on its thread;
    # post_message queues a message from any thread on the app's loop.
    assert "self._app._post_message(message)" in inspect.getsource(Driver.send_message)
    assert inspect.iscoroutinefunction(App._post_message)
    assert "call_soon_threadsafe" in inspect.getsource(App.post_message)
    # AppKeysAtOnce: the chain a key's bindings are looked up in, from the focused widget to the
    # app or a modal screen; a key stopped on its way; what a widget's key handling is.
    assert isinstance(inspect.getattr_static(Screen, "_modal_binding_chain"), property)
    key = events.Key("t", "t")
    assert key._stop_propagation is False
    key.stop()
    assert key._stop_propagation is True
    assert "await self._check_bindings(event.key, priority=True)" in inspect.getsource(App.on_event)
    assert "_check_bindings(event.key)" in inspect.getsource(App._on_key)
    assert "dispatch_key" in inspect.getsource(Widget.handle_key)
    assert "self.handle_key(event)" in inspect.getsource(Widget._on_key)
    # ...and the steps of App.on_event for a key it sends down, which it takes in their place.
    steps = inspect.getsource(App.on_event)
    for step in ("self.app_focus = True", "self.screen._clear_tooltip()",
                 "self.screen.maximized is not None", "forward_target._forward_event(event)"):
        assert step in steps
    assert callable(events.Key("t", "t")._set_forwarded)


@pytest.mark.asyncio
async def test_switch_mode_calls_delay_update_synchronously_and_quick_switches_skip_it() -> None:
    app = Probe()
    original = App.delay_update

    def recording(self: App[Any], delay: float = 0.05) -> None:
        assert isinstance(self, Probe)
        self.delays.append(self.in_switch)
        original(self, delay)

    App.delay_update = recording  # type: ignore[method-assign]
    try:
        async with app.run_test() as pilot:
            assert set(built_modes(app)) == {"one"}
            app.in_switch = True
            App.switch_mode(app, "two")  # Textual's own, not built yet: it holds the frame back
            app.in_switch = False
            await pilot.pause()
            assert app.delays == [True], "switch_mode no longer calls delay_update synchronously"
            assert build_mode(app, "three") and set(built_modes(app)) == {"one", "two", "three"}
            assert app.current_mode == "two"  # built, not shown
            await app.switch_mode("three")  # built: shown at once
            await app.switch_mode("one")
            await app.switch_mode("four")  # not built: built, then shown at once
            assert app.screen.is_mounted, "the await returned before the screen was built"
            await pilot.pause()
            assert app.delays == [True] and app.current_mode == "four"
    finally:
        App.delay_update = original  # type: ignore[method-assign]


class Slow(Widget):
    """Mounted ~0.4 s after it is composed."""

    async def on_mount(self) -> None:
        await asyncio.sleep(0.4)


class SlowToBuild(Screen[None]):
    def compose(self) -> ComposeResult:
        yield Slow()


class Keyed(QuickModeSwitch):
    """Records, for each `k` it answers, whether the slow screen was built by then."""

    MODES = {"one": Blank, "slow": SlowToBuild, "slow2": SlowToBuild}
    DEFAULT_MODE = "one"
    BINDINGS = [("k", "record", "")]

    def __init__(self) -> None:
        super().__init__()
        self.answered: list[bool] = []

    def action_record(self) -> None:
        stacks = self._screen_stacks.values()
        self.answered.append(all(screen.is_mounted for stack in stacks for screen in stack))


@pytest.mark.asyncio
async def test_a_screen_built_ahead_leaves_the_apps_keys_free() -> None:
    """Textual's own build queues a wait for the whole screen on the app's queue: every key
    then waited for a screen being built ahead. Now the app answers keys meanwhile; a switch
    to a screen not built yet, awaited, still waits for its build."""
    app = Keyed()

    async def key() -> None:  # not the pilot's press: that waits for the screen on show
        app.post_message(events.Key("k", "k"))
        await asyncio.sleep(0.1)

    async with app.run_test() as pilot:
        assert build_mode(app, "slow")
        await key()
        assert app.answered == [False], "a key waited for a screen being built ahead"
        await app.switch_mode("slow2")
        assert app.screen.is_mounted and app.current_mode == "slow2"
        await pilot.press("k")
        assert app.answered == [False, True]


@pytest.mark.asyncio
async def test_a_screen_handler_runs_before_screens_own_resume() -> None:
    """skip_restyle is called from a subclass's handler: it must run before Screen's."""
    order: list[str] = []
    original = Screen._on_screen_resume

    class Watched(Screen[None]):
        def on_screen_resume(self, event: events.ScreenResume) -> None:
            order.append("subclass")
            skip_restyle(event)

    def recording(self: Screen[None], event: events.ScreenResume) -> None:
        order.append(f"screen refresh_styles={event.refresh_styles}")
        original(self, event)

    class Host(App[None]):
        MODES = {"a": Watched, "b": Blank}
        DEFAULT_MODE = "a"

    Screen._on_screen_resume = recording  # type: ignore[method-assign]
    try:
        app = Host()
        async with app.run_test() as pilot:
            await app.switch_mode("b")
            await app.switch_mode("a")
            await pilot.pause()
    finally:
        Screen._on_screen_resume = original  # type: ignore[method-assign]
    assert order[-2:] == ["subclass", "screen refresh_styles=False"]


class Themed(App[None]):
    """Started in `theme`; counts Textual's CSS refreshes (a re-parse, a restyle and a layout)."""

    CSS = "Screen { background: $primary; }"

    def __init__(self, theme: str) -> None:
        self.started_in_theme = start_in_theme(self, theme)
        super().__init__()
        self.refreshes = 0

    def refresh_css(self, animate: bool = True) -> None:
        self.refreshes += 1
        super().refresh_css(animate)


@pytest.mark.asyncio
async def test_an_app_started_in_a_theme_styles_once_in_it() -> None:
    app = Themed("nord")
    async with app.run_test() as pilot:
        await pilot.pause()
        assert app.started_in_theme and app.theme == "nord"
        assert app.screen.styles.background == Color.parse(BUILTIN_THEMES["nord"].primary)
        assert app.refreshes == 0  # set after __init__, the theme costs a refresh_css
        app.theme = "textual-light"  # changing it later works as usual
        await pilot.pause()
        assert app.refreshes == 1
        assert app.screen.styles.background == Color.parse(BUILTIN_THEMES["textual-light"].primary)
    unknown = Themed("no-such-theme")
    assert not unknown.started_in_theme and unknown.theme == App().theme  # Textual's default


class Built(Screen[None]):
    DEFAULT_CSS = "Built { background: $primary; }"

    def __init__(self) -> None:
        super().__init__()
        styled_as_built(self)

    def on_mount(self) -> None:
        styled_as_built(self)  # the first screen: Textual refreshed the CSS before it mounted


class Modes(Themed):
    MODES = {"one": Built, "two": Built, "three": Built}
    DEFAULT_MODE = "one"


@pytest.mark.asyncio
async def test_a_screen_styled_as_built_costs_no_css_refresh_until_the_theme_changes() -> None:
    app = Modes("nord")
    async with app.run_test() as pilot:
        await pilot.pause()
        first = app.refreshes  # the first screen's, as Textual does: it styles the app itself
        await app.switch_mode("two")  # built now: Textual refreshed all CSS for it
        await app.switch_mode("one")  # and for the first screen when shown again
        await app.switch_mode("two")
        await pilot.pause()
        assert app.refreshes == first
        app.theme = "textual-light"
        await pilot.pause()
        assert app.refreshes == first + 1  # the theme: the screen shown
        await app.switch_mode("one")  # built before the change: refreshed as it is shown
        await app.switch_mode("three")  # built after it: styled in it
        await pilot.pause()
        assert app.refreshes == first + 2
        light = Color.parse(BUILTIN_THEMES["textual-light"].primary)
        for mode in ("one", "two", "three"):
            await app.switch_mode(mode)
            await pilot.pause()
            assert app.screen.styles.background == light


class Panels(Screen[None]):
    def compose(self) -> ComposeResult:
        for n in range(PANELS):
            yield Static(f"panel {n}", classes="panel")


PANELS = 12


class PanelModes(QuickModeSwitch, InputFirst):
    MODES = {"one": Blank, "panels": Panels}
    DEFAULT_MODE = "one"


def contents_drawn(screen: Screen[Any]) -> list[Widget]:
    """From now on, each widget of `screen` whose content is drawn anew (not from its cache), in
    order: Textual's styles cache asks `render_line` for the lines it does not hold."""
    drawn: list[Widget] = []
    for widget in screen.query(Static):
        line = widget.render_line

        def counted(y: int, widget: Widget = widget, line: Any = line) -> Any:
            if not drawn or drawn[-1] is not widget:
                drawn.append(widget)
            return line(y)

        widget.render_line = counted  # type: ignore[method-assign]
    return drawn


@pytest.mark.asyncio
async def test_a_screen_built_ahead_is_laid_out_and_drawn_before_it_is_shown() -> None:
    app = PanelModes()
    async with app.run_test(size=(60, 20)) as pilot:
        two = await built_ahead(app, pilot, "panels")
        calls = layouts_of(two)
        drawn = contents_drawn(two)
        lay_out_ahead(app.screen)  # the screen shown: nothing to do
        assert not laying_out_ahead(app)
        lay_out_ahead(two)
        assert calls == ["layout (60, 20)"] and drawn == []
        assert laying_out_ahead(app)  # until its draw is done
        await pilot.pause(0.2)  # again, and drawn, once its widgets have had Resize and Show
        assert calls == ["layout (60, 20)", "layout (60, 20)"]
        assert sorted(map(id, drawn)) == sorted(map(id, two.query(Static)))  # each one, once
        assert not laying_out_ahead(app)
        drawn.clear()
        await app.switch_mode("panels")
        await pilot.pause()
        assert app.screen is two
        assert drawn == []  # its show drew them from what was drawn ahead
        assert two.query(Static).first().region.height == 1


@pytest.mark.asyncio
async def test_a_screen_drawn_ahead_lets_a_key_in_between_widgets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The draw ahead goes a slice at a time (here one widget a slice), the event loop running
    between: a key that comes meanwhile puts the rest off until it is answered."""
    monkeypatch.setattr("folkgen_tui.textual_internals.DRAW_SLICE", 0.0)
    app = PanelModes()
    async with app.run_test(size=(60, 20)) as pilot:
        two = await built_ahead(app, pilot, "panels")
        await pilot.pause(ANSWERING)
        drawn = contents_drawn(two)
        turns = 0
        lay_out_ahead(two)
        given_up = time.monotonic() + 5
        while len(drawn) < 3 and time.monotonic() < given_up:  # a few widgets drawn by now
            await asyncio.sleep(0)  # one turn of the loop
            turns += 1
        assert 3 <= len(drawn) < PANELS and turns > 3  # spread over turns of the loop
        app._input_taken_at = time.monotonic()  # a key taken: the rest waits for its answer
        held = len(drawn)
        await pilot.pause(ANSWERING / 2)
        assert len(drawn) <= held + 1  # (one timer may have been due as the key came)
        await pilot.pause(ANSWERING + 0.2)
        assert len(drawn) == PANELS  # and then drawn


class Lines(QuickShowScreen):
    def compose(self) -> ComposeResult:
        yield Static("one line", id="lines")


class Shows(QuickModeSwitch):
    MODES = {"one": Blank, "lines": Lines}
    DEFAULT_MODE = "one"


@pytest.mark.asyncio
async def test_a_screen_is_laid_out_as_it_is_shown_only_when_asked() -> None:
    app = Shows()
    async with app.run_test(size=(40, 12)) as pilot:
        screen = await built_ahead(app, pilot, "lines")
        assert isinstance(screen, Lines)
        styled_as_built(screen)  # as studio screens are (else a show refreshes its CSS, laid out)
        lines = screen.query_one("#lines", Static)
        lines.update("one\nline")  # it asks for a layout, which the layout ahead does
        await pilot.pause()
        lay_out_ahead(screen)
        await pilot.pause(0.2)
        layouts = layouts_of(screen)
        await app.switch_mode("lines")
        await pilot.pause(0.1)
        assert layouts == []  # its first show: Textual laid it out again
        assert lines.region.height == 2
        lines.update("one line")
        await pilot.pause(0.1)
        layouts.clear()

        async def show_again() -> None:
            await app.switch_mode("one")
            await pilot.pause()
            await app.switch_mode("lines")
            await pilot.pause(0.1)

        await show_again()
        assert layouts == []  # as it was: Textual laid it out again in switch_mode
        assert lines.region.height == 1
        await app.switch_mode("one")
        lines.update("three\nlines\nnow")  # while hidden: it asks for a layout
        await pilot.pause()
        draws = draws_of(screen)
        app.switch_mode("lines")
        assert layouts == ["layout (40, 12)"]  # in switch_mode, before the frame that draws it
        assert draws == []  # what the layout changed is drawn with the rest, at the next frame
        await pilot.pause(0.1)
        assert lines.region.height == 3
        layouts.clear()
        await app.switch_mode("one")
        lines.update("two\nlines")
        await app.switch_mode("lines")  # before its Layout reached the screen: the next frame's
        await pilot.pause(0.1)
        assert layouts and lines.region.height == 2
        await app.switch_mode("one")
        await pilot.resize_terminal(30, 10)  # hidden: another size
        await pilot.pause()
        layouts.clear()
        app.switch_mode("lines")
        assert layouts == ["layout (30, 10)"]
        await pilot.pause(0.1)
        assert lines.region.width == 30
        layouts.clear()
        draws.clear()
        await pilot.resize_terminal(36, 11)  # shown: its Resize reaches _screen_resized
        await pilot.pause(0.1)
        assert "layout (36, 11)" in layouts and lines.region.width == 36
        assert not app.showing_built_mode
        draws.clear()
        screen._screen_resized(Size(38, 11))  # not in a mode switch: laid out and drawn at once
        assert draws == ["full"]


class Logged(QuickShowScreen):
    DEFAULT_CSS = "#log { height: 5; }"

    def compose(self) -> ComposeResult:
        log = Log(id="log")
        log.can_focus = False  # focused on each show, it would draw itself again after the frame
        yield log


class LogShows(QuickModeSwitch):
    MODES = {"one": Blank, "logged": Logged}
    DEFAULT_MODE = "one"


@pytest.mark.asyncio
async def test_a_screen_that_asked_for_a_layout_while_hidden_is_laid_out_and_drawn_once() -> None:
    """As the Train log's new lines while Generate is shown: the log's size is the same, its
    lines are not. switch_mode lays the screen out, and the next frame draws it whole."""
    app = LogShows()
    async with app.run_test(size=(40, 12)) as pilot:
        await app.switch_mode("logged")
        await pilot.pause(0.1)
        screen = app.screen
        styled_as_built(screen)  # as studio screens are (else a show refreshes its CSS, laid out)
        log = screen.query_one("#log", Log)
        await app.switch_mode("one")
        log.write_lines(["one", "two", "three"])  # hidden: it asks for a layout
        await pilot.pause()
        assert screen._layout_required
        layouts, draws = layouts_of(screen), draws_of(screen)
        app.switch_mode("logged")
        assert layouts == ["layout (40, 12)"] and draws == []
        await pilot.pause(0.1)
        assert layouts == ["layout (40, 12)"]  # not again in the frame
        drawn = [d for d in draws if d != "nothing"]
        assert drawn[0] == "full" and "full" not in drawn[1:]  # whole, once (restyled after)
        assert log.line_count == 3 and log.virtual_size.height == 3


class Clocks(QuickModeSwitch):
    MODES = {"one": Blank, "plain": Blank, "started": Blank, "quick": Lines}
    DEFAULT_MODE = "one"


@pytest.mark.asyncio
async def test_a_screen_whose_frame_clock_was_started_draws_at_once_when_first_shown() -> None:
    """Textual's update timer ticks a frame after its first resume (a screen's first show); one
    started as the screen was built (by hand, or a QuickShowScreen's as it is mounted) ticks at
    the resume."""
    app = Clocks()
    async with app.run_test(size=(60, 20)) as pilot:
        screens = [await built_ahead(app, pilot, mode) for mode in ("plain", "started", "quick")]
        plain, started, quick = screens
        start_frame_clock(started)
        await pilot.pause(0.1)  # past its first tick (a frame: 8-17 ms)
        ticks: dict[Screen[Any], int] = dict.fromkeys(screens, 0)
        for screen in screens:
            timer = screen._update_timer
            tick = timer._callback

            def counted(screen: Screen[Any] = screen, tick: Any = tick) -> Any:
                ticks[screen] += 1
                return tick()

            timer._callback = counted
            timer.resume()  # as a show does
        begun = time.monotonic()
        for _ in range(10):  # a few turns of the event loop
            await asyncio.sleep(0)
        assert ticks[started] == 1 and ticks[quick] == 1
        if time.monotonic() - begun < UPDATE_PERIOD / 2:  # else it may have had its frame
            assert ticks[plain] == 0


@pytest.mark.asyncio
async def test_a_widget_is_styled_as_it_is_mounted_not_before() -> None:
    """An Input made in a running app: Textual styles it as its classes are set (compact, then
    valid), which its mount does again whole; an app StyledWhenMounted styles it only there,
    and it ends styled the same."""

    class Plain(App[None]):
        pass

    class Ours(StyledWhenMounted):
        pass

    seen: dict[type[App[None]], tuple[int, str, bool]] = {}
    for cls in (Plain, Ours):
        app = cls()
        async with app.run_test():
            applied: list[object] = []

            def counting(
                node: Any, *args: Any, applied: list[object] = applied,
                apply: Any = app.stylesheet.apply, **kwargs: Any,
            ) -> None:  # fmt: skip
                applied.append(node)
                apply(node, *args, **kwargs)

            app.stylesheet.apply = counting  # type: ignore[method-assign]
            field = Input("12", compact=True, type="integer")
            made = len(applied)
            await app.screen.mount(field)
            assert field in applied  # styled as it is mounted
            seen[cls] = (made, field.styles.css, field.has_class("-textual-compact"))
    assert seen[Plain][0] > 0  # the work saved
    assert seen[Ours][0] == 0
    assert seen[Ours][1:] == seen[Plain][1:]


@pytest.mark.asyncio
async def test_work_ahead_waits_while_input_is_answered() -> None:
    """A key sent by the driver's thread: from then (before the UI loop has run the post) until
    ANSWERING after the app took it, work ahead is put off (`later`), and runs once it is
    answered."""

    class Keys(InputFirst):
        taken_at = 0.0

        def on_key(self) -> None:
            self.taken_at = time.monotonic()

    app = Keys()
    ran: list[float] = []
    async with app.run_test() as pilot:
        await pilot.pause(ANSWERING)
        assert not app.answering_input()
        assert not app.later(lambda: ran.append(0.0))  # nothing waits: run it now
        driver = app._driver
        assert driver is not None
        # As Textual's driver sends a key, from its own thread: a coroutine for the UI loop.
        sender = threading.Thread(target=driver.send_message, args=(events.Key("x", "x"),))
        sender.start()
        sender.join()  # sent; this (the UI) thread has not run it yet
        assert app.answering_input()

        def work() -> None:  # as work ahead does: asks again when it comes
            if not app.later(work):
                ran.append(time.monotonic())

        assert app.later(work)
        await pilot.pause()  # the key taken, its answer under way
        assert app.taken_at and app.answering_input() and not ran
        while not ran:
            await pilot.pause(0.01)
        assert ran[0] - app.taken_at >= ANSWERING * 0.9  # (on_key comes a moment after)
        assert not app.answering_input()


@pytest.mark.asyncio
async def test_what_the_driver_sends_is_queued_as_it_is_sent_in_order() -> None:
    """What the driver sends, from its input thread or from the UI thread (its resizes), is
    queued as its coroutine is made, not when the loop runs that coroutine (two turns later):
    here the coroutines are never run, and the app still takes what was sent, in order (two
    resizes in a row would be one: Textual's queue keeps the last)."""

    class Keys(InputFirst):
        def __init__(self) -> None:
            super().__init__()
            self.taken: list[str] = []

        async def on_event(self, event: events.Event) -> None:  # as the app takes them
            if isinstance(event, events.Key) and not event.is_forwarded:
                self.taken.append(event.key)
            elif isinstance(event, events.Resize):
                self.taken.append(f"resize {event.size.width}")
            await super().on_event(event)

    def resize(width: int) -> events.Resize:
        return events.Resize(Size(width, 20), Size(width, 20))

    app = Keys()
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        app.taken.clear()
        made: list[Any] = []

        def send(*messages: Message) -> None:  # as the driver's input thread does
            made.extend(map(app._post_message, messages))

        sender = threading.Thread(target=send, args=(resize(70), events.Key("a", "a")))
        sender.start()
        sender.join()
        made.append(app._post_message(resize(80)))  # as its resize from the UI thread
        sender = threading.Thread(target=send, args=(events.Key("b", "b"),))
        sender.start()
        sender.join()
        await pilot.pause(0.05)
        assert app.taken == ["resize 70", "a", "resize 80", "b"] and not app._input_waiting
        assert [await coroutine for coroutine in made] == [True] * 4
        await pilot.pause(0.05)
        assert len(app.taken) == 4  # each once


class Plain(Widget, can_focus=True):
    """A focusable widget that takes no keys itself."""


class KeyT(Widget, can_focus=True):
    def __init__(self) -> None:
        super().__init__()
        self.took: list[str] = []

    def key_t(self) -> None:
        self.took.append("key_t")


class OnKey(Widget, can_focus=True):
    def __init__(self) -> None:
        super().__init__()
        self.took: list[str] = []

    def on_key(self, event: events.Key) -> None:
        self.took.append("on_key")
        event.stop()


class BindsT(Widget, can_focus=True):
    BINDINGS = [Binding("t", "mine")]

    def __init__(self) -> None:
        super().__init__()
        self.took: list[str] = []

    def action_mine(self) -> None:
        self.took.append("binding")


class Jump(Static):
    def on_click(self) -> None:
        self.app.switch_mode("three")


class WithS(Screen[None]):
    BINDINGS = [Binding("s", "start")]

    def __init__(self) -> None:
        super().__init__()
        self.started: list[str] = []

    def compose(self) -> ComposeResult:
        yield Jump("jump")
        with Vertical(), Vertical():
            yield Plain()

    def action_start(self) -> None:
        self.started.append(self.app.current_mode)


class Studio(AppKeysAtOnce):
    """The app binds `t` and `g`; `one`'s screen binds `s`; its focus is three widgets down."""

    MODES = {"one": WithS, "two": Blank, "three": Blank}
    DEFAULT_MODE = "one"
    BINDINGS = [
        Binding("t", "took"), Binding("g", "switch_mode('two')"),
        Binding("p", "took", priority=True),
    ]  # fmt: skip

    def __init__(self) -> None:
        super().__init__()
        self.took: list[str] = []
        self.handled: list[str] = []  # keys that reached the app's own key handler

    def action_took(self) -> None:
        self.took.append("app")

    def on_key(self, event: events.Key) -> None:
        self.handled.append(event.key)


def sent_down(widget: Widget) -> list[str]:
    """From now on, each key the app sends `widget` (its `_forward_event`)."""
    sent: list[str] = []
    forward = widget._forward_event

    def spy(event: events.Event) -> None:
        if isinstance(event, events.Key):
            sent.append(event.key)
        forward(event)

    widget._forward_event = spy  # type: ignore[method-assign]
    return sent


@pytest.mark.asyncio
async def test_the_apps_own_key_is_answered_as_it_comes() -> None:
    """A key only the app binds, with nothing on the way that might take it, goes on to the
    app's own handling at once (its binding, then its key handler, as for a key that came back
    up): it is not sent down to the focused widget to bubble back up."""
    app = Studio()
    async with app.run_test() as pilot:
        plain = app.screen.query_one(Plain)
        plain.focus()
        await pilot.pause()
        sent = sent_down(plain)
        await pilot.press("t", "x")
        await wait_for(pilot, lambda: app.handled == ["t", "x"], "both keys at the app")
        assert app.took == ["app"]
        assert sent == ["x"]  # bound by nobody: the usual way


@pytest.mark.asyncio
@pytest.mark.parametrize("taker", ["input", "key method", "key handler", "binding"])
async def test_a_key_a_widget_on_the_way_might_take_goes_the_usual_way(taker: str) -> None:
    app = Studio()
    async with app.run_test() as pilot:
        widget: Widget = {"input": Input, "key method": KeyT, "key handler": OnKey,
                          "binding": BindsT}[taker]()  # fmt: skip
        await app.screen.query_one(Plain).parent.mount(widget)  # type: ignore[union-attr]
        widget.focus()
        await pilot.pause()
        sent = sent_down(widget)
        await pilot.press("t")
        await pilot.pause()
        assert sent == ["t"]
        if isinstance(widget, Input):
            assert widget.value == "t" and app.took == []
        elif isinstance(widget, KeyT):  # its method runs, and the key bubbles on, as in Textual
            assert widget.took == ["key_t"] and app.took == ["app"]
        elif isinstance(widget, OnKey):
            assert widget.took == ["on_key"] and app.took == []
        else:
            assert isinstance(widget, BindsT)
            assert widget.took == ["binding"] and app.took == []


@pytest.mark.asyncio
async def test_a_key_on_its_way_is_not_overtaken() -> None:
    """`s` (the screen's) is sent down and bubbles back; `g` (the app's, a screen switch) right
    behind it waits its turn: answered at once, it switched first, and `s` came back to the app
    on the other screen, which has no `s`."""
    app = Studio()
    async with app.run_test() as pilot:
        screen = app.screen
        assert isinstance(screen, WithS)
        screen.query_one(Plain).focus()
        await pilot.pause()
        app.post_message(events.Key("s", "s"))
        app.post_message(events.Key("g", "g"))
        await wait_for(pilot, lambda: app.handled == ["s", "g"], "both keys at the app")
        assert screen.started == ["one"] and app.current_mode == "two"
        assert not app._keys_on_their_way


@pytest.mark.asyncio
async def test_a_key_stopped_on_its_way_holds_no_later_key_back() -> None:
    """A key a widget took (stopped) is no longer on its way: the app's key after it, once the
    focus has moved on, is answered at once. And the app's priority binding runs, as ever."""
    app = Studio()
    async with app.run_test() as pilot:
        taker = OnKey()
        await app.screen.mount(taker)
        taker.focus()
        await pilot.press("x")
        assert taker.took == ["on_key"]
        plain = app.screen.query_one(Plain)
        plain.focus()
        await pilot.pause()
        sent = sent_down(plain)
        await pilot.press("t", "p")
        assert app.took == ["app", "app"] and sent == []


@pytest.mark.asyncio
async def test_a_click_is_not_overtaken_by_a_key() -> None:
    """A click whose handler switches screens, then an app key: the click lands first (a key
    answered at once overtook it, and the click's switch came last)."""
    app = Studio()
    async with app.run_test() as pilot:
        jump = app.screen.query_one(Jump)
        await pilot.pause()
        x, y = jump.region.offset
        where = dict(widget=None, x=x, y=y, delta_x=0, delta_y=0, button=1, shift=False,
                     meta=False, ctrl=False, screen_x=x, screen_y=y)  # fmt: skip
        app.post_message(events.MouseDown(**where))  # as the driver sends a click
        app.post_message(events.MouseUp(**where))
        app.post_message(events.Key("g", "g"))
        await wait_for(pilot, lambda: app.handled == ["g"], "the key at the app")
        await pilot.pause()
        assert app.current_mode == "two"


def test_without_textuals_names_the_tricks_step_aside() -> None:
    class Bare:
        pass

    assert built_modes(Bare()) == () and build_mode(Bare(), "x") is False  # type: ignore[arg-type]
    assert may_take_keys(Bare, [])  # not a Widget's handlers: it might take keys
    skip_restyle(Bare())  # type: ignore[arg-type]  # no field: Textual restyles, no error
    assert laid_out_for(Bare(), Size(80, 24)) is False  # type: ignore[arg-type]  # laid out


class Ask(ModalScreen[None]):
    """A dialog whose field is focused once it is composed (Textual's auto focus)."""

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Input(id="asked")


class TwoFields(Screen[None]):
    BINDINGS = [Binding("o", "ask"), Binding("n", "new_field")]

    def compose(self) -> ComposeResult:
        with Vertical(), Vertical():
            yield Input(id="first")
        with Vertical(), Vertical():
            yield Input(id="second")
        yield Plain()

    def action_ask(self) -> None:
        self.app.push_screen(Ask())

    async def action_new_field(self) -> None:
        field = Input(id="new")
        await self.mount(field)
        field.focus()


class Typed(AppKeysAtOnce):
    def on_mount(self) -> None:
        self.push_screen(TwoFields())


def burst(app: App[Any], keys: str) -> None:
    """Keys as a terminal sends what is typed fast or pasted: all queued before the first is
    taken."""
    for char in keys:
        name = {"\t": "tab", " ": "space"}.get(char, char)
        app.post_message(events.Key(name, char if char != "\t" else None))


@pytest.mark.asyncio
async def test_keys_typed_behind_a_tab_go_to_the_field_it_focuses() -> None:
    """Textual sent `cd` of `ab<tab>cd` to the first field: tab moves the focus once it has
    bubbled back up to the app (a loop turn per widget on the way), and `c` and `d` were sent
    down to the field focused as they came. Held back until then, they go to the next field."""
    app = Typed()
    async with app.run_test() as pilot:
        first, second = app.screen.query_one("#first", Input), app.screen.query_one("#second", Input)
        first.focus()
        await pilot.pause()
        burst(app, "ab\tcd\t")
        plain = app.screen.query_one(Plain)
        await wait_for(pilot, lambda: app.focused is plain, "the second tab")
        assert (first.value, second.value) == ("ab", "cd")
        assert not app._held and not app._keys_on_their_way


@pytest.mark.asyncio
async def test_keys_typed_behind_a_key_that_opens_a_dialog_go_to_its_field() -> None:
    """`o` opens a dialog whose field is focused once the dialog is composed; the keys typed
    right behind it (a path pasted) waited for that, not dropped by the dialog as it came."""
    app = Typed()
    async with app.run_test() as pilot:
        app.screen.query_one(Plain).focus()
        await pilot.pause()
        burst(app, "o/tmp/tunes")
        await wait_for(pilot, lambda: isinstance(app.screen, Ask), "the dialog")
        asked = app.screen.query_one("#asked", Input)
        await wait_for(pilot, lambda: asked.value == "/tmp/tunes", "the path in the dialog")


@pytest.mark.asyncio
async def test_keys_typed_behind_a_key_whose_action_makes_a_field_go_to_it() -> None:
    """Textual marks a key stopped as its binding's action starts: the keys behind `/` (the
    Dataset's filter, made and focused by its action) went on while it was mounting, to the
    list, and the first letter was lost."""
    app = Typed()
    async with app.run_test() as pilot:
        app.screen.query_one(Plain).focus()
        await pilot.pause()
        burst(app, "nMaggie")
        await wait_for(pilot, lambda: bool(app.screen.query("#new")), "the new field")
        field = app.screen.query_one("#new", Input)
        await wait_for(pilot, lambda: field.value == "Maggie", "the keys in the new field")


class SlowCommands(Provider):
    """Two commands, found a moment after each keystroke (a search that takes its time)."""

    async def discover(self) -> Hits:
        for name in ("Alpha first", "Beta second"):
            yield DiscoveryHit(name, partial(self.app.ran.append, name))  # type: ignore[attr-defined]

    async def search(self, query: str) -> Hits:
        await asyncio.sleep(0.15)
        matcher = self.matcher(query)
        for name in ("Alpha first", "Beta second"):
            if (score := matcher.match(name)) > 0:
                yield Hit(score, matcher.highlight(name), partial(self.app.ran.append, name))  # type: ignore[attr-defined]


class Palette(AppKeysAtOnce):
    COMMANDS = {SlowCommands}

    def __init__(self) -> None:
        super().__init__()
        self.ran: list[str] = []


@pytest.mark.asyncio
async def test_enter_typed_fast_in_the_palette_runs_what_was_typed() -> None:
    """Textual's enter picks what the palette highlights as it comes: typed right behind the
    text, before the search for it was in, it ran the unfiltered list's first command."""
    app = Palette()
    async with app.run_test() as pilot:
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette")
        await pilot.pause(0.3)  # the unfiltered list, Alpha first
        burst(app, "Beta second")
        app.post_message(events.Key("enter", "\r"))
        await wait_for(pilot, lambda: bool(app.ran), "a command run")
        assert app.ran == ["Beta second"]
