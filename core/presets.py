"""Named training recipes. Plain data, no torch, so the UI can list them before torch loads."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, TypeVar

C = TypeVar("C", bound="_Config")


class _Config:
    """Plain-dict round trip for checkpoints; unknown keys (from other versions) are ignored."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[C], d: dict[str, Any]) -> C:
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class ModelConfig(_Config):
    vocab_size: int = 83
    embedding_dim: int = 256
    hidden_size: int = 1024
    num_layers: int = 1
    dropout: float = 0.0


@dataclass(frozen=True)
class TrainConfig(_Config):
    seq_length: int = 100
    batch_size: int = 8
    learning_rate: float = 5e-3
    steps: int = 3000
    # A wall-clock budget: when set, it ends training and drives the schedule.
    minutes: float | None = None
    schedule: str = "constant"  # "constant" or "cosine" (with linear warm-up)
    warmup_steps: int = 0
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.0
    grad_clip: float | None = None
    batching: str = "random"  # "random" windows (the seed) or "sequential" (state carried, TBPTT)
    transpose: int = 0  # add training copies shifted 1..n scale steps up and down (0: off)
    eval_every: int = 100
    checkpoint_every: int = 500
    seed: int = 0
    device: str = "auto"
    threads: int = 0  # CPU threads for torch; 0: all cores, fewer while other processes are busy


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    model: ModelConfig
    train: TrainConfig


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "seed",
            "The MIT 6.S191 lab exactly: emb 256, LSTM 1024, seq 100, batch 8, Adam 5e-3, 3000 steps",
            ModelConfig(embedding_dim=256, hidden_size=1024),
            TrainConfig(seq_length=100, batch_size=8, learning_rate=5e-3, steps=3000),
        ),
        Preset(
            "default",
            "folkgen's recipe: LSTM 384, dropout, weight decay, tunes transposed to more keys, "
            "warm-up + cosine decay",
            ModelConfig(embedding_dim=48, hidden_size=384, dropout=0.4),
            TrainConfig(
                seq_length=100, batch_size=32, learning_rate=1e-2, steps=3000,
                schedule="cosine", warmup_steps=50, grad_clip=1.0, weight_decay=0.1, transpose=1,
            ),
        ),
        Preset(
            "tiny",
            "A small, fast model for trying things out (LSTM 128, 300 steps)",
            ModelConfig(embedding_dim=32, hidden_size=128),
            TrainConfig(
                seq_length=64, batch_size=16, learning_rate=1e-2, steps=300,
                schedule="cosine", warmup_steps=10, grad_clip=1.0, eval_every=50,
                checkpoint_every=100,
            ),
        ),
    )
}  # fmt: skip


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}") from None


def with_overrides(cfg: TrainConfig, **overrides: Any) -> TrainConfig:
    return replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
