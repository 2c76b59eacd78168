"""Hostile and mistaken inputs to checkpoints, training, the corpus reader and the CLI (issue 11,
"Trust"): none may end in a traceback, a hang, more than 1 GB of memory, exit status 0 on
failure, or a file replaced that the user did not name for replacing."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

import core.train
from core import checkpoint as ckmod
from core.checkpoint import (
    Checkpoint,
    CheckpointError,
    load_checkpoint,
    parameter_shapes,
    save_checkpoint,
)
from core.cli import main, novelty_index_for
from core.corpus import (
    DEFAULT_CORPUS_NAME,
    MAX_CORPUS_BYTES,
    CorpusError,
    Vocabulary,
    key_spellings,
    load_corpus,
    training_corpus,
)
from core.model import CharLSTM
from core.presets import ConfigError, ModelConfig, TrainConfig
from core.sample import SampleOptions
from core.train import TrainError, train

MODEL = ModelConfig(embedding_dim=16, hidden_size=48)
CFG = TrainConfig(seq_length=32, batch_size=8, steps=6, eval_every=0, checkpoint_every=2)
Payload = dict[str, Any]  # a checkpoint file's top level, as torch.load returns it


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code: int, err: str, message: str) -> bool:
    lines = [line for line in err.splitlines() if line.startswith("folkgen: error:")]
    return code == 1 and len(lines) == 1 and message in lines[0] and "Traceback" not in err


def strict_json(text: str) -> Any:
    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def train_args(corpus: Path, *more: str) -> list[str]:
    return ["train", "--corpus", str(corpus), "--preset", "tiny", "--json", *more]


# --- crafted checkpoints ------------------------------------------------------------------------


@pytest.fixture
def payload(tmp_path: Path) -> Payload:
    """A small, valid checkpoint with optimiser state, read back as torch.load returns it."""
    vocab = Vocabulary.from_text("X:1\nABCabc|")
    cfg = ModelConfig(vocab_size=len(vocab), embedding_dim=8, hidden_size=16)
    model = CharLSTM(cfg)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.tensor([[1, 2, 3]]))[0].sum().backward()
    optimizer.step()
    ckpt = Checkpoint(
        cfg, TrainConfig(), vocab, model.state_dict(), optimizer.state_dict(), 3,
        {"val_bpc": 2.5, "best_val_bpc": 2.5}, {"name": "x", "tunes": 2},
    )  # fmt: skip
    path = save_checkpoint(ckpt, tmp_path / "source" / "good.pt")
    data: Payload = torch.load(path, weights_only=True)
    return data


def write(payload: Payload, path: Path) -> Path:
    torch.save(payload, path)
    return path


def set_in(*keys: str, value: object) -> Callable[[Payload], None]:
    def mutate(p: Payload) -> None:
        target = p
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return mutate


def drop_groups(p: Payload) -> None:
    del p["optimizer_state"]["param_groups"]


def integer_weights(p: Payload) -> None:
    p["model_state"]["head.bias"] = p["model_state"]["head.bias"].long()


def nan_weights(p: Payload) -> None:
    p["model_state"]["head.bias"] = torch.full_like(p["model_state"]["head.bias"], float("nan"))


def unsorted_vocab(p: Payload) -> None:
    p["vocab"] = p["vocab"][::-1]


def multi_char_vocab(p: Payload) -> None:
    p["vocab"] = ["ab", *p["vocab"][2:]] + ["z"]


CRAFTED = {
    "multi-character vocabulary item": (multi_char_vocab, "vocabulary"),
    "unsorted vocabulary": (unsorted_vocab, "sorted distinct single characters"),
    "model_config as a list": (set_in("model_config", value=[1, 2]), "settings"),
    "12,000 hidden units": (set_in("model_config", "hidden_size", value=12_000), "hidden size"),
    "string learning rate": (
        set_in("train_config", "learning_rate", value="0.01"),
        "learning rate",
    ),
    "NaN minutes": (set_in("train_config", "minutes", value=float("nan")), "minutes"),
    "string best bpc": (set_in("metrics", "best_val_bpc", value="1.2"), "best_val_bpc"),
    "optimiser state without param_groups": (drop_groups, "parameter groups"),
    "int corpus path": (set_in("corpus", "path", value=5), "corpus path"),
    "corpus keys as a list": (set_in("corpus", "keys", value=["G Major"]), "corpus keys"),
    "a megabyte of corpus keys": (set_in("corpus", "keys", value="G;" * 500_000), "keys are over"),
    "version as a string": (set_in("version", value="1"), "unknown checkpoint format version"),
    "integer weights": (integer_weights, "not a tensor of floats"),
    "NaN weights": (nan_weights, "not finite"),
}


@pytest.mark.parametrize("case", list(CRAFTED))
def test_crafted_checkpoint_fields_are_refused_at_load(
    case: str, payload: Payload, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mutate, message = CRAFTED[case]
    mutate(payload)
    path = write(payload, tmp_path / "crafted.pt")
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)
    code, out, err = run(capsys, "generate", "--model", str(path), "--max-chars", "20")
    assert one_line_error(code, err, message) and out == ""


def test_checkpoint_shapes_are_known_without_building_the_model() -> None:
    for cfg in (ModelConfig(vocab_size=7, embedding_dim=5, hidden_size=9, num_layers=3), MODEL):
        real = {k: tuple(v.shape) for k, v in CharLSTM(cfg).state_dict().items()}
        assert parameter_shapes(cfg) == real


def test_a_huge_junk_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pt"
    with junk.open("wb") as f:  # sparse: 3 GB that take no disk
        f.truncate(3 * 1024**3)
    with pytest.raises(CheckpointError, match="is more than a folkgen checkpoint can be"):
        load_checkpoint(junk)


def test_compressed_entries_are_refused(payload: Payload, tmp_path: Path) -> None:
    """torch writes every entry stored; a compressed one can hold any size in a small file."""
    plain = write(payload, tmp_path / "plain.pt")
    packed = tmp_path / "packed.pt"
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(packed, "w") as dst:
        for entry in src.infolist():
            dst.writestr(entry.filename, src.read(entry), compress_type=zipfile.ZIP_DEFLATED)
    with pytest.raises(CheckpointError, match="compressed"):
        load_checkpoint(packed)


def test_hostile_checkpoints_stay_far_below_a_gigabyte(payload: Payload, tmp_path: Path) -> None:
    """Peak memory of a fresh process that tries each hostile file (the app loads the newest
    checkpoint at start, with no user action)."""
    set_in("model_config", "hidden_size", value=12_000)(payload)
    claims = write(payload, tmp_path / "claims.pt")
    junk = tmp_path / "junk.pt"
    with junk.open("wb") as f:
        f.truncate(3 * 1024**3)
    script = textwrap.dedent(f"""
        from core.checkpoint import CheckpointError, load_checkpoint
        for path in ({str(claims)!r}, {str(junk)!r}):
            try:
                load_checkpoint(path)
            except CheckpointError:
                pass
            else:
                raise SystemExit("loaded " + path)
        # This process's own peak: getrusage's ru_maxrss would also count the parent's memory
        # at the fork (the kernel keeps it across exec), and pytest is large by now.
        with open("/proc/self/status") as f:
            print(next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) // 1024)
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) < 700, f"{done.stdout.strip()} MB"


