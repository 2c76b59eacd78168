"""A model made ready to generate tunes, one call for the CLI and the app: its checkpoint, a
sampler whose grammar allows only the keys of the model's training corpus, and that corpus when
it can be had here (for near-copy checks). The corpus is found by what it is (its content hash),
never by a path a checkpoint holds."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from core.checkpoint import Checkpoint, load_checkpoint
from core.corpus import Corpus, CorpusError, load_corpus
from core.music_analysis import corpus_keys
from core.novelty import NoveltyIndex
from core.paths import DefaultCorpusMissing
from core.sample import Sampler


@dataclass
class Generator:
    checkpoint: Checkpoint
    sampler: Sampler
    corpus: Corpus | None  # the training corpus, when it is known here; None otherwise
    _novelty: NoveltyIndex | None = field(default=None, init=False, repr=False)
    _novelty_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def novelty(self) -> NoveltyIndex | None:
        """The near-copy index of the training corpus (built at first use, ~70 ms); None when
        the corpus is not known here."""
        return self.build_novelty()

    def build_novelty(self) -> NoveltyIndex | None:
        """`novelty`, built now if it is not yet (the app builds it on its model's thread once
        the model is ready; a first use on another thread meanwhile waits for that one)."""
        with self._novelty_lock:
            if self._novelty is None and self.corpus is not None:
                self._novelty = NoveltyIndex(self.corpus.tunes)
            return self._novelty


def training_corpus(info: dict[str, str | int]) -> Corpus | None:
    """The corpus a checkpoint describes, when it is the default corpus installed here."""
    try:
        corpus = load_corpus()
    except (CorpusError, DefaultCorpusMissing, OSError):
        return None
    return corpus if corpus.is_described_by(info) else None


def load_generator(path: str | Path, precision: str = "auto") -> Generator:
    """CheckpointError when the file is not a loadable checkpoint."""
    ckpt = load_checkpoint(path)
    corpus = training_corpus(ckpt.corpus)
    keys = corpus_keys(corpus.tunes) if corpus is not None else None  # None: any key
    sampler = Sampler(ckpt.build_model(), ckpt.vocab, precision, keys=keys)
    return Generator(ckpt, sampler, corpus)
