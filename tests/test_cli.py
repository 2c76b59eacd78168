from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.pty_app import BIN, Terminal, signal_state
from core.checkpoint import load_checkpoint
from core.cli import main
from core.judge import judge
from core.paths import shipped_model_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_stats_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "stats", "--json")
    data = json.loads(out)
    assert code == 0 and data["tunes"] == 817 and data["vocabulary_size"] == 83
    assert data["skipped"] == []


def test_stats_json_names_the_files_a_folder_left_out(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "a.abc").write_text("X:1\nT:A\nK:G\nGAB|\n", encoding="utf-8")
    (tmp_path / "latin1.abc").write_bytes(b"X:2\nT:Caf\xe9\nK:G\nGAB|\n")
    one = tmp_path / "one.abc"
    one.write_text("X:1\nT:One\nK:G\nGABc|\n", encoding="utf-8")
    code, out, _ = run(capsys, "stats", "--corpus", str(one))
    assert code == 0 and out.startswith("one.abc: 1 tune, ")  # not "1 tunes"
    one.unlink()
    code, out, _ = run(capsys, "stats", "--corpus", str(tmp_path), "--json")
    data = json.loads(out)
    assert code == 0 and data["tunes"] == 1
    assert len(data["skipped"]) == 1 and "latin1.abc" in data["skipped"][0]


def test_train_generate_evaluate(
    capsys: pytest.CaptureFixture[str], small_corpus_file: Path, folkgen_home: Path
) -> None:
    code, out, _ = run(
        capsys, "train", "--corpus", str(small_corpus_file), "--preset", "tiny", "--steps", "40",
        "--json",
    )  # fmt: skip
    summary = json.loads(out)
    assert code == 0 and summary["steps"] == 40 and summary["val_bpc"] > 0
    ckpt = Path(summary["checkpoint"])
    assert ckpt.parent == folkgen_home / "checkpoints" and ckpt.is_file()

    code, out, err = run(
        capsys, "generate", "--json", "--seed", "5", "--count", "3", "--max-chars", "120"
    )
    tunes = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [t["seed"] for t in tunes] == [5, 6, 7]
    assert all(t["text"].startswith("X:") and 0 < t["chars"] <= 120 for t in tunes)
    assert "newest checkpoint" in err
    code, out2, _ = run(capsys, "generate", "--json", "--seed", "5", "--max-chars", "120")
    assert json.loads(out2)["text"] == tunes[0]["text"]

    # The verdict on the shipped model's tune is the app's (core.judge.judge, the same call).
    code, out, err = run(capsys, "generate", "--json", "--model", str(shipped_model_path()))
    tune = json.loads(out)
    same = judge(tune["text"])
    assert same.check is not None and tune["valid"] == same.check.valid
    assert tune["music"]["verdict"] == same.musical_verdict and " bars" in same.musical_verdict
    assert tune["precision"] in ("fp32", "int8") and f"{tune['precision']} sampling" in err
    # abc2midi's warnings are said as the app says them (the plain "valid" hid them): here the
    # one a header without M: brings (its bars are 4/4's, as abc2midi counts them).
    shipped = ["generate", "--model", str(shipped_model_path()), "--seed", "1"]
    code, out, err = run(capsys, *shipped, "--json", "--prompt", r"X:1\nK:G\n")
    tune = json.loads(out)
    assert code == 0 and tune["valid"] and len(tune["warnings"]) == 1, tune["warnings"]
    assert "No M: in header" in tune["warnings"][0]
    code, out, err = run(capsys, *shipped, "--prompt", r"X:1\nK:G\n")
    assert "; valid, 1 warning (line 2, column 1: No M: in header, using default);" in err
    code, out, err = run(capsys, *shipped)
    assert "; valid; " in err  # a full header: no warning

    code, out, err = run(
        capsys, "generate", "--seed", "1", "--max-chars", "60", "--prompt", r"X:1\nT:"
    )
    assert code == 0 and out.startswith("X:1\nT:")
    # Cut off by the limit: said so, as the app says it.
    code, out, err = run(capsys, "generate", "--seed", "1", "--max-chars", "5")
    assert code == 0 and "cut off" in err.splitlines()[-1]
    code, out, err = run(capsys, "generate", "--seed", "1", "--max-chars", "5", "--json")
    assert "cut off" in json.loads(out)["incomplete"]

    code, out, _ = run(
        capsys, "evaluate", "--model", str(ckpt), "--corpus", str(small_corpus_file), "--json"
    )
    result = json.loads(out)
    assert code == 0 and 0 < result["bpc"] < 7 and result["unknown_chars"] == 0
    # Its own training corpus: said, since the figure is below its held-out one.
    assert result["training_corpus"] is True
    code, out, _ = run(capsys, "evaluate", "--model", str(ckpt), "--corpus", str(small_corpus_file))
    assert "training corpus" in out and "held-out tunes" in out
    code, out, _ = run(capsys, "evaluate", "--model", str(shipped_model_path()), "--corpus",
                       str(small_corpus_file), "--json")  # fmt: skip
    assert json.loads(out)["training_corpus"] is False