def test_interrupted_save_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, payload: Payload
) -> None:
    path = tmp_path / "a.pt"
    ckpt = load_checkpoint(write(payload, path))

    for interruption in (KeyboardInterrupt, MemoryError):

        def cut_short(obj: object, f: Any, error: type[BaseException] = interruption) -> None:
            f.write(b"PK\x03\x04 half a file")
            raise error

        monkeypatch.setattr(ckmod.torch, "save", cut_short)
        with pytest.raises(interruption):
            save_checkpoint(ckpt, path)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt", "source"]
    monkeypatch.undo()
    assert load_checkpoint(path).step == 3


def test_save_makes_the_rename_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, payload: Payload
) -> None:
    synced: list[bool] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real_fsync(fd)

    ckpt = load_checkpoint(write(payload, tmp_path / "a.pt"))
    monkeypatch.setattr(os, "fsync", fsync)
    save_checkpoint(ckpt, tmp_path / "b.pt")
    assert synced == [False, True]  # the file, then its folder after the rename


# --- training: recipes, divergence, saving ------------------------------------------------------


def test_train_refuses_a_recipe_out_of_range(small_corpus_file: Path) -> None:
    corpus = load_corpus(small_corpus_file)
    with pytest.raises(ConfigError, match="learning rate"):
        train(corpus, MODEL, replace(CFG, learning_rate=float("inf")))


