"""A part of a screen made and mounted once the screen has been drawn: a screen shown by a key
draws its frame (panels and their titles) at once, and its fields come a moment later (issue 14).

The part's widgets are made then too, not with the frame: an Input styles itself as it is made
(its value validated, its classes set), and Train's 17 made with the frame took half of it.

Textual's `Lazy` does the same for the mount, but queues it on whichever screen is on show and
awaits it there: a screen built ahead held the one on show for the part's ~70 ms, and a screen
awaiting the one being built (a switch to it, awaited) held its mount for ever. Here the mount
is queued on the part's own screen (after its draw, or at once when it is not on show:
after_screen_drawn) and left to the part's own task; the screen (StudioScreen) sets itself up
once its parts are in. A screen built ahead hands its parts to the app's queue instead, where
the app has one (PartQueue), which mounts them one at a time once the frames it builds ahead
are in, each a few widgets at a time (PIECE); shown meanwhile, the screen takes back what is
left (`shown`). A part is hidden until all of it is in: a key that shows its screen meanwhile
draws the frame alone, laid out and drawn ahead (StudioScreen).

A part may have a sketch: its text as the part will show it (labels and values), drawn by the
Deferred itself with the frame and for as long as the part is hidden. A key that shows the screen
before the part is in then shows what it holds at once; the live widgets take the sketch's place
when they are all in (Train's: 50-100 ms after a key 0.15 s after the first frame), and keys
typed meanwhile wait for them (FolkgenApp.run_action). Each sketch is tested against the widgets'
own drawing (tests/test_app_startup.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from textual.app import ComposeResult
from textual.compose import compose
from textual.content import Content
from textual.geometry import Size
from textual.widget import AwaitMount, Widget

from folkgen_tui.textual_internals import (
    after_input,
    after_screen_drawn,
    app_ending,
    take_composed_children,
)

PUT_OFF = 0.01  # seconds between looks while a key is answered (a look at its screen shown)
# Seconds a part shown by a key waits after its frame's draw before it mounts: the terminal's
# writes are a thread's (Textual's WriterThread), which then waited for the interpreter through
# the mount's 15-60 ms (a `t` 0.15-0.35 s after the first frame: worst 27 ms -> 20, 30 starts).
WRITE_WAIT = 0.003
PIECE = 4  # widgets at most in a piece of a part mounted ahead (of one parent)


@runtime_checkable
class PartQueue(Protocol):
    """An app that mounts the parts of screens built ahead in turn (FolkgenApp): `mount` is
    called in the turns the app's other work ahead allows, each time mounting a piece and
    returning what to await, until it returns None (nothing more to mount)."""

    def queue_part(self, mount: Callable[[], AwaitMount | None]) -> None: ...


class Deferred(Widget):
    """Stands in for `part` until its screen is drawn (built ahead: until the app's queue comes
    to it), then fills it with what `fill` composes (as a `compose` method would: `with` blocks
    nest) and mounts it after itself."""

    DEFAULT_CSS = """
    Deferred {
        display: none;
        height: auto;
    }
    Deferred.-sketch {
        display: block;
    }
    """

    def __init__(
        self, part: Widget, fill: Callable[[], ComposeResult],
        sketch: Callable[[int], Content] | None = None,
    ) -> None:  # fmt: skip
        super().__init__(classes="-sketch" if sketch is not None else "")
        self.part = part
        self._fill = fill
        self._sketch = sketch
        self._width = 0  # the width its sketch is laid out at
        self._queued = False  # with the app's PartQueue, not all mounted yet
        # Once made: the widgets still to mount, in pieces (a parent, some of its children),
        # each parent's before its children's; and all the part's widgets.
        self._pieces: list[tuple[Widget, list[Widget]]] | None = None
        self._widgets: list[Widget] = []
        self._made = asyncio.Event()

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        """Its height at `width`, the width it is laid out at, kept for `render`: there,
        `content_size` asked the compositor for the layout under way (7 of a show's 15 ms)."""
        self._width = width
        return super().get_content_height(container, viewport, width)

    def render(self) -> Content:
        """The sketch at the width it is laid out at (its height is auto: laid out first)."""
        return self._sketch(self._width) if self._sketch is not None else Content()

    def _show_part(self) -> None:
        self._display_part(True)

    def _display_part(self, shown: bool) -> None:
        """The part shown, or hidden (its sketch shown in its place, where it has one)."""
        self.part.display = shown
        if self._sketch is not None:
            self.display = not shown

    async def mount_composed_widgets(self, widgets: list[Widget]) -> None:
        app = self.app
        if not self.screen.is_current and isinstance(app, PartQueue):
            self._queued = True  # built ahead: in its turns, or once its screen is shown
            app.queue_part(self._mount_ahead)
        else:
            after_screen_drawn(self, self._mount_part)

    def shown(self) -> None:
        """Its screen is being shown (StudioScreen): what is still queued with the app comes
        once this show is drawn, as a key's does. Its sketch is drawn anew: what it shows may
        have changed since it was drawn ahead (Train's "Loading the corpus…")."""
        if self._sketch is not None:
            self.clear_cached_dimensions()  # (a line longer now may wrap)
            self.refresh(layout=True)
        if self._queued:
            self._queued = False
            after_screen_drawn(self, self._mount_part)

    @property
    def queued(self) -> bool:
        """Handed to the app's queue, and not all mounted since."""
        return self._queued

    @property
    def in_place(self) -> bool:
        """The part and all its widgets are mounted."""
        return self._made.is_set() and all(widget.is_mounted for widget in self._widgets)

    async def wait_in_place(self) -> None:
        """Returns once the part and all its widgets are mounted (its screen then sets up, and
        shows it: `show_in_place`)."""
        await self._made.wait()
        await AwaitMount(self.part, self._widgets)

    def show_in_place(self) -> None:
        """Show the part, hidden until all of it was in (_make), in place of its sketch: with
        its screen's set-up, in the same turn, so that no draw shows a part its screen has not
        filled yet (Train's preset note blank, between the sketch and the note)."""
        self._display_part(True)

    def hide_until_drawn(self) -> None:
        """Hide the part (all in) until its screen's next draw is out: that draw is of the frame
        and the sketch (StudioScreen.before_show)."""
        self._display_part(False)
        after_screen_drawn(self, self._show_part)

    def _mount_ahead(self) -> AwaitMount | None:
        """The app's turn for the part (it has just looked for a key being answered): the mount
        of its next piece, to await, or None when there is nothing more to mount. In pieces:
        mounted whole, Train's recipe (25 widgets, five of them Selects) was a loop round of
        25-30 ms that a key waited for twice, to reach the app and then to be drawn."""
        if not self._queued:
            return None  # its screen was shown meanwhile (shown() took it), or all are in
        if not self._mountable():
            self._queued = False
            return None
        mounting = self._mount(PIECE)
        self._queued = bool(self._pieces)
        return mounting

    def _mount_part(self, put_off: bool = False) -> None:
        """A callback of the screen's loop: it returns nothing to await (the loop would await
        it, and hold its own messages for the whole mount); the part's own task mounts it."""
        if not self._mountable():
            return
        if not self.screen.is_current and after_input(self, self._put_off, PUT_OFF):
            return  # a screen built ahead: not while a key is answered
        if put_off and self.screen.is_current:  # shown meanwhile: its frame first, as a key's
            after_screen_drawn(self, self._mount_part)
            return
        if self.screen.is_current:  # shown by a key: its frame written first (WRITE_WAIT)
            self.set_timer(WRITE_WAIT, self._mount_written)
            return
        self._mount()

    def _mount_written(self) -> None:
        if not self._mountable():  # (all in meanwhile, or the app ending)
            return
        if not self.screen.is_current:  # left within WRITE_WAIT: as a screen built ahead
            self._mount_part()
            return
        self._mount()

    def _mountable(self) -> bool:
        """Not all mounted already, and the app not closing (Textual then mounts nothing
        more)."""
        left = self._pieces is None or bool(self._pieces)
        return left and isinstance(self.parent, Widget) and not app_ending(self)

    def _mount(self, most: int | None = None) -> AwaitMount:
        """Mount the part's next piece, where `most` is given, else all that is left of it;
        its widgets are made at the first call."""
        if self._pieces is None:
            self._make()
        assert self._pieces  # _mountable
        if most is not None:
            parent, widgets = self._pieces.pop(0)
            return self._mount_piece(parent, widgets)
        pieces, self._pieces = self._pieces, []
        for parent, widgets in pieces:  # each parent in the DOM before its children mount
            self._mount_piece(parent, widgets)
        return AwaitMount(self.part, [widget for _, widgets in pieces for widget in widgets])

    def _mount_piece(self, parent: Widget, widgets: list[Widget]) -> AwaitMount:
        if widgets == [self.part]:
            # Beside this placeholder, which stays, hidden and empty: removed, Textual queued a
            # wait for its removal on the app's own queue (App._prune's call_next), and every key
            # waited there while the part's mount took the loop (22-34 ms, 0.1-0.3 s after the
            # first frame).
            return parent.mount(self.part, after=self)
        return parent.mount(*widgets)

    def _make(self) -> None:
        """Make the part's widgets (as a compose would) and cut them in pieces: the part
        alone, then each container's children, PIECE at a time, a container's before what it
        holds. Only what the `with` blocks of `fill` nest is cut: a widget's own compose is
        mounted with it."""
        for child in compose(self, self._fill()):
            self.part.compose_add_child(child)
        # Hidden until all is in: a key that shows the screen meanwhile draws its frame alone,
        # not a first layout and draw of the fields mounted so far (Train's: 35-45 ms).
        self._display_part(False)
        parent = self.parent
        assert isinstance(parent, Widget)  # _mountable
        self._pieces = [(parent, [self.part])]
        self._widgets = [self.part]
        containers = [self.part]
        while containers:
            container = containers.pop(0)
            if type(container).compose is not Widget.compose:
                continue  # its children come after its own: left to Textual
            children = take_composed_children(container)
            self._widgets += children
            self._pieces += [
                (container, children[i : i + PIECE]) for i in range(0, len(children), PIECE)
            ]
            containers += children
        self._made.set()

    def _put_off(self) -> None:
        self._mount_part(put_off=True)
