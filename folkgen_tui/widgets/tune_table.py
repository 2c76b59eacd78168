"""A table of tunes: draws only the rows in view, over an in-memory sequence of light rows.

Textual's DataTable builds and measures every row it is given: for 10,000 tunes that is most of
a second to fill and again for each filter keystroke (bench/library_screen.py), and the Dataset
screen's 817 tunes held the UI for ~0.1 s as the corpus arrived at start-up. This one keeps the
rows as they are and formats the few that show, so filling it costs nothing. What it shows of a
row is its `TableLayout`: the tunebook's (Library) or the corpus's (Dataset's Tunes tab)."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar, overload

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.content import Content
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from folkgen_tui.textual_internals import set_virtual_size_quietly


class Row(Protocol):
    """What every row has: an id, unique in its table (the cursor and marks follow it)."""

    @property
    def id(self) -> int: ...


R = TypeVar("R", bound=Row)
SCROLLBAR = 2  # columns of a table's vertical scrollbar (Textual's default size)


@dataclass(frozen=True)
class Column:
    heading: str
    width: int  # 0: the one column that takes what the others leave
    accent: str = ""  # "rating" or "favourite": drawn in that colour
    right: bool = False


@dataclass(frozen=True)
class TableLayout(Generic[R]):
    """The columns, and a row's text in each (`cells(row, marked)`)."""

    columns: tuple[Column, ...]
    cells: Callable[[R, bool], tuple[str, ...]]
    dropped_first: tuple[str, ...] = ()  # headings left out, in this order, when too narrow
    min_flexible: int = 12  # the flexible column's least width

    def fitted(self, width: int) -> list[tuple[int, int]]:
        """(column, width) of the columns that fit in `width`, the flexible one taking the rest."""
        columns, least = self.columns, self.min_flexible
        shown = list(range(len(columns)))
        dropped = [
            i for name in self.dropped_first for i, c in enumerate(columns) if c.heading == name
        ]  # fmt: skip

        def needed() -> int:
            return sum(columns[i].width for i in shown) + len(shown) - 1 + least

        while dropped and needed() > width:
            shown.remove(dropped.pop(0))
        flexible = max(least, width - needed() + least)
        return [(i, columns[i].width or flexible) for i in shown]

    def header(self, columns: list[tuple[int, int]], width: int) -> str:
        """The header line of `columns` (as `fitted` lays them out) in `width`."""
        heads = self.columns
        return fit(" ".join(fit(heads[i].heading, w, heads[i].right) for i, w in columns), width)

    def sketch(self, width: int, empty_text: str) -> Content:
        """The table as it first shows in `width`, with no rows yet and `empty_text` (Deferred's
        sketch): its header and that text, wrapped as render_line wraps it, beside its
        scrollbar (folkgen.tcss: always shown), which comes with the table."""
        width = max(0, width - SCROLLBAR)
        lines = [Content.styled(self.header(self.fitted(width), width), "bold $text-accent")]
        lines += [Content.styled(line, "$text-muted") for line in empty_lines(empty_text, width)]
        return Content("\n").join(lines)


def empty_lines(text: str, width: int) -> list[str]:
    """A table's text with no rows, wrapped: at 80 columns it was cut short."""
    return textwrap.wrap(text, max(1, width - 1))


