"""The sound path against hostile input (issue 11, "Trust"), with the real abc2midi and timidity.

A shared .abc file must not make abc2midi read other files, exhaust memory or disk, hang the
CLI, or write terminal escapes; a missing timidity must not lose a saved tune. Stand-in tools
appear only to report the limits a child runs under.
"""

from __future__ import annotations

import json
import os
import re
import resource
import struct
import subprocess
import sys
import tracemalloc
import wave
from pathlib import Path

import numpy as np
import pytest

from core.abc import check_tune
from core.audio import RenderFailed, TooLong, render, save_tune, wav_facts
from core.score import SCORE_SUFFIXES
from tests.test_audio import SCALE, sound_cli

ROOT = Path(__file__).parent.parent
GIB = 1 << 30
# 16 whole notes at 4 quarter notes a minute: 16:00 by the MIDI (a WAV of 170 MB).
SLOW = "X:1\nT:Slow\nM:4/4\nL:1/1\nQ:1/4=4\nK:C\nCDEF|GABc|cBAG|FEDC|\n"
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")  # all but the newline


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    """A named pipe nobody writes: a program that opens it for reading blocks."""
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


def path_with_only(tmp_path: Path, *tools: str) -> str:
    """A PATH folder holding only the named real tools."""
    folder = tmp_path / "only"
    folder.mkdir()
    for tool in tools:
        (folder / tool).symlink_to(f"/usr/bin/{tool}")
    return str(folder)


def stand_in(tmp_path: Path, tool: str, exit_status: int) -> str:
    """A PATH folder whose `tool` prints the limits it runs under, then exits."""
    folder = tmp_path / "stand-in"
    folder.mkdir(exist_ok=True)
    script = folder / tool
    script.write_text(
        f"#!{sys.executable}\n"
        "import resource\n"
        "m = resource.getrlimit(resource.RLIMIT_AS)[0]\n"
        "f = resource.getrlimit(resource.RLIMIT_FSIZE)[0]\n"
        "print(f'limits {m} {f}')\n"
        f"raise SystemExit({exit_status})\n"
    )
    script.chmod(0o755)
    return f"{folder}{os.pathsep}{os.environ['PATH']}"


def limits_in(text: str) -> tuple[int, int]:
    m = re.search(r"limits (-?\d+) (-?\d+)", text)
    assert m, text
    return int(m.group(1)), int(m.group(2))


def run_cli(*argv: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """`folkgen ARGV` in a child with 1 GB of address space: a runaway read ends in MemoryError."""

    def bound() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (GIB, GIB))

    code = "import sys; from core.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=bound,
    )


# --- 1. abc2midi reads no file a tune names; its memory and files are bounded --------------------


@pytest.mark.parametrize(
    "line",
    [
        "%%abc-include {path}",
        "%%abc-include{path}",  # abc2midi's sscanf needs no space
        "   %%abc-include {path}",  # nor the line to start with it
        "%%MIDI ptstress {path}",
        "I:MIDI ptstress {path}",
        "CD[I:MIDI ptstress {path}]EF|",
        "%%MIDIdef stress ptstress {path}\n%%MIDIx stress",
        "N:notes [I:MIDI ptstress {path}]",  # an inline field in a text field's words
    ],
)
def test_lines_that_make_abc2midi_open_a_file_are_left_out(fifo: Path, line: str) -> None:
    # Opening the FIFO would block abc2midi until the timeout: no AbcTimeout means no open.
    directive = line.format(path=fifo)
    text = f"X:1\nT:Include\nM:4/4\nL:1/8\nK:C\n{directive}\nCDEF GABc|c8|]\n"
    check = check_tune(text, timeout=3)
    assert not check.valid
    # The rest of the tune is still checked (abc2midi crashes on the now undefined macro).
    assert check.midi_written or "MIDIx" in line
    first = check.errors[0]
    assert first.line == 6 and "left this line out" in first.text
    assert re.search("abc-include|ptstress", first.text)


