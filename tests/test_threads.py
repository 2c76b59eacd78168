"""The trainer's thread count: every core on a quiet machine, fewer while others are busy."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from core import threads
from core.corpus import load_corpus
from core.presets import ModelConfig, TrainConfig
from core.threads import ThreadPolicy, threads_for
from core.train import TrainEvent, train


def test_threads_for() -> None:
    assert threads_for(2, 0.0) == 2 and threads_for(2, 0.4) == 2
    assert threads_for(2, 0.9) == 1 and threads_for(2, 2.0) == 1
    assert threads_for(16, 4.0) == 12 and threads_for(1, 3.0) == 1


def test_a_busy_process_is_seen_and_leaves_its_core() -> None:
    policy = ThreadPolicy(cores=2)
    time.sleep(0.4)
    quiet = policy.others_busy()
    assert quiet is not None
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.0)
        before = torch.get_num_threads()
        assert policy.apply() == 1  # another process holds a core
        assert torch.get_num_threads() == 1
        torch.set_num_threads(before)
    finally:
        busy.kill()
        busy.wait()


def test_the_apps_own_processes_are_not_others(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch's processes of the app count the app's CPU time as their own (its drawing is not
    another program's load): a busy process counted so leaves the cores to training. Two looks
    over the same second, the busy process counted as ours in one and not in the other, so that
    whatever else the machine runs meanwhile counts the same in both."""
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        monkeypatch.setattr(threads, "_family", ())
        threads.count_as_ours(busy.pid)
        counted = ThreadPolicy(cores=2)
        threads.count_as_ours()
        not_counted = ThreadPolicy(cores=2)
        time.sleep(1.0)
        threads.count_as_ours(busy.pid)
        ours = counted.others_busy()
        threads.count_as_ours()
        others = not_counted.others_busy()
        assert ours is not None and others is not None
        # The busy process ran for most of the second (a core's worth on a quiet machine).
        assert others - ours >= 0.3, (ours, others)
    finally:
        busy.kill()
        busy.wait()


def test_a_look_too_short_to_judge_keeps_all_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Training looks at the machine when its loop starts, a moment after the policy was made:
    one tick of another process in that moment must not read as a busy core."""
    samples = iter([(0, 0, 0, 2), (2, 0, 1, 2), (200, 0, 100, 2)])  # (total, idle, ours, cpus)
    monkeypatch.setattr("core.threads._cpu_sample", lambda: next(samples))
    policy = ThreadPolicy(cores=2)
    assert policy.others_busy() is None  # 1 tick of 2: too short a look
    assert policy.others_busy() == 1.0  # measured from the first sample: one core busy


def test_a_requested_count_is_kept() -> None:
    policy = ThreadPolicy(3, cores=2)
    assert policy.apply() == 3 and policy.maybe_update() == 3
    with pytest.raises(ValueError, match="threads"):
        ThreadPolicy(-1)


def test_training_reports_its_threads_and_restores_the_count(small_corpus_file: Path) -> None:
    before = torch.get_num_threads()
    events: list[TrainEvent] = []
    cfg = TrainConfig(seq_length=32, batch_size=4, steps=3, eval_every=0, checkpoint_every=0)
    train(load_corpus(small_corpus_file), ModelConfig(embedding_dim=8, hidden_size=16),
          replace(cfg, threads=1), on_event=events.append)  # fmt: skip
    assert {e.threads for e in events} == {1}
    assert torch.get_num_threads() == before
