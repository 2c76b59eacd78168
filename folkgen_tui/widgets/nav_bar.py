"""The line above the footer: the keys that switch screens, and what the studio is doing."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

# (key, label, mode): the screens, in order. The app binds the same keys.
SCREENS: tuple[tuple[str, str, str], ...] = (
    ("d", "Dataset", "dataset"),
    ("t", "Train", "train"),
    ("g", "Generate", "generate"),
    ("m", "Models", "models"),
    ("l", "Library", "library"),
)
TIGHT_BELOW = 90


class NavKey(Static):
    """One screen switch: its key and name; clicking it switches too."""

    def __init__(self, key: str, label: str, mode: str, active: bool) -> None:
        super().__init__(
            Text.assemble((f" {key} ", "bold"), f"{label} "),
            classes="nav-key -active" if active else "nav-key",
        )
        self.mode = mode

    async def on_click(self, event: events.Click) -> None:
        event.stop()
        if self.mode == "help":
            await self.app.run_action("help")
        else:
            self.app.switch_mode(self.mode)


class NavBar(Horizontal):
    """Docked at the bottom, above the footer: d Dataset, t Train, g Generate, m Models,
    l Library, ? Help, then the studio's state (torch loading, training progress, the model in
    use)."""

    DEFAULT_CSS = """
    NavBar {
        dock: bottom;
        height: 1;
        background: $footer-background;
    }
    NavBar > .nav-key {
        width: auto;
        color: $footer-description-foreground;
        margin-right: 1;
    }
    NavBar.-tight > .nav-key {
        margin-right: 0;
    }
    NavBar > .nav-key.-active {
        background: $accent;
        color: $text;
    }
    NavBar > #nav-status {
        width: 1fr;
        text-align: right;
        text-wrap: nowrap;
        text-overflow: ellipsis;
        color: $text-muted;
        padding-right: 1;
    }
    """

    def __init__(self, active_mode: str) -> None:
        super().__init__()
        self.active_mode = active_mode

    def compose(self) -> ComposeResult:
        for key, label, mode in SCREENS:
            yield NavKey(key, label, mode, mode == self.active_mode)
        yield NavKey("?", "Help", "help", False)
        yield Static("", id="nav-status", markup=False)

    def on_mount(self) -> None:
        self.watch(self.app, "status_line", self._show_status, init=True)

    def on_resize(self, event: events.Resize) -> None:
        # Below 90 columns the keys close up, so the model's name still fits beside them.
        self.set_class(event.size.width < TIGHT_BELOW, "-tight")

    def _show_status(self, text: str) -> None:
        # One line of fixed width: updating it (several times a second while training) must
        # not make the whole screen lay itself out again.
        self.query_one("#nav-status", Static).update(text, layout=False)
