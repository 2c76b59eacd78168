from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core import checkpoint as ckmod
from core.checkpoint import (
    Checkpoint,
    CheckpointError,
    load_checkpoint,
    one_writer,
    save_checkpoint,
)
from core.corpus import Vocabulary
from core.model import CharLSTM
from core.presets import ModelConfig, TrainConfig


def make(step: int = 3) -> Checkpoint:
    vocab = Vocabulary.from_text("X:1\nABCabc|")
    cfg = ModelConfig(vocab_size=len(vocab), embedding_dim=8, hidden_size=16)
    model = CharLSTM(cfg)
    return Checkpoint(cfg, TrainConfig(), vocab, model.state_dict(), None, step, {"val_bpc": 2.5})


def test_round_trip(tmp_path: Path) -> None:
    ck = make()
    path = save_checkpoint(ck, tmp_path / "sub" / "a.pt")
    back = load_checkpoint(path)
    assert back.vocab == ck.vocab and back.step == 3 and back.metrics["val_bpc"] == 2.5
    assert back.model_config == ck.model_config
    for k, v in ck.model_state.items():
        assert torch.equal(back.model_state[k], v)
    reference = CharLSTM(ck.model_config).eval()
    reference.load_state_dict(ck.model_state)
    x = torch.tensor([[1, 2, 3]])
    assert torch.allclose(back.build_model()(x)[0], reference(x)[0])


def test_atomic_write_keeps_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.pt"
    save_checkpoint(make(step=1), path)

    def broken_save(obj: object, f: object) -> None:
        f.write(b"PK\x03\x04 half a file")  # type: ignore[attr-defined]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckmod.torch, "save", broken_save)
    with pytest.raises(CheckpointError, match="No space left"):
        save_checkpoint(make(step=2), path)
    assert load_checkpoint(path).step == 1
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt"]  # no temp file left behind


def test_unwritable_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CheckpointError, match="cannot write"):
        save_checkpoint(make(), blocker / "a.pt")


def test_one_run_at_a_time_saves_to_a_file(tmp_path: Path) -> None:
    """A second writer of a checkpoint is refused, told which process writes it; another file is
    not held; the hold ends with its run, and with a run killed (the kernel lets go), whose lock
    file the next run takes over."""
    path = tmp_path / "run.pt"
    with one_writer(path):
        busy = re.escape(f"another training run (process {os.getpid()}) is saving to {path};")
        with pytest.raises(CheckpointError, match=busy), one_writer(tmp_path / "." / "run.pt"):
            pass
        with one_writer(tmp_path / "other.pt"):
            pass
    with one_writer(path):
        pass
    assert not list(tmp_path.glob(".*"))  # no lock file left behind
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom core.checkpoint import one_writer\n"
         "with one_writer(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(60)",
         str(path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(CheckpointError, match=rf"\(process {holder.pid}\)"), one_writer(path):
            pass
    finally:
        holder.kill()
        holder.wait()
    assert list(tmp_path.glob(".*")) == [tmp_path / ".run.pt.lock"]  # killed, its file stays
    with one_writer(path):
        pass
    assert not list(tmp_path.glob(".*"))
    kept = tmp_path / "kept.txt"  # a link planted where the lock goes: never written through
    kept.write_text("mine")
    (tmp_path / ".planted.pt.lock").symlink_to(kept)
    with one_writer(tmp_path / "planted.pt"):
        pass
    assert kept.read_text() == "mine"


def test_truncated_corrupt_and_foreign_files(tmp_path: Path) -> None:
    good = save_checkpoint(make(), tmp_path / "good.pt").read_bytes()
    cases = {
        "truncated.pt": good[: len(good) // 2],
        "corrupt.pt": good[:200] + bytes(b ^ 0x5A for b in good[200:400]) + good[400:],
        "text.pt": b"hello, not a checkpoint",
        "empty.pt": b"",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(CheckpointError, match=name):
            load_checkpoint(tmp_path / name)
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a folkgen checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_newer_format_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ckmod, "VERSION", ckmod.VERSION + 1)
    path = save_checkpoint(make(), tmp_path / "new.pt")
    monkeypatch.setattr(ckmod, "VERSION", ckmod.VERSION - 1)
    with pytest.raises(CheckpointError, match="newer"):
        load_checkpoint(path)
