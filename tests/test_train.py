from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest

from core.checkpoint import CheckpointError, load_checkpoint
from core.corpus import load_corpus
from core.presets import ModelConfig, TrainConfig, get_preset
from core.train import TrainControl, TrainError, TrainEvent, learning_rate, train

MODEL = ModelConfig(embedding_dim=16, hidden_size=64)
CFG = TrainConfig(
    seq_length=48, batch_size=16, learning_rate=1e-2, steps=60, eval_every=20,
    checkpoint_every=30, grad_clip=1.0,
)  # fmt: skip


def test_seed_preset_is_the_labs_recipe() -> None:
    seed = get_preset("seed")
    assert (seed.model.embedding_dim, seed.model.hidden_size, seed.model.num_layers) == (
        256,
        1024,
        1,
    )
    t = seed.train
    assert (t.seq_length, t.batch_size, t.learning_rate, t.steps) == (100, 8, 5e-3, 3000)
    assert t.schedule == "constant" and t.grad_clip is None and t.weight_decay == 0


def test_training_lowers_validation_loss(small_corpus_file: Path, tmp_path: Path) -> None:
    events: list[TrainEvent] = []
    result = train(
        load_corpus(small_corpus_file), MODEL, CFG, checkpoint_path=tmp_path / "m.pt",
        on_event=events.append,
    )  # fmt: skip
    evals = [e.val_bpc for e in events if e.kind == "eval"]
    assert len(evals) == 3
    assert evals[-1] is not None and evals[0] is not None
    assert evals[-1] < evals[0] - 0.3, evals
    assert result.step == 60 and not result.stopped
    assert result.checkpoint == tmp_path / "m.pt"
    assert result.best_checkpoint == tmp_path / "m.best.pt"
    steps = [e for e in events if e.kind == "step"]
    assert [e.step for e in steps] == list(range(1, 61))
    assert all(e.chars_per_sec > 0 and e.lr > 0 for e in steps)
    assert events[-1].kind == "done"
    assert {e.checkpoint for e in events if e.kind == "checkpoint"} >= {str(tmp_path / "m.pt")}


def test_pause_resume_and_stop_from_another_thread(small_corpus_file: Path) -> None:
    control = TrainControl()
    kinds: list[str] = []
    paused = threading.Event()

    def on_event(e: TrainEvent) -> None:
        kinds.append(e.kind)
        if e.kind == "step" and e.step == 5:
            control.pause()
        if e.kind == "paused":
            paused.set()

    cfg = replace(CFG, steps=10_000, eval_every=0, checkpoint_every=0)
    result: list = []
    worker = threading.Thread(
        target=lambda: result.append(
            train(load_corpus(small_corpus_file), MODEL, cfg, on_event=on_event, control=control)
        )
    )
    worker.start()
    assert paused.wait(30)
    n_paused = len(kinds)
    threading.Event().wait(0.3)
    assert len(kinds) == n_paused  # no steps while paused
    control.resume()
    threading.Event().wait(0.2)
    control.stop()
    worker.join(30)
    assert not worker.is_alive()
    assert "resumed" in kinds
    assert result[0].stopped and 5 < result[0].step < 10_000


@pytest.mark.parametrize("hurry", [False, True])
def test_a_hurried_stop_saves_without_the_last_evaluation(
    small_corpus_file: Path, tmp_path: Path, hurry: bool
) -> None:
    """When the process is about to end (the app's terminal has gone) the stop saves at once; a
    plain stop evaluates the step it reached first."""
    control = TrainControl()
    kinds: list[str] = []

    def on_event(e: TrainEvent) -> None:
        kinds.append(e.kind)
        if e.kind == "step" and e.step == 7:
            control.stop(hurry=hurry)

    cfg = replace(CFG, steps=10_000, eval_every=5, checkpoint_every=0)
    out = tmp_path / "h.pt"
    result = train(
        load_corpus(small_corpus_file),
        MODEL,
        cfg,
        checkpoint_path=out,
        on_event=on_event,
        control=control,
    )
    assert result.stopped and result.step == 7 and load_checkpoint(out).step == 7
    after_last_step = kinds[len(kinds) - kinds[::-1].index("step") :]
    assert ("eval" in after_last_step) is not hurry, kinds


