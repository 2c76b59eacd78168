"""The Generate screen's prompt field: one line, where `\n` stands for a line break."""

from __future__ import annotations

from textual import events
from textual.widgets import Input

from folkgen_tui.format import text_to_prompt


class PromptInput(Input):
    """An Input that takes a pasted tune whole: Input keeps a paste's first line only, so a
    header copied from a tunebook arrived as "X:1" and the rest was lost without a word. Its
    line breaks become the field's `\\n`."""

    def on_paste(self, event: events.Paste) -> None:
        event.prevent_default()  # not Input's own paste, which keeps the first line
        event.stop()
        text = text_to_prompt(event.text.replace("\r\n", "\n").replace("\r", "\n"))
        if not text:
            return
        if self.selection.is_empty:
            self.insert_text_at_cursor(text)
        else:
            self.replace(text, *self.selection)
