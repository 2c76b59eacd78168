"""FilterInput (folkgen_tui/widgets/filter_input.py): each keystroke reaches its list at once
and lays out nothing, and a text longer than the field still scrolls to its cursor."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult
from textual.screen import Screen
from textual.widgets import Static

from folkgen_tui.widgets.filter_input import FilterInput

pytestmark = pytest.mark.asyncio


class Field(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def compose(self) -> ComposeResult:
        yield FilterInput(self.texts.append, placeholder="filter", compact=True, id="field")
        yield Static("below")


async def test_each_keystroke_is_handed_over_and_lays_out_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    layouts: list[Screen[object]] = []
    lay_out = Screen._refresh_layout  # what a layout of the screen runs (Textual's own name)

    def counted(screen: Screen[object], *args: object, **kwargs: object) -> None:
        layouts.append(screen)
        lay_out(screen, *args, **kwargs)  # type: ignore[arg-type]

    app = Field()
    async with app.run_test(size=(30, 5)) as pilot:
        field = app.query_one(FilterInput)
        field.focus()
        await pilot.pause()
        monkeypatch.setattr(Screen, "_refresh_layout", counted)
        await pilot.press(*"kesh jig d")
        await pilot.pause()
        assert app.texts == ["kesh jig d"[:n] for n in range(1, 11)]
        assert layouts == []  # Textual's Input laid out the screen on each of these keys
        await pilot.press(*"ouble and more words than fit in the field")
        await pilot.pause()
        # Longer than the field: scrolled to its end, as Textual's Input does (the text and a
        # cell for the cursor: its virtual size followed the text without a layout).
        assert field.value == "kesh jig double and more words than fit in the field"
        assert field.virtual_size.width == len(field.value) + 1
        assert field.scroll_x == field.max_scroll_x == len(field.value) + 1 - 30
        assert app.texts[-1] == field.value and layouts == []
        await pilot.press("home")
        await pilot.pause()
        assert field.scroll_x == 0
