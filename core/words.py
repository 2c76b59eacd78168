"""How counts are written in what folkgen says: one word each way, for the CLI and the app."""

from __future__ import annotations


def plural(n: int, word: str) -> str:
    """ "1 bar", "16 bars", "2 .abc files": the count and its word, as every report writes them
    (never "tune(s)")."""
    return f"{n:,} {word}" + ("" if n == 1 else "s")
