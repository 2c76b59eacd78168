from __future__ import annotations

import numpy as np
import pytest

from core.batches import get_batch


def test_get_batch_shifts_y_one_ahead() -> None:
    data = np.arange(1000)
    x, y = get_batch(data, seq_length=20, batch_size=8, rng=np.random.default_rng(0))
    assert x.shape == y.shape == (8, 20)
    assert np.array_equal(y[:, :-1], x[:, 1:])
    assert np.array_equal(y, x + 1)  # data[i] == i, so the target is the next index


def test_get_batch_too_short() -> None:
    with pytest.raises(ValueError, match="too short"):
        get_batch(np.arange(10), seq_length=20, batch_size=2)
