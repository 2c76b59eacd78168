"""core.audio and core.cli_sound with the real abc2midi, timidity, simpleaudio and ALSA.

There is no sound card here: playback goes to ALSA's null device, or to a card that does not
exist, chosen with ALSA_CONFIG_PATH in a subprocess (libasound reads its config once per process).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import wave
from pathlib import Path

import numpy as np
import pytest

from core.abc import ToolMissing
from core.audio import (
    MAX_GAIN,
    SILENCE_RMS,
    TARGET_PEAK,
    InvalidTune,
    SilentRender,
    midi_notes,
    normalise_wav,
    render,
    slugify,
    wav_facts,
    wav_levels,
)
from core.cli_sound import add_sound_commands

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parent.parent
TUNES_FILE = DATA / "tunes.abc"
SCALE = "X:1\nT:Scale Étude\nM:4/4\nL:1/8\nK:C\nCDEF GABc|cBAG FEDC|CDEF GABc|c8|]\n"
BROKEN_KEY = "X:1\nT:Keyless\nM:4/4\nL:1/8\nCDEF GABc|\n"


@pytest.fixture(scope="module")
def scale_render(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real render of SCALE, shared by the playback tests."""
    done = render(SCALE, tmp_path_factory.mktemp("render"))
    assert done.wav_path is not None
    return done.wav_path


def run_python(code: str, alsa_conf: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ALSA_CONFIG_PATH": str(alsa_conf)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def sound_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="folkgen")
    add_sound_commands(parser.add_subparsers(required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


# --- render -------------------------------------------------------------------------------------


def test_an_output_named_as_a_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], folkgen_home: Path
) -> None:
    """render --midi DIR and score --pdf DIR wrote DIR.mid / DIR.pdf beside the folder."""
    from core.cli import main

    for argv in (["render", str(TUNES_FILE), "--tune", "1", "--midi", str(tmp_path)],
                 ["score", str(TUNES_FILE), "--tune", "1", "--pdf", str(tmp_path)]):  # fmt: skip
        assert main(argv) == 1
        assert f"{tmp_path} is a folder; give a file name" in capsys.readouterr().err
    assert not list(tmp_path.parent.glob(f"{tmp_path.name}.*"))


def test_render_writes_audible_wav_as_long_as_the_tune(folkgen_home: Path) -> None:
    done = render(SCALE)
    assert done.midi_path == folkgen_home / "tunes" / "scale-etude.mid"
    assert done.wav_path == folkgen_home / "tunes" / "scale-etude.wav"
    assert done.check.valid and done.check.duration_seconds == pytest.approx(8.0, abs=0.1)
    seconds, rms = wav_facts(done.wav_path)
    assert rms > SILENCE_RMS and done.rms == pytest.approx(rms)
    # As loud as other music: timidity's own peaked near -22 dBFS.
    assert wav_levels(done.wav_path)[2] == pytest.approx(TARGET_PEAK, abs=0.002)
    # timidity lets the last notes ring out: a little longer than the MIDI, never shorter.
    assert 0 <= seconds - done.check.duration_seconds < 3.0
    assert done.duration_seconds == pytest.approx(seconds)
    notes = midi_notes(done.midi_path)
    assert [n.pitch for n in notes[:8]] == [60, 62, 64, 65, 67, 69, 71, 72]
    assert notes[1].start_seconds == pytest.approx(0.25, abs=0.01)  # eighths at 120 q/min
    assert notes[-1].start_seconds + notes[-1].duration_seconds <= done.check.duration_seconds


def test_wav_keeps_the_midi_clock_through_a_leading_rest(tmp_path: Path) -> None:
    done = render("X:1\nT:Rest First\nM:4/4\nL:1/8\nK:C\nz4 CDEF|GABc c4|]\n", tmp_path)
    assert done.wav_path is not None
    with wave.open(str(done.wav_path)) as w:
        rate, data = w.getframerate(), w.readframes(w.getnframes())
    samples = np.abs(np.frombuffer(data, dtype="<i2").reshape(-1, 2)).max(axis=1)
    onset = np.argmax(samples > 300) / rate
    assert midi_notes(done.midi_path)[0].start_seconds == pytest.approx(1.0, abs=0.01)
    assert onset == pytest.approx(1.0, abs=0.05)  # timidity drops leading silence by default


def test_render_never_overwrites(tmp_path: Path) -> None:
    first = render(SCALE, tmp_path, midi=False)
    assert first.wav_path is not None and first.midi_path is None
    before = first.wav_path.read_bytes()
    second = render(SCALE, tmp_path, title="Scale Étude")
    assert second.wav_path == tmp_path / "scale-etude-2.wav"
    assert second.midi_path == tmp_path / "scale-etude-2.mid"  # a pair keeps one stem
    assert first.wav_path.read_bytes() == before
    third = render(SCALE, tmp_path, wav=False, midi_to=tmp_path / "mine.mid")
    fourth = render(SCALE, tmp_path, wav=False, midi_to=tmp_path / "mine.mid")
    assert (third.midi_path, fourth.midi_path) == (tmp_path / "mine.mid", tmp_path / "mine-2.mid")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "mine-2.mid", "mine.mid", "scale-etude-2.mid", "scale-etude-2.wav", "scale-etude.wav",
    ]  # fmt: skip


