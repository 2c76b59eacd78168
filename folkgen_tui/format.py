"""Small text helpers shared by the screens: durations, numbers, characters, ABC prompts."""

from __future__ import annotations

import math

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


def build_prompt(title: str = "", meter: str = "", key: str = "") -> str:
    """An ABC header in the corpus's order (X, T, M, L, K) from the quick pickers."""
    lines = ["X:1"]
    if title.strip():
        lines.append(f"T:{title.strip()}")
    if meter:
        lines.append(f"M:{meter}")
    if key:
        lines.append("L:1/8")
        lines.append(f"K:{key}")
    return "\n".join(lines) + "\n" if (meter or key or title.strip()) else "X:"
