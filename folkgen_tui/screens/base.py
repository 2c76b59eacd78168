"""The frame every studio screen shares: header, body, navigation line and footer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

from textual import events, on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.dom import NoActiveAppError
from textual.widgets import Input, Select

from folkgen_tui.textual_internals import (
    QuickShowScreen,
    app_ending,
    lay_out_ahead_soon,
    skip_restyle,
    styled_as_built,
)
from folkgen_tui.widgets.deferred import Deferred
from folkgen_tui.widgets.footer import StudioFooter
from folkgen_tui.widgets.nav_bar import NavBar
from folkgen_tui.widgets.studio_header import StudioHeader

if TYPE_CHECKING:
    from folkgen_tui.studio import Studio
    from folkgen_tui.widgets.piano_roll import PianoRoll

CSS_DIR = Path(__file__).parent  # dataset.tcss, train.tcss...: each screen's own rules


def add_screen_css(app: App[Any], mode: str) -> None:
    """The screen's own rules (screens/<mode>.tcss) join the app's stylesheet, once, before the
    screen's widgets are styled: the first frame parses only the first screen's rules (issue
    14). As a screen's CSS_PATH would, less Textual's re-styling then of every widget of every
    screen built before, which no rule of another screen concerns."""
    path = CSS_DIR / f"{mode}.tcss"
    if app.stylesheet.has_source(str(path)) or not path.is_file():
        return
    # add_source, not read: read leaves the stylesheet's selector map as it was until a re-parse.
    app.stylesheet.add_source(path.read_text(encoding="utf-8"), read_from=(str(path), ""))


# Screens with text fields: escape leaves the field, so that letter keys are commands again.
LEAVE_FIELD = Binding(
    "escape", "leave_field", "Leave field",
    tooltip="Leave the text field, so that letter keys work as commands again",
)  # fmt: skip


class StudioScreen(QuickShowScreen):
    """A screen of the studio (one per mode). Subclasses fill `compose_body` and may react to
    the app's changes through the `*_changed` hooks, which the app calls on every screen."""

    MODE: ClassVar[str] = ""
    TITLE_TEXT: ClassVar[str] = ""
    HELP: ClassVar[str] = ""  # one paragraph for the help screen
    # Command palette names of actions whose key says what the description cannot (a key per
    # number): one command each, where the described binding's alone ran its own argument.
    PALETTE_NAMES: ClassVar[dict[str, str]] = {}

    def __init__(self) -> None:
        super().__init__()
        self.ready = asyncio.Event()  # set once set up (switch_mode's await waits for it)
        try:
            app = self.app
        except NoActiveAppError:  # made outside an app: the first Resize sets the size classes
            return
        add_screen_css(app, self.MODE)
        styled_as_built(self)  # no CSS refresh of every screen when this one is built
        # The app's size classes (-narrow, -wide, -short, -tall) from the start, as the first
        # Resize would set them: set then, they restyled every widget once more (a fifth of the
        # first frame's work).
        size = app.size
        classes: dict[str, bool] = {}
        for breakpoints, cells in (
            (app.HORIZONTAL_BREAKPOINTS or [], size.width),
            (app.VERTICAL_BREAKPOINTS or [], size.height),
        ):
            fits = [name for at, name in sorted(breakpoints, reverse=True) if cells >= at][:1]
            classes.update({name: name in fits for _, name in breakpoints})
        self.update_classes(classes, update=False)
        # Each widget is styled as it is mounted: a key may show the screen while it is still
        # being built (its ScreenResume then came before its Mount, and restyled all it had).
        self._styled_for = self._styling()

    @property
    def studio(self) -> Studio:
        """The app, as far as screens need it (they never import folkgen_tui.app)."""
        return cast("Studio", self.app)

    def compose(self) -> ComposeResult:
        yield StudioHeader(self.app.title, self.TITLE_TEXT)
        yield from self.compose_body()
        with Vertical(id="bottom-bars"):
            yield NavBar(self.MODE)
            yield StudioFooter()

    def compose_body(self) -> ComposeResult:
        yield from ()

    _styled_for: tuple[str, ...] | None = None  # the theme and size the styles were made for
    _drawing_whole = False  # set up ahead, its layout and draw ahead with its parts not done

    def on_mount(self) -> None:
        """The one Mount handler of studio screens (Textual calls each class's `on_mount`, so
        subclasses set themselves up in `mounted`). Not once the app is quitting: Textual then
        mounts no more widgets, so a screen still being built ahead is mounted in part (a widget
        `mounted` looks for may be missing, and a Select's parts: widgets/select.py). A screen
        with parts mounted after its first draw (Deferred) is set up once they are in."""
        if app_ending(self) or not self.composed:
            return
        self.sub_title = self.TITLE_TEXT
        deferreds = list(self.query(Deferred))
        if deferreds:
            self.run_worker(self._set_up_when_in(deferreds), group="parts")
            # Built ahead: its parts queued with the app, even if a key has shown it since.
            if not self.is_current or any(deferred.queued for deferred in deferreds):
                self.studio.frame_built(self)
            if not self.is_current:  # its frame drawn ahead too, the parts hidden until in:
                lay_out_ahead_soon(self)  # a key meanwhile paid its first layout and draw
        else:
            self._set_up()

    async def _set_up_when_in(self, deferreds: list[Deferred]) -> None:
        for deferred in deferreds:
            await deferred.wait_in_place()
        if not app_ending(self):
            for deferred in deferreds:  # all shown with the set-up that fills them
                deferred.show_in_place()
            self._set_up()

    def _set_up(self) -> None:
        self.studio.register_screen(self)  # the app then settles its long-lived widgets
        self.mounted()
        # Its widgets were styled, each as it was mounted: the first resume need not again, nor
        # Textual's CSS refresh when the app's first screen is shown again. Unless the theme or
        # the size changed while it was built (its panels came before its fields): then both
        # restyle it when it is shown.
        if self._styled_for == self._styling():
            styled_as_built(self)
        self.ready.set()
        self.refresh_bindings()
        if not self.is_current:  # built ahead (the app's prebuilds): shown at once when asked
            self._drawing_whole = True
            lay_out_ahead_soon(self, then=self._drawn_whole)

    def before_show(self) -> None:
        """About to be shown by a mode switch (FolkgenApp.switch_mode). A screen just set up
        whose layout and draw ahead with its parts are not done yet shows its frame first, as
        drawn ahead before its parts came, and its parts once that is out: a key paid their
        first layout and draw (Train's ~30 ms). Not the part that holds the focus: hidden, it
        would lose it (Generate's tune view), and keys would go to another widget."""
        if self._drawing_whole:
            holding = self.focused.ancestors_with_self if self.focused is not None else []
            for deferred in self.query(Deferred):
                if deferred.part not in holding:
                    deferred.hide_until_drawn()

    def _drawn_whole(self) -> None:
        self._drawing_whole = False

    def on_unmount(self) -> None:
        self.ready.set()  # nothing waits for a screen that is gone (the app quit as it was built)

    @property
    def is_ready(self) -> bool:
        """Its widgets are all in and `mounted` has run: until then a key of the screen's waits
        (FolkgenApp.run_action: its action looks for the fields), and the app's hooks do not
        reach it (it registers here)."""
        return self.ready.is_set()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.action_state(action, parameters) if self.is_ready else False

    def action_state(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The screen's check_action once it is set up: True (shown, enabled), False (hidden)
        or None (shown, disabled), as Textual reads them."""
        return True

    def mounted(self) -> None:
        """The screen's own set-up once its widgets are mounted."""

    @property
    def composed(self) -> bool:
        """Its widgets are mounted: not so when the app quit while the screen was being built
        (Textual then mounts nothing)."""
        return bool(self.query("#bottom-bars"))

    def _styling(self) -> tuple[str, ...]:
        return (self.app.theme, str(self.app.size))

    def typing(self) -> bool:
        """A text field or a picker has the focus (LEAVE_FIELD is shown only then: escape on a
        picker did nothing, and enter there opens its list rather than what the screen does)."""
        return isinstance(self.focused, Input | Select)

    @on(events.ScreenResume)
    def restyle_only_when_changed(self, event: events.ScreenResume) -> None:
        # Textual restyles every widget of a screen coming back (in case the theme changed while
        # it was away): about 80 ms for these screens, on every switch. Only do it when needed.
        styled_for = self._styling()
        if self._styled_for == styled_for:
            skip_restyle(event)
        self._styled_for = styled_for
        if self.is_current and not self.is_ready:  # built ahead, its parts still queued with
            for deferred in self.query(Deferred):  # the app: after this draw (no query after)
                deferred.shown()

    async def finish(self) -> None:
        """Work to end before the app quits (the app waits for it, a few seconds at most)."""

    # Hooks the app calls (on the UI thread) when shared state changes.
    def first_frame_drawn(self) -> None:
        """The app's first frame is on the terminal (start-up): time for what it did not show."""

    def corpus_changed(self) -> None:
        """The corpus was (re)loaded."""

    def model_changed(self) -> None:
        """Another model is in use for generation."""

    def torch_changed(self) -> None:
        """torch finished loading (or failed to)."""

    def playback_changed(self) -> None:
        """A tune started or stopped playing."""

    def voice_changed(self) -> None:
        """The voice tunes play in was changed (on this screen or another)."""

    def follow_playback(self, roll: PianoRoll, mine: Callable[[str], bool]) -> None:
        """`roll` plays along while the app plays a tune whose key `mine` accepts, else hides."""
        sound = self.studio.sound
        playing = sound.now_playing
        if playing is not None and sound.is_playing and mine(playing.key):
            roll.play_along(playing.notes, playing.duration_seconds, lambda: sound.position_seconds)
        else:
            roll.stop_along()