def test_train_resume_and_minutes(
    capsys: pytest.CaptureFixture[str], small_corpus_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "m.pt"
    base = [
        "train",
        "--corpus",
        str(small_corpus_file),
        "--preset",
        "tiny",
        "--json",
        "--out",
        str(out),
    ]
    assert run(capsys, *base, "--steps", "10")[0] == 0
    code, text, _ = run(capsys, *base, "--steps", "15", "--resume", str(out))
    assert code == 0 and json.loads(text)["steps"] == 15
    trained = out.read_bytes()
    # A new run into a trained model's file replaced it, and its best, without a word: kept.
    code, _, err = run(capsys, *base, "--minutes", "0.01")
    assert code == 1 and f"{out} holds a trained model already: --resume {out} trains it on" in err
    assert out.read_bytes() == trained
    out.rename(tmp_path / "moved.pt")
    code, _, err = run(capsys, *base, "--minutes", "0.01")  # its best model is still there
    assert code == 1 and f"{tmp_path / 'm.best.pt'} holds a trained model already" in err
    code, text, _ = run(capsys, *base, "--minutes", "0.01", "--force")
    assert code == 0 and json.loads(text)["seconds"] >= 0.6


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["generate", "--model", "/nonexistent.pt"], "no such checkpoint"),
        (["stats", "--corpus", "/nonexistent.abc"], "no such file"),
        (["evaluate", "--model", "/nonexistent.pt"], "no such checkpoint"),
        (["train", "--nproc", "9999", "--preset", "tiny"], "cores"),  # not 9999 torch processes
        (["generate", "--save", "/proc/no/such"], "cannot make the folder"),  # before sampling
        # Before anything is drawn: tune 2's seed (2**62 + 1) would have failed after tune 1.
        (["generate", "--seed", str(2**62), "--count", "2"], "--seed must be between 0 and"),
        (["generate", "--seed", "-5"], "--seed must be between 0 and 4611686018427387904, not -5"),
    ],
)
def test_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = run(capsys, *args)
    assert code == 1 and out == ""
    assert err.startswith("folkgen: error:") and message in err and err.count("\n") == 1


def test_a_key_the_grammar_cannot_write_is_refused_before_the_prompt_is_printed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "generate", "--prompt", r"X:1\nK:Bb\n")
    assert code == 1 and out == "", out  # refused before the prompt is printed
    assert err.splitlines()[-1].startswith("folkgen: error: K:Bb is not a key the grammar can")
    assert "G major" in err  # the keys it can write
    # A last bar longer than its metre: the model went on unchecked to the line's end.
    code, out, err = run(capsys, "generate", "--prompt", r"X:1\nM:6/8\nL:1/8\nK:D\nABcd efga|")
    assert code == 1 and out == "", out
    assert "cannot follow the prompt's last line from column 8 ('g' in 'ABcd efga|')" in err


