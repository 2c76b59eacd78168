"""Small modal dialogs: ask for a file or folder path, a yes or no, a line of text."""

from __future__ import annotations

import os
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import Input, Label, Static


class PathSuggester(Suggester):
    """Completes the last part of a path from what is on disk (folders and .abc files)."""

    def __init__(self, suffixes: tuple[str, ...] = (".abc",)) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.suffixes = suffixes

    async def get_suggestion(self, value: str) -> str | None:
        if not value:
            return None
        expanded = os.path.expanduser(value)
        if expanded.endswith(os.sep):
            base, stem = Path(expanded), ""
        else:
            base, stem = Path(expanded).parent, Path(expanded).name
        try:
            names = sorted(
                p.name + (os.sep if p.is_dir() else "")
                for p in base.iterdir()
                if p.name.startswith(stem)
                and not p.name.startswith(".")
                and (p.is_dir() or p.suffix.lower() in self.suffixes)
            )
        except OSError:
            return None
        if not names:
            return None
        return value + names[0][len(stem) :]


class TextDialog(ModalScreen[str | None]):
    """Asks for one line of text; dismisses with it (stripped; "" when emptied), or None on
    escape."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    # The type selectors match PathDialog too (a subclass has its bases' CSS type names).
    DEFAULT_CSS = """
    TextDialog { align: center middle; }
    TextDialog > Vertical {
        width: 70; max-width: 95%; height: auto;
        border: round $accent; background: $surface; padding: 0 1;
    }
    TextDialog Label { width: 1fr; margin-bottom: 1; }
    TextDialog .hint { color: $text-muted; }
    """
    KEYS_HINT = "enter keeps it, escape cancels"

    def __init__(self, title: str, hint: str, value: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.hint = hint
        self.value = value

    def make_input(self) -> Input:
        return Input(self.value, id="text-input")

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = self.title_text
            yield Label(self.hint, markup=False)
            yield self.make_input()
            yield Static(self.KEYS_HINT, classes="hint", markup=False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)


class PathDialog(TextDialog):
    """Asks for a path, completing it from disk; dismisses with the text, or None on escape."""

    KEYS_HINT = "→ completes, enter loads, escape cancels"

    def make_input(self) -> Input:
        return Input(
            self.value, placeholder="~/tunes/session.abc", suggester=PathSuggester(),
            id="path-input",
        )  # fmt: skip


class ConfirmDialog(ModalScreen[bool]):
    """Asks a yes/no question; dismisses with True on y or enter, False on n or escape."""

    BINDINGS = [
        Binding("y,enter", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]
    DEFAULT_CSS = """
    ConfirmDialog { align: center middle; }
    ConfirmDialog > Vertical {
        width: 60; max-width: 95%; height: auto;
        border: round $error; background: $surface; padding: 0 1;
    }
    ConfirmDialog Label { width: 100%; }
    ConfirmDialog .hint { color: $text-muted; }
    """

    def __init__(self, title: str, question: str) -> None:
        super().__init__()
        self.title_text = title
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = self.title_text
            yield Label(self.question, markup=False)
            yield Static("y or enter: yes · n or escape: no", classes="hint", markup=False)

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
