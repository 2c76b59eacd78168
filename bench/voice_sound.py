"""What the voice (issue 16) does to the sound: one tune rendered as every instrument (the WAV's
spectral centroid, its brightness in Hz) and at several tempos (the WAV's length, its audible
length and the MIDI's), with the patches timidity finds here (FluidR3 on Debian). Not timing:
these are properties of the files, the same on any CPU."""

from __future__ import annotations

import argparse
import tempfile
import wave
from pathlib import Path

import numpy as np

from core.audio import midi_notes, render
from core.voice import INSTRUMENTS, Voice

# The reel tests/test_voice.py renders: four bars, 8 s at abc2midi's default 120 a minute.
REEL = "X:1\nT:Voice Reel\nM:4/4\nL:1/8\nK:D\nDFAd fdAF|GBdg fdAF|EFGA BcdB|AFDF E2D2|]\n"
AUDIBLE = 0.01  # of the loudest sample


def mono(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        frames = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        return frames.astype(np.float64).reshape(-1, 2).mean(axis=1), w.getframerate()


def centroid(path: Path) -> float:
    samples, rate = mono(path)
    magnitude = np.abs(np.fft.rfft(samples))
    return float((np.fft.rfftfreq(samples.size, 1 / rate) * magnitude).sum() / magnitude.sum())


def audible(path: Path) -> float:
    samples, rate = mono(path)
    loud = np.nonzero(np.abs(samples) > AUDIBLE * np.abs(samples).max())[0]
    return float(loud[-1] + 1) / rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tempos", type=int, nargs="+", default=[60, 120, 240])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="folkgen-voice-") as tmp:
        out = Path(tmp)
        print("instrument          program  centroid Hz")
        for name in ["(as written)", *sorted(INSTRUMENTS)]:
            voice = Voice(None if name.startswith("(") else name)
            done = render(REEL, out, title=name, voice=voice)
            assert done.wav_path is not None
            program = INSTRUMENTS.get(name, 0)
            print(f"{name:<20}{program:>7}  {centroid(done.wav_path):>11.0f}")
        print("\ntempo (1/4 a minute)  MIDI s   WAV s  audible s  audible - last note end s")
        for tempo in args.tempos:
            done = render(REEL, out, title=f"t{tempo}", voice=Voice("flute", tempo))
            assert done.wav_path is not None and done.midi_path is not None
            end = max(n.start_seconds + n.duration_seconds for n in midi_notes(done.midi_path))
            heard = audible(done.wav_path)
            print(
                f"{tempo:>20}  {done.check.duration_seconds:>6.2f}  {done.duration_seconds:>6.2f}"
                f"  {heard:>9.2f}  {heard - end:>6.2f}"
            )


if __name__ == "__main__":
    main()
