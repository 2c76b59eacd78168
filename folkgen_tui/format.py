"""Small text helpers shared by the screens: durations, numbers, characters, ABC prompts."""

from __future__ import annotations

import math
import time

# Characters that are invisible or ambiguous when shown alone.
_CHAR_NAMES = {"\n": "⏎", " ": "␣", "\t": "⇥"}


def show_char(ch: str) -> str:
    """A vocabulary character as something visible on screen."""
    return _CHAR_NAMES.get(ch, ch)


def duration(seconds: float | None) -> str:
    """1:05 / 1:02:03; '–' when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "–"
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def number(value: float | int | None, digits: int = 3) -> str:
    """A float with fixed decimals, an int with thousands separators; '–' when missing."""
    if value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return "–"
    return f"{value:.{digits}f}"


def when_saved(stamp: float, now: float | None = None) -> str:
    """A file's time in a table column: "Dec 4 00:41" this year, "2025-12-04" before (the
    Models table's full "2026-12-04 00:41" was its last column, and cut at 100 columns)."""
    when = time.localtime(stamp)
    if when.tm_year == time.localtime(time.time() if now is None else now).tm_year:
        return f"{time.strftime('%b', when)} {when.tm_mday} {time.strftime('%H:%M', when)}"
    return time.strftime("%Y-%m-%d", when)


def file_size(n_bytes: int) -> str:
    size = float(n_bytes)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def prompt_to_text(prompt: str) -> str:
    r"""The prompt field is one line: `\n` stands for a line break (no backslash in ABC)."""
    return prompt.replace("\\n", "\n")


def text_to_prompt(text: str) -> str:
    return text.replace("\n", "\\n")


HEADER_ORDER = "XTMLK"  # the corpus's order of the header fields the pickers write


def header_fields(prompt: str) -> dict[str, str]:
    """The prompt's (text) header fields, each's first value, to its K: line (the header's
    end) included: what the quick pickers show, and whether a key has its metre."""
    from core.corpus import field_value  # here: it brings numpy, not needed to start

    fields: dict[str, str] = {}
    for line in prompt.split("\n"):
        if line[1:2] == ":" and line[0].isalpha():  # its comment left out, as core reads it
            fields.setdefault(line[0], field_value(line[2:]))
        if line.startswith("K:"):
            break
    return fields


def with_header_field(prompt: str, field: str, value: str) -> str:
    """The prompt (text) with its `field` line (T, M or K, from the quick pickers) set to
    `value`, or taken out for "" (a K: line with music after it stays): the rest of what was
    written, other fields and a first bar, is kept as it was. A K: line brings an L:1/8 where
    there is none, and a prompt that gets a field is numbered (X:1)."""
    from core.corpus import is_field_line as _field  # here: it brings numpy, not needed to start

    lines = prompt.split("\n")
    body_at = next((i for i, line in enumerate(lines) if line.startswith("K:")), None)
    if body_at is None:  # no K: yet: the header runs to the first line of music
        body_at = next((i for i, line in enumerate(lines)
                        if line and not _field(line) and not line.startswith("%")), None)  # fmt: skip
        body_at = len(lines) if body_at is None else body_at
    else:
        body_at += 1
    header = lines[:body_at]
    at = next((i for i, line in enumerate(header) if line.startswith(field + ":")), None)
    if not value:
        has_body = any(line.strip() for line in lines[body_at:])
        if at is not None and not (field == "K" and has_body):
            del lines[at]
        if {line for line in lines if line} <= {"X:1", "L:1/8"}:
            return "X:"  # all the pickers back to "any": the default prompt
        return "\n".join(lines)
    if at is not None:
        lines[at] = f"{field}:{value}"
    else:
        # K: after every header field; the others after the fields the corpus writes first.
        earlier = HEADER_ORDER[: HEADER_ORDER.index(field)]
        at = max((i + 1 for i, line in enumerate(header)
                  if _field(line) and (field == "K" or line[0] in earlier)), default=0)  # fmt: skip
        lines.insert(at, f"{field}:{value}")
        if field == "K" and not any(line.startswith("L:") for line in header):
            lines.insert(at, "L:1/8")
    x_at = next((i for i, line in enumerate(lines) if line.startswith("X:")), None)
    if x_at is None:
        lines.insert(0, "X:1")
    elif not lines[x_at][2:].strip():
        lines[x_at] = "X:1"
    if _field(lines[-1]):  # a field's line ends: the model goes on with the next line
        lines.append("")
    return "\n".join(lines)

