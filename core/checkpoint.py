"""One file per checkpoint: weights, configs, vocabulary, optimiser state, step and metrics.

Written atomically (temp file in the same folder, fsync, rename), so a crash or a kill while
saving leaves the previous checkpoint intact and never a half-written file.
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from core.corpus import Vocabulary
from core.model import CharLSTM
from core.presets import ModelConfig, TrainConfig

FORMAT = "folkgen-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint could not be read or written; the message says why, for a person."""


@dataclass
class Checkpoint:
    model_config: ModelConfig
    train_config: TrainConfig
    vocab: Vocabulary
    model_state: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any] | None = None
    step: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)  # val_bpc, best_val_bpc, loss, elapsed…
    corpus: dict[str, Any] = field(default_factory=dict)  # name, path, tunes
    path: Path | None = None

    def build_model(self, device: torch.device | str = "cpu") -> CharLSTM:
        model = CharLSTM(self.model_config)
        model.load_state_dict({k: v.float() for k, v in self.model_state.items()})
        return model.to(device).eval()


def slim(ckpt: Checkpoint, half: bool = False) -> Checkpoint:
    """A copy for sharing or shipping: no optimiser state, optionally half-precision weights
    (loading turns them back into float32)."""
    state = {
        k: (v.half() if half and v.is_floating_point() else v) for k, v in ckpt.model_state.items()
    }
    return replace(ckpt, model_state=state, optimizer_state=None, path=None)


def save_checkpoint(ckpt: Checkpoint, path: str | Path) -> Path:
    path = Path(path)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model_config": ckpt.model_config.to_dict(),
        "train_config": ckpt.train_config.to_dict(),
        "vocab": "".join(ckpt.vocab.chars),
        "model_state": ckpt.model_state,
        "optimizer_state": ckpt.optimizer_state,
        "step": ckpt.step,
        "metrics": ckpt.metrics,
        "corpus": ckpt.corpus,
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise CheckpointError(f"cannot write a checkpoint in {path.parent}: {e.strerror}") from None
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; a checkpoint is an ordinary shareable file
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:
        Path(tmp).unlink(missing_ok=True)
        reason = getattr(e, "strerror", None) or str(e)
        raise CheckpointError(f"could not save checkpoint {path}: {reason}") from None
    ckpt.path = path
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read it ({e.strerror})") from None
    if not data:
        raise CheckpointError(f"{path}: empty file, not a checkpoint")
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    # torch raises many kinds (RuntimeError, ValueError, EOFError…) on bad bytes.
    except Exception as e:
        hint = "truncated or corrupted" if data[:2] == b"PK" else "not a folkgen checkpoint"
        detail = (str(e).splitlines() or [type(e).__name__])[0][:120]
        raise CheckpointError(f"{path}: cannot read it ({hint}: {detail})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a folkgen checkpoint")
    version = payload.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version} is newer than this folkgen "
            f"understands ({VERSION}); upgrade folkgen"
        )
    try:
        ckpt = Checkpoint(
            model_config=ModelConfig.from_dict(payload["model_config"]),
            train_config=TrainConfig.from_dict(payload["train_config"]),
            vocab=Vocabulary(tuple(payload["vocab"])),
            model_state=payload["model_state"],
            optimizer_state=payload.get("optimizer_state"),
            step=int(payload.get("step", 0)),
            metrics=dict(payload.get("metrics") or {}),
            corpus=dict(payload.get("corpus") or {}),
            path=path,
        )
        if len(ckpt.vocab) != ckpt.model_config.vocab_size:
            raise ValueError("vocabulary size does not match the model")
        CharLSTM(ckpt.model_config).load_state_dict(ckpt.model_state)
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: damaged checkpoint ({str(e).splitlines()[0]})") from None
    return ckpt
