"""Shared fixtures: every test gets its own FOLKGEN_HOME; a small corpus and one tiny trained
model are made once per session and shared (training for real, on small data)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from core.corpus import load_corpus

if TYPE_CHECKING:
    from core.sample import Sampler

SMALL_TUNES = 80


@pytest.fixture(autouse=True)
def folkgen_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "folkgen-home"
    monkeypatch.setenv("FOLKGEN_HOME", str(home))
    return home


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Train on one thread: this machine's 2 cores are shared, and torch's thread pool slows to
    a crawl when another process holds a core (what is tested is the app, not torch)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def small_corpus_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first tunes of the default corpus as a user .abc file (same vocabulary subset)."""
    tunes = load_corpus().tunes[:SMALL_TUNES]
    path = tmp_path_factory.mktemp("corpus") / "small.abc"
    path.write_text("\n\n".join(t.strip("\n") for t in tunes) + "\n\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small model trained for real on the full default corpus (a few seconds)."""
    from core.presets import ModelConfig, TrainConfig
    from core.train import train

    out = tmp_path_factory.mktemp("models") / "tiny.pt"
    train(
        load_corpus(),
        ModelConfig(embedding_dim=32, hidden_size=128),
        TrainConfig(
            seq_length=64,
            batch_size=32,
            learning_rate=1e-2,
            steps=250,
            schedule="cosine",
            warmup_steps=10,
            grad_clip=1.0,
            eval_every=0,
            checkpoint_every=0,
        ),
        checkpoint_path=out,
    )
    return out


@pytest.fixture(scope="session")
def keyed() -> Sampler:
    """The shipped model as `folkgen generate` and the app build it (K: limited to its corpus's
    keys)."""
    from core.checkpoint import load_checkpoint
    from core.music_analysis import corpus_keys
    from core.paths import shipped_model_path
    from core.sample import Sampler

    path = shipped_model_path()
    assert path is not None
    ckpt = load_checkpoint(path)
    return Sampler(ckpt.build_model(), ckpt.vocab, "fp32", keys=corpus_keys(load_corpus().tunes))
