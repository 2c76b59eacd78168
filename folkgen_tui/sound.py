"""The studio's sound: render a tune (abc2midi + timidity, via core.audio) into a scratch folder,
play it, read its notes for the piano roll, and save the files. All slow calls here run on
worker threads; their errors are `core.abc.SoundError`s with sentences for a person."""

from __future__ import annotations

import shutil
import tempfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.audio import Note, Player, Rendered
    from core.corpus import Credit
    from core.voice import Voice


@dataclass
class Playable:
    """A tune rendered for listening: its files in the scratch folder and its notes."""

    key: str  # what was rendered (e.g. "tune-3" or "corpus-17")
    title: str
    rendered: Rendered
    notes: list[Note] = field(default_factory=list)

    @property
    def duration_seconds(self) -> float:
        return float(self.rendered.duration_seconds)


class Sound:
    """One player for the whole app and a cache of the last CACHED rendered tunes (keyed by their
    text and voice): a minute of WAV is ~10 MB, so a long session must not keep every one."""

    CACHED = 8

    def __init__(self) -> None:
        self._player: Player | None = None
        self._scratch: Path | None = None
        self._cache: OrderedDict[tuple[str, Voice | None], Playable] = OrderedDict()
        self._kept: dict[str, Path] = {}  # scratch WAV -> its copy kept in the tunes folder
        self._saved: dict[tuple[str, Voice | None], Path] = {}  # (text, voice) -> its saved WAV
        self.now_playing: Playable | None = None

    def scratch(self) -> Path:
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="folkgen-tui-"))
        return self._scratch

    def prepare(self, key: str, abc_text: str, title: str, voice: Voice | None = None) -> Playable:
        """Render (or reuse) the tune's MIDI and WAV in `voice` and read its notes. Worker
        thread only."""
        cache_key = (abc_text, voice)
        cached = self._cache.get(cache_key)
        if cached is not None and cached.rendered.wav_path and cached.rendered.wav_path.exists():
            self._cache.move_to_end(cache_key)
            return Playable(key, title, cached.rendered, cached.notes)
        from core.audio import midi_notes, render

        rendered = render(abc_text, self.scratch(), title=title, voice=voice)
        notes = midi_notes(rendered.midi_path) if rendered.midi_path else []
        playable = Playable(key, title, rendered, notes)
        self._cache[cache_key] = playable
        while len(self._cache) > self.CACHED:
            _, old = self._cache.popitem(last=False)
            if self.now_playing is None or old.rendered is not self.now_playing.rendered:
                for path in (old.rendered.midi_path, old.rendered.wav_path):
                    if path is not None:
                        path.unlink(missing_ok=True)
        return playable

    def play(self, playable: Playable) -> None:
        """Start playing (stops what played). Raises core.audio.PlaybackUnavailable."""
        from core.abc import SoundError
        from core.audio import Player

        if self._player is None:
            self._player = Player()
        self.stop()
        if playable.rendered.wav_path is None:
            raise SoundError("the tune was rendered without a WAV to play")
        self._player.play(playable.rendered.wav_path)
        self.now_playing = playable

    def keep_wav(
        self, playable: Playable, folder: Path, abc_text: str, voice: Voice | None
    ) -> Path:
        """Copy the rendered WAV out of the scratch folder (deleted when the app closes) into
        `folder`, once per tune: where there is no sound device, that file is the sound. A tune
        saved in this voice already has it: that one (a second, identical 9 MB copy was kept)."""
        from core.audio import reserve_paths
        from core.paths import slugify

        saved = self._saved.get((abc_text, voice))
        if saved is not None and saved.exists():
            return saved
        source = playable.rendered.wav_path
        if source is None:
            raise OSError("no WAV was rendered")
        kept = self._kept.get(str(source))
        if kept is not None and kept.exists():
            return kept
        (target,) = reserve_paths(folder, slugify(playable.title), [".wav"])
        shutil.copyfile(source, target)
        self._kept[str(source)] = target
        return target

    def stop(self) -> None:
        if self._player is not None:
            self._player.stop()
        self.now_playing = None

    @property
    def is_playing(self) -> bool:
        return self._player is not None and bool(self._player.is_playing)

    @property
    def position_seconds(self) -> float | None:
        return self._player.position_seconds if self._player is not None else None

    def save(
        self, abc_text: str, title: str, folder: Path, voice: Voice | None = None,
        credit: Credit | None = None,
    ) -> tuple[list[Path], str | None]:  # fmt: skip
        """Write title.abc, .mid and .wav into folder (free names, never overwriting); the .mid
        and .wav in `voice`, the .abc as written, credited to `credit` (core.audio.save_tune).
        Returns the files written and, when only the ABC could be saved, why. Worker thread."""
        from core.audio import save_tune

        self._release_kept(abc_text, voice, folder)
        saved = save_tune(abc_text, folder, title=title, voice=voice, credit=credit)
        for path in saved.paths:
            if path.suffix == ".wav":
                self._saved[(abc_text, voice)] = path
        return list(saved.paths), saved.problem

    def _release_kept(self, abc_text: str, voice: Voice | None, folder: Path) -> None:
        """The WAV kept in `folder` when this tune played without a sound device (keep_wav)
        took its name: the save writes that same sound under it with the .abc and .mid, where
        they were named -2 beside the lone WAV."""
        cached = self._cache.get((abc_text, voice))
        source = cached.rendered.wav_path if cached is not None else None
        kept = self._kept.get(str(source)) if source is not None else None
        if kept is not None and kept.parent == folder:  # one kept elsewhere stays known
            del self._kept[str(source)]
            kept.unlink(missing_ok=True)

    def close(self) -> None:
        self.stop()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None
        self._cache.clear()
