"""folkgen's own widgets: charts, the ABC view, the piano roll, the navigation line."""

from folkgen_tui.widgets.abc_view import AbcView
from folkgen_tui.widgets.bar_chart import BarChart
from folkgen_tui.widgets.loss_chart import LossChart
from folkgen_tui.widgets.nav_bar import NavBar
from folkgen_tui.widgets.vocab_grid import VocabGrid

__all__ = ["AbcView", "BarChart", "LossChart", "NavBar", "VocabGrid"]
