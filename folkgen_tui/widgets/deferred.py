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
are in; shown meanwhile, the screen takes them back (`shown`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from textual.app import ComposeResult
from textual.compose import compose
from textual.widget import AwaitMount, Widget

from folkgen_tui.textual_internals import after_input, after_screen_drawn, app_ending

PUT_OFF = 0.01  # seconds between looks while a key is answered (a look at its screen shown)


@runtime_checkable
class PartQueue(Protocol):
    """An app that mounts the parts of screens built ahead in turn (FolkgenApp): `mount` is
    called once the app's other work ahead allows, and returns what to await, if anything."""

    def queue_part(self, mount: Callable[[], AwaitMount | None]) -> None: ...


class Deferred(Widget):
    """Stands in for `part` until its screen is drawn (built ahead: until the app's queue comes
    to it), then fills it with what `fill` composes (as a `compose` method would: `with` blocks
    nest) and mounts it after itself."""

    DEFAULT_CSS = """
    Deferred {
        display: none;
    }
    """

    def __init__(self, part: Widget, fill: Callable[[], ComposeResult]) -> None:
        super().__init__()
        self.part = part
        self._fill = fill
        self._queued = False  # with the app's PartQueue, not mounted yet

    async def mount_composed_widgets(self, widgets: list[Widget]) -> None:
        app = self.app
        if not self.screen.is_current and isinstance(app, PartQueue):
            self._queued = True  # built ahead: in its turn, or once its screen is shown
            app.queue_part(self._mount_ahead)
        else:
            after_screen_drawn(self, self._mount_part)

    def shown(self) -> None:
        """Its screen is being shown (StudioScreen): a part still queued with the app comes
        once this show is drawn, as a key's does."""
        if self._queued:
            self._queued = False
            after_screen_drawn(self, self._mount_part)

    @property
    def queued(self) -> bool:
        """Handed to the app's queue, and not mounted since."""
        return self._queued

    def _mount_ahead(self) -> AwaitMount | None:
        """The app's turn for the part (it has just looked for a key being answered): the
        mount to await, or None when there is nothing to mount."""
        if not self._queued:
            return None  # its screen was shown meanwhile: shown() took it
        self._queued = False
        return self._mount() if self._mountable() else None

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
        self._mount()

    def _mountable(self) -> bool:
        """Not mounted already, and the app not closing (Textual then mounts nothing more)."""
        return self.part.parent is None and isinstance(self.parent, Widget) and not app_ending(self)

    def _mount(self) -> AwaitMount:
        for child in compose(self, self._fill()):
            self.part.compose_add_child(child)
        parent = self.parent
        assert isinstance(parent, Widget)  # _mountable
        return parent.mount(self.part, after=self)
        # It stays, hidden and empty: removed, Textual queued a wait for its removal on the
        # app's own queue (App._prune's call_next), and every key waited there while the part's
        # mount took the loop (22-34 ms, 0.1-0.3 s after the first frame).

    def _put_off(self) -> None:
        self._mount_part(put_off=True)