def test_a_recipe_error_shows_a_whole_number_as_typed() -> None:
    """A form reads 100000 as 100000.0: the message said "not 100000.0"."""
    with pytest.raises(ConfigError, match=r"at most 10080, not 100000$"):
        replace(CFG, minutes=100000.0).validate()
    with pytest.raises(ConfigError, match=r"at most 1, not 2$"):
        replace(CFG, learning_rate=2.0).validate()
    with pytest.raises(ConfigError, match=r"not 2\.5$"):
        replace(CFG, learning_rate=2.5).validate()


def test_train_refuses_a_model_too_large_before_building_it(small_corpus_file: Path) -> None:
    with pytest.raises(ConfigError, match="parameters"):
        train(load_corpus(small_corpus_file), replace(MODEL, hidden_size=4000), CFG)


class NanAfterThreeSteps(CharLSTM):
    """A model whose loss stops being a number at its fourth training step."""

    calls = 0

    def forward(self, idx: torch.Tensor, state: Any = None) -> Any:
        logits, state = super().forward(idx, state)
        NanAfterThreeSteps.calls += 1
        return (logits * float("nan") if NanAfterThreeSteps.calls > 3 else logits), state


def test_divergence_stops_training_and_saves_nothing_after_it(
    small_corpus_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setattr(core.train, "CharLSTM", NanAfterThreeSteps)
    path = tmp_path / "d.pt"
    with pytest.raises(TrainError, match="diverged at step 3.*checkpoint of step 2 is kept"):
        train(load_corpus(small_corpus_file), MODEL, replace(CFG, steps=20), checkpoint_path=path)
    kept = load_checkpoint(path)
    assert kept.step == 2
    NanAfterThreeSteps.calls = 0
    code, out, err = run(
        capsys, *train_args(small_corpus_file, "--steps", "20", "--out", str(path), "--force")
    )  # (a new run into a trained model's file: --force)
    assert one_line_error(code, err, "diverged") and out == ""
    assert load_checkpoint(path).step == 2


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--batch-size", "1000000000"], "batch size"),
        (["--lr", "1e308"], "learning rate"),
        (["--lr", "inf"], "learning rate"),
        (["--threads", "1000000"], "threads"),
        (["--device", "meta"], "device"),
        (["--minutes", "inf"], "minutes"),
        (["--seed", "-1"], "seed"),
    ],
)
def test_train_flags_out_of_range_are_one_line_errors(
    flags: list[str], message: str, small_corpus_file: Path, folkgen_home: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    code, out, err = run(capsys, *train_args(small_corpus_file, *flags))
    assert one_line_error(code, err, message) and out == ""
    assert not (folkgen_home / "checkpoints").exists()  # refused before anything was made


def test_lr_inf_never_replaces_the_resumed_checkpoint(
    small_corpus_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m.pt"
    assert run(capsys, *train_args(small_corpus_file, "--steps", "4", "--out", str(out)))[0] == 0
    before = out.read_bytes()
    code, text, err = run(
        capsys, *train_args(small_corpus_file, "--resume", str(out), "--steps", "8"),
        "--lr", "inf", "--out", str(out),
    )  # fmt: skip
    assert one_line_error(code, err, "learning rate") and text == ""
    assert out.read_bytes() == before


def test_json_has_no_nan_and_a_run_that_saved_nothing_fails(
    small_corpus_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A budget over before the first step: no loss yet, and no checkpoint."""
    code, out, err = run(capsys, *train_args(small_corpus_file, "--minutes", "1e-9"))
    summary = strict_json(out)
    assert summary["loss"] is None and summary["checkpoint"] is None and summary["steps"] == 0
    assert one_line_error(code, err, "nothing was saved")


def test_out_naming_a_folder_or_an_unwritable_place_is_refused_before_training(
    small_corpus_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    code, out, err = run(
        capsys, *train_args(small_corpus_file, "--steps", "3", "--out", str(folder))
    )
    assert one_line_error(code, err, "is a folder") and out == ""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    target = str(blocker / "m.pt")
    code, out, err = run(capsys, *train_args(small_corpus_file, "--steps", "3", "--out", target))
    assert one_line_error(code, err, "cannot write a checkpoint") and out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder"]
    assert not any(folder.iterdir())


def test_a_disk_that_fills_during_training_fails_the_run(
    small_corpus_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    def full(ckpt: Checkpoint, path: Path) -> Path:
        raise CheckpointError(f"could not save checkpoint {path}: No space left on device")

    monkeypatch.setattr(core.train, "save_checkpoint", full)
    out = tmp_path / "m.pt"
    code, text, err = run(capsys, *train_args(small_corpus_file, "--steps", "3", "--out", str(out)))
    assert strict_json(text)["checkpoint"] is None
    assert one_line_error(code, err, "nothing was saved")


# --- budgets ------------------------------------------------------------------------------------


def test_steps_replace_the_minutes_of_a_resumed_checkpoint(
    small_corpus_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m.pt"
    base = train_args(small_corpus_file, "--out", str(out))
    assert run(capsys, *base, "--minutes", "0.005")[0] == 0
    ckpt = load_checkpoint(out)
    assert ckpt.train_config.minutes == 0.005 and ckpt.step > 0
    code, text, _ = run(capsys, *base, "--resume", str(out), "--steps", str(ckpt.step + 3))
    assert code == 0 and strict_json(text)["steps"] == ckpt.step + 3
    assert load_checkpoint(out).train_config.minutes is None


def test_steps_at_or_below_the_checkpoint_are_refused(
    small_corpus_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m.pt"
    base = train_args(small_corpus_file, "--out", str(out))
    assert run(capsys, *base, "--steps", "5")[0] == 0
    before = out.read_bytes()
    for steps in ("5", "3"):
        code, text, err = run(capsys, *base, "--resume", str(out), "--steps", steps)
        assert one_line_error(code, err, "already at step 5") and text == ""
    assert out.read_bytes() == before


# --- silent overwrites ---------------------------------------------------------------------------


def test_train_never_replaces_a_file_that_is_not_a_checkpoint(
    small_corpus_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "mine.abc"
    corpus.write_bytes(small_corpus_file.read_bytes())
    before = corpus.read_bytes()
    code, _, err = run(capsys, *train_args(corpus, "--steps", "3", "--out", str(corpus)))
    assert one_line_error(code, err, "not a folkgen checkpoint") and corpus.read_bytes() == before
    # The best-so-far file beside --out is not named by the user: never replaced, even forced.
    notes = tmp_path / "m.best.pt"
    notes.write_text("my notes")
    out = str(tmp_path / "m.pt")
    code, _, err = run(capsys, *train_args(corpus, "--steps", "3", "--out", out, "--force"))
    assert one_line_error(code, err, "m.best.pt") and notes.read_text() == "my notes"


def test_export_never_replaces_a_file_that_is_not_a_checkpoint(
    tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "tunes.abc"
    target.write_text("X:1\nK:G\nGAB|\n")
    code, _, err = run(capsys, "export", str(tiny_checkpoint), str(target))
    assert one_line_error(code, err, "not a folkgen checkpoint")
    assert target.read_text() == "X:1\nK:G\nGAB|\n"
    assert run(capsys, "export", str(tiny_checkpoint), str(target), "--force")[0] == 0
    assert load_checkpoint(target).step == load_checkpoint(tiny_checkpoint).step
    # A checkpoint now: replaced only with --force (a training run's holds what resuming needs).
    code, _, err = run(capsys, "export", str(tiny_checkpoint), str(target), "--half")
    assert one_line_error(code, err, "is a folkgen checkpoint already; --force")
    assert run(capsys, "export", str(tiny_checkpoint), str(target), "--half", "--force")[0] == 0


def test_generate_save_naming_a_file_is_a_one_line_error(
    tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    existing = tmp_path / "tune.abc"
    existing.write_text("keep me")
    code, out, err = run(
        capsys, "generate", "--model", str(tiny_checkpoint), "--max-chars", "30",
        "--save", str(existing),
    )  # fmt: skip
    assert one_line_error(code, err, "not a folder") and existing.read_text() == "keep me"


# --- the corpus a model was trained on: what it is, not where it was -----------------------------


def test_checkpoints_record_what_the_corpus_is(small_corpus_file: Path, tmp_path: Path) -> None:
    corpus = load_corpus(small_corpus_file)
    train(corpus, MODEL, replace(CFG, steps=2), checkpoint_path=tmp_path / "m.pt")
    info = load_checkpoint(tmp_path / "m.pt").corpus
    keys = ";".join(key_spellings(corpus.tunes).values())  # what it is, not where it was
    assert info == {"name": "small.abc", "sha256": corpus.sha256, "tunes": len(corpus.tunes),
                    "keys": keys}  # fmt: skip


def test_near_copy_check_finds_the_default_corpus_on_any_machine(tmp_path: Path) -> None:
    elsewhere = {"name": DEFAULT_CORPUS_NAME, "path": "/home/builder/irish.abc", "tunes": 817}
    corpus = training_corpus(elsewhere)  # the shipped model's field, from another machine
    assert corpus is not None and novelty_index_for(corpus) is not None
    assert training_corpus(load_corpus().identity()) is not None
    assert training_corpus({**load_corpus().identity(), "sha256": "0" * 64}) is None


def test_near_copy_check_never_reads_a_path_from_a_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "tunes").mkdir()
    (tmp_path / "tunes" / "a.abc").write_text("X:1\nT:A\nK:G\nGABc dedB|\n", encoding="utf-8")
    assert training_corpus({"name": "tunes/", "path": str(tmp_path / "tunes")}) is None


def test_generate_checks_near_copies_against_a_corpus_the_user_names(
    tiny_checkpoint: Path, small_corpus_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys, "generate", "--model", str(tiny_checkpoint), "--json", "--seed", "1",
        "--max-chars", "200", "--corpus", str(small_corpus_file),
    )  # fmt: skip
    assert code == 0 and "closest" in strict_json(out)


# --- corpora that are not files, or too large ---------------------------------------------------


def test_devices_and_pipes_are_refused_as_corpora(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "tunes.abc"
    os.mkfifo(fifo)
    with pytest.raises(CorpusError, match="not a regular file"):
        load_corpus(fifo)  # opened without blocking: no writer is ever waited for
    code, _, err = run(capsys, "stats", "--corpus", "/dev/zero")
    assert one_line_error(code, err, "/dev/zero: not a regular file")


def test_corpus_size_is_bounded(tmp_path: Path) -> None:
    big = tmp_path / "big.abc"
    with big.open("wb") as f:
        f.truncate(MAX_CORPUS_BYTES + 1)
    with pytest.raises(CorpusError, match="is more than a corpus file may be"):
        load_corpus(big)
    folder = tmp_path / "folder"
    folder.mkdir()
    for name in ("a.abc", "b.abc"):
        with (folder / name).open("wb") as f:
            f.truncate(MAX_CORPUS_BYTES // 2 + 1)
    with pytest.raises(CorpusError, match="its .abc files hold"):
        load_corpus(folder)


# --- sampling -----------------------------------------------------------------------------------


def test_a_vanishing_temperature_is_refused(tiny_checkpoint: Path) -> None:
    vocab = load_checkpoint(tiny_checkpoint).vocab
    with pytest.raises(ValueError, match="temperature must be 0 .greedy. or at least 0.001"):
        SampleOptions(temperature=1e-308).validate(vocab)
    SampleOptions(temperature=0).validate(vocab)
    SampleOptions(temperature=0.001).validate(vocab)


def test_a_seed_out_of_range_is_refused_by_name(tiny_checkpoint: Path) -> None:
    """A negative seed, or one past what the tunebook's 64-bit integers hold with the streams
    of a batch above it, is refused by name before anything is drawn (it was numpy's "expected
    non-negative integer", or a tune printed and then SQLite's OverflowError)."""
    from core.sample_options import MAX_SEED, SettingError

    vocab = load_checkpoint(tiny_checkpoint).vocab
    for seed in (-5, MAX_SEED + 1, 2**64 - 1):
        said = f"seed must be between 0 and {MAX_SEED:,}, not {seed}"
        with pytest.raises(SettingError, match=said) as refused:
            SampleOptions(seed=seed).validate(vocab)
        assert refused.value.field == "seed"  # named by its field: the CLI says the option typed
    for seed in (0, MAX_SEED):
        SampleOptions(seed=seed).validate(vocab)


def test_a_model_of_ones_own_tunes_generates_in_their_keys_only(
    small_corpus_file: Path, tmp_path: Path
) -> None:
    """A checkpoint records the keys its corpus names (as written there): a model trained on
    another corpus than the default, which cannot be found here by what it is, is held to
    them too. Keys no K: value could write (a checkpoint from elsewhere) hold it to none."""
    from core.generation import load_generator

    corpus = load_corpus(small_corpus_file)
    out = tmp_path / "own.pt"
    train(corpus, MODEL, replace(CFG, steps=2), checkpoint_path=out)
    assert load_checkpoint(out).corpus["keys"] == ";".join(key_spellings(corpus.tunes).values())
    generator = load_generator(out)
    assert generator.corpus is None  # not the default corpus: not found here
    assert generator.sampler.keys == frozenset(key_spellings(corpus.tunes)) != frozenset()

    # What it records stays within what a checkpoint may hold, whatever the corpus's K: lines
    # (a comment on each, hundreds of odd values, one very long).
    odd = tmp_path / "odd.abc"
    odd.write_text("\n\n".join(
        f"X:{i}\nT:t\nK:G odd{i:03d}{'x' * (i % 40)} % by ear from a 1978 cassette, Co. Clare\nGAB|"
        for i in range(600)) + f"\n\nX:9\nK:{'G' * 9000}\nG|\n", encoding="utf-8")  # fmt: skip
    recorded = load_corpus(odd).identity()
    assert "%" not in str(recorded["keys"]) and len(str(recorded["keys"]).split(";")) == 200
    train(load_corpus(odd), MODEL, replace(CFG, steps=1), checkpoint_path=tmp_path / "odd.pt")
    assert load_checkpoint(tmp_path / "odd.pt").corpus["keys"] == recorded["keys"]

    payload = torch.load(out, weights_only=False)
    payload["corpus"]["keys"] = "H minor;Q Dorian"
    assert load_generator(write(payload, tmp_path / "odd.pt")).sampler.keys is None


def test_a_prompts_key_in_another_spelling_is_read_as_the_corpus_writes_it() -> None:
    """"K:G" and "K:Ador" are what people type; the corpus writes "K:G Major", "K:A Dorian".
    Given "K:G" the shipped model wrote a header of its own after it (M:6/8 ... K:C Major in
    a waltz asked for in G), and the grammar did not follow "K:Ador" (its tunes invalid). Read
    as the corpus writes them, the tunes are those of the corpus's spelling, and valid."""
    from core.abc import check_tune
    from core.generation import load_generator
    from core.paths import shipped_model_path

    path = shipped_model_path()
    assert path is not None
    sampler = load_generator(path).sampler
    head = "X:1\nM:3/4\nL:1/8\n"
    assert sampler.model_prompt(head + "K:Ador\nA") == head + "K:A Dorian\nA"
    assert sampler.model_prompt(head + "K:G") == head + "K:G"  # not complete: as written
    for typed, spelled in (("G", "G Major"), ("Ador", "A Dorian"), ("Em", "E Minor")):
        for seed in (1, 2):
            tunes = [
                sampler.generate(SampleOptions(prompt=f"{head}K:{k}\n", seed=seed, grammar=True))
                for k in (typed, spelled)
            ]
            assert tunes[0] == tunes[1] and "K:" not in tunes[0], (typed, seed)
            assert check_tune(f"{head}K:{typed}\n{tunes[0]}").clean, (typed, seed)


def test_the_shipped_model_generates_in_its_corpus_keys_only() -> None:
    """The grammar's keys come from the model's training corpus, found by what it is (issue 12:
    no tune in a key the corpus never uses); a model of an unknown corpus may use any key."""
    from core.generation import load_generator
    from core.music_analysis import corpus_keys
    from core.paths import shipped_model_path

    path = shipped_model_path()
    assert path is not None
    generator = load_generator(path)
    assert generator.corpus is not None
    assert generator.sampler.keys == corpus_keys(load_corpus().tunes)