def test_wall_clock_budget(small_corpus_file: Path) -> None:
    cfg = replace(CFG, minutes=0.05, steps=1, eval_every=0, schedule="cosine")
    events: list[TrainEvent] = []
    result = train(load_corpus(small_corpus_file), MODEL, cfg, on_event=events.append)
    steps = [e for e in events if e.kind == "step"]
    assert result.step == len(steps) > 1  # the budget, not `steps`, ends a timed run
    # Each step starts only while budget is left: all but the last ended inside it, and the run
    # ended after it (no upper bound in seconds: CI machines are loaded).
    budget = cfg.minutes * 60  # type: ignore[operator]
    assert steps[-2].elapsed_s < budget <= result.elapsed_s


def test_resume_continues_at_the_same_step(small_corpus_file: Path, tmp_path: Path) -> None:
    corpus = load_corpus(small_corpus_file)
    path = tmp_path / "r.pt"
    train(corpus, MODEL, replace(CFG, steps=20), checkpoint_path=path)
    ckpt = load_checkpoint(path)
    assert ckpt.step == 20 and ckpt.optimizer_state
    steps: list[int] = []
    result = train(
        corpus, MODEL, replace(CFG, steps=30), checkpoint_path=path, resume=ckpt,
        on_event=lambda e: steps.append(e.step) if e.kind == "step" else None,
    )  # fmt: skip
    assert steps[0] == 21 and result.step == 30
    assert load_checkpoint(path).step == 30


def test_a_run_saving_to_the_file_of_a_run_under_way_is_refused(
    small_corpus_file: Path, tmp_path: Path
) -> None:
    """A checkpoint resumed in two places at once: both runs saved over each other's work. The
    second is refused before its first step; the first trains on and saves its own."""
    corpus = load_corpus(small_corpus_file)
    path = tmp_path / "r.pt"
    train(corpus, MODEL, replace(CFG, steps=10), checkpoint_path=path)
    refused: list[str] = []

    def on_event(e: TrainEvent) -> None:
        if e.kind == "step" and e.step == 11:
            try:
                train(corpus, MODEL, replace(CFG, steps=40), checkpoint_path=path,
                      resume=load_checkpoint(path))  # fmt: skip
            except CheckpointError as error:
                refused.append(str(error))

    result = train(corpus, MODEL, replace(CFG, steps=20), checkpoint_path=path,
                   resume=load_checkpoint(path), on_event=on_event)  # fmt: skip
    assert len(refused) == 1 and "another training run" in refused[0] and str(path) in refused[0]
    assert result.step == 20 and load_checkpoint(path).step == 20
    # Over: the file is free again.
    assert train(corpus, MODEL, replace(CFG, steps=25), checkpoint_path=path,
                 resume=load_checkpoint(path)).step == 25  # fmt: skip


def test_resume_on_a_corpus_of_known_characters_keeps_the_vocabulary(
    small_corpus_file: Path, tmp_path: Path
) -> None:
    """Fine-tuning on your own tunes: every character is one the model knows."""
    path = tmp_path / "v.pt"
    train(load_corpus(small_corpus_file), MODEL, replace(CFG, steps=2), checkpoint_path=path)
    old = load_checkpoint(path)
    other = tmp_path / "other.abc"
    other.write_text("X:1\nT:x\nK:G\n" + "GABc dedB|" * 30 + "\n\n", encoding="utf-8")
    corpus = load_corpus(other)
    assert corpus.vocab != old.vocab
    result = train(corpus, MODEL, replace(CFG, steps=4), checkpoint_path=path, resume=old)
    assert result.step == 4 and load_checkpoint(path).vocab == old.vocab


def test_the_best_so_far_counts_on_the_same_corpus_only(
    small_corpus_file: Path, tmp_path: Path
) -> None:
    corpus = load_corpus(small_corpus_file)
    path = tmp_path / "b.pt"
    train(corpus, MODEL, replace(CFG, steps=20), checkpoint_path=path)
    old = load_checkpoint(path)
    old.metrics["best_val_bpc"] = 0.01  # a best no run here beats
    again = train(corpus, MODEL, replace(CFG, steps=40), checkpoint_path=tmp_path / "same.pt",
                  resume=old)  # fmt: skip
    assert again.best_val_bpc == 0.01
    fewer = tmp_path / "fewer.abc"
    fewer.write_text("\n\n".join(corpus.tunes[:40]) + "\n\n", encoding="utf-8")
    other = train(load_corpus(fewer), MODEL, replace(CFG, steps=40),
                  checkpoint_path=tmp_path / "other.pt", resume=old)  # fmt: skip
    assert other.best_val_bpc is not None and other.best_val_bpc > 0.5  # this corpus's own