def test_a_model_resumed_into_a_new_file_is_named_after_it(
    capsys: pytest.CaptureFixture[str], tiny_checkpoint: Path, small_corpus_file: Path,
    folkgen_home: Path, tmp_path: Path,
) -> None:
    """Carried to a corpus of other characters, a resumed model is saved anew: the file was
    named after --preset's default ("default") whatever the model was."""
    other = tmp_path / "other.abc"
    other.write_text(small_corpus_file.read_text(encoding="utf-8").replace("T:", "T:Ω ", 1),
                     encoding="utf-8")  # fmt: skip
    code, out, _ = run(capsys, "train", "--resume", str(tiny_checkpoint), "--corpus", str(other),
                       "--new-vocab", "--steps", "252", "--json")  # fmt: skip
    saved = Path(json.loads(out)["checkpoint"])
    assert code == 0 and saved.name.startswith(f"other-abc-from-{tiny_checkpoint.stem}-"), saved.name


def test_resuming_says_what_the_command_line_does_not(
    capsys: pytest.CaptureFixture[str], small_corpus_file: Path, folkgen_home: Path,
    tmp_path: Path,
) -> None:
    """A resumed model keeps its recipe and its time budget: --preset was ignored, and a
    checkpoint trained with --minutes trained that long again, without a word."""
    first = tmp_path / "m1.pt"
    code, _, _ = run(capsys, "train", "--corpus", str(small_corpus_file), "--preset", "tiny",
                     "--minutes", "0.01", "--out", str(first), "--json")  # fmt: skip
    assert code == 0
    code, _, err = run(capsys, "train", "--resume", str(first), "--corpus",
                       str(small_corpus_file), "--preset", "seed", "--json")  # fmt: skip
    assert code == 0 and "--preset seed is not used" in err
    assert "resuming with the checkpoint's time budget, 0.01 minutes" in err
    # Without --corpus a model of other tunes is not trained on the default corpus (it was,
    # and saved over itself): refused, naming its corpus.
    before = first.read_bytes()
    code, _, err = run(capsys, "train", "--resume", str(first), "--steps", "5")
    assert code == 1 and f"{first} was trained on {small_corpus_file.name}" in err, err
    assert "give --corpus" in err and first.read_bytes() == before


