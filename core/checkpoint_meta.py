"""What a checkpoint says about itself, without its tensors and without torch: the app's process
shows and compares these, read for it by the engine's (core/engine.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.corpus import Vocabulary
from core.presets import ModelConfig, TrainConfig

Metrics = dict[str, float | None]
CorpusInfo = dict[str, str | int]  # name, sha256 of its text, tunes (older files: path)


class CheckpointError(ValueError):
    """A checkpoint could not be read or written; the message says why, for a person."""


@dataclass(frozen=True)
class CheckpointMeta:
    model_config: ModelConfig
    train_config: TrainConfig
    vocab: Vocabulary
    step: int = 0
    metrics: Metrics = field(default_factory=dict)  # val_bpc, best_val_bpc, loss, elapsed_s
    corpus: CorpusInfo = field(default_factory=dict)  # what it was trained on, not where
    path: Path | None = None
