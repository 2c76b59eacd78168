"""The model shipped inside the package: it loads, speaks the default corpus's vocabulary, and
samples a clean tune with a fixed seed — so `make run` can generate before any training."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.abc import check_tune
from core.checkpoint import load_checkpoint
from core.corpus import load_corpus
from core.paths import resolve_model_path, shipped_model_path
from core.sample import SampleOptions, Sampler


def test_shipped_model_loads_and_matches_the_corpus() -> None:
    path = shipped_model_path()
    assert path is not None and path.stat().st_size < 12_000_000
    ckpt = load_checkpoint(path)
    assert ckpt.vocab == load_corpus().vocab
    assert ckpt.optimizer_state is None  # weights only
    assert ckpt.metrics["best_val_bpc"] < 1.6


def test_shipped_model_is_used_until_the_user_has_one(folkgen_home: Path) -> None:
    assert resolve_model_path() == (shipped_model_path(), "shipped default model")
    (folkgen_home / "checkpoints").mkdir(parents=True)
    mine = folkgen_home / "checkpoints" / "mine.pt"
    mine.write_bytes(b"x")
    assert resolve_model_path() == (mine, "newest checkpoint")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_shipped_model_samples_a_clean_tune(seed: int) -> None:
    path = shipped_model_path()
    assert path is not None
    ckpt = load_checkpoint(path)
    text = "X:" + Sampler(ckpt.build_model(), ckpt.vocab).generate(
        SampleOptions(seed=seed, grammar=True)
    )
    check = check_tune(text)
    assert check.valid, (check.first_error, text)
    assert text.endswith("\n\n") and "\nK:" in text and check.bars >= 4
