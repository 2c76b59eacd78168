"""A model made ready to generate tunes, one call for the CLI and the app's engine: its
checkpoint, a sampler whose grammar allows only the keys of the model's training corpus, and that
corpus when it can be had here (for near-copy checks). The corpus is found by what it is (its
content hash), never by a path a checkpoint holds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.abc_grammar import key_values
from core.checkpoint import Checkpoint, load_checkpoint
from core.checkpoint_meta import CheckpointError
from core.corpus import Corpus, model_key_spellings, training_corpus
from core.novelty import CorpusIndex, NoveltyIndex
from core.sample import Sampler


@dataclass
class Generator:
    checkpoint: Checkpoint
    sampler: Sampler
    corpus: Corpus | None  # the training corpus, when it is known here; None otherwise
    _index: CorpusIndex = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._index = CorpusIndex(self.corpus.tunes if self.corpus is not None else None)

    @property
    def novelty(self) -> NoveltyIndex | None:
        """The near-copy index of the training corpus (built at first use, ~70 ms); None when
        the corpus is not known here."""
        return self._index.get()

    def prepare(self) -> None:
        """Make ahead what the first tune would make on its way: the sampler's grammar (its
        stored state table loaded, 25-35 ms), and what the first tunes would read of that
        table (its rows that most tunes visit). The app's engine calls this once it is idle
        after loading a model, so that no tune waits for it; the CLI's first tune makes the
        grammar and reads rows only as it comes to them."""
        self.sampler.grammar.read_ahead()


def load_generator(path: str | Path, precision: str = "auto") -> Generator:
    """CheckpointError when the file is not a loadable checkpoint."""
    ckpt = load_checkpoint(path)
    corpus = training_corpus(ckpt.corpus)
    # The keys its corpus names, as written there: from the corpus where it is here, else as
    # the checkpoint recorded them (a model trained on one's own tunes); none known: any key.
    spellings = model_key_spellings(ckpt.corpus, corpus)
    if not key_values(spellings, ckpt.vocab.char2idx):
        spellings = {}  # none it could write (a checkpoint from elsewhere): any key
    sampler = Sampler(ckpt.build_model(), ckpt.vocab, precision, key_spellings=spellings or None)
    return Generator(ckpt, sampler, corpus)


def load_first_generator(
    paths: Sequence[Path], precision: str = "auto"
) -> tuple[Generator, Path, list[str]]:
    """The first of `paths` that loads (core.paths.default_models: the newest of the user's
    checkpoints first), its path, and a line for each passed over on the way (its file and
    what is wrong with it). When none loads, the first one's error."""
    passed_over: list[str] = []
    first: CheckpointError | OSError | None = None
    for path in paths:
        try:
            return load_generator(path, precision), path, passed_over
        except (CheckpointError, OSError) as e:
            first = first or e
            passed_over.append(f"passed over {e}" if str(e).startswith(str(path)) else
                               f"passed over {path}: {e}")  # fmt: skip
    if first is None:
        raise FileNotFoundError("no model to load")
    raise first
