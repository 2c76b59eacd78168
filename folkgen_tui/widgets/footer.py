"""The footer: the current screen's keys in plain words, drawn as one line of text."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import events
from textual.widget import Widget

if TYPE_CHECKING:
    from textual.screen import Screen

# (key as shown, description, enabled, key to simulate when clicked)
FooterEntry = tuple[str, str, bool, str]

# Textual leaves out of the active bindings the keys a focused text field takes, but it does not
# know these key names' characters (textual.keys.key_to_character gives None), so a field would
# keep showing, say, "+ Temp+" or "/ Filter" while the key only types its character.
TYPED_KEYS = {"plus": "+", "minus": "-", "slash": "/", "at": "@", "backslash": "\\",
              "underscore": "_"}  # fmt: skip
# Where the keys overflow the line, the last that fit and this: help lists them all (at 80
# columns the Library's footer ended at "x Delete", History, Keep and Export cut unsaid).
MORE: FooterEntry = ("?", "more", True, "question_mark")
MORE_MARK = "… "


class StudioFooter(Widget):
    """Like Textual's Footer, but one widget: Textual's rebuilds a widget per key whenever the
    keys that apply change (several times per screen switch), which cost ~20 ms of each switch
    and, through a watcher Textual never prunes, kept every old key alive. This one redraws its
    line only when the keys differ."""

    ALLOW_SELECT = False
    COMPONENT_CLASSES = {"studio-footer--key", "studio-footer--description"}
    DEFAULT_CSS = """
    StudioFooter {
        height: 1;
        background: $footer-background;
        color: $footer-foreground;
        text-wrap: nowrap;
        .studio-footer--key {
            color: $footer-key-foreground;
            background: $footer-key-background;
            text-style: bold;
        }
        .studio-footer--description {
            color: $footer-description-foreground;
            background: $footer-description-background;
        }
    }
    """

    def __init__(self) -> None:
        super().__init__()
        self.entries: tuple[FooterEntry, ...] = ()
        self.palette: FooterEntry | None = None
        self._spans: list[tuple[int, int, str]] = []  # (start, end, key): what a click presses

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self.call_after_refresh(self._update_entries)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen[object]) -> None:
        if self.is_attached and screen is self.screen:
            self._update_entries()

    def _update_entries(self) -> None:
        bindings = self.screen.active_bindings
        focused = self.screen.focused
        entries: dict[str, FooterEntry] = {}  # one per action, as Textual's Footer shows them
        for key, (_node, binding, enabled, _tooltip) in bindings.items():
            character = TYPED_KEYS.get(key)
            if character and focused is not None and focused.check_consume_key(key, character):
                continue
            if binding.show and binding.action not in entries:
                display = self.app.get_key_display(binding)
                entries[binding.action] = (display, binding.description, enabled, binding.key)
        palette: FooterEntry | None = None
        if self.app.ENABLE_COMMAND_PALETTE and self.app.COMMAND_PALETTE_BINDING in bindings:
            _node, binding, enabled, _tooltip = bindings[self.app.COMMAND_PALETTE_BINDING]
            display = self.app.get_key_display(binding)
            palette = (display, binding.description, enabled, binding.key)
        if (tuple(entries.values()), palette) != (self.entries, self.palette):
            self.entries, self.palette = tuple(entries.values()), palette
            self.refresh()  # one line of fixed height: no layout

    def render(self) -> Text:
        key_style = self.get_component_rich_style("studio-footer--key")
        description_style = self.get_component_rich_style("studio-footer--description")
        line = Text(no_wrap=True, overflow="crop", end="")
        self._spans = []

        def add(entry: FooterEntry) -> None:
            display, description, enabled, key = entry
            start = len(line)
            line.append(display, key_style)
            if description:
                line.append(f" {description}", description_style)
            if not enabled:
                line.stylize("dim", start)
            self._spans.append((start, len(line), key))

        entries, cut = self.entries, False
        width = self.size.width
        if width > 0 and sum(_width(e) + 1 for e in entries) - 1 > width:
            room = width - len(MORE_MARK) - _width(MORE)
            kept: list[FooterEntry] = []
            for entry in entries:
                room -= _width(entry) + 1
                if room < 0:
                    break
                kept.append(entry)
            entries, cut = tuple(kept), True
        for entry in entries:
            add(entry)
            line.append(" ")
        if cut:  # in place of the palette, for which there is no room either
            line.append(MORE_MARK, description_style)
            add(MORE)
        elif self.palette is not None:  # on the right, where Textual's Footer puts it
            display, description = self.palette[:2]
            gap = (
                self.size.width - len(line) - len(display) - len(description) - 3
            )  # and a space after
            if gap > 0:
                line.append(" " * gap + "▏")  # the separator Textual's Footer draws
                add(self.palette)
        return line

    def on_click(self, event: events.Click) -> None:
        for start, end, key in self._spans:
            if start <= event.x < end:
                event.stop()
                self.app.simulate_key(key)
                return


def _width(entry: FooterEntry) -> int:
    """Columns an entry takes: its key, and a space and its description where it has one."""
    display, description = entry[:2]
    return len(display) + (len(description) + 1 if description else 0)
