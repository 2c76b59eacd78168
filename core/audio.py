"""ABC -> MIDI (abc2midi) -> WAV (timidity) files, playback with simpleaudio, notes for a piano roll.

simpleaudio is imported inside the functions that play, so importing this module stays cheap and
works where ALSA is missing.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import tempfile
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.abc import (
    CHECK_TIMEOUT,
    MIB,
    Limits,
    SoundError,
    TuneCheck,
    find_tool,
    midi_facts,
    printable,
    run_abc2midi,
    run_tool,
    stopped_how,
)
from core.corpus import Credit, credited, header_field, last_tune
from core.paths import output_dir, slugify
from core.voice import Voice

TIMIDITY = "timidity"
TIMIDITY_PACKAGES = "timidity fluid-soundfont-gm"
RENDER_TIMEOUT = 120.0
# Debian's timidity.cfg sources the FluidR3 config; with only freepats it must be named with -c.
PATCH_CONFIGS = (Path("/etc/timidity/fluidr3_gm.cfg"), Path("/etc/timidity/freepats.cfg"))
# Full scale is 1.0; a real render of a tune sits near 0.01, timidity without patches near 2e-5.
SILENCE_RMS = 1e-4
# Longest tune rendered to sound: 10 minutes of WAV is 106 MB at 44.1 kHz. A slow Q: makes a
# few notes last hours, and timidity would write gigabytes for it.
MAX_RENDER_SECONDS = 600.0
RING_OUT_SECONDS = 30.0  # timidity lets the last notes sound past the MIDI's end
TIMIDITY_MEMORY = 1024 * MIB  # it needs about 40 MB with FluidR3
WAV_CHUNK_FRAMES = 1 << 16  # frames read at a time when measuring a WAV
# The loudest sample a WAV is brought up to (-1 dBFS): timidity's renders peak at -19 to
# -23 dBFS (RMS near -40), quiet beside any other music played after them. At most +30 dB.
TARGET_PEAK = 0.89
MAX_GAIN = 32.0


class InvalidTune(SoundError):
    """abc2midi made no MIDI from the tune; `check` holds its messages."""

    def __init__(self, check: TuneCheck):
        self.check = check
        super().__init__(f"abc2midi could not turn this tune into MIDI: {check.first_error}")


class RenderFailed(SoundError):
    """timidity failed to write a WAV file."""


class SilentRender(SoundError):
    """timidity wrote a silent WAV: it found no instrument patches."""

    def __init__(self, rms: float):
        self.rms = rms
        super().__init__(
            "timidity wrote a silent WAV: it has no instrument sounds. "
            "Install a General MIDI sound font: sudo apt-get install fluid-soundfont-gm"
        )


class TooLong(SoundError):
    """The tune would play too long to render to sound (known from its MIDI)."""

    def __init__(self, seconds: float, limit: float):
        self.seconds = seconds
        self.limit = limit
        super().__init__(
            f"this tune would play for {_clock(seconds)}, longer than the {limit / 60:g} minutes "
            "folkgen renders to sound; check its Q: (tempo) and L: (note length) lines"
        )


def _clock(seconds: float) -> str:
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class PlaybackUnavailable(SoundError):
    """No audio output could be opened; the WAV file is still on disk."""

    def __init__(self, wav_path: Path, reason: str):
        self.wav_path = wav_path
        self.reason = reason
        super().__init__(f"cannot play sound here ({reason}); the tune is saved as {wav_path}")


# --- rendering ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    title: str
    midi_path: Path | None  # None when midi=False
    wav_path: Path | None  # None when wav=False
    duration_seconds: float  # of the WAV (timidity adds the notes' release), else of the MIDI
    rms: float | None  # of the WAV's samples, full scale 1.0
    check: TuneCheck  # abc2midi's verdict: a tune with errors may still render

    def to_dict(self) -> dict[str, object]:
        return {
            "title": self.title,
            "midi": str(self.midi_path) if self.midi_path else None,
            "wav": str(self.wav_path) if self.wav_path else None,
            "duration_seconds": round(self.duration_seconds, 3),
            "rms": round(self.rms, 6) if self.rms is not None else None,
            "check": self.check.to_dict(),
        }


class NotAFileName(ValueError):
    """An output named on the command line is a folder where a file is wanted."""


def folder_target(target: str | Path) -> Path:
    """The folder a person named for files (MIDI files, one a tune); a file is refused
    (NotAFileName: it said "File exists")."""
    path = Path(target).expanduser()
    if path.exists() and not path.is_dir():
        raise NotAFileName(f"{path} is a file; MIDI files go into a folder")
    return path


def file_target(target: str | Path, suffix: str, *, own_suffix: bool = False) -> tuple[Path, str, str]:
    """(folder, stem, suffix) of an output file a person named: OUT or OUT.mid for `suffix`
    .mid (with `own_suffix`, whatever suffix OUT has is kept, else `suffix` is added). A folder
    is refused (NotAFileName): the file went beside it, named after it (abc/ -> abc.mid)."""
    path = Path(target).expanduser()
    if path.is_dir() or str(target).endswith("/"):
        raise NotAFileName(
            f"{path} is a folder; give a file name, such as {path / ('tune' + suffix)}"
        )
    if own_suffix and path.suffix:
        return path.parent, path.stem, path.suffix
    return path.parent, path.stem if path.suffix == suffix else path.name, suffix


def reserve_paths(folder: Path, stem: str, suffixes: list[str]) -> list[Path]:
    """Create empty files folder/stem{-2,-3…}{suffix} for each suffix, none existing before.

    Creating with O_EXCL makes the claim atomic: two renders at once never pick the same name.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        name = stem if n == 1 else f"{stem}-{n}"
        claimed: list[Path] = []
        try:
            for suffix in suffixes:
                path = folder / (name + suffix)
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
                claimed.append(path)
        except FileExistsError:
            for path in claimed:
                path.unlink(missing_ok=True)
            continue
        return claimed
    raise RenderFailed(f"no free file name for {stem} in {folder}")