class TunebookRow(Row, Protocol):
    """What the tunebook's table shows of a tune (core.library.TuneRow has these)."""

    @property
    def title(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def metre(self) -> str: ...
    @property
    def bars(self) -> int: ...
    @property
    def form(self) -> str: ...
    @property
    def rating(self) -> int: ...
    @property
    def favourite(self) -> bool: ...
    @property
    def created(self) -> float: ...


def stars(rating: int) -> str:
    return "★" * rating + "☆" * (5 - rating) if rating else "·"


def fit(text: str, width: int, right: bool = False) -> str:
    if len(text) > width:
        return text[: width - 1] + "…" if width > 1 else text[:width]
    return text.rjust(width) if right else text.ljust(width)


def cells(row: TunebookRow, marked: bool = False) -> tuple[str, ...]:
    created = time.strftime("%Y-%m-%d", time.localtime(row.created))
    return (
        "✓" if marked else " ", "♥" if row.favourite else " ", row.title or "untitled", row.key, row.metre,
        str(row.bars) if row.bars else "", row.form, stars(row.rating), created,
    )  # fmt: skip


TUNEBOOK: TableLayout[TunebookRow] = TableLayout(
    columns=(
        Column(" ", 1, "rating"), Column("♥", 1, "favourite"), Column("Title", 0), Column("Key", 9),
        Column("M", 5), Column("Bars", 4, right=True), Column("Form", 6),
        Column("Stars", 5, "rating"), Column("Created", 10),
    ),
    cells=cells,
    dropped_first=("Created", "Form", "Bars", "M"),
)  # fmt: skip


@dataclass(frozen=True)
class CorpusRow:
    """A corpus tune as the Dataset screen lists it; `id` is its index in the corpus."""

    id: int
    tune: str

    def cells(self, marked: bool = False) -> tuple[str, ...]:
        # Here: core.corpus brings numpy, which the corpus's own loading imports on its thread
        # as the Dataset screen fills its tabs: imported there, the first frame's next ~90 ms
        # waited for that import.
        from core.corpus import header_field

        tune = self.tune
        return (
            str(self.id + 1), header_field(tune, "T") or "–", header_field(tune, "M") or "",
            header_field(tune, "K") or "", str(len(tune)),
        )  # fmt: skip


class CorpusRows(Sequence[CorpusRow]):
    """A corpus's first `limit` tunes as rows, or of `kept` (the places in the corpus of the
    tunes a filter keeps) the first `limit`; each row made when it is drawn: a corpus of 20,000
    tunes is listed at once."""

    def __init__(
        self, tunes: Sequence[str], limit: int, kept: Sequence[int] | None = None
    ) -> None:
        self.tunes = tunes
        self.limit = limit
        self.kept = kept

    def __len__(self) -> int:
        return min(len(self.tunes if self.kept is None else self.kept), self.limit)

    @overload
    def __getitem__(self, index: int) -> CorpusRow: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[CorpusRow]: ...
    def __getitem__(self, index: int | slice) -> CorpusRow | Sequence[CorpusRow]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        index %= len(self)
        at = index if self.kept is None else self.kept[index]
        return CorpusRow(at, self.tunes[at])


CORPUS: TableLayout[CorpusRow] = TableLayout(
    columns=(
        Column("#", 5, right=True), Column("Title", 0), Column("M", 4), Column("K", 9),
        Column("Chars", 5, right=True),
    ),
    cells=CorpusRow.cells,
    dropped_first=("Chars", "M"),
)  # fmt: skip


@dataclass
class TuneHighlighted(Message):
    """The cursor is on another row (None: the table is empty)."""

    table: TuneTable[Row]
    row: Row | None


class TuneTable(ScrollView, Generic[R], can_focus=True):
    """A header line and one line per row, laid out by `layout`; the cursor row is highlighted
    and kept in view. Its styles are in folkgen.tcss."""

    BINDINGS = [
        Binding("up", "move(-1)", "Up", show=False),
        Binding("down", "move(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "move(-1000000000)", "First", show=False),
        Binding("end", "move(1000000000)", "Last", show=False),
    ]
    COMPONENT_CLASSES = {
        "tune-table--header", "tune-table--cursor", "tune-table--favourite",
        "tune-table--rating", "tune-table--muted",
    }  # fmt: skip

    cursor: reactive[int] = reactive(0, always_update=True, init=False)

    def __init__(self, layout: TableLayout[R], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.table_layout = layout
        self.rows: Sequence[R] = ()
        self.empty_text = ""
        self.marked: set[int] = set()  # ids selected (for export)
        self._styles: dict[str, Style] | None = None
        self._styles_for: bool | None = None
        self._column_layout: list[tuple[int, int]] = []
        self._columns_for = -1  # the width the column layout was made for

    # --- data ----------------------------------------------------------------------------------

    def set_rows(self, rows: Sequence[R], keep_id: int | None = None) -> None:
        """Show `rows`; the cursor stays on the tune `keep_id` when it is among them."""
        current = self.current
        if (
            rows
            and len(rows) == len(self.rows)
            and (keep_id is None or (current is not None and current.id == keep_id))
            and all(new is old for new, old in zip(rows, self.rows, strict=True))
        ):
            # The same rows (a filter's first letter, most tunes hold; a space typed after a
            # word): nothing to draw again, the cursor stays.
            self.rows = rows
            return
        self.rows = rows
        index = 0
        if keep_id is not None:
            index = next((i for i, r in enumerate(rows) if r.id == keep_id), 0)
        size = Size(self.size.width, len(rows) + 1)
        if size != self.virtual_size:  # no layout: the scrollbar is always there (tcss)
            set_virtual_size_quietly(self, size)
        self.cursor = index  # posts TuneHighlighted, scrolls to it
        self.refresh()

    def update_row(self, row: R) -> None:
        """A row changed in place (rating, favourite, title): redraw it."""
        for i, old in enumerate(self.rows):
            if old.id == row.id:
                if isinstance(self.rows, list):
                    self.rows[i] = row
                self.refresh_line(i + 1)
                return

    @property
    def current(self) -> R | None:
        return self.rows[self.cursor] if 0 <= self.cursor < len(self.rows) else None

    def validate_cursor(self, value: int) -> int:
        return max(0, min(value, len(self.rows) - 1))

    def watch_cursor(self, old: int, new: int) -> None:
        self.refresh_line(old + 1)
        self.refresh_line(new + 1)
        self._scroll_to_cursor()
        self.post_message(TuneHighlighted(self, self.current))  # type: ignore[arg-type]

    def _scroll_to_cursor(self) -> None:
        visible = max(1, self.scrollable_content_region.height - 1)  # less the header
        top = round(self.scroll_y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + visible:
            self.scroll_to(y=self.cursor - visible + 1, animate=False, immediate=True)

    # --- keys and mouse ------------------------------------------------------------------------

    def action_move(self, step: int) -> None:
        self.cursor = self.cursor + step

    def action_page(self, direction: int) -> None:
        self.cursor = self.cursor + direction * max(1, self.scrollable_content_region.height - 2)

    def on_click(self, event: events.Click) -> None:
        if event.y >= 1:
            self.cursor = round(self.scroll_y) + event.y - 1

    def on_resize(self, event: events.Resize) -> None:
        self.virtual_size = Size(event.size.width, len(self.rows) + 1)
        self._scroll_to_cursor()

    # --- drawing -------------------------------------------------------------------------------

    def layout_columns(self, width: int) -> list[tuple[int, int]]:
        """(column, width) of the columns that fit in `width`, the flexible one taking the rest."""
        return self.table_layout.fitted(width)

    def _palette(self) -> dict[str, Style]:
        """The styles a line is drawn in, worked out once per theme, focus and style change:
        asking Textual for them on every line was most of a keystroke's drawing."""
        key = self.has_focus
        if self._styles is None or self._styles_for != key:
            base = self.rich_style
            part = self.get_component_rich_style
            cursor = base + part("tune-table--cursor")
            self._styles = {
                "base": base,
                "header": base + part("tune-table--header"),
                "muted": base + part("tune-table--muted"),
                "cursor": cursor,
                "rating": base + Style(color=part("tune-table--rating").color),
                "favourite": base + Style(color=part("tune-table--favourite").color),
                "cursor-rating": cursor + Style(color=part("tune-table--rating").color),
                "cursor-favourite": cursor + Style(color=part("tune-table--favourite").color),
            }
            self._styles_for = key
        return self._styles

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles = None  # the theme or the styles changed

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        styles = self._palette()
        base = styles["base"]
        columns = self._columns(width)
        if y == 0:
            line = self.table_layout.header(columns, width)
            return Strip([Segment(line, styles["header"])], width)
        index = round(self.scroll_y) + y - 1
        if not 0 <= index < len(self.rows):
            if not self.rows and self.empty_text:
                lines = empty_lines(self.empty_text, width)
                if index < len(lines):
                    return Strip([Segment(fit(lines[index], width), styles["muted"])], width)
            return Strip.blank(width, base)
        row = self.rows[index]
        on_cursor = index == self.cursor
        style = styles["cursor"] if on_cursor else base
        prefix = "cursor-" if on_cursor else ""
        segments: list[Segment] = []
        texts = self.table_layout.cells(row, row.id in self.marked)
        for n, (i, w) in enumerate(columns):
            if n:
                segments.append(Segment(" ", style))
            column = self.table_layout.columns[i]
            cell_style = styles[prefix + column.accent] if column.accent else style
            segments.append(Segment(fit(texts[i], w, column.right), cell_style))
        return Strip(segments).crop(0, width).extend_cell_length(width, style)

    def _columns(self, width: int) -> list[tuple[int, int]]:
        if self._columns_for != width:
            self._column_layout = self.layout_columns(width)
            self._columns_for = width
        return self._column_layout
