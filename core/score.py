"""Sheet music: one tune's ABC text -> SVG (verovio), PNG (resvg) and an A4 PDF page (Pillow).

No torch, no textual. verovio runs in a child process (core.engraver); resvg and Pillow are
imported inside the functions that need them, so importing this module costs nothing.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from fractions import Fraction

from core.abc import SoundError, printable
from core.corpus import header_field, is_field_line
from core.engraver import ENGRAVER, EngraverCrashed
from core.music_analysis import default_unit, parse_meter, parse_unit

PAGE_WIDTH = 2100  # verovio's units: tenths of a millimetre, so A4's 210 mm
A4_MM = (210, 297)
PDF_DPI = 200  # a staff line stays crisp in print; a page is ~100 kB
MAX_PAGE_HEIGHT = 60_000  # verovio's largest
STAFF_SPACE = 18  # verovio's distance between staff lines, in its pixels at scale 100
# Texts verovio writes in "Times, serif"; resvg asks the system's font database for them.
SERIF = "DejaVu Serif"


class ScoreError(SoundError):
    """verovio could not engrave the tune; the message is one line for a person."""

    def __init__(self, message: str, line: int | None = None):
        self.line = line  # the tune's line (1-based) verovio could not read, when known
        super().__init__(message)


@dataclass(frozen=True)
class Colours:
    ink: str = "#000000"  # staff, notes and text
    paper: str | None = "#ffffff"  # None: transparent


LIGHT = Colours()


@dataclass(frozen=True)
class Score:
    title: str
    pages: list[str]  # SVG; a folk tune fits one page, as wide as asked and as tall as it needs
    empty: bool = False  # the tune has a header and no notes: drawn as one empty bar
    voices: int = 1  # the tune's voices (V:); only the first is drawn

    @property
    def svg(self) -> str:
        return self.pages[0]

    @property
    def note(self) -> str:
        """What the picture leaves out, for a person; "" when nothing."""
        if self.voices > 1:
            return f"its first voice of {self.voices}: verovio draws one"
        return ""


_Q_LINE = re.compile(r"^Q:\s*([^\"\n]*?)\s*$", re.M)
_BEAT_SIGNS = {Fraction(1, 4): "♩", Fraction(3, 8): "♩.", Fraction(1, 8): "♪", Fraction(1, 2): "𝅗𝅥"}


def _tempo_label(value: str) -> str | None:
    """'1/4=120' -> '♩ = 120' (verovio prints only a Q: line's quoted text)."""
    beat, _, bpm = value.rpartition("=")
    if not bpm.strip().isdigit():
        return None
    try:
        sign = _BEAT_SIGNS.get(Fraction(beat.strip())) if beat.strip() else None
    except (ValueError, ZeroDivisionError):
        sign = None
    if beat.strip() and sign is None:
        sign = beat.strip()
    return f"{sign or '♩'} = {bpm.strip()}"


_CHORD_NOTE = r"[\^_=]*[A-Ga-g][,']*"
# A chord of notes without lengths of their own, with the chord's length after it: [CEG]4.
_CHORD_LENGTH = re.compile(rf"\[((?:{_CHORD_NOTE})+)\](\d+(?:/\d*)?|/+\d*)")


def _chord_lengths_inside(line: str) -> str:
    """[CEG]4 as [C4E4G4]: the same chord to abc2midi, and verovio, which reads a chord's length
    only from its notes, drew it as the unit length (two half-note chords as eighths)."""

    def inside(m: re.Match[str]) -> str:
        length = m.group(2)
        return "[" + "".join(n + length for n in re.findall(_CHORD_NOTE, m.group(1))) + "]"

    return _CHORD_LENGTH.sub(inside, line)


def _line_for_verovio(line: str) -> str:
    """One line as verovio can read it. It aborts or crashes on what abc2midi skips with a
    warning: a lone "!" (ABC 2.0's line break, ending most default-corpus lines; decorations
    come in pairs, "!trill!"), a "]" that closes nothing, an X: that is not a number."""
    if is_field_line(line):
        return "X:1" if line.startswith("X:") and not line[2:].strip().isdigit() else line
    if line.count("!") % 2 == 1:
        cut = line.rfind("!")
        line = line[:cut] + line[cut + 1 :]
    return _chord_lengths_inside(_without_stray_brackets(line))


def _without_stray_brackets(line: str) -> str:
    out: list[str] = []
    open_ = 0  # chords "[CEG" and inline fields "[K:G" waiting for their "]"
    for i, ch in enumerate(line):
        if ch == "[" and line[i + 1 : i + 2] not in ("|", "") and not line[i + 1].isdigit():
            open_ += 1
        elif ch == "]":
            if open_:
                open_ -= 1
            elif not out or out[-1] not in "|:":  # "|]" is a bar line
                continue
        out.append(ch)
    return "".join(out)


def _for_verovio(abc: str) -> str:
    """The tune as verovio reads it best, line for line (line numbers stay the tune's)."""

    def label(m: re.Match[str]) -> str:
        text = _tempo_label(m.group(1))
        return f'Q:"{text}" {m.group(1)}' if text else m.group(0)

    abc = "\n".join(_line_for_verovio(line) for line in abc.split("\n"))
    return _Q_LINE.sub(label, abc, count=1)


_MUSIC = re.compile(r"[A-Ga-gzZx]")
_QUOTED = re.compile(r'"[^"]*"|![^!\n]*!|\+[^+\n]*\+')


def _has_music(abc: str) -> bool:
    """Whether any line after the K: line holds a note or a rest (chord names, decorations,
    fields and comments are not music)."""
    lines = abc.split("\n")
    start = next((i + 1 for i, line in enumerate(lines) if line.startswith("K:")), len(lines))
    for line in lines[start:]:
        if is_field_line(line) or line.startswith("%"):
            continue
        if _MUSIC.search(_QUOTED.sub("", _without_comment(line))):
            return True
    return False


def _empty_bar(abc: str) -> str:
    """One bar of invisible rest (`x`) as long as the metre's bar: a header-only tune (the
    corpus has two) is engraved as its title, clef, key and time signatures on an empty staff."""
    meter = parse_meter(header_field(abc, "M"))
    unit = parse_unit(header_field(abc, "L")) or default_unit(meter)
    units = (meter.bar if meter else Fraction(1)) / unit
    length = (
        str(units.numerator) if units.denominator == 1 else f"{units.numerator}/{units.denominator}"
    )
    return f"x{length}|]\n"


def _last_bar_closed(abc: str) -> str:
    """The tune with a bar line after its last note where it has none (a tune cut off by the
    length limit, or written so): verovio leaves out a last bar that no bar line closes, which
    abc2midi plays."""
    lines = abc.split("\n")
    for i in range(len(lines) - 1, -1, -1):
        music = _without_comment(lines[i]).rstrip()
        if not music or is_field_line(music):
            continue
        # A bar line ends it: |, ||, :|, |], ::, |: (a "]" alone closes a chord or a field).
        if not music.endswith(("|", ":", "|]")):
            lines[i] = music + "|]" + lines[i][len(music) :]
        break
    return "\n".join(lines)


def _without_comment(line: str) -> str:
    """The line up to its comment: a % outside quotes ("^50%" is text) and not escaped (\\%)."""
    quoted = False
    for i, ch in enumerate(line):
        if ch == '"':
            quoted = not quoted
        elif ch == "%" and not quoted and (i == 0 or line[i - 1] != "\\"):
            return line[:i]
    return line


_VOICE = re.compile(r"V:\s*([^\s\]]+)")


def _voice_of(line: str) -> str | None:
    """The voice a line names: a V: line, or a body line starting with [V:id]."""
    if line.startswith("V:") or line.startswith("[V:"):
        m = _VOICE.match(line.lstrip("["))
        return m.group(1) if m else None
    return None


def first_voice(abc: str) -> tuple[str, int]:
    """The tune with only its first voice's music, and how many voices it has. verovio reads
    one voice (its ABC import has none of V:): a second was drawn after the first on the same
    staff, a bass line in ledger lines below a treble clef."""
    lines = abc.split("\n")
    ids: list[str] = []
    for line in lines:
        voice = _voice_of(line)
        if voice is not None and voice not in ids:
            ids.append(voice)
    if len(ids) < 2:
        return abc, max(len(ids), 1)
    kept: list[str] = []
    current = ids[0]  # music before any voice is named is the first voice's
    for line in lines:
        voice = _voice_of(line)
        current = voice if voice is not None else current
        other = voice not in (None, ids[0]) or (voice is None and current != ids[0])
        # Another voice's line becomes a comment: the lines an error names stay the tune's.
        kept.append("%" if other and line.strip() and not line.startswith("%") else line)
    return "\n".join(kept), len(ids)


def _coloured(svg: str, ink: str) -> str:
    # verovio draws everything in currentColor under one color="black" group; text uses fill.
    return svg.replace('color="black"', f'color="{ink}" fill="{ink}"', 1)


def _pages(abc: str, width: int) -> list[str]:
    options = {
        "pageWidth": width,
        "pageHeight": MAX_PAGE_HEIGHT,  # one page, however long the tune at this width
        "adjustPageHeight": True,  # as tall as the music: no blank A4 below a reel
        "breaks": "auto",  # wrap to the width, not to the ABC's line ends
        "footer": "none",
        "header": "auto",
    }
    return ENGRAVER.engrave(abc, options)


def _failing_line(abc: str, width: int) -> int | None:
    """The tune's line (1-based) at which verovio first crashes: the shortest crashing prefix."""
    lines = abc.split("\n")
    head = next((i + 1 for i, line in enumerate(lines) if line.startswith("K:")), 0)
    lo, hi = head, len(lines)  # prefixes of lo lines engrave (or are only headers); of hi crash
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            _pages("\n".join(lines[:mid]) + "\n", width)
            lo = mid
        except EngraverCrashed:
            hi = mid
    return hi if hi > head else None


def engrave(abc: str, *, width: int = PAGE_WIDTH, colours: Colours = LIGHT) -> Score:
    """The tune's score as SVG, `width` tenths of a millimetre wide (A4 by default).

    Title (T:), tempo (Q:) and the key and time signatures are on the page; long tunes wrap
    across systems. Raises ScoreError naming the line verovio could not read.
    """
    if not any(line.startswith("K:") for line in abc.split("\n")):
        # verovio crashes without one; abc2midi too reads no music before a K: line
        raise ScoreError("this tune has no K: (key) line, so no music to engrave")
    abc, voices = first_voice(abc)
    empty = not _has_music(abc)
    text = _for_verovio(abc.rstrip("\n") + "\n")
    if empty:
        text += _empty_bar(abc)
    else:
        text = _last_bar_closed(text)
    # verovio crashes on a tune without an X: line (abc2midi reads it as number 1): one is put
    # first, and the lines an error names are the tune's own.
    added = 0 if any(line.startswith("X:") for line in text.split("\n")) else 1
    text = "X:1\n" * added + text
    try:
        pages = _pages(text, width)
    except EngraverCrashed as e:
        line = _failing_line(text, width)
        where = "its header"
        if line:
            where = f"line {line - added}: {printable(text.split(chr(10))[line - 1].strip())[:40]}"
        raise ScoreError(
            f"verovio cannot read this tune at {where} ({e})", line - added if line else None
        ) from None
    except SoundError as e:
        raise ScoreError(str(e)) from None
    drawn = ("note", "rest", "measure") if empty else ("note", "rest")
    if not pages or not any(f'class="{kind}"' in pages[0] for kind in drawn):
        raise ScoreError("verovio found no music in this tune (is there a K: line and notes?)")
    title = printable(header_field(abc, "T") or "") or "Untitled"
    return Score(title, [_coloured(page, colours.ink) for page in pages], empty, voices)


def svg_size(svg: str) -> tuple[int, int]:
    """(width, height) in pixels of verovio's SVG (its root's width="…px" height="…px")."""
    m = re.search(r'<svg[^>]*?width="(\d+)px" height="(\d+)px"', svg)
    if not m:
        raise ScoreError("not an SVG verovio wrote")
    return int(m.group(1)), int(m.group(2))


def to_png(svg: str, *, width: int | None = None, paper: str | None = "#ffffff") -> bytes:
    """PNG bytes of an SVG, `width` pixels wide (default: the SVG's own size)."""
    import resvg_py

    return bytes(
        resvg_py.svg_to_bytes(svg_string=svg, width=width, background=paper, serif_family=SERIF)
    )


def to_pdf(svgs: list[str], *, dpi: int = PDF_DPI) -> bytes:
    """A PDF with one A4 page per SVG (a tune), each score at the top of its page.

    Pages are images drawn by resvg and put together by Pillow: both install from wheels with
    no system libraries, and a folk tune's page stays small.
    """
    from PIL import Image

    page_px = (round(A4_MM[0] / 25.4 * dpi), round(A4_MM[1] / 25.4 * dpi))
    margin = round(10 / 25.4 * dpi)
    pages = []
    for svg in svgs:
        width, height = svg_size(svg)
        fit = min((page_px[0] - 2 * margin) / width, (page_px[1] - 2 * margin) / height)
        image = Image.open(io.BytesIO(to_png(svg, width=round(width * fit), paper="#ffffff")))
        page = Image.new("L", page_px, 255)
        page.paste(image.convert("L"), (margin, margin))
        pages.append(page)
    if not pages:
        raise ScoreError("no tunes to put in a PDF")
    out = io.BytesIO()
    pages[0].save(out, "PDF", resolution=dpi, save_all=True, append_images=pages[1:])
    return out.getvalue()


SCORE_SUFFIXES = (".svg", ".png", ".pdf")


def file_bytes(svg: str, suffix: str) -> bytes:
    """One score file's bytes from its SVG: .svg as it is, .png, or .pdf (one A4 page)."""
    if suffix == ".svg":
        return svg.encode("utf-8")
    if suffix == ".png":
        return to_png(svg)
    if suffix == ".pdf":
        return to_pdf([svg])
    raise ValueError(f"no score file of kind {suffix}")


def score_files(abc: str, suffixes: tuple[str, ...] = SCORE_SUFFIXES) -> dict[str, bytes]:
    """The tune's score as the bytes of each file asked for (.svg, .png, .pdf), black on white."""
    svg = engrave(abc).svg
    return {suffix: file_bytes(svg, suffix) for suffix in suffixes}
