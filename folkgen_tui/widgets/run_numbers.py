"""A training run's figures in two pairs of columns (label, value, label, value), with shorter
labels, and chars/s without its threads, where the full table is wider than the widget: at 80
columns the rows wrapped and the Train panel showed half of them."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

Row = tuple[str, str, str, str]
SHORT = {"loss (nats)": "loss", "smoothed": "smooth", "val bits/char": "val bpc"}


def numbers_table(rows: list[Row], short: bool = False, tight: bool = False) -> Content:
    """The rows in columns, labels bold; `tight`, short with one space between columns and
    "1,000/5,000" for "1,000 / 5,000" (at 80 columns, mid-run, the short table was 41 wide for
    38, and its last row, validation, was cut)."""
    if short or tight:
        rows = [(SHORT.get(a, a), b, SHORT.get(c, c), d.split(" (")[0]) for a, b, c, d in rows]
    if tight:
        rows = [(a, b.replace(" / ", "/"), c, d) for a, b, c, d in rows]
    gap = 1 if tight else 2
    widths = [max((len(row[i]) for row in rows), default=0) + gap for i in range(3)]
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
        return fitted_table(self.rows, self.content_size.width, self._full)


def fitted_table(rows: list[Row], width: int, full: Content | None = None) -> Content:
    """The table of `rows` (`full`, where made already) as it fits `width`: full, short or
    tight (0: full)."""
    full = numbers_table(rows) if full is None else full
    if not width or _widest(full) <= width:
        return full
    short = numbers_table(rows, short=True)
    return short if _widest(short) <= width else numbers_table(rows, tight=True)


def _widest(table: Content) -> int:
    return max((len(line) for line in table.plain.split("\n")), default=0)
