from __future__ import annotations

import numpy as np
import pytest

from core.batches import SequentialBatches, get_batch


def test_get_batch_shifts_y_one_ahead() -> None:
    data = np.arange(1000)
    x, y = get_batch(data, seq_length=20, batch_size=8, rng=np.random.default_rng(0))
    assert x.shape == y.shape == (8, 20)
    assert np.array_equal(y[:, :-1], x[:, 1:])
    assert np.array_equal(y, x + 1)  # data[i] == i, so the target is the next index


def test_get_batch_too_short() -> None:
    with pytest.raises(ValueError, match="too short"):
        get_batch(np.arange(10), seq_length=20, batch_size=2)


def test_sequential_batches_continue_each_row() -> None:
    data = np.arange(1001)
    batches = SequentialBatches(data, seq_length=10, batch_size=4)
    x1, y1, reset1 = batches.next()
    x2, _, reset2 = batches.next()
    assert reset1 and not reset2
    assert np.array_equal(x2[:, 0], x1[:, -1] + 1)  # row b of batch 2 continues row b of batch 1
    assert np.array_equal(y1, x1 + 1)
    for _ in range(batches.windows - 2):
        batches.next()
    assert batches.next()[2]  # wrapped around: the caller drops its state
