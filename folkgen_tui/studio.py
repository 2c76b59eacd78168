"""What the screens may ask of the app: the studio's shared state and calls, as a Protocol.

The screens see the app through this, so they never import folkgen_tui.app (which imports them);
FolkgenApp satisfies it, and the type checker holds it to that (app.py)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from core.corpus import Corpus, CorpusStats
    from core.engine import Engine
    from core.novelty import NoveltyIndex
    from core.voice import Voice
    from folkgen_tui.lifeline import WorkUnderWay
    from folkgen_tui.screens.base import StudioScreen
    from folkgen_tui.sound import Sound
    from folkgen_tui.state import LoadedModel, TuneRecord
    from folkgen_tui.tunebook import Tunebook
    from folkgen_tui.workers import TrainJob


class Studio(Protocol):
    # the corpus of the Dataset screen
    corpus: Corpus | None
    corpus_path: Path | None
    corpus_error: str | None
    stats: CorpusStats | None
    novelty: NoveltyIndex | None  # the Dataset corpus's near-copy index
    # the model in use, and torch
    model: LoadedModel | None
    model_loading: bool
    torch_state: str  # loading, ready, failed
    engine: Engine | None  # torch's process for the model (core.engine)
    # the session
    history: list[TuneRecord]
    sound: Sound
    tunebook: Tunebook  # the tunebook database (core.library), on its own thread
    writing: WorkUnderWay  # files being written (`with`, or begin and end): a lost terminal waits
    training: TrainJob | None  # the Train screen's job while one exists
    train_status: str

    @property
    def quitting(self) -> bool:
        """The app is on its way out (stopping a training run first)."""
        ...

    @property
    def model_coming(self) -> bool:
        """A model is being loaded, or will be once torch is (the one asked for, or the
        default at start)."""
        ...

    def register_screen(self, screen: StudioScreen) -> None: ...

    def frame_built(self, screen: StudioScreen) -> None: ...  # built ahead, its parts queued

    def load_corpus(self, path: str | Path | None) -> None: ...

    def load_model(self, path: Path, why: str = "chosen", announce: bool = True) -> None: ...

    def resume_training(self, path: Path) -> None: ...

    def training_engine(self) -> Engine: ...

    def warm_training_engine(self) -> None: ...

    # the voice tunes are played and saved in (Generate's controls; the settings)
    voice: Voice

    def setting(self, name: str) -> object: ...

    def remember(self, name: str, value: object) -> None: ...

    def toggle_play(
        self, abc_text: str, title: str, key: str = "", voice: Voice | None = None
    ) -> None: ...

    def stop_playback(self) -> None: ...
