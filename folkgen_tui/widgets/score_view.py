"""A tune's sheet music in the terminal: engraved on a worker thread (core.score), shown as a
real image where the terminal speaks Kitty graphics or Sixel, else in Unicode half blocks at a
size where the staff stays legible, else as one line naming the score's saved SVG and PNG."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any

from textual import work
from textual.containers import VerticalScroll
from textual.events import Resize
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Static

from folkgen_tui.graphics import graphics, load_textual_image

# Half blocks draw a cell as two square-ish pixels: a staff line every 2.5 pixels is the
# least that still reads as five lines with notes between them.
HALF_BLOCK_SPACE = 2.5
MIN_HALF_BLOCK_COLUMNS = 60  # narrower, a bar no longer fits a line: the notice instead
MARGIN = 20  # verovio's page margins (tenths of a mm at its scale): little room wasted
RESIZE_DELAY = 0.2  # seconds of quiet after a resize before engraving again


@dataclass(frozen=True)
class Request:
    """Everything a picture depends on: the same request is never engraved twice in a row."""

    abc: str
    columns: int
    kind: str  # graphics().kind
    cell: tuple[int, int]
    ink: str
    paper: str


@dataclass(frozen=True)
class Engraved:
    request: Request
    image: Any | None  # PIL.Image.Image, None when `notice` says why not
    rows: int
    notice: str = ""  # with an image: what it leaves out (a second voice)


def first_tune(text: str) -> str:
    from core.abc import extract_tunes

    tunes = extract_tunes(text, eof_ends_tune=True)
    return tunes[0].text if tunes else text


def engrave_request(request: Request) -> Engraved:
    """The picture for a request (worker thread: verovio and resvg take tens of ms)."""
    from PIL import Image

    from core.abc import SoundError
    from core.score import STAFF_SPACE, Colours, engrave, to_png

    abc = first_tune(request.abc)
    if request.kind in ("tgp", "sixel"):
        cell_w, cell_h = request.cell
        width_px, space = request.columns * cell_w, max(4.0, cell_h / 2)  # a staff: 2 rows
    elif request.kind == "halfcell" and request.columns >= MIN_HALF_BLOCK_COLUMNS:
        width_px, space = request.columns, HALF_BLOCK_SPACE
    else:
        return _saved_notice(request, abc)
    try:
        colours = Colours(request.ink, request.paper)
        score = engrave(abc, width=round(width_px * STAFF_SPACE / space), colours=colours)
        png = to_png(score.svg, width=width_px, paper=request.paper)
    except SoundError as e:  # ScoreError, or the engraver could not start
        return Engraved(request, None, 1, str(e))
    image = Image.open(io.BytesIO(png)).convert("RGB")
    if request.kind == "halfcell":
        rows = math.ceil(image.height / 2)
        image = _padded(image, image.width, rows * 2, request.paper)
    else:
        rows = math.ceil(image.height / request.cell[1])
    return Engraved(request, image, rows, score.note)


def _padded(image: Any, width: int, height: int, paper: str) -> Any:
    from PIL import Image

    canvas = Image.new("RGB", (width, height), paper)
    canvas.paste(image, (0, 0))
    return canvas


def _saved_notice(request: Request, abc: str) -> Engraved:
    """Too narrow (or no image support): say so, and where the score is to be seen: written
    once per tune (its name ends in a digest of its text, found again by a later session)."""
    import hashlib

    from core.abc import SoundError
    from core.paths import previews_dir, slugify
    from core.score import engrave, file_bytes

    why = f"too narrow for a legible score ({request.columns} columns, {MIN_HALF_BLOCK_COLUMNS} needed)"
    folder = previews_dir()
    digest = hashlib.sha256(abc.encode("utf-8")).hexdigest()[:12]
    found = [p for p in folder.glob(f"*-{digest}.svg") if p.with_suffix(".png").exists()]
    if found:
        svg_path = found[0]
    else:
        try:
            score = engrave(abc)
            svg_path = folder / f"{slugify(score.title, 40)}-{digest}.svg"
            folder.mkdir(parents=True, exist_ok=True)
            for path in (svg_path.with_suffix(".png"), svg_path):  # the SVG last: it is looked for
                temporary = path.with_name(path.name + ".part")
                temporary.write_bytes(file_bytes(score.svg, path.suffix))
                temporary.replace(path)
        except (SoundError, OSError) as e:
            return Engraved(request, None, 1, f"{why}; no score: {e}")
    return Engraved(request, None, 1, f"{why}: see {svg_path} (and its .png)")


class ScoreView(VerticalScroll, can_focus=True):
    """`show(text)` engraves the text's first tune (again on resize and theme change)."""

    DEFAULT_CSS = """
    ScoreView { height: 1fr; scrollbar-gutter: stable; }  /* the width never jumps */
    ScoreView > .score-note { width: 1fr; color: $text-muted; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._abc = ""
        self._placeholder = ""
        self._wanted: Request | None = None
        self._shown: Request | None = None
        self._note = Static("", markup=False, classes="score-note")
        self._image: Widget | None = None
        self._timer: Timer | None = None
        self.engraved = 0  # pictures shown (for tests)

    def compose(self) -> Any:
        yield self._note

    def on_mount(self) -> None:
        self.watch(self.app, "theme", self._theme_changed, init=False)

    def _theme_changed(self) -> None:
        self.call_after_refresh(self.redraw)  # once the new theme's colours are applied

    @property
    def up_to_date(self) -> bool:
        """What is shown is what was last asked for (for tests)."""
        return self._shown is not None and self._shown == self._wanted

    @property
    def notice(self) -> str:
        return str(self._note.render())

    def swap_with(self, text: Widget) -> None:
        """The score takes the place of `text` (the tune's ABC), or gives it back."""
        self.display = not self.display
        text.display = not self.display

    def show(self, abc: str, placeholder: str = "no tune to engrave") -> None:
        self._abc = abc
        self._placeholder = placeholder
        self.redraw()

    def on_resize(self, event: Resize) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(RESIZE_DELAY, self.redraw)

    def redraw(self) -> None:
        """Engrave for the current text, width and theme, unless that is what is shown."""
        if not self.display or not self.is_mounted:
            return
        columns = self.scrollable_content_region.width
        if not self._abc.strip():
            self._wanted = self._shown = None
            self._clear_image()
            self._note.update(self._placeholder)
            self._note.display = True
            return
        if columns <= 0:
            return
        _, _, paper, ink = self.colors
        found = graphics()
        request = Request(self._abc, columns, found.kind, found.cell, ink.hex, paper.hex)
        if request in (self._wanted, self._shown):
            return
        self._wanted = request
        if self._shown is None or self._shown.abc != request.abc:
            self._note.update("engraving…")
            self._note.display = True
        self._engrave(request)

    @work(thread=True, exclusive=True, group="score", exit_on_error=False)
    def _engrave(self, request: Request) -> None:
        done = engrave_request(request)
        self.app.call_from_thread(self._engraved, done)

    def _engraved(self, done: Engraved) -> None:
        if done.request != self._wanted:
            return  # a newer text, width or theme is on its way
        self._shown = done.request
        self._clear_image()
        self._note.update(done.notice)
        self._note.display = bool(done.notice)
        if done.image is None:
            return
        self._image = _image_widget(done)
        self.mount(self._image)
        self.engraved += 1

    def _clear_image(self) -> None:
        if self._image is not None:
            self._image.remove()
            self._image = None


def _image_widget(done: Engraved) -> Widget:
    """textual-image's widget for the protocol the terminal speaks (UI thread: see graphics)."""
    images = load_textual_image()
    kinds = {"tgp": images.TGPImage, "sixel": images.SixelImage}
    kind = kinds.get(done.request.kind, images.HalfcellImage)
    widget: Widget = kind(done.image, classes="score-image")
    widget.styles.width = done.request.columns
    widget.styles.height = done.rows
    return widget
