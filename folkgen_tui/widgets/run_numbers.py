"""A training run's figures in two pairs of columns (label, value, label, value), with shorter
labels, and chars/s without its threads, where the full table is wider than the widget: at 80
columns the rows wrapped and the Train panel showed half of them."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

Row = tuple[str, str, str, str]
SHORT = {"loss (nats)": "loss", "smoothed": "smooth", "val bits/char": "val bpc"}


def numbers_table(rows: list[Row], short: bool = False) -> Content:
    """The rows in columns, labels bold."""
    if short:
        rows = [(SHORT.get(a, a), b, SHORT.get(c, c), d.split(" (")[0]) for a, b, c, d in rows]
    widths = [max((len(row[i]) for row in rows), default=0) + 2 for i in range(3)]
    parts: list[str | tuple[str, str]] = []
    for i, (a, b, c, d) in enumerate(rows):
        parts += [(a.ljust(widths[0]), "bold"), b.ljust(widths[1]), (c.ljust(widths[2]), "bold")]
        parts.append(d + ("\n" if i < len(rows) - 1 else ""))
    return Content.assemble(*parts)


class RunNumbers(Static):
    """The figures of `show(rows)`, full where they fit its width, else short."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.rows: list[Row] = []
        self._full = Content()  # the table of `rows`, made once for `content` and each render

    def show(self, rows: list[Row]) -> None:
        self.rows, self._full = rows, numbers_table(rows)
        self.update(self._full, layout=False)  # a fixed size: no relayout

    def render(self) -> Content:
        width = self.content_size.width
        widest = max((len(line) for line in self._full.plain.split("\n")), default=0)
        return self._full if not width or widest <= width else numbers_table(self.rows, short=True)