def timidity_config() -> Path | None:
    """The patch-set config to give timidity (-c), or None for its own default."""
    return next((cfg for cfg in PATCH_CONFIGS if cfg.is_file()), None)


def wav_levels(wav_path: Path) -> tuple[float, float, float]:
    """(seconds, RMS of all samples, the loudest sample) of a 16-bit PCM WAV file, full scale
    1.0, in one reading.

    Read in chunks: a WAV may be far larger than the memory one should spend measuring it.
    """
    with wave.open(str(wav_path), "rb") as w:
        frames, rate, width = w.getnframes(), w.getframerate(), w.getsampwidth()
        if width != 2:
            raise RenderFailed(f"{wav_path}: expected 16-bit samples, found {8 * width}-bit")
        squares, count, peak = 0, 0, 0
        while chunk := w.readframes(WAV_CHUNK_FRAMES):
            # Integers: exact, and no BLAS. A float dot product is OpenBLAS's, whose threads a
            # fork in another thread (a subprocess with limits: abc2midi, timidity) shuts down
            # under it: the call then waited for ever (two saves at once, or a save beside a
            # tune's check).
            samples = np.frombuffer(chunk, dtype="<i2").astype(np.int64)
            squares += int(np.dot(samples, samples))
            count += samples.size
            peak = max(peak, int(np.abs(samples).max(initial=0)))
    rms = float(np.sqrt(squares / count)) / 32768.0 if count else 0.0
    return frames / rate if rate else 0.0, rms, peak / 32768.0


def wav_facts(wav_path: Path) -> tuple[float, float]:
    """(seconds, RMS of all samples with full scale 1.0) of a 16-bit PCM WAV file."""
    seconds, rms, _ = wav_levels(wav_path)
    return seconds, rms


