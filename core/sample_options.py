"""What a sampling call is asked for (prompt, temperature, top-k, seed, length, grammar, copy),
without torch: the app's process builds these and hands them to the engine's (core/engine.py)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from core.copy_model import CopyRule
from core.corpus import UnknownCharacters, Vocabulary

DEFAULT_PROMPT = "X:"
MAX_CHARS_LIMIT = 1_000_000
# Seeds a tune is drawn with: a batch's stream b (and the CLI's tune b) takes seed + b, and the
# tunebook keeps seeds as SQLite's 64-bit integers, so there is room above the largest.
MAX_SEED = 2**62


class SettingError(ValueError):
    """A sampling setting refused: `field` is its name as said ("temperature", "top-k", "max
    chars"), `problem` what is wrong ("must be …"); the CLI names the option typed by it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field, self.problem = field, problem


@dataclass(frozen=True)
class SampleOptions:
    prompt: str = DEFAULT_PROMPT
    temperature: float = 1.0  # 0 means greedy (always the most likely character)
    top_k: int | None = None  # None or 0: no filtering
    seed: int | None = None
    max_chars: int = 1000  # characters generated after the prompt
    stop_at_tune_end: bool = True  # stop at the blank line that ends a tune
    grammar: bool = False  # draw only characters ABC syntax allows next (core/abc_grammar.py)
    # The copy model's largest weight (lam for a long match), in [0, 1); 0 turns it off.
    copy: float = CopyRule().weight

    # Below this the tempered logits overflow float32 (1e-308 gave NaN and numpy warnings), and
    # the draw is the greedy one anyway: 0 asks for greedy.
    MIN_TEMPERATURE: ClassVar[float] = 1e-3

    def validate(self, vocab: Vocabulary) -> None:
        self.check_settings()
        unknown = vocab.unknown(self.prompt)
        if unknown:
            raise UnknownCharacters(unknown)

    def check_settings(self) -> None:
        """The settings that need no model (ValueError): the CLI checks them before it loads
        one, which takes seconds."""
        if not np.isfinite(self.temperature) or self.temperature < 0:
            raise SettingError("temperature", f"must be a number, 0 or more, not {self.temperature}")
        if 0 < self.temperature < self.MIN_TEMPERATURE:
            raise SettingError(
                "temperature",
                f"must be 0 (greedy) or at least {self.MIN_TEMPERATURE:g}, not {self.temperature:g}",
            )
        if not (np.isfinite(self.copy) and 0 <= self.copy < 1):
            raise SettingError("copy", f"must be at least 0 (off) and below 1, not {self.copy}")
        if self.top_k is not None and self.top_k < 0:
            raise SettingError("top-k", f"must be 0 (off) or more, not {self.top_k}")
        if self.seed is not None and not 0 <= self.seed <= MAX_SEED:
            raise SettingError("seed", f"must be between 0 and {MAX_SEED:,}, not {self.seed}")
        if _header_cut_short(self.prompt):
            raise ValueError(
                "the prompt has a blank line inside a tune's header, before its K: line (a "
                "blank line ends a tune): remove it"
            )
        if not 0 <= self.max_chars <= MAX_CHARS_LIMIT:  # (the front ends ask for 1 at least)
            most = f"at most {MAX_CHARS_LIMIT:,}" if self.max_chars > 0 else "0 or more"
            raise SettingError("max chars", f"must be {most}, not {self.max_chars}")


def _header_cut_short(prompt: str) -> bool:
    """A tune's header in the prompt ends at a blank line before its K: line: the model then
    wrote a tune of its own after it, and the text held a header that no tool could read
    (abc2midi: "No valid K: field"), though the tune after it was valid."""
    ended = re.split(r"\n[ \t]*\n", prompt.replace("\r\n", "\n"))[:-1]  # those a blank line ends
    for part in ended:
        lines = part.split("\n")
        if any(line.startswith("X:") for line in lines) and not any(
            line.startswith("K:") for line in lines
        ):
            return True
    return False


def random_seed() -> int:
    """A fresh seed to report with a tune, so that any tune can be sampled again."""
    return secrets.randbelow(2**31)
