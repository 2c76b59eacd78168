"""A one-line filter field whose keystrokes reach the list they filter in the same frame.

What made a Library filter keystroke slow (bench/library_screen.py), and is not done here:
- Textual's Input sets its virtual size (the text's width, for scrolling) on every change, and
  `virtual_size` is a reactive that lays out the whole screen: ~20 ms for the Library. This
  field has a fixed size (width 100 %, one line), so a change needs a repaint, no layout: its
  scroll range is read from the virtual size directly.
- Input.Changed bubbles up through a queue per container to the screen, and the screen drew the
  new text alone in the meantime; the filtered rows then waited for the next frame tick (17 ms
  at 60 frames a second). Here the text goes to `on_text` as it changes, so the rows and the
  text are drawn in one frame. Input.Changed is still posted, as by any Input.
- Nothing to validate: the first change no longer restyles the field for its "-valid" class."""

from __future__ import annotations

from collections.abc import Callable

from textual.binding import Binding
from textual.geometry import Size
from textual.reactive import Reactive
from textual.widgets import Input


class FilterInput(Input):
    """An Input of fixed size that hands each new text to `on_text` at once; down goes on to
    the list below it (it typed the next key, p for play, into the filter)."""

    BINDINGS = [Binding("down", "app.focus_next", "To the list", show=False)]

    virtual_size: Reactive[Size] = Reactive(Size(0, 0), layout=False)

    def __init__(
        self, on_text: Callable[[str], None], *, placeholder: str = "", compact: bool = False,
        id: str | None = None,
    ) -> None:  # fmt: skip
        # No validation: Textual's Input validates each change by default and the first one
        # adds its "-valid" class, restyling the field (10-30 ms on the first keystroke).
        super().__init__(placeholder=placeholder, compact=compact, id=id, validate_on=[])
        self.on_text = on_text
        # A steady cursor: each blink drew a frame, and a keystroke that came with one waited.
        self.cursor_blink = False

    def watch_value(self, value: str) -> None:
        self.on_text(value)
