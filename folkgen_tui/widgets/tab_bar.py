"""A row of tabs drawn as one line: the Dataset screen's Summary, Vocabulary and Tunes."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import events
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget


class TabBar(Widget):
    """`Summary   Vocabulary   Tunes`, the active tab marked; a click on a tab posts Clicked
    (the footer shows the keys: which apply depends on the tab). One widget drawing one line,
    as NavBar: Textual's TabbedContent (a tab bar of a widget per tab, an underline, panes) was
    two fifths of the first frame's work (issue 14). The screen shows the tab's content (a
    ContentSwitcher) and sets `active`."""

    ALLOW_SELECT = False
    COMPONENT_CLASSES = {"tab-bar--tab", "tab-bar--active"}
    DEFAULT_CSS = """
    TabBar {
        height: 1;
        margin-bottom: 1;
        .tab-bar--tab {
            color: $text-muted;
        }
        .tab-bar--active {
            color: $text;
            text-style: bold underline;
        }
    }
    """

    active: reactive[str] = reactive("")

    @dataclass
    class Clicked(Message):
        tab: str

    def __init__(self, tabs: tuple[tuple[str, str], ...], active: str, *, id: str) -> None:
        """`tabs`: (label, id) each."""
        super().__init__(id=id)
        self.tabs = tabs
        self.set_reactive(TabBar.active, active)
        self._spans: list[tuple[int, int, str]] = []  # (start, end, tab): what a click opens
        self._notes: dict[str, str] = {}  # a word beside a tab's label (its list filtered)

    def set_note(self, tab: str, note: str) -> None:
        """Show `note` beside the tab's label (empty: none)."""
        if self._notes.get(tab, "") != note:
            self._notes[tab] = note
            self.refresh()

    def render(self) -> Text:
        tab_style = self.get_component_rich_style("tab-bar--tab")
        active_style = self.get_component_rich_style("tab-bar--active")
        line = Text(" ", no_wrap=True, overflow="crop", end="")
        self._spans = []
        for label, tab in self.tabs:
            start = line.cell_len
            line.append(label, active_style if tab == self.active else tab_style)
            if self._notes.get(tab):
                line.append(f" ({self._notes[tab]})", tab_style)
            self._spans.append((start, line.cell_len, tab))
            line.append("   ")
        return line

    def on_click(self, event: events.Click) -> None:
        for start, end, tab in self._spans:
            if start <= event.x < end:
                event.stop()
                self.post_message(self.Clicked(tab))
                return
