"""Fault suite for the core: bad input, killed writers, unwritable places, extreme options.
Each case fails if the behaviour regresses (see the README's 'When something goes wrong')."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pytest

from core.checkpoint import load_checkpoint
from core.corpus import UnknownCharacters, compute_stats, load_corpus
from core.paths import replace_file
from core.presets import ModelConfig, TrainConfig
from core.sample import MAX_CHARS_LIMIT, SampleOptions, Sampler
from core.train import TrainEvent, train

MODEL = ModelConfig(embedding_dim=16, hidden_size=48)
CFG = TrainConfig(seq_length=32, batch_size=8, steps=6, eval_every=0, checkpoint_every=2)


def test_huge_corpus_loads_and_encodes_quickly(tmp_path: Path) -> None:
    tunes = load_corpus().tunes
    big = tmp_path / "big.abc"
    with big.open("w", encoding="utf-8") as f:
        for _ in range(100):  # about 20 MB
            f.write("\n\n".join(t.strip("\n") for t in tunes) + "\n\n")
    t0 = time.perf_counter()
    corpus = load_corpus(big)
    stats = compute_stats(corpus)
    split = corpus.split()
    elapsed = time.perf_counter() - t0
    assert stats.tunes > 80_000 and stats.characters > 19_000_000
    assert split.train_ids.dtype == np.int64 and len(split.train_ids) > 15_000_000
    assert elapsed < 20, f"{elapsed:.1f}s for 20 MB"


def test_checkpoint_survives_sigkill_while_writing(tmp_path: Path) -> None:
    """A writer killed at random moments never leaves an unloadable checkpoint behind."""
    path = tmp_path / "k.pt"
    script = textwrap.dedent(f"""
        import torch
        from core.checkpoint import Checkpoint, save_checkpoint
        from core.corpus import Vocabulary
        from core.model import CharLSTM
        from core.presets import ModelConfig, TrainConfig
        vocab = Vocabulary.from_text("X:1 ABCabc|\\n")
        cfg = ModelConfig(vocab_size=len(vocab), embedding_dim=64, hidden_size=512)
        model = CharLSTM(cfg)
        step = 0
        while True:
            step += 1
            save_checkpoint(Checkpoint(cfg, TrainConfig(), vocab, model.state_dict(), None, step), {str(path)!r})
            print(step, flush=True)
    """)
    for delay in (1.5, 1.9, 2.3):
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        proc.stdout.readline()  # one checkpoint is complete
        time.sleep(delay - 1.4)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert load_checkpoint(path).step >= 1
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "k.pt"]
    assert all(name.endswith(".tmp") for name in leftovers)  # only a killed writer's temp file


def test_training_keeps_going_when_checkpoints_cannot_be_written(
    small_corpus_file: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    events: list[TrainEvent] = []
    result = train(
        load_corpus(small_corpus_file), MODEL, CFG, checkpoint_path=blocker / "m.pt",
        on_event=events.append,
    )  # fmt: skip
    warnings = [e.message for e in events if e.kind == "warning"]
    assert result.step == 6 and result.checkpoint is None
    assert warnings and all("cannot write a checkpoint" in w for w in warnings)
    assert [p.name for p in tmp_path.iterdir()] == ["not-a-folder"]


def test_the_apps_settings_stay_whole_when_the_disk_cannot_take_a_change(
    folkgen_home: Path,
) -> None:
    """A full disk (here a file-size limit: the write fails with EFBIG part way through) cut
    tui.json short when it was written in place, and the next start lost every setting (the
    theme, the voice); now it is replaced whole or not at all, and no temporary file stays."""
    folkgen_home.mkdir(parents=True)
    settings = folkgen_home / "tui.json"
    settings.write_text('{"theme": "nord"}', encoding="utf-8")
    script = textwrap.dedent("""
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails (EFBIG), not the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        from folkgen_tui.app import FolkgenApp
        app = FolkgenApp(autoload_model=False)
        app.remember("voice", {"instrument": "x" * 10_000})
        print(app.setting("theme"), len(app.setting("voice")["instrument"]))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["nord", "10000"]  # the app goes on with the change in memory
    assert settings.read_text(encoding="utf-8") == '{"theme": "nord"}'
    assert [p.name for p in folkgen_home.iterdir()] == ["tui.json"]


def test_a_file_replaced_whole_is_left_as_it_was_by_a_failed_write(tmp_path: Path) -> None:
    path = tmp_path / "table.bin"
    path.write_bytes(b"old")

    def fails(f: BinaryIO) -> None:
        f.write(b"new, in part")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        replace_file(path, fails)
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["table.bin"]
    replace_file(path, lambda f: f.write(b"new"))
    assert path.read_bytes() == b"new" and path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["table.bin"]
    link = tmp_path / "linked" / "tui.json"  # a settings file kept with the user's dotfiles
    link.parent.mkdir()
    link.symlink_to(path)
    replace_file(link, lambda f: f.write(b"newer"))
    assert link.is_symlink() and path.read_bytes() == b"newer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["linked", "table.bin"]


@pytest.fixture(scope="module")
def sampler(tiny_checkpoint: Path) -> Sampler:
    ckpt = load_checkpoint(tiny_checkpoint)
    return Sampler(ckpt.build_model(), ckpt.vocab)


def test_sampling_extremes(sampler: Sampler) -> None:
    with pytest.raises(UnknownCharacters):
        sampler.generate(SampleOptions(prompt="€€€"))
    for bad in (-0.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="temperature"):
            sampler.generate(SampleOptions(temperature=bad))
    with pytest.raises(ValueError, match="top-k"):
        sampler.generate(SampleOptions(top_k=-1))
    with pytest.raises(ValueError, match=f"max chars must be at most 1,000,000, not {MAX_CHARS_LIMIT + 1}$"):
        sampler.generate(SampleOptions(max_chars=MAX_CHARS_LIMIT + 1))
    with pytest.raises(ValueError, match="max chars must be 0 or more, not -1$"):
        sampler.generate(SampleOptions(max_chars=-1))
    # A blank line inside the prompt's header: the model wrote a tune of its own after it, and
    # the text held a header no tool could read.
    with pytest.raises(ValueError, match="blank line inside a tune's header"):
        sampler.generate(SampleOptions(prompt="X:1\nT:Jig\n\n"))
    whole = "X:1\nT:A\nK:G\nGABc|\n\nX:2\nT:B\n"  # a whole tune before: no blank line cut
    assert sampler.generate(SampleOptions(prompt=whole, seed=1, max_chars=20))
    huge = sampler.generate(SampleOptions(temperature=1e6, seed=1, max_chars=400))
    assert len(set(huge)) > 40  # close to uniform over the vocabulary
    wide = SampleOptions(top_k=10_000, seed=4, max_chars=80)
    assert sampler.generate(wide) == sampler.generate(replace(wide, top_k=None))
    assert sampler.generate(SampleOptions(top_k=0, seed=4, max_chars=80)) == sampler.generate(wide)


def test_length_bound_stops_a_model_that_never_ends(sampler: Sampler) -> None:
    nl = sampler.vocab.char2idx["\n"]
    sampler_no_end = Sampler.__new__(Sampler)
    sampler_no_end.__dict__.update(sampler.__dict__)
    sampler_no_end.b_out = sampler.b_out.copy()
    sampler_no_end.b_out[nl] = -1e9  # this model can never write a newline, so never a blank line
    text = sampler_no_end.generate(SampleOptions(seed=1, max_chars=3000))
    assert len(text) == 3000 and "\n" not in text