def test_render_refuses_a_tune_without_midi(tmp_path: Path) -> None:
    with pytest.raises(InvalidTune, match="No valid K: field") as info:
        render(BROKEN_KEY, tmp_path)
    assert not info.value.check.valid and list(tmp_path.iterdir()) == []


def test_timidity_without_patches_is_a_silent_render_error(tmp_path: Path) -> None:
    # timidity always reads its default config first; this one then maps every instrument to a
    # patch file that does not exist, as on a system without a sound font: it writes silence.
    cfg = tmp_path / "no-patches.cfg"
    cfg.write_text("bank 0\n" + "".join(f"{p} /nonexistent/none.pat\n" for p in range(128)))
    out = tmp_path / "out"
    with pytest.raises(SilentRender, match="sudo apt-get install fluid-soundfont-gm"):
        render(SCALE, out, timidity_cfg=cfg)
    assert not out.exists() or list(out.iterdir()) == []


def test_missing_tools_name_their_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(ToolMissing, match="sudo apt-get install abcmidi"):
        render(SCALE, tmp_path)
    only_abc2midi = tmp_path / "bin"
    only_abc2midi.mkdir()
    (only_abc2midi / "abc2midi").symlink_to("/usr/bin/abc2midi")
    monkeypatch.setenv("PATH", str(only_abc2midi))
    with pytest.raises(ToolMissing, match="sudo apt-get install timidity fluid-soundfont-gm"):
        render(SCALE, tmp_path / "out")
    midi_only = render(SCALE, tmp_path / "out", wav=False)  # needs no timidity
    assert midi_only.midi_path is not None and midi_notes(midi_only.midi_path)


def test_slugify() -> None:
    assert slugify("Paddy Fahey's (No. 2)") == "paddy-faheys-no-2"
    assert slugify("Ríl Mhór") == "ril-mhor"
    assert slugify("../../etc/passwd") == "etc-passwd"
    assert slugify("???") == "untitled" and len(slugify("x" * 300)) == 60


# --- playback -----------------------------------------------------------------------------------

PLAY = """
    import json, sys, time
    from core.audio import Player, PlaybackUnavailable
    p = Player()
    result = {}
    try:
        p.play(sys.argv[1])
        start = time.monotonic()
        p.wait()
        result["waited"] = time.monotonic() - start
        result["after"] = [p.is_playing, p.position_seconds]
        p.play(sys.argv[1])
        p.stop()
        result["stopped"] = [p.is_playing, p.position_seconds]
        result["duration"] = p.duration_seconds
    except PlaybackUnavailable as e:
        result["unavailable"] = [str(e), str(e.wav_path)]
    print(json.dumps(result))
"""


def test_play_to_the_null_device_completes_and_stops(scale_render: Path) -> None:
    proc = run_python(PLAY, DATA / "alsa-null.conf", str(scale_render))
    assert proc.returncode == 0 and proc.stderr == ""
    result = json.loads(proc.stdout)
    assert result["waited"] < 10  # the null device does not keep time: it plays at once
    assert result["after"] == [False, None] and result["stopped"] == [False, None]
    assert result["duration"] == pytest.approx(wav_facts(scale_render)[0])


def test_no_audio_device_is_a_clear_error_and_alsa_stays_quiet(scale_render: Path) -> None:
    proc = run_python(PLAY, DATA / "alsa-nocard.conf", str(scale_render))
    assert proc.returncode == 0
    assert proc.stderr == ""  # ALSA's own error lines would land here
    message, wav_path = json.loads(proc.stdout)["unavailable"]
    assert wav_path == str(scale_render) and f"the tune is saved as {scale_render}" in message
    assert "no audio device" in message


def test_alsa_does_print_without_the_handler(scale_render: Path) -> None:
    """The control for the test above: bare simpleaudio on the same config writes to fd 2."""
    code = """
        import simpleaudio
        try:
            simpleaudio.WaveObject.from_wave_file(__import__("sys").argv[1]).play()
        except Exception:
            pass
    """
    proc = run_python(code, DATA / "alsa-nocard.conf", str(scale_render))
    assert "ALSA lib" in proc.stderr


