"""The line above the footer: the keys that switch screens, and what the studio is doing."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual import events
from textual.widget import Widget

# (key, label, mode): the screens, in order. The app binds the same keys.
SCREENS: tuple[tuple[str, str, str], ...] = (
    ("d", "Dataset", "dataset"),
    ("t", "Train", "train"),
    ("g", "Generate", "generate"),
    ("m", "Models", "models"),
    ("l", "Library", "library"),
)
HELP = ("?", "Help", "help")
TIGHT_BELOW = 90  # columns: below, the keys close up so that the model's name still fits
BOLD = Style(bold=True)


class NavBar(Widget):
    """Docked at the bottom, above the footer: d Dataset, t Train, g Generate, m Models,
    l Library, ? Help, then the studio's state (torch loading, training progress, the model in
    use). One widget drawing one line, as StudioFooter: a widget per key made eight for each
    screen, an eighth of the first frame's work (issue 14)."""

    ALLOW_SELECT = False
    COMPONENT_CLASSES = {"nav-bar--key", "nav-bar--active", "nav-bar--status"}
    DEFAULT_CSS = """
    NavBar {
        dock: bottom;
        height: 1;
        background: $footer-background;
        .nav-bar--key {
            color: $footer-description-foreground;
        }
        .nav-bar--active {
            background: $accent;
            color: $text;
        }
        .nav-bar--status {
            color: $text-muted;
        }
    }
    """

    def __init__(self, active_mode: str) -> None:
        super().__init__()
        self.active_mode = active_mode
        self.status = ""
        self._spans: list[tuple[int, int, str]] = []  # (start, end, mode): what a click opens

    def on_mount(self) -> None:
        self.watch(self.app, "status_line", self._show_status, init=True)

    def _show_status(self, text: str) -> None:
        # One line of fixed size: redrawn (several times a second while training), never laid out.
        self.status = text
        self.refresh()

    def render(self) -> Text:
        key_style = self.get_component_rich_style("nav-bar--key")
        active_style = self.get_component_rich_style("nav-bar--active")
        margin = "" if self.size.width < TIGHT_BELOW else " "
        line = Text(no_wrap=True, overflow="crop", end="")
        self._spans = []
        for key, label, mode in (*SCREENS, HELP):
            style = active_style if mode == self.active_mode else key_style
            start = line.cell_len
            line.append(f" {key} ", style + BOLD)
            line.append(f"{label} ", style)
            self._spans.append((start, line.cell_len, mode))
            line.append(margin)
        room = self.size.width - line.cell_len - 1  # and a space after it
        if self.status and room > 0:
            status = Text(self.status, self.get_component_rich_style("nav-bar--status"), end="")
            status.truncate(room, overflow="ellipsis")
            line.append(" " * (room - status.cell_len))
            line.append_text(status)
        return line

    async def on_click(self, event: events.Click) -> None:
        for start, end, mode in self._spans:
            if start <= event.x < end:
                event.stop()
                if mode == "help":
                    await self.app.run_action("help")
                else:
                    self.app.switch_mode(mode)
                return
