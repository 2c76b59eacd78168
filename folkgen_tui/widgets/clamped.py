"""Text of at most a few lines at its width, ending in "…" where it is cut."""

from __future__ import annotations

import textwrap

from textual.content import Content
from textual.widgets import Static


def fit_lines(text: str, width: int, lines: int) -> str:
    """`text` as it fits `lines` lines of `width` (wrapped at spaces): cut, it ends in "…"."""
    if width <= 1 or len(text) <= width:
        return text
    wrapped = textwrap.wrap(text, width, break_on_hyphens=False, drop_whitespace=True)
    if len(wrapped) <= lines:
        return text
    kept = wrapped[:lines]
    kept[-1] = kept[-1][: width - 1].rstrip() + "…"
    return "\n".join(kept)


class ClampedStatic(Static):
    """A Static (text, never markup) of at most `max_lines` lines: a longer text ended mid-word
    at the last line's end, with nothing to say that more was there (the verdict's abc2midi
    message, the Train screen's state). `content` keeps the whole text."""

    def __init__(self, content: str = "", *, max_lines: int, id: str | None = None) -> None:
        super().__init__(content, markup=False, id=id)
        self.max_lines = max_lines

    def render(self) -> Content:
        return Content(fit_lines(str(self.content), self.content_size.width, self.max_lines))
