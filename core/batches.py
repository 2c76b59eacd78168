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


class SequentialBatches:
    """Consecutive windows for truncated BPTT: row b of batch n+1 continues row b of batch n, so
    the LSTM state can be carried across windows. Each row reads its own stretch of the text."""

    def __init__(self, data: np.ndarray, seq_length: int, batch_size: int, offset: int = 0):
        per_row = (len(data) - 1) // batch_size
        if per_row <= seq_length:
            raise ValueError(
                f"text of {len(data)} characters is too short for {batch_size} rows of {seq_length}"
            )
        self.data = data
        self.seq_length = seq_length
        self.windows = per_row // seq_length
        self.rows = np.arange(batch_size)[:, None] * per_row
        self.position = offset % self.windows

    def next(self) -> tuple[np.ndarray, np.ndarray, bool]:
        """(x, y, reset): reset is True when the rows wrapped to their start (drop the state)."""
        reset = self.position == 0
        start = self.position * self.seq_length
        idx = self.rows + start + np.arange(self.seq_length)[None, :]
        self.position = (self.position + 1) % self.windows
        return self.data[idx], self.data[idx + 1], reset
