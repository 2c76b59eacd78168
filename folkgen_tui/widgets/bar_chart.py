"""Horizontal bar charts drawn with block characters (label, bar, count on one line each)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.geometry import Size
from textual.reactive import reactive
from textual.widget import Widget

_EIGHTHS = " ▏▎▍▌▋▊▉█"


def bar(fraction: float, width: int) -> str:
    """A bar `fraction` (0..1) of `width` cells long, to an eighth of a cell."""
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    full, part = divmod(eighths, 8)
    return "█" * full + (_EIGHTHS[part] if part else "")


class BarChart(Widget):
    """Rows of (label, count) as horizontal bars; at most `max_rows` rows, the rest summed."""

    COMPONENT_CLASSES = {"bar-chart--bar", "bar-chart--label", "bar-chart--count"}
    DEFAULT_CSS = """
    BarChart {
        height: auto;
        width: 1fr;
    }
    BarChart > .bar-chart--bar { color: $accent; }
    BarChart > .bar-chart--label { color: $text; }
    BarChart > .bar-chart--count { color: $text-muted; }
    """

    rows: reactive[tuple[tuple[str, int], ...]] = reactive((), layout=True)

    def __init__(
        self,
        rows: Sequence[tuple[str, int]] = (),
        *,
        max_rows: int = 12,
        other_label: str = "others",
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.max_rows = max_rows
        self.other_label = other_label
        self.set_reactive(BarChart.rows, tuple(rows))

    def shown_rows(self) -> list[tuple[str, int]]:
        rows = list(self.rows)
        if len(rows) > self.max_rows:
            rest = sum(n for _, n in rows[self.max_rows - 1 :])
            rows = rows[: self.max_rows - 1] + [
                (f"{self.other_label} ({len(rows) - self.max_rows + 1})", rest)
            ]
        return rows

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return max(1, len(self.shown_rows()))

    def render(self) -> Text:
        rows = self.shown_rows()
        if not rows:
            return Text("no data", style="italic")
        width = self.content_size.width or 40
        label_w = min(max(len(label) for label, _ in rows), max(6, width // 3))
        count_w = max(len(f"{n:,}") for _, n in rows)
        bar_w = max(1, width - label_w - count_w - 2)
        top = max(n for _, n in rows) or 1
        bar_style = self.get_component_rich_style("bar-chart--bar")
        label_style = self.get_component_rich_style("bar-chart--label")
        count_style = self.get_component_rich_style("bar-chart--count")
        out = Text(no_wrap=True, overflow="crop")
        for i, (label, n) in enumerate(rows):
            if i:
                out.append("\n")
            shown = label if len(label) <= label_w else label[: label_w - 1] + "…"
            out.append(shown.ljust(label_w) + " ", label_style)
            out.append(bar(n / top, bar_w).ljust(bar_w), bar_style)
            out.append(" " + f"{n:,}".rjust(count_w), count_style)
        return out
