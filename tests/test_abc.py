"""core.abc against the real abc2midi: tune splitting, checking, missing tool, timeout."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from core.abc import (
    AbcTimeout,
    ToolMissing,
    check_tune,
    extract_tunes,
    midi_facts,
)
from core.corpus import load_corpus

DATA = Path(__file__).parent / "data"

SCALE = "X:1\nT:Scale\nM:4/4\nL:1/8\nK:C\nCDEF GABc|cBAG FEDC|CDEF GABc|c8|]\n"


# --- extract_tunes ------------------------------------------------------------------------------


def test_extract_splits_tunes_with_lines_titles_and_fields() -> None:
    text = (DATA / "tunes.abc").read_text(encoding="utf-8")
    tunes = extract_tunes(text, eof_ends_tune=True)
    assert [t.title for t in tunes] == ["Good Scale", "Open Chord", "Long Bar", "Keyless"]
    assert [t.start_line for t in tunes] == [1, 8, 15, 22]
    assert [t.field("X") for t in tunes] == ["1", "2", "3", "4"]
    assert tunes[0].key == "C major" and tunes[2].key == "G major" and tunes[0].meter == "4/4"
    assert [t.complete for t in tunes] == [True, True, True, False]
    assert "K:" in tunes[3].incomplete_reason and tunes[3].key is None


def test_generated_text_cut_off_is_incomplete() -> None:
    done = "X:1\nT:One\nK:D\nDEF|\n\n"
    tunes = extract_tunes(done + "X:2\nT:Two\nK:G\nGAB|")
    assert [t.complete for t in tunes] == [True, False]
    assert "cut off" in tunes[1].incomplete_reason
    # Ending with a single newline is not the blank line that closes a tune either.
    assert not extract_tunes(done + "X:2\nK:G\nGAB|\n")[1].complete
    # ...but in a file, the end of the file closes the last tune.
    assert extract_tunes(done + "X:2\nK:G\nGAB|\n", eof_ends_tune=True)[1].complete
    # Cut off inside the header: no music after K:, and no K: at all.
    assert extract_tunes("X:3\nT:Three\nK:A\n\n")[0].incomplete_reason.startswith("no music")
    assert not extract_tunes("X:4\nT:Four\nM:6/8\n\n")[0].complete


def test_extract_handles_blank_runs_crlf_and_untitled() -> None:
    text = "\n\nX:1\r\nK:C\r\nCDE|\r\n\r\n  \r\n\r\nX:2\r\nT:B\r\nK:D\r\nDEF|\r\n\r\n"
    tunes = extract_tunes(text)
    assert [t.text for t in tunes] == ["X:1\nK:C\nCDE|", "X:2\nT:B\nK:D\nDEF|"]
    assert [t.start_line for t in tunes] == [3, 9]
    assert tunes[0].title == "Untitled" and all(t.complete for t in tunes)
    assert extract_tunes("") == [] and extract_tunes("\n \n\n") == []


# --- check_tune ---------------------------------------------------------------------------------


def test_good_tune_is_valid_and_clean() -> None:
    check = check_tune(SCALE)
    assert check.valid and check.clean and check.midi_written
    assert check.errors == [] and check.warnings == [] and check.first_error is None
    assert check.bars == 4
    assert check.duration_seconds == pytest.approx(8.0, abs=0.1)  # 4 bars of 4/4 at 120 q/min


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("X:1\nT:Chord\nM:4/4\nL:1/8\nK:C\nCDEF GABc|[CEG cdef|\n", "Sustained notes"),
        ("X:1\nT:Keyless\nM:4/4\nL:1/8\nCDEF GABc|\n", "No valid K: field"),
        ("hello, this is no tune at all\n@@@ ###\n", "No valid K: field"),
        ("X:1\nT:Junk\nM:4/4\nL:1/8\nK:C\nCDEF GABc|@@ cdef|\n", "Unrecognized character: @"),
        ("", "empty"),
        ("  \n\n", "empty"),
    ],
)
def test_broken_tunes_are_invalid_with_messages(text: str, expected: str) -> None:
    check = check_tune(text)
    assert not check.valid and not check.clean
    assert check.first_error is not None and expected in check.first_error.text
    assert expected in check.summary()
    first = check.first_error
    if first.line:  # the line moves with the text shown above the tune, as a warning's does
        assert f"line {first.line + 2}, column {first.column}: " in check.summary(line_offset=2)


def test_unclosed_chord_still_makes_midi_but_is_invalid() -> None:
    # abc2midi writes a MIDI file for it and exits 0: only its Error line tells.
    check = check_tune("X:1\nT:Chord\nM:4/4\nL:1/8\nK:C\nCDEF GABc|[CEG cdef|\n")
    assert check.midi_written and not check.valid
    # Reported at the end of the tune: line 6 of 6, after its last character.
    assert (check.errors[0].line, check.errors[0].column) == (6, 21)


def test_messages_have_line_and_column_in_the_tune() -> None:
    check = check_tune("X:1\nT:Junk\nM:4/4\nL:1/8\nK:C\nCDEF GABc|@@ cdef|\n")
    assert [(e.line, e.column) for e in check.errors[:2]] == [(6, 11), (6, 12)]
    assert str(check.errors[0]) == "line 6, column 11: Unrecognized character: @"
    # Without its X: line the tune is still checked, with lines counted in the text given.
    check = check_tune("\nT:Junk\nK:C\nCDEF GABc|@@ cdef|")
    assert (check.errors[0].line, check.errors[0].column) == (4, 11)


def test_bar_length_warning_kept_and_repeat_notices_ignored() -> None:
    text = "X:1\nT:Long\nM:4/4\nL:1/8\nK:G\nGABc dBAG|ABcd efga|GABc dBAGF|G8:|\nBcde dBAG|G8:|\n"
    check = check_tune(text)
    assert check.valid and not check.clean
    assert len(check.warnings) == 1 and check.bar_warnings == check.warnings
    assert check.warnings[0].line == 6 and "time units" in check.warnings[0].text
    # abc2midi says it again as the repeat plays ("… in repeat"): shown once.
    assert any(m.text.endswith(" in repeat") for m in check.ignored)
    assert any("Assuming repeat" in m.text for m in check.ignored)
    assert not any("repeat" in m.text for m in check.warnings)
    # A person is told which warning, not only how many (the app's badge, `folkgen check`).
    first = check.warnings[0]
    assert check.validity() == f"valid, 1 warning (line 6, column {first.column}: {first.text})"
    assert check.validity(line_offset=2).startswith("valid, 1 warning (line 8, column ")
    assert check.summary().startswith(f"valid, 1 warning (line 6, column {first.column}: ")
    two = check_tune(text.replace("|G8:|\n", "|G7:|\n"))
    assert len(two.warnings) > 1
    assert two.validity().startswith(f"valid, {len(two.warnings)} warnings, the first (line 6, ")
    assert check_tune(text.replace("dBAGF|", "dBAG|")).validity() == "valid"


def test_missing_abc2midi_raises_tool_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolMissing, match=r"sudo apt-get install abcmidi") as info:
        check_tune(SCALE)
    assert isinstance(info.value, RuntimeError) and info.value.tool == "abc2midi"
    # What needs no tool keeps working.
    assert extract_tunes(SCALE + "\n")[0].complete


def test_hanging_abc2midi_times_out_and_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in that hangs (no real input is known to hang abc2midi). It starts a child, as a
    # wrapper script would: the whole process group must be killed, or the wait hangs too.
    pid_file = tmp_path / "sleep.pid"
    fake = tmp_path / "abc2midi"
    fake.write_text(f"#!/bin/sh\nsleep 60 &\necho $! > {pid_file}\nwait\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    start = time.monotonic()
    with pytest.raises(AbcTimeout, match="did not finish within 0.5 s"):
        check_tune(SCALE, timeout=0.5)
    assert time.monotonic() - start < 5
    pid = int(pid_file.read_text())
    time.sleep(0.1)
    stat = Path(f"/proc/{pid}/stat")
    assert not stat.exists() or stat.read_text().split(") ")[1].startswith("Z")  # gone or reaped


# --- agreement with abc2midi on the corpus -------------------------------------------------------


def test_check_agrees_with_one_abc2midi_run_over_corpus_tunes(tmp_path: Path) -> None:
    """check_tune, tune by tune, against abc2midi run once on a file of the same tunes."""
    tunes = load_corpus().tunes[::8]  # 103 tunes
    lines: list[str] = []
    ranges = []  # (first line, last line) of each tune in the file, 1-based
    for i, tune in enumerate(tunes, start=1):
        body = tune.strip("\n").split("\n")
        body = [f"X:{i}", *body[1:]] if body[0].startswith("X:") else [f"X:{i}", *body]
        ranges.append((len(lines) + 1, len(lines) + len(body) + 1))  # + the blank line after
        lines += [*body, ""]
    (tmp_path / "batch.abc").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = subprocess.run(
        ["abc2midi", "batch.abc"], cwd=tmp_path, capture_output=True, text=True, timeout=30
    ).stdout
    errors_at = [int(m) for m in re.findall(r"^Error in line-char (\d+)-", out, re.M)]

    invalid = 0
    for i, (tune, (first, last)) in enumerate(zip(tunes, ranges, strict=True), start=1):
        check = check_tune(tune)
        midi = tmp_path / f"batch{i}.mid"
        batch_valid = midi.is_file() and not any(first <= n <= last for n in errors_at)
        assert check.valid == batch_valid, f"tune {i}: {check.summary()}"
        if midi.is_file():
            assert check.duration_seconds == pytest.approx(midi_facts(midi)[0])
        invalid += not check.valid
    assert 0 < invalid < len(tunes) // 5  # the sample holds some invalid tunes, not many
