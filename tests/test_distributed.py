"""Data-parallel training on CPUs: two real gloo ranks under torchrun (the tiny preset on a small
corpus), and the one-pass encoding of big corpora."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import torch

from core.checkpoint import load_checkpoint
from core.corpus import Vocabulary, load_corpus
from core.distributed import REPORT_ENV, Ranks, device_for, weights_hash
from core.model import CharLSTM
from core.presets import ModelConfig, TrainConfig
from core.sample import SampleOptions, Sampler
from core.train import evaluate_bpc, train

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Run:
    out: Path
    reports: dict[int, dict[str, object]]
    summary: dict[str, object]


def _env(reports: Path, home: Path) -> dict[str, str]:
    env = dict(os.environ, FOLKGEN_HOME=str(home), PYTHONPATH=str(ROOT))
    env[REPORT_ENV] = str(reports)
    return env


def _reports(folder: Path) -> dict[int, dict[str, object]]:
    return {r: json.loads((folder / f"rank{r}.json").read_text()) for r in (0, 1)}


@pytest.fixture(scope="module")
def two_ranks(small_corpus_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """`folkgen train --nproc 2` (torchrun starts two ranks on this machine) for as long as it
    takes rank 0 to evaluate and save its best-so-far once (step 50); then rank 0 is sent
    SIGTERM. One run for every check below: each start of torch costs seconds on 2 cores."""
    folder = tmp_path_factory.mktemp("ddp")
    reports, out = folder / "reports", folder / "out" / "d.pt"
    reports.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "train", "--nproc", "2", "--preset", "tiny",
         "--corpus", str(small_corpus_file), "--steps", "100000", "--out", str(out), "--json"],
        cwd=ROOT, env=_env(reports, folder / "home"), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        best = out.with_name("d.best.pt")
        while not best.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert best.exists(), "rank 0 saved no evaluation in time"
        os.kill(int(_reports(reports)[0]["pid"]), signal.SIGTERM)  # type: ignore[call-overload]
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr[-3000:]
    lines = stdout.strip().splitlines()
    assert len(lines) == 1, stdout  # rank 0's summary only
    return Run(out, _reports(reports), json.loads(lines[0]))


def test_sigterm_to_rank0_stops_both_ranks_at_one_step(two_ranks: Run) -> None:
    r0, r1 = two_ranks.reports[0], two_ranks.reports[1]
    assert r0["pid"] != r1["pid"]  # two processes, sharing the cores without oversubscribing
    assert r0["threads"] == r1["threads"] == max(1, len(os.sched_getaffinity(0)) // 2)
    assert r0["stopped"] and r1["stopped"]  # rank 1 stopped too, at the same step
    assert r0["step"] == r1["step"] and int(r0["step"]) > 50  # type: ignore[call-overload]
    assert two_ranks.summary["stopped"] and two_ranks.summary["steps"] == r0["step"]


def test_the_ranks_train_one_model_and_rank0_alone_saves_it(
    two_ranks: Run, small_corpus_file: Path
) -> None:
    r0, r1 = two_ranks.reports[0], two_ranks.reports[1]
    assert r0["sha"] == r1["sha"]  # DDP kept the weights identical
    # One checkpoint with its best-so-far file, holding the ranks' weights at the last step.
    assert sorted(p.name for p in two_ranks.out.parent.iterdir()) == ["d.best.pt", "d.pt"]
    ckpt = load_checkpoint(two_ranks.out)
    assert ckpt.step == r0["step"] and weights_hash(ckpt.model_state) == r0["sha"]
    # The validation loss went down: the trained weights against the same model untrained.
    val = load_corpus(small_corpus_file).split(vocab=ckpt.vocab).val_ids
    torch.manual_seed(ckpt.train_config.seed)
    untrained = evaluate_bpc(CharLSTM(ckpt.model_config).eval(), val)
    best = load_checkpoint(two_ranks.out.with_name("d.best.pt"))
    assert best.metrics["val_bpc"] == pytest.approx(evaluate_bpc(best.build_model(), val))
    assert evaluate_bpc(ckpt.build_model(), val) < untrained - 1.5, untrained


def test_a_single_process_resumes_the_ranks_checkpoint_and_samples(
    two_ranks: Run, small_corpus_file: Path, tmp_path: Path
) -> None:
    ckpt = load_checkpoint(two_ranks.out)
    steps: list[int] = []
    result = train(
        load_corpus(small_corpus_file), ckpt.model_config,
        replace(ckpt.train_config, steps=ckpt.step + 3, device="cpu"),
        checkpoint_path=tmp_path / "r.pt", resume=ckpt,
        on_event=lambda e: steps.append(e.step) if e.kind == "step" else None,
    )  # fmt: skip
    assert steps[0] == ckpt.step + 1 and result.step == ckpt.step + 3
    resumed = load_checkpoint(tmp_path / "r.pt")
    assert resumed.step == ckpt.step + 3 and resumed.optimizer_state
    sampler = Sampler(resumed.build_model(), resumed.vocab)
    tune = sampler.generate(SampleOptions(seed=1, max_chars=120))
    assert tune and set(tune) <= set(resumed.vocab.chars)


def _per_character(vocab: Vocabulary, text: str) -> np.ndarray:
    """The encoding as it was written first: a dictionary look-up per character."""
    index = vocab.char2idx
    return np.array([index[c] for c in text], dtype=np.int64)


def test_the_vectorised_encoding_is_the_per_character_one() -> None:
    corpus = load_corpus()
    compact = corpus.vocab.encode_compact(corpus.text)
    assert compact.dtype == np.uint8  # a byte a character
    assert np.array_equal(compact, _per_character(corpus.vocab, corpus.text))
    text = "X:1\nT:Café Ölfäßchen ☃ 𝄞\nK:G\n|:GAB cBA|\n" * 3  # not ASCII: the code-point path
    vocab = Vocabulary.from_text(text)
    assert np.array_equal(vocab.encode_compact(text), _per_character(vocab, text))
    assert np.array_equal(vocab.encode(text), _per_character(vocab, text))
    wide = Vocabulary(tuple(chr(0x100 + i) for i in range(300)))  # more than a byte holds
    sample = "".join(reversed(wide.chars))
    assert wide.encode_compact(sample).dtype == np.uint16
    assert np.array_equal(wide.encode_compact(sample), _per_character(wide, sample))


def test_a_large_corpus_gets_a_hashed_near_copy_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above EXACT_LIMIT characters of music the index holds hashed 6-grams in numpy arrays and
    rescores its best candidates exactly: with every gram kept it answers as the exact index,
    with one in 8 kept (as on a 100 MB corpus) here too."""
    import core.novelty as novelty

    tunes = load_corpus().tunes
    exact = novelty.NoveltyIndex(tunes)
    assert exact.sampled is None
    monkeypatch.setattr(novelty, "EXACT_LIMIT", 0)
    monkeypatch.setattr(novelty, "SAMPLED_GRAMS", 10**9)
    every = novelty.NoveltyIndex(tunes)
    assert every.sampled is not None and every.sampled.keep_every == 1
    monkeypatch.setattr(novelty, "SAMPLED_GRAMS", 25_000)
    sampled = novelty.NoveltyIndex(tunes)
    assert sampled.sampled is not None and sampled.sampled.keep_every == 8
    same: list[bool] = []
    for i in range(0, len(tunes), 9):
        lines = tunes[i].splitlines()
        k = next((n for n, line in enumerate(lines) if line.startswith("K:")), 0)
        half = k + 1 + (len(lines) - k - 1) // 2  # the second half of the music replaced
        altered = "\n".join(lines[:half] + ["ceg" * 10 + "|"] * (len(lines) - half))
        for query in (tunes[i], altered):
            want, got, estimate = (ix.closest(query) for ix in (exact, every, sampled))
            if want is None:
                assert got is None
                continue
            assert got is not None and got.similarity == want.similarity
            same.append(estimate is not None and estimate.similarity == want.similarity)
        copy = sampled.closest(tunes[i].replace("T:", "T:Not ", 1))
        assert copy is not None and copy.similarity == 1.0 and copy.is_near_copy
    assert len(same) > 100 and all(same)  # the closest tune was among the candidates each time


