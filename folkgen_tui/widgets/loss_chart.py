"""A loss curve drawn as bars, cheap enough to redraw several times a second during training."""

from __future__ import annotations

from collections.abc import Sequence

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

BARS = "▁▂▃▄▅▆▇█"
COLOR_LEVELS = 32  # bar colours are quantised, so that neighbouring bars share one segment


def bucket_means(values: Sequence[float], points: int) -> list[float]:
    """At most `points` values: the means of equal runs of `values` (the shape of the curve)."""
    if len(values) <= points:
        return list(values)
    import numpy as np  # not at import time: the first frame should not wait for it

    arr = np.asarray(values, dtype=np.float64)
    edges = np.linspace(0, len(arr), points + 1).astype(int)
    sums = np.add.reduceat(arr, edges[:-1])
    return (sums / np.diff(edges)).tolist()


def column_means(values: Sequence[float], width: int) -> list[float]:
    """`width` values: the means of equal runs of `values`; with fewer values than columns,
    each value spans several columns."""
    n = len(values)
    if n >= width:
        return bucket_means(values, width)
    return [values[c * n // width] for c in range(width)]


class LossChart(Widget):
    """Bars of bucket means, low values in the min colour and high ones in the max colour, as
    Textual's Sparkline draws them. That one renders a Rich renderable with a styled segment
    per cell on every refresh: for the two training curves it was most of the UI's work while
    training, work taken from the training threads. This one draws through the line API and
    keeps its lines until the data, the size or the styles change."""

    COMPONENT_CLASSES = {"loss-chart--min-color", "loss-chart--max-color"}
    DEFAULT_CSS = """
    LossChart {
        height: 1;
    }
    LossChart > .loss-chart--max-color {
        color: $primary;
    }
    LossChart > .loss-chart--min-color {
        color: $primary 30%;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._data: list[float] = []
        self._lines: list[Strip] = []
        self._lines_for: tuple[int, int] | None = None  # the size the lines were drawn for

    @property
    def data(self) -> list[float]:
        return self._data

    @data.setter
    def data(self, values: Sequence[float]) -> None:
        self._data = list(values)
        self._lines_for = None
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._lines_for = None  # the theme or the colours changed

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        if self._lines_for != (width, height):
            self._lines = self._draw(width, height)
            self._lines_for = (width, height)
        return self._lines[y] if 0 <= y < len(self._lines) else Strip.blank(width, self.rich_style)

    def _draw(self, width: int, height: int) -> list[Strip]:
        base = self.rich_style
        background = self.background_colors[1]
        low = background + self.get_component_styles("loss-chart--min-color").color
        high = background + self.get_component_styles("loss-chart--max-color").color
        styles = [
            base + Style(color=low.blend(high, level / (COLOR_LEVELS - 1)).rich_color)
            for level in range(COLOR_LEVELS)
        ]
        data = self._data
        if width <= 0 or height <= 0:
            return []
        if not data:  # a flat line at the bottom, as Textual's Sparkline shows no data
            blank = Strip([Segment(" " * width, base)], width)
            return [blank] * (height - 1) + [Strip([Segment(BARS[0] * width, styles[0])], width)]
        values = column_means(data, width)
        lowest, extent = min(values), (max(values) - min(values)) or 1.0
        ratios = [(v - lowest) / extent for v in values]
        eighths = [int(r * (len(BARS) * height - 1)) for r in ratios]
        levels = [round(r * (COLOR_LEVELS - 1)) for r in ratios]
        lines = []
        for row in reversed(range(height)):  # top row first
            floor, ceiling = row * len(BARS), (row + 1) * len(BARS)
            segments: list[Segment] = []
            text, style = "", base
            for bar, level in zip(eighths, levels, strict=True):
                if bar < floor:
                    char, cell_style = " ", base
                else:
                    char = "█" if bar >= ceiling else BARS[bar % len(BARS)]
                    cell_style = styles[level]
                if cell_style is not style and text:
                    segments.append(Segment(text, style))
                    text = ""
                text, style = text + char, cell_style
            segments.append(Segment(text, style))
            lines.append(Strip(segments, width))
        return lines
