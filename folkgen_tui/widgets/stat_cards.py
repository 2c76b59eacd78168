"""A row of big numbers with captions (tunes, characters, loss…)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget


class StatCards(Widget):
    """Values on one line, captions under them, spread over the width."""

    COMPONENT_CLASSES = {"stat-cards--value", "stat-cards--caption"}
    DEFAULT_CSS = """
    StatCards { height: 2; }
    StatCards > .stat-cards--value { color: $accent; text-style: bold; }
    StatCards > .stat-cards--caption { color: $text-muted; }
    """

    cards: reactive[tuple[tuple[str, str], ...]] = reactive(())

    def __init__(
        self, cards: Sequence[tuple[str, str]] = (), *, id: str | None = None,
        classes: str | None = None,
    ) -> None:  # fmt: skip
        super().__init__(id=id, classes=classes)
        self.set_reactive(StatCards.cards, tuple(cards))

    def render(self) -> Table:
        value_style = self.get_component_rich_style("stat-cards--value")
        caption_style = self.get_component_rich_style("stat-cards--caption")
        table = Table.grid(expand=True)
        for _ in self.cards:
            table.add_column(justify="center", ratio=1, no_wrap=True, overflow="ellipsis")
        table.add_row(*(Text(value, value_style) for value, _ in self.cards))
        table.add_row(*(Text(caption, caption_style) for _, caption in self.cards))
        return table
