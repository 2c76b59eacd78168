"""Placeholder app until the app issue lands."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Footer, Header, Static


class FolkgenApp(App[None]):
    TITLE = "folkgen"
    BINDINGS = [("q", "quit", "Quit")]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("folkgen — the studio is coming. Use the `folkgen` command meanwhile.")
        yield Footer()


def main() -> None:
    FolkgenApp().run()
