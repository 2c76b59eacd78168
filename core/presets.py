"""Named training recipes, and the one check of a recipe's values. Plain data, no torch, so the UI
can list and check them before torch loads."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, TypeVar

C = TypeVar("C", bound="_Config")

# Bounds: far above any recipe here, low enough that nothing read or typed can ask for more memory
# than a laptop has. The seed model has 5.4M parameters; a checkpoint with AdamW's two moments
# stores 12 bytes per parameter (core/checkpoint.py bounds files by this).
MAX_VOCAB = 4096
MAX_WIDTH = 4096  # embedding and LSTM units
MAX_LAYERS = 8
MAX_PARAMETERS = 25_000_000
MAX_CHARS_PER_STEP = 65_536  # batch x sequence length: 20x the default recipe's 3,200
MAX_STEPS = 100_000_000
MAX_MINUTES = 7 * 24 * 60.0
MAX_THREADS = 256
MAX_TRANSPOSE = 6  # scale steps up and down; 7 would be the same tune an octave away
MAX_SEED = 2**63 - 1
SCHEDULES = ("constant", "cosine")
BATCHINGS = ("random",)  # windows at random places, as the seed (the form still shows the field)
DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d{1,2})?")


class ConfigError(ValueError):
    """A recipe value is of the wrong kind or out of range; the message says which, for a person.
    `field`, the recipe's field at fault where one is, and `problem`, the message after the
    field's name: a form names the field by its own label, and points at it."""

    def __init__(self, message: str, field: str | None = None, problem: str = "") -> None:
        super().__init__(message)
        self.field = field
        self.problem = problem or message


def _shown(value: object) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)  # as typed: a form's 100000 is read as 100000.0
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _refuse(label: str, problem: str, field: str | None) -> ConfigError:
    return ConfigError(f"{label} {problem}", field, problem)


def _whole(label: str, value: object, lo: int, hi: int, field: str | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        problem = f"must be a whole number from {lo:,} to {hi:,}, not {_shown(value)}"
        raise _refuse(label, problem, field)


def _number(
    label: str, value: object, lo: float, hi: float, *, above: bool = False, field: str | None = None
) -> None:
    """A finite int or float in [lo, hi] ((lo, hi] when `above`)."""
    ok = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value > lo if above else value >= lo)
        and value <= hi
    )
    if not ok:
        low = f"more than {lo:g}" if above else f"at least {lo:g}"
        raise _refuse(label, f"must be a number {low} and at most {hi:g}, not {_shown(value)}", field)


def _choice(label: str, value: object, options: tuple[str, ...], field: str | None = None) -> None:
    if value not in options:
        raise _refuse(label, f"must be one of {', '.join(options)}, not {_shown(value)}", field)