def test_resume_on_another_vocabulary_when_asked(small_corpus_file: Path, tmp_path: Path) -> None:
    path = tmp_path / "v.pt"
    train(load_corpus(small_corpus_file), MODEL, replace(CFG, steps=2), checkpoint_path=path)
    old = load_checkpoint(path)
    other = tmp_path / "other.abc"
    other.write_text("X:1\nT:x\nK:G\n" + "GABc @dedB|" * 30 + "\n\n", encoding="utf-8")
    corpus = load_corpus(other)
    assert "@" in corpus.vocab.chars and "@" not in old.vocab.chars
    with pytest.raises(TrainError, match="different vocabulary.*new characters: '@'.*--new-vocab"):
        train(corpus, MODEL, CFG, resume=old)
    result = train(corpus, MODEL, replace(CFG, steps=5), checkpoint_path=tmp_path / "n.pt",
                   resume=old, allow_new_vocab=True)  # fmt: skip
    carried = load_checkpoint(tmp_path / "n.pt")
    assert result.step == 5 and carried.step == 5 and carried.vocab == corpus.vocab
    assert carried.model_config.hidden_size == old.model_config.hidden_size


def test_carry_vocabulary_keeps_shared_rows() -> None:
    import torch

    from core.corpus import Vocabulary
    from core.model import CharLSTM
    from core.train import carry_vocabulary

    old_vocab, new_vocab = Vocabulary(("a", "b", "c")), Vocabulary(("b", "c", "d", "e"))
    torch.manual_seed(0)
    old = CharLSTM(replace(MODEL, vocab_size=3)).state_dict()
    fresh = CharLSTM(replace(MODEL, vocab_size=4)).state_dict()
    state = carry_vocabulary(old, old_vocab, new_vocab, fresh)
    model = CharLSTM(replace(MODEL, vocab_size=4))
    model.load_state_dict(state)  # the shapes fit the new vocabulary
    for name in ("embedding.weight", "head.weight", "head.bias"):
        assert torch.equal(state[name][:2], old[name][1:])  # b, c keep what they learnt
        assert torch.equal(state[name][2:], fresh[name][2:])  # d, e start fresh
    assert torch.equal(state["lstm.weight_hh_l0"], old["lstm.weight_hh_l0"])


def test_more_threads_than_cores_train_on_the_cores(small_corpus_file: Path) -> None:
    """--threads 99 on 2 cores trained each step ~30x as slowly (threads waiting for each
    other): the cores are used, and the run says so."""
    from core.threads import all_cores

    events: list[TrainEvent] = []
    train(load_corpus(small_corpus_file), MODEL, replace(CFG, steps=2, threads=all_cores() + 3),
          on_event=events.append)  # fmt: skip
    warnings = [e.message for e in events if e.kind == "warning"]
    assert warnings == [f"threads: {all_cores() + 3} asked for, {all_cores()} used (the cores "
                        "this run may use)"]  # fmt: skip
    assert {e.threads for e in events if e.kind == "step"} <= set(range(1, all_cores() + 1))


def test_too_small_corpus(tmp_path: Path) -> None:
    tiny = tmp_path / "t.abc"
    tiny.write_text("X:1\nK:G\nGAB\n\nX:2\nK:G\nABc\n", encoding="utf-8")
    with pytest.raises(TrainError, match="too small"):
        train(load_corpus(tiny), MODEL, CFG)


def test_learning_rate_schedule() -> None:
    cfg = TrainConfig(learning_rate=1.0, schedule="cosine", warmup_steps=10, min_lr_ratio=0.1)
    assert learning_rate(cfg, 0, 0.0) == pytest.approx(0.1)
    assert learning_rate(cfg, 10, 0.0) == pytest.approx(1.0)
    assert learning_rate(cfg, 50, 0.5) == pytest.approx(0.55)
    assert learning_rate(cfg, 99, 1.0) == pytest.approx(0.1)
    assert learning_rate(TrainConfig(learning_rate=0.3), 5, 0.7) == 0.3


