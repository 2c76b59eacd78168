"""ABC text, lightly coloured and never read as markup, with an optional error position."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

_BAR_CHARS = set("|:[]")


def highlight_abc(
    text: str,
    *,
    header: Style,
    field: Style,
    bar: Style,
    muted: Style,
    error_line: Style,
    error_char: Style,
    error: tuple[int, int] | None = None,
) -> Text:
    """ABC as a rich Text: header fields, bar lines and decorations styled; `error` is a
    1-based (line, column) pair whose line and character are marked."""
    out = Text(no_wrap=False)
    err_line, err_col = error if error else (0, 0)
    for number, line in enumerate(text.split("\n"), start=1):
        if number > 1:
            out.append("\n")
        start = len(out)
        if len(line) >= 2 and line[1] == ":" and line[0].isalpha():
            out.append(line[:2], field)
            out.append(line[2:], header)
        else:
            run: list[str] = []
            run_style: Style | None = None
            for ch in line:
                style = bar if ch in _BAR_CHARS else muted if ch == "!" else None
                if style is not run_style and run:
                    out.append("".join(run), run_style or "")
                    run = []
                run_style = style
                run.append(ch)
            if run:
                out.append("".join(run), run_style or "")
        if number == err_line:
            end = len(out)
            if end == start:  # an empty line: mark it with a visible cell
                out.append(" ")
                end += 1
            out.stylize(error_line, start, end)
            col = min(max(err_col, 1), max(end - start, 1))
            out.stylize(error_char, start + col - 1, start + col)
    return out


class AbcView(VerticalScroll, can_focus=True):
    """A scrollable ABC text: `set_text` replaces, `append` streams, `set_error` marks."""

    COMPONENT_CLASSES = {
        "abc-view--field",
        "abc-view--header",
        "abc-view--bar",
        "abc-view--muted",
        "abc-view--error-line",
        "abc-view--error-char",
    }
    DEFAULT_CSS = """
    AbcView { height: 1fr; }
    AbcView > Static { width: 1fr; }
    AbcView > .abc-view--field { color: $accent; text-style: bold; }
    AbcView > .abc-view--header { color: $accent; }
    AbcView > .abc-view--bar { color: $primary; text-style: bold; }
    AbcView > .abc-view--muted { color: $text-muted; }
    AbcView > .abc-view--error-line { background: $error 25%; }
    AbcView > .abc-view--error-char { background: $error; color: $text; text-style: bold; }
    """

    def __init__(
        self, text: str = "", *, placeholder: str = "", id: str | None = None,
        classes: str | None = None,
    ) -> None:  # fmt: skip
        super().__init__(id=id, classes=classes)
        self._text = text
        self._error: tuple[int, int] | None = None
        self.placeholder = placeholder
        self.follow = False  # keep the end in view while text streams in
        self._body = Static("", markup=False, classes="abc-body")

    def compose(self) -> ComposeResult:
        yield self._body

    def on_mount(self) -> None:
        self._render_text()

    @property
    def text(self) -> str:
        return self._text

    @property
    def error(self) -> tuple[int, int] | None:
        return self._error

    def set_text(self, text: str, error: tuple[int, int] | None = None) -> None:
        if self.is_mounted and (text, error) == (self._text, self._error):
            return  # (a Static's update asks for a layout of the whole screen, even if hidden)
        self._text = text
        self._error = error
        self._render_text()
        if not self.follow:
            self.call_after_refresh(self._to_top)

    def append(self, chunk: str) -> None:
        self._text += chunk
        self._render_text()

    def set_error(self, error: tuple[int, int] | None) -> None:
        self._error = error
        self._render_text()
        if not self.follow:
            self.call_after_refresh(self._to_top)

    def _render_text(self) -> None:
        if not self.is_mounted:
            return
        if not self._text:
            self._body.update(Text(self.placeholder, style="italic dim"))
            return
        style = self.get_component_rich_style
        self._body.update(
            highlight_abc(
                self._text,
                header=style("abc-view--header"),
                field=style("abc-view--field"),
                bar=style("abc-view--bar"),
                muted=style("abc-view--muted"),
                error_line=style("abc-view--error-line"),
                error_char=style("abc-view--error-char"),
                error=self._error,
            )
        )
        if self.follow:
            self.call_after_refresh(self._to_end)

    def _to_end(self) -> None:
        if self.follow:
            self.scroll_end(animate=False)

    def _to_top(self) -> None:
        if not self.follow:
            if self._error is not None:
                self.scroll_to(y=max(0, self._error[0] - 3), animate=False)
            else:
                self.scroll_home(animate=False)
