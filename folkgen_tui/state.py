"""What the studio holds between screens: the model in use and the session's tunes.

Nothing here imports torch: the model objects are typed loosely and built by workers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from folkgen_tui.format import tune_title


@dataclass
class LoadedModel:
    """A checkpoint loaded for generation, with its fast sampler."""

    path: Path | None
    why: str  # "chosen", "newest checkpoint", "just trained"…
    checkpoint: Any  # core.checkpoint.Checkpoint
    sampler: Any  # core.sample.Sampler

    @property
    def label(self) -> str:
        return self.path.name if self.path else "model"

    @property
    def vocab_chars(self) -> tuple[str, ...]:
        return tuple(self.checkpoint.vocab.chars)


@dataclass
class TuneRecord:
    """One generated tune of this session, with what it took to make it again."""

    number: int
    prompt: str
    text: str
    seed: int
    temperature: float
    top_k: int | None
    max_chars: int
    model_label: str
    seconds: float = 0.0
    check: Any | None = None  # core.abc.TuneCheck
    check_error: str | None = None  # why it could not be checked (e.g. abc2midi missing)
    line_offset: int = 0  # lines of the text before the checked tune (error lines are relative)
    novelty: str = ""  # "close to <corpus tune> (93%)" when it nearly copies one
    music: str = ""  # the musical verdict: "16 bars · AABB · ends on G"
    rendered: Any | None = None  # core.audio.Rendered
    notes: list[Any] = field(default_factory=list)
    saved: list[Path] = field(default_factory=list)

    @property
    def title(self) -> str:
        return tune_title(self.text, f"tune {self.number}")

    @property
    def valid(self) -> bool | None:
        return None if self.check is None else bool(self.check.valid)
