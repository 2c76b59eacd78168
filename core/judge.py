"""The verdict on a generated text, one call for the CLI and the app: its first tune checked by
abc2midi, compared with the corpus (near-copies), and heard as music (bars against the metre,
form, ending). No torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.abc import SoundError, Tune, TuneCheck, check_tune, extract_tunes
from core.music_analysis import TuneAnalysis, analyse_tune, verdict

if TYPE_CHECKING:
    from core.novelty import Match, NoveltyIndex


@dataclass(frozen=True)
class Judgement:
    tune: Tune | None  # the text's last tune (the one generated); None when there is none
    check: TuneCheck | None  # None when not checked (no tune, or abc2midi not asked for)
    closest: Match | None  # the nearest corpus tune, when a corpus index was given
    music: TuneAnalysis | None
    check_error: str = ""  # why abc2midi could not check it (not installed, hung)

    @property
    def incomplete(self) -> str:
        """Why the text is not one whole tune; "" when it is."""
        if self.tune is None:
            return "no tune in the text"
        return self.tune.incomplete_reason

    @property
    def line_offset(self) -> int:
        """Lines of the text before the tune (the check's line numbers are the tune's)."""
        return self.tune.start_line - 1 if self.tune is not None else 0

    @property
    def near_copy(self) -> str:
        """ "close to <title> (87%)" when the tune nearly copies a corpus tune, else ""."""
        match = self.closest
        return match.describe() if match is not None and match.is_near_copy else ""

    @property
    def musical_verdict(self) -> str:
        """e.g. "16 bars · AABB · ends on G"; "" when there is no tune."""
        return verdict(self.music) if self.music is not None else ""


def judge(text: str, novelty: NoveltyIndex | None = None, check: bool = True) -> Judgement:
    """Judge the last tune of `text`: the one a stream wrote, after a prompt that may hold
    tunes before it (the verdict, the JSON and the tunebook described the prompt's first);
    generated text ends a tune with a blank line. With `check`, abc2midi checks it (what went
    wrong with abc2midi itself is `check_error`)."""
    tunes = extract_tunes(text)
    tune = tunes[-1] if tunes else None
    if tune is None:
        return Judgement(None, None, None, None)
    closest = novelty.closest(tune.text) if novelty is not None else None
    music = analyse_tune(tune.text)
    try:
        verdict_check = check_tune(tune.text) if check else None
    except SoundError as e:
        return Judgement(tune, None, closest, music, str(e))
    return Judgement(tune, verdict_check, closest, music)