def test_no_model_yet(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import core.paths

    monkeypatch.setattr(core.paths, "shipped_model_path", lambda: None)
    code, out, err = run(capsys, "generate")
    assert code == 1 and out == "" and "no model yet" in err and err.count("\n") == 1


def test_bad_option_values(capsys: pytest.CaptureFixture[str], tiny_checkpoint: Path) -> None:
    code, _, err = run(capsys, "generate", "--model", str(tiny_checkpoint), "--temperature", "-1")
    # Said at once, the model not loaded first (seconds for a large one: it said "model: …").
    assert (code, err) == (1, "folkgen: error: temperature must be a number, 0 or more, not -1.0\n")
    code, _, err = run(capsys, "generate", "--model", str(tiny_checkpoint), "--prompt", "X:€")
    assert code == 1 and "vocabulary" in err
    with pytest.raises(SystemExit) as exc:
        main(["train", "--steps", "0"])
    assert exc.value.code == 2
    assert "positive" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # it wrote an empty tune into the history, rc 0
        main(["generate", "--max-chars", "0"])
    assert exc.value.code == 2 and "positive" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--steps", "abc"])
    err = capsys.readouterr().err  # argparse named the check: "invalid _positive_int value"
    assert "--steps: must be a whole number, not 'abc'" in err and "_positive" not in err


def test_console_script_end_to_end(tiny_checkpoint: Path, tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("folkgen")
    env = {**os.environ, "FOLKGEN_HOME": str(tmp_path)}
    done = subprocess.run(
        [str(exe), "generate", "--model", str(tiny_checkpoint), "--seed", "2", "--max-chars", "80"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("X:") and "Traceback" not in done.stderr
    corrupt = tmp_path / "bad.pt"
    corrupt.write_bytes(b"PK\x03\x04garbage")
    done = subprocess.run(
        [str(exe), "generate", "--model", str(corrupt)], capture_output=True, text=True, env=env,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr and "bad.pt" in done.stderr


@pytest.mark.parametrize("first", ["close", "SIGHUP"])
def test_a_training_run_whose_terminal_closes_saves_it(tmp_path: Path, first: str) -> None:
    """`folkgen train` in a terminal that ends (its window closed, an SSH link dropped) saves its
    run and stops, as it does for SIGTERM: the hang-up's default killed it with nothing saved
    since its last checkpoint. The hang-up comes twice, in either order with the terminal's
    close: a shell passes its own on, and the kernel sends one as the terminal closes. Its
    status says that its last step was saved, and what it still says on the terminal gone goes
    nowhere (it failed with EIO: status 1)."""
    out = tmp_path / "run.pt"
    argv = [str(BIN / "folkgen"), "train", "--preset", "tiny", "--steps", "100000",
            "--out", str(out), "--progress"]  # fmt: skip
    term = Terminal(str(tmp_path), argv=argv, signals="default")  # not under a nohup
    gone = None
    try:
        deadline = time.monotonic() + 120
        while not re.search(rb"step [1-9]", term.text):
            assert time.monotonic() < deadline, "no training step shown"
            term.read(0.05)
        term.end(first)
        while signal_state(term.pid, signal.SIGHUP) == "caught":  # until the hang-up is taken
            assert time.monotonic() < deadline, "the hang-up was never taken"
            time.sleep(0.0005)
        if first == "close":
            with contextlib.suppress(ProcessLookupError):
                os.kill(term.pid, signal.SIGHUP)  # the shell's
        else:
            term.end("close")  # and the kernel's hang-up
        gone = term.wait_gone(30)
        assert gone is not None, "still running after its terminal closed"
    finally:
        term.close()
    status = gone[1]
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    assert load_checkpoint(out).step >= 1


def test_a_hang_up_stays_taken_after_the_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Once a hang-up has stopped a run, later ones are ignored until the process ends: put
    back to its default as the run returned, one killed the process before it had said what it
    saved (status 129)."""
    out = tmp_path / "run.pt"

    def hang_up_once_saved() -> None:
        while not out.exists():  # the first checkpoint (every 100 steps)
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGHUP)

    before = signal.signal(signal.SIGHUP, signal.SIG_DFL)  # as in a terminal (not a nohup)
    threading.Thread(target=hang_up_once_saved, daemon=True).start()
    try:
        code, _, _ = run(capsys, "train", "--preset", "tiny", "--steps", "100000",
                         "--out", str(out))  # fmt: skip
        assert code == 0 and load_checkpoint(out).step >= 100
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, before)


@contextlib.contextmanager
def training_in_background(
    tmp_path: Path, out: Path, *before: str
) -> Iterator[subprocess.Popen[bytes]]:
    """`folkgen train --preset tiny` into `out` in a process of its own (after the command
    `before`, nohup say), handed over once its first checkpoint is saved (every 100 steps);
    killed at the end if it still runs."""
    log = (tmp_path / "log").open("w")
    proc = subprocess.Popen(
        [*before, str(BIN / "folkgen"), "train", "--preset", "tiny", "--steps", "100000",
         "--out", str(out)],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        env={**os.environ, "FOLKGEN_HOME": str(tmp_path)},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not out.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "no checkpoint saved"
            time.sleep(0.05)
        yield proc
    finally:
        proc.kill()
        proc.wait()
        log.close()


def test_a_training_run_under_nohup_outlives_its_terminal(tmp_path: Path) -> None:
    """Under `nohup` (SIGHUP ignored) the hang-up is left alone: the run trains on, saving at
    its checkpoint steps, until it is stopped."""
    out = tmp_path / "run.pt"
    with training_in_background(tmp_path, out, "nohup") as proc:
        proc.send_signal(signal.SIGHUP)
        hung_up_at = load_checkpoint(out).step
        # Saving and stopping would end it at the next step: 200 steps on, it trains still.
        deadline = time.monotonic() + 120
        while load_checkpoint(out).step < hung_up_at + 200:
            assert proc.poll() is None, "the hang-up stopped a run under nohup"
            assert time.monotonic() < deadline, "no checkpoint saved after the hang-up"
            time.sleep(0.05)
        proc.terminate()
        assert proc.wait(timeout=60) == 0


def test_a_checkpoint_being_trained_cannot_be_resumed_elsewhere(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Resumed while another process trains it (a second terminal, or the app), a checkpoint was
    saved by both runs in turn, each over the other's work: the second is refused, named the
    first's process, and the first trains on and saves."""
    out = tmp_path / "run.pt"
    with training_in_background(tmp_path, out) as first:
        for how in (("--resume", str(out)), ("--out", str(out), "--preset", "tiny", "--force")):
            code, _, err = run(capsys, "train", *how, "--steps", "100000")
            assert code == 1
            assert f"another training run (process {first.pid}) is saving to {out};" in err
        first.terminate()  # saves and ends
        assert first.wait(timeout=60) == 0
    saved = load_checkpoint(out).step
    code, _, _ = run(capsys, "train", "--resume", str(out), "--steps", str(saved + 2))
    assert code == 0 and load_checkpoint(out).step == saved + 2
    assert not list(tmp_path.glob(".run.pt*"))


def test_export_slims_a_checkpoint(
    capsys: pytest.CaptureFixture[str], tiny_checkpoint: Path, tmp_path: Path
) -> None:
    from core.checkpoint import load_checkpoint

    out = tmp_path / "slim.pt"
    code, text, _ = run(capsys, "export", str(tiny_checkpoint), str(out), "--half")
    assert code == 0 and "float16" in text
    assert out.stat().st_size < tiny_checkpoint.stat().st_size / 2
    slim = load_checkpoint(out)
    assert slim.optimizer_state is None and slim.vocab == load_checkpoint(tiny_checkpoint).vocab
    code, a, _ = run(
        capsys, "generate", "--model", str(out), "--seed", "3", "--json", "--precision", "fp32"
    )
    code, b, _ = run(
        capsys,
        "generate",
        "--model",
        str(tiny_checkpoint),
        "--seed",
        "3",
        "--json",
        "--precision",
        "fp32",
    )
    assert (
        json.loads(a)["text"][:20] == json.loads(b)["text"][:20]
    )  # half precision keeps the music
    # It replaces no checkpoint without --force (a run's holds what resuming needs), and never
    # the one it reads: both were replaced without a word.
    before = tiny_checkpoint.read_bytes()
    code, _, err = run(capsys, "export", str(tiny_checkpoint), str(tiny_checkpoint))
    assert code == 1 and "is the checkpoint being exported" in err
    code, _, err = run(capsys, "export", str(tiny_checkpoint), str(tiny_checkpoint), "--force")
    assert code == 1 and tiny_checkpoint.read_bytes() == before
    code, _, err = run(capsys, "export", str(tiny_checkpoint), str(out))
    assert code == 1 and "is a folkgen checkpoint already; --force" in err
    assert run(capsys, "export", str(tiny_checkpoint), str(out), "--force")[0] == 0


def test_generate_valid_only_and_save(
    capsys: pytest.CaptureFixture[str], tiny_checkpoint: Path, tmp_path: Path
) -> None:
    from core.abc import check_tune

    model = ["generate", "--model", str(tiny_checkpoint), "--json", "--max-tries", "60"]
    code, out, err = run(capsys, *model, "--valid-only", "--seed", "1", "--save", str(tmp_path))
    tune = json.loads(out)
    assert code == 0 and tune["valid"] and tune["errors"] == []
    assert check_tune(tune["text"]).valid
    assert "rejected" in err and tune["closest"]["similarity"] < 0.8
    saved = [Path(p) for p in tune["saved"]]
    assert [p.suffix for p in saved] == [".abc", ".mid", ".wav", ".svg", ".png", ".pdf"] and all(
        p.stat().st_size for p in saved
    )
    # The .abc is the tune, credited to its making in place of any Z: line the model wrote.
    made = f"model {tiny_checkpoint.name}, seed {tune['seed']}, temperature 1"
    credit = f"Z:generated by folkgen: {made}"
    lines = saved[0].read_text(encoding="utf-8").strip().splitlines()
    assert [line for line in lines if line.startswith("Z:")] == [credit]
    assert [line for line in lines if line != credit] == [
        line for line in tune["text"].strip().splitlines() if not line.startswith("Z:")
    ]
    code, _, err = run(
        capsys, *model, "--valid-only", "--no-grammar", "--temperature", "4", "--max-tries", "2"
    )
    assert code == 1 and "no valid tune in 2 tries" in err
    code, _, err = run(
        capsys, *model, "--valid-only", "--no-grammar", "--temperature", "4", "--max-tries", "1"
    )
    assert code == 1 and "no valid tune in 1 try;" in err


def test_resuming_the_shipped_model_never_writes_into_the_package(folkgen_home: Path) -> None:
    from core.paths import shipped_model_path, training_output_path

    shipped = shipped_model_path()
    assert shipped is not None
    out = training_output_path("irish (mitdeeplearning)", "default", shipped)
    assert out.parent == folkgen_home / "checkpoints" and out.name.startswith("irish-mitdeep")
    mine = folkgen_home / "checkpoints" / "mine.pt"
    assert training_output_path("x", "default", mine) == mine  # a user's own: continued in place


def test_runs_started_together_each_get_a_checkpoint_of_their_own(tmp_path: Path) -> None:
    """Runs named in the same second (a sweep started in parallel) saved over each other's
    checkpoints under one name: each now claims a name of its own (-2, -3…), a name saved by a
    run that has ended is not taken again, and a claim ends with its process."""
    from concurrent.futures import ThreadPoolExecutor

    from core.paths import claimed_name

    with ThreadPoolExecutor(8) as pool:
        names = sorted(p.name for p in pool.map(lambda _: claimed_name(tmp_path, "x"), range(8)))
    assert names == sorted(["x.pt"] + [f"x-{n}.pt" for n in range(2, 9)])
    (tmp_path / "y.pt").write_bytes(b"saved")  # a run that has ended: no claim left
    (tmp_path / "y-2.best.pt").write_bytes(b"saved")
    assert claimed_name(tmp_path, "y").name == "y-3.pt"
    code = "import sys; from pathlib import Path; from core.paths import claimed_name; " \
        "print(claimed_name(Path(sys.argv[1]), 'z').name)"
    for _ in range(2):  # the first process's claim is gone with it
        done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                              text=True, check=True)  # fmt: skip
        assert done.stdout.strip() == "z.pt"
    assert not list(tmp_path.glob(".z*"))


def test_a_new_runs_default_name_is_claimed(
    folkgen_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs named in one second get two names; a rank that does not write claims none."""
    import core.paths
    from core.paths import release_claims, training_output_path

    class Clock(datetime.datetime):
        @classmethod
        def now(cls, tz: datetime.tzinfo | None = None) -> Clock:
            return cls(2026, 12, 2, 19, 31, 57)

    monkeypatch.setattr(core.paths, "datetime", Clock)
    first, second = (training_output_path("c", "tiny") for _ in range(2))
    assert (first.name, second.name) == ("c-tiny-20261202-193157.pt", "c-tiny-20261202-193157-2.pt")
    folder = folkgen_home / "checkpoints"
    assert len(list(folder.glob(".*.claim"))) == 2
    release_claims()
    assert not list(folder.glob(".*.claim"))
    assert training_output_path("c", "tiny", claim=False).name == "c-tiny-20261202-193157.pt"
    assert not list(folder.glob(".*.claim"))


def test_a_prompt_of_two_tunes_is_judged_by_the_tune_generated(
    capsys: pytest.CaptureFixture[str], folkgen_home: Path
) -> None:
    """The stream writes the prompt's last tune: the verdict, the JSON and the tunebook's facts
    described its first (2 bars, "AA", G major 6/8, not ending on the tonic)."""
    prompt = r"X:1\nT:One\nM:6/8\nL:1/8\nK:G\n|:GAB cBA|BAG E3:|\n\nX:2\nT:Two\nM:4/4\nL:1/8\nK:D\n"
    code, out, _ = run(capsys, "generate", "--seed", "1", "--prompt", prompt, "--json")
    result = json.loads(out.splitlines()[-1])
    assert code == 0 and result["music"]["key"] == "D major" and result["music"]["meter"] == "4/4"
    assert result["music"]["bars"] > 2
    from core.library import Library

    with Library.open() as library:
        assert library.get(result["tunebook_id"]).title == "Two"
    from folkgen_tui.state import TuneRecord  # the app's session list names it so too

    record = TuneRecord(1, prompt, result["text"], 1, 1.0, None, 1000, "default.pt")
    assert record.title == "Two"


def test_a_key_the_grammar_cannot_write_is_refused_with_the_way_around_it(
    capsys: pytest.CaptureFixture[str], folkgen_home: Path
) -> None:
    """K:HP (Highland pipes) is no key of the shipped model's corpus: the grammar cannot write
    it, and the refusal names the flag that samples the model's raw output, which can."""
    prompt = r"X:1\nT:Pipes\nM:C\nL:1/8\nK:HP\n"
    code, _, err = run(capsys, "generate", "--prompt", prompt, "--seed", "1")
    assert code == 1 and "K:HP is not a key the grammar can write" in err
    assert "--no-grammar samples the model's raw output" in err
    code, out, _ = run(capsys, "generate", "--prompt", prompt, "--seed", "1", "--no-grammar",
                       "--max-chars", "40", "--json")  # fmt: skip
    assert code == 0 and json.loads(out)["text"].startswith(prompt.replace(r"\n", "\n"))


def test_a_saved_tune_is_credited_in_its_abc_and_midi_keeping_the_users_z_line(
    capsys: pytest.CaptureFixture[str], folkgen_home: Path, tmp_path: Path
) -> None:
    """The Z: line typed in the prompt stays; the credit follows it, in the .abc and in the .mid
    (abc2midi writes Z: lines into it as text), and no Z: line the model wrote is left."""
    model = shipped_model_path()
    assert model is not None
    prompt = r"X:1\nT:Mine\nZ:transcribed by me\n"
    code, out, _ = run(capsys, "generate", "--prompt", prompt, "--seed", "11", "--top-k", "9",
                       "--temperature", "0.9", "--save", str(tmp_path), "--json")  # fmt: skip
    assert code == 0
    tune = json.loads(out)
    abc, midi = (Path(p) for p in tune["saved"][:2])
    credit = f"generated by folkgen: model {model.name}, seed 11, temperature 0.9, top-k 9"
    zs = [line for line in abc.read_text(encoding="utf-8").splitlines() if line.startswith("Z:")]
    assert zs == ["Z:transcribed by me", f"Z:{credit}"]
    assert credit.encode() in midi.read_bytes() and b"id:dc" not in midi.read_bytes()