def test_the_words_alone_in_a_title_or_notes_are_kept(fifo: Path) -> None:
    """A title, notes or lyrics naming the directives are words, which abc2midi does not obey:
    the tune is checked whole and valid ("T:The abc-include Reel" was invalid, its line left
    out)."""
    text = (f"X:1\nT:The abc-include Reel\nN:see ptstress {fifo}\nM:4/4\nL:1/8\nK:C\n"
            "CDEF GABc|c8|]\nw:the ptstress word\n")  # fmt: skip
    check = check_tune(text, timeout=3)
    assert check.valid and not check.errors, check.errors


def test_including_dev_zero_is_refused_at_once() -> None:
    text = "X:1\nT:Zero\nM:4/4\nL:1/8\n%%abc-include /dev/zero\nK:C\nCDEF GABc|c8|]\n"
    check = check_tune(text, timeout=2)  # abc2midi reading /dev/zero grows by ~100 MB/s
    assert not check.valid and check.bars == 2
    assert (check.errors[0].line, check.errors[0].column) == (5, 3)


def test_abc2midi_runs_under_memory_and_file_size_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", stand_in(tmp_path, "abc2midi", 0))
    memory, file_size = limits_in(check_tune(SCALE).log)
    assert 0 < memory <= GIB
    assert 0 < file_size <= 64 << 20


def test_timidity_runs_under_memory_and_file_size_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", stand_in(tmp_path, "timidity", 1))
    with pytest.raises(RenderFailed) as info:
        render(SCALE, tmp_path / "out")
    memory, file_size = limits_in(str(info.value))
    assert 0 < memory <= GIB
    ten_minutes = 600 * 44100 * 4  # 16-bit stereo
    assert ten_minutes < file_size < 1.2 * ten_minutes  # room for the ring-out, no more


# --- 2. audio length is bounded before rendering; WAVs are measured in pieces -----------------


def test_a_tune_longer_than_ten_minutes_is_refused_before_timidity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without timidity on PATH, reaching it would be ToolMissing: TooLong comes first.
    monkeypatch.setenv("PATH", path_with_only(tmp_path, "abc2midi"))
    out = tmp_path / "out"
    with pytest.raises(TooLong, match=r"play for 16:00, longer than the 10 minutes") as info:
        render(SLOW, out)
    assert info.value.seconds == pytest.approx(960, abs=1)
    assert not out.exists() or list(out.iterdir()) == []
    midi_only = render(SLOW, out, wav=False)  # a MIDI file stays small: no reason to refuse
    assert midi_only.midi_path is not None and midi_only.midi_path.stat().st_size < 1000


def test_cli_render_names_the_too_long_tune_and_renders_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    abc = tmp_path / "two.abc"
    abc.write_text(SLOW + "\n" + SCALE, encoding="utf-8")
    assert sound_cli("render", str(abc), "--wav", str(tmp_path / "t.wav")) == 1
    out = capsys.readouterr().out
    assert "1. Slow: not rendered: this tune would play for 16:00" in out
    assert [p.name for p in tmp_path.glob("t*.wav")] == ["t.wav"]
    assert (tmp_path / "t.wav").stat().st_size < 5 << 20  # the scale, not the slow tune


def write_wav(path: Path, samples: np.ndarray, rate: int = 44100) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())


def test_wav_facts_reads_a_large_wav_in_pieces(tmp_path: Path) -> None:
    big = tmp_path / "big.wav"
    frames = 400 * 44100  # 400 s of 16-bit stereo, 70 MB: silence, written as a sparse file
    with big.open("wb") as f:
        f.write(b"RIFF" + struct.pack("<I", 36 + frames * 4) + b"WAVE")
        f.write(b"fmt " + struct.pack("<IHHIIHH", 16, 1, 2, 44100, 44100 * 4, 4, 16))
        f.write(b"data" + struct.pack("<I", frames * 4))
        f.truncate(44 + frames * 4)
    tracemalloc.start()
    try:
        seconds, rms = wav_facts(big)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (seconds, rms) == (400.0, 0.0)
    assert peak < 8 << 20  # read whole, its samples as float64 would be 560 MB


