"""A DataTable of rows: home and end go to the first and last row."""

from __future__ import annotations

from typing import Any

from textual.binding import Binding
from textual.widgets import DataTable


class RowTable(DataTable[Any]):
    """DataTable's home and end move a row cursor to the first and last column (none here), so
    they did nothing where people expect the first and last row (as the tunebook's table
    does)."""

    BINDINGS = [
        Binding("home", "scroll_top", "First", show=False),
        Binding("end", "scroll_bottom", "Last", show=False),
    ]
