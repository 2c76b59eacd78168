"""folkgen's own widgets: charts, the ABC view, the piano roll, the navigation line.

Each is imported from its module when first asked for, so that start-up imports only the widgets
of the first frame (issue 14)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from folkgen_tui.widgets.abc_view import AbcView
    from folkgen_tui.widgets.bar_chart import BarChart
    from folkgen_tui.widgets.loss_chart import LossChart
    from folkgen_tui.widgets.nav_bar import NavBar
    from folkgen_tui.widgets.vocab_grid import VocabGrid

__all__ = ["AbcView", "BarChart", "LossChart", "NavBar", "VocabGrid"]
_MODULES = {
    "AbcView": "abc_view",
    "BarChart": "bar_chart",
    "LossChart": "loss_chart",
    "NavBar": "nav_bar",
    "VocabGrid": "vocab_grid",
}


def __getattr__(name: str) -> object:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_MODULES[name]}"), name)
