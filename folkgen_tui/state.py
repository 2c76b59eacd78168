"""What the studio holds between screens: the model in use and the session's tunes.

Nothing here imports torch: the model lives in torch's own process (core.engine)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.abc import TuneCheck
    from core.audio import Note, Rendered
    from core.checkpoint_meta import CheckpointMeta
    from core.corpus import Credit, Vocabulary
    from core.novelty import CorpusIndex
    from core.voice import Voice


@dataclass
class LoadedModel:
    """The model the app generates with: loaded in the model's engine (core.engine, as the CLI
    loads it), with what its checkpoint says and its training corpus's near-copy index when
    that corpus is known here."""

    path: Path | None
    why: str  # "chosen", "newest checkpoint", "just trained"…
    meta: CheckpointMeta
    # of the training corpus (no tunes when it is not known here): what the CLI compares with;
    # built at first use, on a thread (the app's, once the model is drawn; else a tune's check)
    index: CorpusIndex
    keys: dict[str, str] = field(default_factory=dict)  # its grammar's (model_key_spellings)

    @property
    def vocab(self) -> Vocabulary:
        return self.meta.vocab

    @property
    def label(self) -> str:
        return self.path.name if self.path else "model"



@dataclass
class TuneRecord:
    """One generated tune of this session, with what it took to make it again."""

    number: int
    prompt: str
    text: str
    seed: int
    temperature: float
    top_k: int | None
    max_chars: int
    model_label: str
    model_path: Path | None = None  # the checkpoint that made it (the tunebook hashes it)
    seconds: float = 0.0
    check: TuneCheck | None = None
    check_error: str | None = None  # why it could not be checked (e.g. abc2midi missing)
    line_offset: int = 0  # lines of the text before the checked tune (error lines are relative)
    novelty: str = ""  # "close to <corpus tune> (93%)" when it nearly copies one
    music: str = ""  # the musical verdict: "16 bars · AABB · ends on G"
    rendered: Rendered | None = None
    notes: list[Note] = field(default_factory=list)
    saved: list[Path] = field(default_factory=list)
    saved_voice: Voice | None = None  # the voice its last save was in
    library_id: int | None = None  # its row in the tunebook (core.library), once stored

    @property
    def title(self) -> str:
        from core.corpus import header_field, last_tune  # here: numpy, not needed to start

        return header_field(last_tune(self.text), "T") or f"tune {self.number}"  # the generated

    @property
    def credit(self) -> Credit:
        """Its making, in the Z: line a save writes (core.corpus.credited)."""
        from core.corpus import generation_credit

        made = (self.model_label, self.seed, self.temperature, self.top_k, self.prompt)
        return generation_credit(*made)

    @property
    def shared_abc(self) -> str:
        """The text as shown, checked, saved and kept (LibraryTune.shared_abc): credited to its
        making in place of the Z: line the model wrote, often a corpus tune's id ("Z:
        id:dc-jig-53"). `text` is the text as made, which the tunebook keeps."""
        from core.corpus import credited

        return credited(self.text, self.credit)

    @property
    def valid(self) -> bool | None:
        return None if self.check is None else bool(self.check.valid)