# --- CLI ----------------------------------------------------------------------------------------


def test_cli_check_reports_each_tune_with_file_lines(capsys: pytest.CaptureFixture[str]) -> None:
    assert sound_cli("check", str(TUNES_FILE)) == 1
    out = capsys.readouterr().out
    assert "4 tunes, 2 valid" in out and "1. Good Scale (line 1): valid, 4 bars played, 0:08" in out
    assert f"{TUNES_FILE}:13:21: error: Sustained notes beyond end of track" in out
    assert f"{TUNES_FILE}:20:31: warning: Track 0 Bar 2 has 9/2 time units" in out
    assert "incomplete: no K: (key) line" in out
    assert sound_cli("check", str(TUNES_FILE), "--json") == 1
    data = json.loads(capsys.readouterr().out)
    assert [t["valid"] for t in data["tunes"]] == [True, False, True, False]
    assert data["tunes"][1]["errors"][0] == {
        "line": 13, "column": 21, "text": "Sustained notes beyond end of track",
    }  # fmt: skip
    assert data["tunes"][2]["clean"] is False and data["tunes"][0]["bars"] == 4


def test_cli_passes_over_words_between_tunes_as_import_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A collection's note between its tunes is no tune to check, number or render: import and
    training pass over it (core.corpus.holds_music), and `check` once called it an invalid tune
    and exited 1 on a clean file, and `--tune 2` rendered the note."""
    second = SCALE.replace("X:1", "X:2").replace("Scale Étude", "Second")
    book = tmp_path / "book.abc"
    book.write_text(SCALE + "\nSee also the next one, from Kerry.\n\n" + second, encoding="utf-8")
    assert sound_cli("check", str(book)) == 0
    out = capsys.readouterr().out
    assert "2 tunes, 2 valid" in out and "2. Second (line 10): valid" in out
    assert "passed over words that are no tune, with no field or bar line (line 8)" in out
    assert sound_cli("check", str(book), "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["count"] == 2 and data["words_passed_over"] == [8]
    assert sound_cli("render", str(book), "--tune", "2", "--midi", str(tmp_path / "two.mid")) == 0
    assert "  2. Second:" in capsys.readouterr().out  # numbered by its place, as check does
    words = tmp_path / "words.abc"
    words.write_text("Notes on the collection.\n\nMore notes.\n", encoding="utf-8")
    assert sound_cli("check", str(words)) == 1
    assert "no tunes found" in capsys.readouterr().err


def test_cli_render_per_tune_and_explicit_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.abc"
    good.write_text(SCALE, encoding="utf-8")
    assert sound_cli("render", str(good), "--wav", str(tmp_path / "x.wav"), "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["rendered"] == 1 and data["tunes"][0]["wav"] == str(tmp_path / "x.wav")
    assert data["tunes"][0]["midi"] is None and (tmp_path / "x.wav").is_file()
    code = sound_cli("render", str(TUNES_FILE), "--midi", str(tmp_path / "t.mid"))
    out = capsys.readouterr().out
    assert code == 1  # Keyless has no MIDI; the others do, errors or not
    assert sorted(p.name for p in tmp_path.glob("t*.mid")) == ["t-2.mid", "t-3.mid", "t.mid"]
    assert "4. Keyless: not rendered" in out and f"{TUNES_FILE}:26:11: error: No valid K:" in out
    # --tune renders only that tune, as play and score take it
    code = sound_cli("render", str(TUNES_FILE), "--tune", "2", "--midi", str(tmp_path / "two.mid"))
    assert code == 0 and [p.name for p in tmp_path.glob("two*.mid")] == ["two.mid"]
    assert ": 1 tune\n" in capsys.readouterr().out  # not "1 tune(s)"
    assert sound_cli("render", str(TUNES_FILE), "--tune", "9") == 1
    assert "--tune must be 1 to" in capsys.readouterr().err


def test_cli_errors_are_one_line_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert sound_cli("check", str(tmp_path / "missing.abc")) == 1
    assert (
        capsys.readouterr().err
        == f"folkgen: error: {tmp_path / 'missing.abc'}: No such file or directory\n"
    )
    latin = tmp_path / "latin.abc"
    latin.write_bytes("X:1\nT:Caf\xe9\nK:C\nC|\n".encode("latin-1"))
    assert sound_cli("check", str(latin)) == 0
    assert "Café" in capsys.readouterr().out  # read as Latin-1: it was refused, "not UTF-8"
    midi = tmp_path / "tune.mid"  # given by mistake: it said "not UTF-8 text", convert it
    midi.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x00\xe0MTrk")
    assert sound_cli("check", str(midi)) == 1
    assert capsys.readouterr().err.endswith("tune.mid: looks like a binary file, not ABC text\n")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert sound_cli("render", str(TUNES_FILE)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sudo apt-get install abcmidi" in err


def test_cli_play_without_device_names_the_saved_wav(tmp_path: Path, folkgen_home: Path) -> None:
    code = "import sys; from core.cli import main; sys.exit(main(sys.argv[1:]))"
    good = tmp_path / "good.abc"
    good.write_text(SCALE, encoding="utf-8")
    proc = run_python(code, DATA / "alsa-nocard.conf", "play", str(good))
    assert proc.returncode == 1 and "playing" not in proc.stdout  # it did not play
    wav = folkgen_home / "tunes" / "scale-etude.wav"
    assert proc.stderr.splitlines() == [
        "folkgen: error: cannot play sound here (no audio device could be opened); the tune is "
        f"saved as {wav}"  # not ALSA's "No such device" (or "No such file or directory")
    ]
    assert wav.is_file()
    from core.audio import _device_reason

    busy = "Error opening PCM device. -- CODE: -16 -- MSG: Device or resource busy"
    assert _device_reason(busy) == "no audio device could be opened: Device or resource busy"
    proc = run_python(code, DATA / "alsa-null.conf", "play", str(good), "--tune", "1")
    assert proc.returncode == 0 and proc.stderr == "" and "playing Scale Étude" in proc.stdout


MEASURE_WHILE_FORKING = """
import subprocess, sys, threading, time, wave
import numpy as np
from core.audio import wav_facts
path = sys.argv[1]
stop = False
def measure():
    while not stop:
        wav_facts(path)
