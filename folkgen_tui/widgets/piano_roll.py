"""A piano roll of a tune's notes with a moving playhead, drawn with half-block characters
(two pitches per text row); the view scrolls so the playhead stays a quarter in from the left."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from rich.segment import Segment
from rich.style import Style
from textual.reactive import reactive
from textual.strip import Strip
from textual.timer import Timer
from textual.widget import Widget

NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
EMPTY, AHEAD, PLAYED, SOUNDING = 0, 1, 2, 3
GUTTER = 4

if TYPE_CHECKING:
    from core.audio import Note


def note_name(pitch: int) -> str:
    return f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


class PianoRoll(Widget):
    """`notes` are objects with pitch, start_seconds and duration_seconds (core.audio.Note)."""

    COMPONENT_CLASSES = {
        "piano-roll--ahead",
        "piano-roll--played",
        "piano-roll--sounding",
        "piano-roll--playhead",
        "piano-roll--gutter",
    }
    DEFAULT_CSS = """
    PianoRoll { height: 8; }
    PianoRoll > .piano-roll--ahead { color: $primary; }
    PianoRoll > .piano-roll--played { color: $primary 40%; }
    PianoRoll > .piano-roll--sounding { color: $warning; }
    PianoRoll > .piano-roll--playhead { background: $accent 35%; }
    PianoRoll > .piano-roll--gutter { color: $text-muted; }
    """

    position: reactive[float] = reactive(0.0)
    seconds_per_cell: reactive[float] = reactive(0.1)

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.notes: list[Note] = []
        self.duration = 0.0
        self._grid_key: tuple[int, int, int, float] | None = None
        self._timer: Timer | None = None
        self._clock: Callable[[], float | None] = lambda: None

    def play_along(
        self, notes: Sequence[Note], duration: float, clock: Callable[[], float | None]
    ) -> None:
        """Show the roll and move its playhead to `clock()` (seconds, None: nothing playing)
        fifteen times a second, until `stop_along`."""
        if notes is not self.notes:
            self.set_notes(notes, duration)
        self._clock = clock
        self.display = True
        if self._timer is None:
            self._timer = self.set_interval(1 / 15, self._tick)

    def stop_along(self) -> None:
        self.display = False
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def _tick(self) -> None:
        position = self._clock()
        if position is not None:
            self.position = position

    def set_notes(self, notes: Sequence[Note], duration: float | None = None) -> None:
        self.notes = notes if isinstance(notes, list) else list(notes)
        end = max((n.start_seconds + n.duration_seconds for n in self.notes), default=0.0)
        self.duration = max(end, duration or 0.0)
        self.position = 0.0
        self.refresh()

    def window_start(self, width: int) -> float:
        span = width * self.seconds_per_cell
        start = self.position - span / 4
        return max(0.0, min(start, max(0.0, self.duration - span)))

    def _slot_of(self, height: int) -> tuple[dict[int, int], int]:
        """Pitch -> slot (0 = lowest), in 2 * height slots; a wide range is squeezed."""
        pitches = sorted({n.pitch for n in self.notes})
        slots = 2 * height
        if not pitches:
            return {}, slots
        lo, hi = pitches[0], pitches[-1]
        span = hi - lo + 1
        if span <= slots:
            pad = (slots - span) // 2
            return {p: p - lo + pad for p in pitches}, slots
        return {p: (p - lo) * (slots - 1) // (span - 1) for p in pitches}, slots

    def render_lines_grid(self, width: int, height: int) -> list[list[int]]:
        """The states of every (slot, column) cell: EMPTY, AHEAD, PLAYED or SOUNDING."""
        slot_of, slots = self._slot_of(height)
        grid = [[EMPTY] * width for _ in range(slots)]
        dt = self.seconds_per_cell
        t0 = self.window_start(width)
        for n in self.notes:
            first = int((n.start_seconds - t0) / dt)
            last = max(first, int((n.start_seconds + n.duration_seconds - t0) / dt - 1e-9))
            if last < 0 or first >= width:
                continue
            end = n.start_seconds + n.duration_seconds
            if end <= self.position:
                state = PLAYED
            elif n.start_seconds <= self.position:
                state = SOUNDING
            else:
                state = AHEAD
            row = grid[slot_of[n.pitch]]
            for col in range(max(first, 0), min(last, width - 1) + 1):
                row[col] = max(row[col], state)
        return grid

    def render_line(self, y: int) -> Strip:
        width, height = self.content_size.width, self.content_size.height
        roll_w = max(1, width - GUTTER)
        if y >= height:
            return Strip.blank(width)
        key = (roll_w, height, len(self.notes), self.position)
        if self._grid_key != key:
            self._grid = self.render_lines_grid(roll_w, height)
            self._grid_key = key
        grid = self._grid
        colors = {
            AHEAD: self.get_component_rich_style("piano-roll--ahead").color,
            PLAYED: self.get_component_rich_style("piano-roll--played").color,
            SOUNDING: self.get_component_rich_style("piano-roll--sounding").color,
        }
        base = self.rich_style
        playhead_bg = self.get_component_rich_style("piano-roll--playhead").bgcolor
        t0 = self.window_start(roll_w)
        head_col = int((self.position - t0) / self.seconds_per_cell)
        upper, lower = 2 * (height - 1 - y) + 1, 2 * (height - 1 - y)
        segments = [Segment(self._gutter_label(y, height).ljust(GUTTER)[:GUTTER],
                            base + self.get_component_rich_style("piano-roll--gutter"))]  # fmt: skip
        for col in range(roll_w):
            top, bottom = grid[upper][col], grid[lower][col]
            bg = playhead_bg if col == head_col else None
            if top and bottom:
                char, style = ("█", Style(color=colors[top])) if top == bottom else (
                    "▀", Style(color=colors[top], bgcolor=colors[bottom]))  # fmt: skip
            elif top:
                char, style = "▀", Style(color=colors[top])
            elif bottom:
                char, style = "▄", Style(color=colors[bottom])
            else:
                char, style = " ", Style()
            if bg is not None and not (top and bottom and top != bottom):
                style += Style(bgcolor=bg)
            segments.append(Segment(char, base + style))
        return Strip(Segment.simplify(segments), width)

    def _gutter_label(self, y: int, height: int) -> str:
        """The pitch of the row's upper slot on rows holding a C, and on the top and bottom."""
        pitches = [n.pitch for n in self.notes]
        if not pitches:
            return ""
        lo, hi = min(pitches), max(pitches)
        slots = 2 * height
        span = hi - lo + 1
        pad = (slots - span) // 2 if span <= slots else 0

        def pitch_at(slot: int) -> int:
            if span <= slots:
                return lo - pad + slot
            return lo + round(slot * (span - 1) / (slots - 1))

        upper, lower = 2 * (height - 1 - y) + 1, 2 * (height - 1 - y)
        top, bottom = pitch_at(upper), pitch_at(lower)
        if y in (0, height - 1):
            return note_name(top)
        for p in range(bottom, top + 1):
            if p % 12 == 0:
                return note_name(p)
        return ""
