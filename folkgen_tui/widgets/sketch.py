"""Sketches: a row of fields as its widgets first show it, drawn in their place until they are
mounted (Deferred). Widths are the stylesheets' (folkgen.tcss, the screens' .tcss); the tests
compare each sketch with the widgets' own drawing."""

from __future__ import annotations

from textual.content import Content

MUTED = "$text-muted"  # labels (.gen-label) and placeholders
GEN_LABEL = 7  # .gen-label's width

Cell = tuple[str, str]  # text, style


def label(text: str, short: bool = False) -> Cell:
    """A row's first label (.gen-label), or one after a field (.gen-label-short: padded)."""
    return (f" {text} " if short else text.ljust(GEN_LABEL)), MUTED


def field(value: str, width: int = 0, placeholder: str = "") -> Cell:
    """A field `width` wide (0: the rest of the row) showing `value`, or its placeholder."""
    text = value or placeholder
    return text.ljust(width), "" if value else MUTED


def row(*cells: Cell | Content) -> Content:
    return Content.assemble(*cells)


def cut(line: Content, width: int) -> Content:
    """A row cut at the width it is laid out at, as its widgets are (0: not laid out yet, whole)."""
    return line.truncate(width) if width else line


def picker(value: str, width: int, placeholder: str = "") -> Content:
    """A compact Select `width` wide showing `value` (or its placeholder), its arrow at the
    right but for one column (Textual's compact SelectCurrent: padding 0 1 0 0)."""
    text, style = field(value, 0, placeholder)
    return Content.assemble((text.ljust(width - 2)[: width - 2], style), "▼ ")
