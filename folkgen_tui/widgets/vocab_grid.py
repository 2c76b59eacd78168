"""Every vocabulary character with its count, in as many columns as the width allows."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.geometry import Size
from textual.reactive import reactive
from textual.widget import Widget

from folkgen_tui.format import show_char

CELL_GAP = 2


class VocabGrid(Widget):
    COMPONENT_CLASSES = {"vocab-grid--char", "vocab-grid--count"}
    DEFAULT_CSS = """
    VocabGrid { height: auto; }
    VocabGrid > .vocab-grid--char { color: $accent; text-style: bold; }
    VocabGrid > .vocab-grid--count { color: $text-muted; }
    """

    entries: reactive[tuple[tuple[str, int], ...]] = reactive((), layout=True)

    def __init__(self, entries: Sequence[tuple[str, int]] = (), *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.set_reactive(VocabGrid.entries, tuple(entries))

    def _cell_width(self) -> int:
        count_w = max((len(f"{n:,}") for _, n in self.entries), default=1)
        return 2 + 1 + count_w

    def _columns(self, width: int) -> int:
        return max(1, (width + CELL_GAP) // (self._cell_width() + CELL_GAP))

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        if not self.entries:
            return 1
        cols = self._columns(width)
        return -(-len(self.entries) // cols)

    def render(self) -> Text:
        if not self.entries:
            return Text("no data", style="italic")
        cols = self._columns(self.content_size.width or 80)
        rows = -(-len(self.entries) // cols)
        cell = self._cell_width()
        char_style = self.get_component_rich_style("vocab-grid--char")
        count_style = self.get_component_rich_style("vocab-grid--count")
        out = Text(no_wrap=True, overflow="crop")
        for r in range(rows):
            if r:
                out.append("\n")
            for c in range(cols):
                i = c * rows + r  # column-major: read down, most common first
                if i >= len(self.entries):
                    break
                ch, n = self.entries[i]
                if c:
                    out.append(" " * CELL_GAP)
                out.append(show_char(ch).rjust(2), char_style)
                out.append(" " + f"{n:,}".rjust(cell - 3), count_style)
        return out