def normalise_wav(wav_path: Path, peak: float, target: float = TARGET_PEAK) -> float:
    """Scale a 16-bit PCM WAV whose loudest sample is `peak` so that it is `target` (at most
    MAX_GAIN times louder; never quieter); returns the gain. Rewritten beside it, then renamed
    over it, a chunk at a time."""
    gain = min(target / peak, MAX_GAIN) if peak > 0 else 1.0
    if gain <= 1.0:
        return 1.0
    tmp = wav_path.with_name(f".{wav_path.name}.tmp")
    try:
        with wave.open(str(wav_path), "rb") as src, wave.open(str(tmp), "wb") as out:
            out.setparams(src.getparams())
            while chunk := src.readframes(WAV_CHUNK_FRAMES):
                louder = np.rint(np.frombuffer(chunk, dtype="<i2") * gain)
                out.writeframes(np.clip(louder, -32768, 32767).astype("<i2").tobytes())
        os.replace(tmp, wav_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return gain


def timidity_limits(max_seconds: float, sample_rate: int) -> Limits:
    """Memory, and a WAV size a little over max_seconds of 16-bit stereo: a second line of
    defence behind the length check, for a MIDI timidity plays longer than it reads."""
    wav_bytes = int((max_seconds + RING_OUT_SECONDS) * sample_rate * 4)
    return Limits(memory=TIMIDITY_MEMORY, file_size=wav_bytes + MIB)


def synthesize(
    midi_path: Path,
    wav_path: Path,
    *,
    config: str | Path | None = None,
    sample_rate: int = 44100,
    timeout: float = RENDER_TIMEOUT,
    expect_sound: bool = True,
    max_seconds: float = MAX_RENDER_SECONDS,
) -> tuple[float, float]:
    """MIDI -> 16-bit stereo WAV with timidity, brought up to TARGET_PEAK; returns (seconds,
    RMS).

    Every run of timidity goes through here. Raises TooLong (before timidity runs) when the
    MIDI plays longer than max_seconds, SilentRender when the WAV is silent although
    expect_sound (the MIDI has notes).
    """
    try:
        midi_seconds = midi_facts(midi_path)[0]
    except (OSError, ValueError, EOFError, KeyError, IndexError) as e:  # mido, bad file
        raise RenderFailed(f"{midi_path}: not a MIDI file timidity could play ({e})") from None
    if midi_seconds > max_seconds:
        raise TooLong(midi_seconds, max_seconds)
    exe = find_tool(TIMIDITY, TIMIDITY_PACKAGES)
    cfg = Path(config) if config is not None else timidity_config()
    # --preserve-silence: keep a leading rest, so the WAV's clock is the MIDI's (the playhead).
    args = [exe, "-Ow", "--preserve-silence", "-s", str(sample_rate), "-o", str(wav_path)]
    if cfg is not None:
        args += ["-c", str(cfg)]
    limits = timidity_limits(max_seconds, sample_rate)
    rc, output = run_tool(
        [*args, str(midi_path)], cwd=wav_path.parent, timeout=timeout, limits=limits
    )
    if rc != 0 or not wav_path.is_file():
        last = output.strip().splitlines()[-1:] or ["no output"]
        why = stopped_how(TIMIDITY, rc, limits) if rc else "it wrote no file"
        raise RenderFailed(f"timidity could not write the WAV ({why}): {printable(last[0])}")
    seconds, rms, peak = wav_levels(wav_path)  # one reading for both
    if expect_sound and rms < SILENCE_RMS:
        raise SilentRender(rms)
    return seconds, rms * normalise_wav(wav_path, peak)


def render(
    abc_text: str,
    out_dir: str | Path | None = None,
    *,
    title: str | None = None,
    midi: bool = True,
    wav: bool = True,
    midi_to: str | Path | None = None,
    wav_to: str | Path | None = None,
    timidity_cfg: str | Path | None = None,
    sample_rate: int = 44100,
    timeout: float = RENDER_TIMEOUT,
    voice: Voice | None = None,
) -> Rendered:
    """Render one tune to MIDI and/or WAV files, never overwriting a file.

    Files go to out_dir (default: the folkgen tunes folder), named after the title (default:
    the T: line); midi_to / wav_to name a file instead (a taken name gets -2, -3… too).
    timidity_cfg picks the patch set (default: FluidR3, else freepats). `voice` (core.voice)
    sets the instrument, tempo and transpose the files play in. Raises InvalidTune when
    abc2midi makes no MIDI, SilentRender when timidity has no patches, ToolMissing, ToolTimeout.
    """
    midi = midi or midi_to is not None
    wav = wav or wav_to is not None
    if not (midi or wav):
        raise ValueError("render: ask for a MIDI file, a WAV file or both")
    title = printable(title or header_field(abc_text, "T") or "") or "Untitled"
    folder = Path(out_dir).expanduser() if out_dir is not None else output_dir()
    with tempfile.TemporaryDirectory(prefix="folkgen-render-") as tmp:
        work = Path(tmp)
        check = run_abc2midi(abc_text, work / "tune.mid", min(timeout, CHECK_TIMEOUT), voice)
        if not check.midi_written:
            raise InvalidTune(check)
        duration, rms = check.duration_seconds, None
        if wav:
            duration, rms = synthesize(
                work / "tune.mid",
                work / "tune.wav",
                config=timidity_cfg,
                sample_rate=sample_rate,
                timeout=timeout,
                expect_sound=bool(midi_notes(work / "tune.mid")),  # not a tune of rests only
            )
        wanted: dict[str, str | Path | None] = {}
        if midi:
            wanted[".mid"] = midi_to
        if wav:
            wanted[".wav"] = wav_to
        placed = _place(work / "tune", wanted, folder, slugify(title))
    return Rendered(title, placed.get(".mid"), placed.get(".wav"), duration, rms, check)


@dataclass(frozen=True)
class SavedTune:
    paths: list[Path]  # the .abc, then the .mid, .wav, .svg, .png and .pdf that could be made
    problem: str | None  # why a .mid, .wav or score is missing, else None


def save_tune(
    abc_text: str,
    folder: str | Path | None = None,
    *,
    title: str | None = None,
    voice: Voice | None = None,
    credit: Credit | None = None,
) -> SavedTune:
    """Save a tune as title.abc, .mid, .wav and its score (.svg, .png, .pdf) side by side (one
    free stem, never overwriting).

    The .mid and .wav play in `voice` (instrument, tempo, transpose); the .abc and the score
    stay the tune as written: the voice's %%MIDI and Q: lines are for abc2midi, not the user's
    file, so the saved tune reads (and re-imports) as it was made. A generated tune is credited
    to its making (`credit`, core.corpus.credited) in place of the Z: lines the model wrote, in
    the .abc and in the .mid too (abc2midi writes Z: lines into it as text).

    The .abc is always written: a tune abc2midi cannot turn into MIDI is saved as .abc, one
    that cannot become sound (no timidity, too long, silent) as .abc and .mid, with the reason;
    a score verovio cannot engrave is left out, with its reason, and the rest is saved.
    """
    # Named after the last tune: the one generated after a prompt.
    title = title or header_field(last_tune(abc_text), "T") or "Untitled"
    where = Path(folder).expanduser() if folder is not None else output_dir()
    abc_text = credited(abc_text, credit) if credit else abc_text
    text = abc_text.strip("\n") + "\n"
    with tempfile.TemporaryDirectory(prefix="folkgen-save-") as tmp:
        made, problem = _render_what_can_be(abc_text, Path(tmp), voice)
        score, score_problem = _score_what_can_be(abc_text)
        paths = reserve_paths(where, slugify(title), [".abc", *made, *score])
        paths[0].write_text(text, encoding="utf-8")
        for made_path, path in zip(made.values(), paths[1 : 1 + len(made)], strict=True):
            shutil.move(made_path, path)
        for data, path in zip(score.values(), paths[1 + len(made) :], strict=True):
            path.write_bytes(data)
    problems = [p for p in (problem, score_problem) if p]
    return SavedTune(paths, "; ".join(problems) or None)


def _score_what_can_be(abc_text: str) -> tuple[dict[str, bytes], str | None]:
    """The tune's score files ({suffix: bytes}), or none and why (a saved tune without them)."""
    from core.score import score_files

    try:
        return score_files(abc_text), None
    except SoundError as e:  # ScoreError, or the engraver's process could not start
        return {}, f"no score: {e}"
    except (ImportError, OSError) as e:  # verovio / resvg / Pillow missing or broken
        return {}, f"no score: {e}"


def _render_what_can_be(
    abc_text: str, work: Path, voice: Voice | None = None
) -> tuple[dict[str, Path], str | None]:
    """The tune's MIDI and WAV in `work` as far as they can be made ({suffix: file}), and why
    the rest could not be."""
    midi = work / "tune.mid"
    try:
        check = run_abc2midi(abc_text, midi, voice=voice)
    except SoundError as e:  # abc2midi missing or hanging
        return {}, str(e)
    if not check.midi_written:
        return {}, str(InvalidTune(check))
    try:
        synthesize(midi, work / "tune.wav", expect_sound=bool(midi_notes(midi)))
    except SoundError as e:
        return {".mid": midi}, f"no WAV: {e}"
    return {".mid": midi, ".wav": work / "tune.wav"}, None


def _place(
    made: Path, wanted: dict[str, str | Path | None], folder: Path, stem: str
) -> dict[str, Path]:
    """Move made.{mid,wav} to free names; files without a target share one stem in folder."""
    groups: dict[tuple[Path, str], list[str]] = {}
    for suffix, target in wanted.items():
        if target is None:
            groups.setdefault((folder, stem), []).append(suffix)
        else:
            where, name, _ = file_target(target, suffix)
            groups.setdefault((where, name), []).append(suffix)
    placed: dict[str, Path] = {}
    reserved: list[Path] = []
    try:
        for (where, name), suffixes in groups.items():
            paths = reserve_paths(where, name, suffixes)
            reserved += paths
            for suffix, path in zip(suffixes, paths, strict=True):
                shutil.move(made.with_suffix(suffix), path)
                placed[suffix] = path
    except BaseException:  # leave no empty or half-copied file behind
        for path in reserved:
            path.unlink(missing_ok=True)
        raise
    return placed


# --- playback -----------------------------------------------------------------------------------

# ALSA prints its errors straight to file descriptor 2 (a full-screen app's screen) unless given a
# handler. The C callback must stay referenced as long as libasound may call it: module lifetime.
_ALSA_HANDLER_TYPE = ctypes.CFUNCTYPE(
    None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p
)
_alsa_handler: Any = None


def silence_alsa() -> bool:
    """Route libasound's error messages to a no-op; True when installed (idempotent)."""
    global _alsa_handler
    if _alsa_handler is not None:
        return True
    try:  # the soname simpleaudio links against: the same, already loaded, library instance
        lib = ctypes.CDLL("libasound.so.2")
    except OSError:
        return False
    handler = _ALSA_HANDLER_TYPE(lambda *_: None)
    lib.snd_lib_error_set_handler(handler)
    _alsa_handler = handler
    return True


class Player:
    """Plays one WAV file at a time in the background (simpleaudio's own thread)."""

    def __init__(self) -> None:
        self._play: Any = None  # simpleaudio.PlayObject
        self._started = 0.0
        self.wav_path: Path | None = None
        self.duration_seconds = 0.0

    def play(self, wav_path: str | Path) -> None:
        """Start playing (stops what was playing). Raises PlaybackUnavailable without a device."""
        self.stop()
        path = Path(wav_path)
        silence_alsa()
        try:
            import simpleaudio
            from simpleaudio._simpleaudio import SimpleaudioError
        except ImportError as e:  # libasound missing, or the package not built
            raise PlaybackUnavailable(path, f"simpleaudio is unavailable: {e}") from None
        try:
            wave_obj = simpleaudio.WaveObject.from_wave_file(str(path))
        except (OSError, EOFError, wave.Error) as e:
            raise SoundError(f"{path}: not a playable WAV file ({e})") from None
        try:
            self._play = wave_obj.play()
        except SimpleaudioError as e:
            raise PlaybackUnavailable(path, _device_reason(str(e))) from None
        self._started = time.monotonic()
        self.wav_path = path
        frame_bytes = wave_obj.num_channels * wave_obj.bytes_per_sample
        self.duration_seconds = len(wave_obj.audio_data) / frame_bytes / wave_obj.sample_rate

    def stop(self) -> None:
        if self._play is not None:
            self._play.stop()
            self._play = None

    @property
    def is_playing(self) -> bool:
        return self._play is not None and bool(self._play.is_playing())

    @property
    def position_seconds(self) -> float | None:
        """Seconds into the playing file (wall clock since start), or None when nothing plays."""
        if not self.is_playing:
            return None
        return min(time.monotonic() - self._started, self.duration_seconds)

    def wait(self, poll: float = 0.05) -> None:
        """Block until the file has played to its end (or stop() is called elsewhere)."""
        while self.is_playing:
            time.sleep(poll)


_NO_DEVICE = ("No such file or directory", "No such device")  # ALSA's ENOENT, ENODEV: none


def _device_reason(message: str) -> str:
    # simpleaudio: "Error opening PCM device. -- CODE: -2 -- MSG: No such file or directory"
    if "opening PCM device" in message:
        detail = message.split("MSG:", 1)[-1].strip() if "MSG:" in message else ""
        if detail in _NO_DEVICE:  # says again that there is none, as a file error would read
            detail = ""
        return "no audio device could be opened" + (f": {detail}" if detail else "")
    return message


# --- notes for a piano roll ---------------------------------------------------------------------


@dataclass(frozen=True)
class Note:
    pitch: int  # MIDI note number, 60 = middle C
    start_seconds: float
    duration_seconds: float
    velocity: int = 64
    channel: int = 0


def midi_notes(midi_path: str | Path) -> list[Note]:
    """Every note of a MIDI file with its start and length in seconds, ordered by start."""
    import mido

    open_notes: dict[tuple[int, int], list[tuple[float, int]]] = {}
    notes: list[Note] = []
    now = 0.0
    for msg in mido.MidiFile(str(midi_path)):  # iteration yields delta times in seconds
        now += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            open_notes.setdefault((msg.channel, msg.note), []).append((now, msg.velocity))
        elif msg.type in ("note_off", "note_on"):
            started = open_notes.get((msg.channel, msg.note))
            if started:
                begin, velocity = started.pop(0)
                notes.append(Note(msg.note, begin, now - begin, velocity, msg.channel))
    for (channel, pitch), pending in open_notes.items():  # never released: end with the file
        notes += [Note(pitch, b, now - b, v, channel) for b, v in pending]
    return sorted(notes, key=lambda n: (n.start_seconds, n.pitch))