def spawn():  # as a render does: a subprocess with limits (a preexec_fn: a real fork)
    while not stop:
        subprocess.run(["true"], preexec_fn=lambda: None)
threads = [threading.Thread(target=f, daemon=True) for f in (measure, spawn)]
for t in threads:
    t.start()
time.sleep(2.0)
stop = True
for t in threads:
    t.join(timeout=10)
print("hung" if any(t.is_alive() for t in threads) else "ok", flush=True)
"""


def test_a_wav_is_measured_exactly_while_another_thread_forks(tmp_path: Path) -> None:
    """A WAV's RMS is an exact integer sum: a float dot product was OpenBLAS's, whose threads a
    fork in another thread shuts down under it, and the measure then waited for ever (two saves
    at once hung the app's save threads and its exit)."""
    path = tmp_path / "noise.wav"
    samples = (np.random.default_rng(0).normal(size=44100 * 2 * 3) * 3000).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(44100)
        w.writeframes(samples.tobytes())
    seconds, rms = wav_facts(path)
    exact = np.sqrt(np.sum(samples.astype(np.int64) ** 2) / samples.size) / 32768
    assert seconds == 3.0 and rms == pytest.approx(exact, rel=1e-15)
    proc = subprocess.run([sys.executable, "-c", MEASURE_WHILE_FORKING, str(path)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_a_quiet_wav_is_brought_up_to_the_target_peak_and_no_further(tmp_path: Path) -> None:
    def wav(name: str, samples: np.ndarray) -> Path:
        path = tmp_path / name
        with wave.open(str(path), "wb") as w:
            w.setnchannels(2)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(samples.astype("<i2").tobytes())
        return path

    tone = np.sin(np.arange(8000 * 2 * 10) / 7.0)  # 10 s: many chunks
    quiet = wav("quiet.wav", tone * 2000)
    gain = normalise_wav(quiet, wav_levels(quiet)[2])
    assert gain == pytest.approx(TARGET_PEAK * 32768 / 2000, rel=1e-3)
    assert wav_levels(quiet)[2] == pytest.approx(TARGET_PEAK, abs=1e-4)
    assert wav_facts(quiet)[0] == 10.0 and not list(tmp_path.glob(".*.tmp"))
    loud = wav("loud.wav", tone * 32000)  # louder than the target: left as it is
    before = loud.read_bytes()
    assert normalise_wav(loud, wav_levels(loud)[2]) == 1.0 and loud.read_bytes() == before
    hiss = wav("hiss.wav", tone * 10)  # near silence: raised by MAX_GAIN at most
    assert normalise_wav(hiss, wav_levels(hiss)[2]) == MAX_GAIN
    silent = wav("silent.wav", tone * 0)
    assert normalise_wav(silent, wav_levels(silent)[2]) == 1.0
