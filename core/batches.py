"""Training batches from an index array. numpy only: the trainer turns them into tensors."""

from __future__ import annotations

import numpy as np


def random_starts(
    length: int, seq_length: int, batch_size: int, rng: np.random.Generator
) -> np.ndarray:
    """Where `get_batch`'s windows start in a text of `length` characters (the same draws), for
    a trainer that cuts the windows where the text is (a GPU)."""
    if length <= seq_length:
        raise ValueError(f"text of {length} characters is too short for seq_length {seq_length}")
    return rng.integers(0, length - seq_length, size=batch_size)


def get_batch(
    data: np.ndarray, seq_length: int, batch_size: int, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Random windows as in the seed: y is x shifted one character ahead. Shapes (B, T)."""
    starts = random_starts(len(data), seq_length, batch_size, rng or np.random.default_rng())
    offsets = starts[:, None] + np.arange(seq_length)[None, :]
    return data[offsets], data[offsets + 1]