def test_a_large_corpus_transposes_a_sample_within_the_budget(
    small_corpus_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import core.train

    corpus = load_corpus(small_corpus_file)
    tunes = corpus.split(vocab=None).train_tunes
    size = sum(map(len, tunes))
    assert core.train.transposable(tunes, 2, seed=1) == tunes  # within the budget: all of them
    monkeypatch.setattr(core.train, "MAX_TRANSPOSED_CHARS", size)  # room for half, at 2 shifts
    sample = core.train.transposable(tunes, 2, seed=1)
    assert 0 < len(sample) < len(tunes) and sum(map(len, sample)) <= size // 2
    assert sample == [t for t in tunes if t in sample]  # in the corpus's order
    assert (
        sample
        == core.train.transposable(tunes, 2, seed=1)
        != core.train.transposable(tunes, 2, seed=2)
    )
    events: list[TrainEvent] = []
    cfg = replace(CFG, steps=2, eval_every=0, checkpoint_every=0, transpose=1)
    train(corpus, MODEL, cfg, on_event=events.append)
    (note,) = [e.message for e in events if e.kind == "warning"]
    drawn = core.train.transposable(tunes, 2, seed=cfg.seed)
    assert note.startswith(f"transposition ±1 on {len(drawn):,} of the {len(tunes):,} training")


def test_a_file_in_the_best_models_place_is_named_with_what_to_do(tmp_path: Path) -> None:
    """`--force` covers the file the user named, never the .best.pt beside it: the message
    for that one offered --force, which then said the same again."""
    from core.checkpoint import CheckpointError
    from core.train import check_training_destination

    (tmp_path / "z.best.pt").write_text("precious", encoding="utf-8")
    with pytest.raises(CheckpointError, match="z.best.pt exists .*; move or rename that file") as e:
        check_training_destination(tmp_path / "z.pt", replace_any=True)
    assert "--force" not in str(e.value)
    assert (tmp_path / "z.best.pt").read_text(encoding="utf-8") == "precious"


def test_a_diverged_run_is_judged_against_guessing_uniformly(small_corpus_file: Path) -> None:
    """A run whose model predicts worse than guessing among its characters finished like any
    other; core says it (TrainResult.diverged), for the CLI and the app alike."""
    from core.train_events import divergence

    # An untrained model sits about at log2(83) = 6.37 (6.39 after one step of the tiny recipe).
    assert divergence(6.39, 3.0, 83) is None and divergence(None, 4.4, 83) is None
    assert divergence(236.841, 176.2, 83) == (
        "the run diverged (validation 236.8 bits/char, worse than guessing among 83 characters "
        "at 6.4): try a lower learning rate"
    )
    assert divergence(None, 176.2, 83) is not None  # no validation: the loss, in nats
    assert "(loss not a finite number," in str(divergence(None, float("nan"), 83))
    corpus = load_corpus(small_corpus_file)
    small = replace(CFG, seq_length=16, batch_size=4, steps=10, eval_every=0, checkpoint_every=0)
    wild = train(corpus, ModelConfig(embedding_dim=16, hidden_size=32),
                 replace(small, learning_rate=1.0, grad_clip=None))  # fmt: skip
    assert wild.diverged is not None and wild.diverged.startswith("the run diverged (validation")
    assert train(corpus, MODEL, small).diverged is None
    # Stopped before its first step, a run has no figure to judge (its loss is NaN).
    control = TrainControl()
    control.stop()
    assert train(corpus, MODEL, small, control=control).diverged is None


def test_a_resume_with_no_steps_left_says_where_it_is_and_where_its_recipe_ends(
    small_corpus_file: Path, tmp_path: Path
) -> None:
    """The refusal said "N steps were asked for" where the command line asked for none (the
    recipe's, all done): it says where the checkpoint is and where its recipe ends, and the CLI
    reads which of them the user typed from NothingLeftToTrain."""
    from core.train import NothingLeftToTrain, check_steps_left

    check_steps_left(5, replace(CFG, steps=6))
    check_steps_left(5, replace(CFG, steps=1, minutes=1.0))  # a time budget has time left
    with pytest.raises(NothingLeftToTrain) as refused:
        check_steps_left(1, replace(CFG, steps=1))
    assert (refused.value.done, refused.value.asked) == (1, 1)
    assert str(refused.value) == (
        "the checkpoint is already at step 1, and its recipe ends at step 1: ask for more than "
        "1 step in all to train it on"
    )
    first = train(load_corpus(small_corpus_file), MODEL, replace(CFG, steps=2, eval_every=0),
                  checkpoint_path=tmp_path / "m.pt")  # fmt: skip
    assert first.checkpoint is not None
    with pytest.raises(NothingLeftToTrain):
        train(load_corpus(small_corpus_file), MODEL, replace(CFG, steps=2),
              resume=load_checkpoint(first.checkpoint))  # fmt: skip