class _Config:
    """Plain-dict round trip for checkpoints; unknown keys (from other versions) are ignored."""

    def to_dict(self) -> dict[str, Any]:
        fields_: dict[str, Any] = asdict(self)  # type: ignore[call-overload]
        return fields_

    @classmethod
    def from_dict(cls: type[C], d: object) -> C:
        """The config in `d` (missing keys take their defaults), validated: ConfigError if not."""
        if not isinstance(d, dict):
            raise ConfigError(f"settings must be a table of names and values, not {_shown(d)}")
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        config = cls(**{k: v for k, v in d.items() if k in names})
        config.validate()
        return config

    def validate(self) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class ModelConfig(_Config):
    vocab_size: int = 83
    embedding_dim: int = 256
    hidden_size: int = 1024
    num_layers: int = 1
    dropout: float = 0.0

    def num_parameters(self) -> int:
        """CharLSTM's parameter count, by arithmetic (nothing is allocated)."""
        v, e, h = self.vocab_size, self.embedding_dim, self.hidden_size
        lstm = sum(
            4 * h * ((e if layer == 0 else h) + h) + 8 * h for layer in range(self.num_layers)
        )
        return v * e + lstm + h * v + v

    def validate(self) -> None:
        """Types and ranges, checked before a model of this size is ever built."""
        _whole("vocabulary size", self.vocab_size, 1, MAX_VOCAB, field="vocab_size")
        _whole("embedding size", self.embedding_dim, 1, MAX_WIDTH, field="embedding_dim")
        _whole("hidden size", self.hidden_size, 1, MAX_WIDTH, field="hidden_size")
        _whole("number of layers", self.num_layers, 1, MAX_LAYERS, field="num_layers")
        _number("dropout", self.dropout, 0.0, 1.0, field="dropout")
        if self.dropout == 1.0:
            raise _refuse("dropout", "must be less than 1 (1 drops everything)", "dropout")
        if self.num_parameters() > MAX_PARAMETERS:
            raise ConfigError(
                f"a model of {self.num_parameters():,} parameters is more than folkgen trains "
                f"(at most {MAX_PARAMETERS:,}); use fewer hidden units or layers",
                "hidden_size",
            )


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
    batching: str = "random"  # the one kind left (BATCHINGS); checkpoints record it
    transpose: int = 0  # add training copies shifted 1..n scale steps up and down (0: off)
    eval_every: int = 100
    checkpoint_every: int = 500
    seed: int = 0
    device: str = "auto"
    threads: int = 0  # CPU threads for torch; 0: all cores, fewer while other processes are busy

    def validate(self) -> None:
        """Types, ranges and finiteness of every value, with the limit in the message."""
        _whole("sequence length", self.seq_length, 1, MAX_CHARS_PER_STEP, field="seq_length")
        _whole("batch size", self.batch_size, 1, MAX_CHARS_PER_STEP, field="batch_size")
        if self.seq_length * self.batch_size > MAX_CHARS_PER_STEP:
            raise ConfigError(
                f"batch size × sequence length must be at most {MAX_CHARS_PER_STEP:,} characters "
                f"per step, not {self.batch_size:,} × {self.seq_length:,}",
                "batch_size",
            )
        _number("learning rate", self.learning_rate, 0.0, 1.0, above=True, field="learning_rate")
        if self.minutes is not None:
            _number("minutes", self.minutes, 0.0, MAX_MINUTES, above=True, field="minutes")
        # With a wall-clock budget the steps only shape nothing; 0 is allowed there.
        _whole("steps", self.steps, 0 if self.minutes is not None else 1, MAX_STEPS, field="steps")
        _choice("schedule", self.schedule, SCHEDULES, field="schedule")
        _whole("warm-up steps", self.warmup_steps, 0, MAX_STEPS, field="warmup_steps")
        _number("minimum learning-rate ratio", self.min_lr_ratio, 0.0, 1.0, field="min_lr_ratio")
        _number("weight decay", self.weight_decay, 0.0, 1.0, field="weight_decay")
        if self.grad_clip is not None:  # 0: off, as None
            _number("gradient clip", self.grad_clip, 0.0, 1e6, field="grad_clip")
        _choice("batching", self.batching, BATCHINGS, field="batching")
        _whole("transpose", self.transpose, 0, MAX_TRANSPOSE, field="transpose")
        _whole("evaluation interval", self.eval_every, 0, MAX_STEPS, field="eval_every")
        _whole("checkpoint interval", self.checkpoint_every, 0, MAX_STEPS, field="checkpoint_every")
        _whole("seed", self.seed, 0, MAX_SEED, field="seed")
        if not isinstance(self.device, str) or not DEVICE_PATTERN.fullmatch(self.device):
            problem = f"must be auto, cpu, cuda, cuda:N or mps, not {_shown(self.device)}"
            raise _refuse("device", problem, "device")
        _whole("threads", self.threads, 0, MAX_THREADS, field="threads")


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


def with_overrides(
    cfg: TrainConfig,
    *,
    steps: int | None = None,
    minutes: float | None = None,
    seed: int | None = None,
    learning_rate: float | None = None,
    batch_size: int | None = None,
    seq_length: int | None = None,
    device: str | None = None,
    threads: int | None = None,
) -> TrainConfig:
    """`cfg` with the values given (None: not given), validated (ConfigError). Steps given
    without minutes replace a wall-clock budget the recipe had: the budget asked for counts."""
    given: dict[str, int | float | str | None] = {
        k: v
        for k, v in (
            ("steps", steps), ("minutes", minutes), ("seed", seed),
            ("learning_rate", learning_rate), ("batch_size", batch_size),
            ("seq_length", seq_length), ("device", device), ("threads", threads),
        )
        if v is not None
    }  # fmt: skip
    if steps is not None and minutes is None:
        given["minutes"] = None
    new = replace(cfg, **given)  # type: ignore[arg-type]
    new.validate()
    return new
