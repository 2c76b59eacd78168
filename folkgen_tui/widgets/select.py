"""Textual's Select, safe in a screen still being built when the app quits."""

from __future__ import annotations

from typing import TypeVar

from textual import events
from textual.widgets import Select as TextualSelect

T = TypeVar("T")


class Select(TextualSelect[T]):
    """A Select that does nothing on a mount that comes as the app quits. Screens are built
    ahead of their first show; Textual's shutdown mounts one still being built only in part, and
    a Select given a value then looked for a part of its own never mounted (NoMatches, raised
    as the app ended: seen in tests/test_voice.py for the Train form's selects)."""

    def on_mount(self, event: events.Mount) -> None:
        if not self.app.is_running:
            event.prevent_default()  # Textual's own handler shows the value in that part
