"""Help: every key of the studio, screen by screen (built from the bindings themselves)."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from folkgen_tui.screens.base import StudioScreen

GLOBAL_KEYS = (
    ("d / t / g / m / l", "Go to Dataset, Train, Generate, Models or Library"),
    ("? / F1", "This help"),
    ("ctrl+p", "Command palette: every action, and the theme switcher"),
    ("tab / shift+tab", "Move between fields and lists"),
    ("escape", "Leave a text field (so letter keys work as commands)"),
    ("q / ctrl+q", "Quit (a running training saves a checkpoint first)"),
)


def key_names(key: str) -> str:
    names = {"question_mark": "?", "plus": "+", "minus": "-", "equals_sign": "=", "slash": "/",
             "space": "space", "enter": "enter", "escape": "escape"}  # fmt: skip
    return " / ".join(names.get(k.strip(), k.strip()) for k in key.split(","))


def section(title: str, rows: list[tuple[str, str]], about: str = "") -> Group:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True, min_width=16)
    table.add_column()
    for key, text in rows:
        table.add_row(key, text)
    parts: list[Any] = [Text(title, style="bold underline")]
    if about:
        parts.append(Text(about, style="italic"))
    parts += [table, Text("")]
    return Group(*parts)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q,question_mark,f1", "close", "Close"),
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90; max-width: 100%; height: 90%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    """

    def compose(self) -> ComposeResult:
        # The screen it is asked on first (asked from the Library, the Library's keys were
        # four screens down), then what applies everywhere, then the other screens in turn.
        below = self.app.screen_stack[-2] if len(self.app.screen_stack) > 1 else None
        first: list[Any] = []
        parts: list[Any] = [section("Everywhere", list(GLOBAL_KEYS))]
        for mode in self.app.MODES:  # the app's screens, asked of the app at run time
            cls = self.app.MODES[mode]  # (the app's MODES give classes by mode, not values())
            if not (isinstance(cls, type) and issubclass(cls, StudioScreen)):
                continue
            screen = cls
            rows = [
                (b.key_display or key_names(b.key), b.tooltip or b.description)
                for b in screen.BINDINGS
                if isinstance(b, Binding) and b.description
            ]
            (first if type(below) is cls else parts).append(
                section(screen.TITLE_TEXT, rows, screen.HELP)
            )
        parts[:0] = first
        with VerticalScroll(id="help-scroll") as scroll:
            scroll.border_title = "Keys"
            scroll.border_subtitle = "escape closes"
            yield Static(Group(*parts), id="help-text")

    def on_mount(self) -> None:
        self.query_one("#help-scroll").focus()

    def action_close(self) -> None:
        self.dismiss(None)