def test_the_gpu_batches_and_loss_reads_train_as_the_cpu_path(
    small_corpus_file: Path, tmp_path: Path
) -> None:
    """No GPU here: the GPU's way (the text on the device once, windows cut there from the same
    draws, the loss read every GPU_SYNC_EVERY steps) run on the CPU gives the same weights."""
    from core.train import GPU_SYNC_EVERY, Trainer

    corpus = load_corpus(small_corpus_file)
    model = ModelConfig(embedding_dim=16, hidden_size=32)
    cfg = TrainConfig(
        seq_length=32, batch_size=8, steps=2 * GPU_SYNC_EVERY + 3, eval_every=0,
        checkpoint_every=5, device="cpu", threads=1,
    )  # fmt: skip
    plain = Trainer(corpus, model, cfg)
    plain.run()
    losses: list[float] = []
    gpu_like = Trainer(
        corpus, model, cfg, checkpoint_path=tmp_path / "g.pt",
        on_event=lambda e: losses.append(e.loss) if e.kind == "step" else None,
    )  # fmt: skip
    gpu_like.on_gpu = True
    gpu_like._batches_for(gpu_like.train_ids)
    assert gpu_like.data is not None  # the windows are cut from the text's tensor
    result = gpu_like.run()
    assert weights_hash(gpu_like.model.state_dict()) == weights_hash(plain.model.state_dict())
    # Read after steps 16 and 32 (the mean of the 16 before), and once more at the end.
    first, second = GPU_SYNC_EVERY - 1, 2 * GPU_SYNC_EVERY - 1
    assert all(np.isnan(v) for v in losses[:first]) and not np.isnan(losses[first])
    assert len(set(losses[first:second])) == 1 and losses[second] != losses[first]
    assert result.loss != losses[-1] and np.isfinite(result.loss)
    # Saved at step 5, before the first read: with that rank's own loss so far, a number.
    assert load_checkpoint(tmp_path / "g.pt").step == cfg.steps