def test_wav_facts_rms_over_many_pieces(tmp_path: Path) -> None:
    square = np.tile([16384, 16384, -16384, -16384], 200_000)  # 400,000 frames, RMS 0.5
    square[:2] = 0  # one silent frame: RMS of the rest, counted over all samples
    write_wav(tmp_path / "sq.wav", square)
    seconds, rms = wav_facts(tmp_path / "sq.wav")
    assert seconds == pytest.approx(400_000 / 44100)
    assert rms == pytest.approx(0.5 * np.sqrt((square.size - 2) / square.size), rel=1e-12)


# --- 3. the CLI reads only regular files, and not too much -----------------------------------


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1
    return proc.stderr


@pytest.mark.parametrize("command", ["check", "render", "play"])
def test_cli_refuses_a_named_pipe_without_waiting(fifo: Path, command: str) -> None:
    err = one_line_error(run_cli(command, str(fifo)))
    assert err == f"folkgen: error: {fifo}: a named pipe, not an ABC file\n"


def test_cli_refuses_a_device_and_a_folder(tmp_path: Path) -> None:
    err = one_line_error(run_cli("check", "/dev/zero"))
    assert err == "folkgen: error: /dev/zero: a device, not an ABC file\n"
    err = one_line_error(run_cli("check", str(tmp_path)))
    assert err == f"folkgen: error: {tmp_path}: a folder, not an ABC file\n"


def test_cli_refuses_a_file_over_ten_megabytes(tmp_path: Path) -> None:
    huge = tmp_path / "huge.abc"
    with huge.open("wb") as f:
        f.write(SCALE.encode())
        f.truncate(10 * 2**20 + 1)  # sparse: no 10 MB written
    err = one_line_error(run_cli("check", str(huge)))
    assert err == (
        f"folkgen: error: {huge}: larger than an ABC file may be here (the limit is 10 MB)\n"
    )


# --- 4. tune text reaches the terminal without control characters ---------------------------


def test_escape_sequences_in_a_tune_are_not_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    abc = tmp_path / "escapes.abc"
    abc.write_text(
        "X:1\nT:\x1b]0;pwned\x07\x1b[2J\nM:4/4\nL:1/8\nK:C\nCDEF GABc|\x1b[31mc8|]\n",
        encoding="utf-8",
    )
    assert sound_cli("check", str(abc)) == 1
    out = capsys.readouterr().out
    assert not CONTROL.search(out), repr(out)
    assert "1. ]0;pwned[2J (line 1): INVALID" in out and "Unrecognized character" in out
    sound_cli("render", str(abc), "--midi", str(tmp_path / "e.mid"))
    out = capsys.readouterr().out
    assert not CONTROL.search(out) and "1. ]0;pwned[2J: " in out, repr(out)
    sound_cli("check", str(abc), "--json")  # JSON escapes them: the text survives, safely
    out = capsys.readouterr().out
    assert not CONTROL.search(out) and json.loads(out)["tunes"][0]["title"] == "]0;pwned[2J"


# --- 5. saving keeps what could be made ----------------------------------------------------


def test_save_without_timidity_keeps_the_abc_and_midi(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", path_with_only(tmp_path, "abc2midi"))
    saved = save_tune(SCALE, tmp_path / "out")
    assert [p.suffix for p in saved.paths] == [".abc", ".mid", *SCORE_SUFFIXES]
    assert saved.paths[0].read_text(encoding="utf-8") == SCALE
    assert all(p.stat().st_size > 0 for p in saved.paths[1:])
    assert saved.problem is not None and "no WAV: timidity is not installed" in saved.problem
    assert sorted((tmp_path / "out").iterdir()) == sorted(saved.paths)


def test_save_without_abc2midi_keeps_the_abc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", path_with_only(tmp_path, "timidity"))
    saved = save_tune(SCALE, tmp_path / "out")
    assert [p.name for p in saved.paths] == [f"scale-etude{s}" for s in (".abc", *SCORE_SUFFIXES)]
    assert saved.problem is not None and "abc2midi is not installed" in saved.problem


def test_save_a_too_long_tune_keeps_the_abc_and_midi(tmp_path: Path) -> None:
    saved = save_tune(SLOW, tmp_path)
    assert [p.suffix for p in saved.paths] == [".abc", ".mid", *SCORE_SUFFIXES]
    assert saved.problem is not None and "would play for 16:00" in saved.problem
