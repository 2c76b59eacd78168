"""Textual's Select, safe in a screen still being built when the app quits."""

from __future__ import annotations

from typing import TypeVar

from textual import events
from textual.widgets import Select as TextualSelect

from folkgen_tui.textual_internals import app_ending

T = TypeVar("T")


class Select(TextualSelect[T]):
    """A Select that does nothing on a mount that comes once the app is ending. Screens are
    built ahead of their first show; once the app is ending Textual mounts no more widgets, so
    a Select being built then has no parts of its own, and its mount looked for them (NoMatches,
    raised as the app ended: tests/test_voice.py, the Train form's selects;
    tests/test_app_faults.py ends the app at moments into a build)."""

    def on_mount(self, event: events.Mount) -> None:
        if app_ending(self):
            event.prevent_default()  # Textual's own handler shows the value in that part