def _torchrun(*program: str) -> subprocess.CompletedProcess[str]:
    """core.torchrun (what `train --nproc` starts) over two ranks of a plain shell program."""
    command = [sys.executable, "-m", "core.torchrun", "--standalone", "--nproc-per-node=2",
               "--no-python", *program]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def test_a_failing_rank_is_heard_without_torchruns_own_traceback() -> None:
    failed = _torchrun("sh", "-c", 'echo "folkgen: error: the reason, said by the rank" >&2; exit 3')
    assert failed.returncode == 3
    assert "folkgen: error: the reason, said by the rank" in failed.stderr
    assert "Traceback" not in failed.stderr and "ChildFailedError" not in failed.stderr
    assert "SIGTERM" not in failed.stderr  # torchrun's warnings about stopping the other rank
    killed = _torchrun(sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    assert killed.returncode == 1 and "Traceback" not in killed.stderr
    assert "was ended by signal 9" in killed.stderr
    # A failure of rank 1 alone: rank 0, which says the common mistakes, did not say it.
    alone = _torchrun("sh", "-c", '[ "$LOCAL_RANK" = 1 ] && exit 4; sleep 30')
    assert alone.returncode == 4
    assert "folkgen: training process 1 stopped (exit status 4)" in alone.stderr


def test_a_mistake_in_the_command_is_said_once_by_rank_0(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Every rank gets the same command line: only local rank 0 says what is wrong with it."""
    from core.cli import main

    monkeypatch.setenv("FOLKGEN_HOME", str(tmp_path))
    monkeypatch.setenv("LOCAL_RANK", "1")  # outside torchrun (no WORLD_SIZE): said as ever
    assert main(["train", "--corpus", str(tmp_path / "missing.abc")]) == 1
    assert "folkgen: error:" in capsys.readouterr().err
    monkeypatch.setenv("WORLD_SIZE", "2")
    for rank, said in (("1", False), ("0", True)):
        monkeypatch.setenv("LOCAL_RANK", rank)
        assert main(["train", "--corpus", str(tmp_path / "missing.abc")]) == 1
        assert ("folkgen: error:" in capsys.readouterr().err) is said


def test_nproc_is_taken_out_of_the_ranks_command_however_it_is_written() -> None:
    """The ranks get train's command line less --nproc: written out, with =, or abbreviated as
    argparse allows (`--npro 2` once reached the ranks, which refused it)."""
    from core.cli import _is_nproc

    for argv in (["train", "--nproc", "2", "--steps", "9"], ["train", "--nproc=2", "--steps", "9"],
                 ["train", "--npro", "2", "--steps", "9"], ["train", "--np=2", "--steps", "9"]):  # fmt: skip
        rest = [a for i, a in enumerate(argv) if not _is_nproc(argv, i)]
        assert rest == ["train", "--steps", "9"], argv


def test_each_rank_trains_on_a_gpu_of_its_own_and_more_ranks_than_gpus_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    two = [Ranks(rank=r, local_rank=r, world_size=2, local_world_size=2) for r in (0, 1)]
    assert [device_for(name, ranks) for name in ("auto", "cuda") for ranks in two] == [
        "cuda:0", "cuda:1", "cuda:0", "cuda:1"
    ]
    assert device_for("cpu", two[1]) == "cpu"  # CPU ranks share the cores
    assert device_for("cuda", Ranks()) == "cuda"  # one plain process: as asked
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    for rank in (0, 1):  # every rank says it alike (rank 0 alone would wait for rank 1)
        with pytest.raises(ValueError, match=r"2 training processes on this machine, and it has "
                           r"1 GPU: .*--nproc 1, or --device cpu"):  # fmt: skip
            device_for("auto", two[rank])
