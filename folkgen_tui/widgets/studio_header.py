"""The line at the top: ♫ (a click opens the command palette) and "folkgen — Screen"."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual import events
from textual.widget import Widget

ICON = "♫"
ICON_WIDTH = 8  # columns: the icon's area on the left, as Textual's Header
CLOCK_WIDTH = 10  # columns kept free on the right, as Textual's Header without its clock
DIM = Style(dim=True)


class StudioHeader(Widget):
    """Textual's Header drawn as one widget: it was four (icon, title, clock space and itself)
    on every screen, and its title watchers looked for a part never mounted when the app quit
    while a screen was being built ahead (NoMatches). The titles here never change."""

    ALLOW_SELECT = False
    DEFAULT_CSS = """
    StudioHeader {
        dock: top;
        width: 100%;
        height: 1;
        background: $panel;
        color: $foreground;
    }
    """

    def __init__(self, title: str, sub_title: str) -> None:
        super().__init__()
        self.title = title
        self.sub_title = sub_title

    def render(self) -> Text:
        width = self.size.width
        middle = max(0, width - ICON_WIDTH - CLOCK_WIDTH)
        title = Text.assemble(self.title, (" — ", DIM), (self.sub_title, DIM), end="")
        title.truncate(middle, overflow="ellipsis")
        left = (middle - title.cell_len) // 2
        line = Text(f" {ICON}".ljust(ICON_WIDTH) + " " * left, no_wrap=True, end="")
        line.append_text(title)
        line.append(" " * (width - line.cell_len))
        return line

    async def on_click(self, event: events.Click) -> None:
        if event.x < ICON_WIDTH and self.app.ENABLE_COMMAND_PALETTE:
            event.stop()
            await self.run_action("app.command_palette")
