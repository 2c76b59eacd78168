"""The voice a tune plays in: instrument, tempo and playback transpose, on one row. Generate and
the Library each show one; both edit the app's one voice (remembered in the settings)."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.message import Message
from textual.validation import Function
from textual.widgets import Input, Label

from core.voice import INSTRUMENTS, Voice, VoiceError
from folkgen_tui.widgets.select import Select
from folkgen_tui.widgets.sketch import field, label, picker, row


def _number(text: str, name: str) -> int | None:
    text = text.strip()
    try:
        return int(text) if text else None
    except ValueError:
        raise VoiceError(f"the {name} must be a whole number, not {text!r}") from None


def _field(name: str, value: int | None, placeholder: str) -> Input:
    """The tempo or transpose field (its id is `name`): valid when its text is a value Voice
    takes (empty: unset)."""

    def valid(text: str) -> bool:
        try:
            number = _number(text, name)
            Voice(tempo=number) if name == "tempo" else Voice(transpose=number or 0)
        except VoiceError:
            return False
        return True

    return Input(
        str(value) if value else "", placeholder=placeholder, compact=True, id=name,
        type="integer", validators=[Function(valid, f"{name} out of range")],
    )  # fmt: skip


def voice_sketch(voice: Voice) -> Content:
    """The row as it first shows `voice` (widgets/sketch.py; widths as folkgen.tcss's)."""
    return row(
        label("Voice"), picker(voice.instrument or "", 20, "as written"),
        label("Tempo", True), field(str(voice.tempo or ""), 7, "tune's"),
        label("Transpose", True), field(str(voice.transpose or ""), 5, "0"),
    )  # fmt: skip


class VoiceRow(Horizontal):
    """Voice [instrument ▼]  Tempo [  ]  Transpose [ ]; posts Changed with each valid voice (the
    fields' validators mark the others)."""

    @dataclass
    class Changed(Message):
        voice: Voice

    def __init__(self, voice: Voice, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="gen-row voice-row")
        self._voice = voice
        self._posted: list[Voice] = []  # voices this row posted (Changed) not back yet

    def compose(self) -> ComposeResult:
        voice = self._voice
        yield Label("Voice", classes="gen-label")
        yield Select(
            [(name, name) for name in sorted(INSTRUMENTS)], prompt="as written",
            value=voice.instrument or Select.NULL, compact=True, id="instrument",
        )  # fmt: skip
        yield Label("Tempo", classes="gen-label-short")
        yield _field("tempo", voice.tempo, "tune's")
        yield Label("Transpose", classes="gen-label-short")
        yield _field("transpose", voice.transpose, "0")

    def read(self) -> Voice:
        """The Voice of the three fields; VoiceError (one sentence) when one is off."""
        instrument = self.query_one("#instrument", Select).value
        return Voice(
            instrument if isinstance(instrument, str) else None,
            _number(self.query_one("#tempo", Input).value, "tempo"),
            _number(self.query_one("#transpose", Input).value, "transpose") or 0,
        )

    def show(self, voice: Voice) -> None:
        """Show a voice chosen elsewhere (the other screen's row), unless it is shown already.
        Not this row's own voices coming back through the app (in the order it took them):
        typing on meanwhile (a field cleared, then an out-of-range digit) was wiped by them."""
        if voice in self._posted:
            del self._posted[: self._posted.index(voice) + 1]
            return
        self._posted.clear()  # (one the app already had never comes back)
        try:
            if self.read() == voice:
                return
        except VoiceError:
            pass  # a field being edited here that is off: the voice chosen elsewhere wins
        self._voice = voice
        with self.prevent(Select.Changed, Input.Changed):
            self.query_one("#instrument", Select).value = voice.instrument or Select.NULL
            self.query_one("#tempo", Input).value = str(voice.tempo) if voice.tempo else ""
            self.query_one("#transpose", Input).value = (
                str(voice.transpose) if voice.transpose else ""
            )

    @on(Select.Changed, "#instrument")
    @on(Input.Changed, "#tempo, #transpose")
    def _changed(self, event: Select.Changed | Input.Changed) -> None:
        event.stop()
        try:
            voice = self.read()
        except VoiceError:
            return
        if voice == self._voice:  # its fields' first values, as they were made: no edit
            return  # (posted, they set back a voice chosen elsewhere since: the app's was)
        self._voice = voice
        # (one the app has already never comes back: kept, harmless, until another row's voice)
        self._posted = [*self._posted[-7:], voice]
        self.post_message(self.Changed(voice))
