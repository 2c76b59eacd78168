"""The training loop: cross-entropy, Adam(W), optional warm-up + cosine schedule, clipping,
periodic validation in bits per character, atomic checkpoints, and cooperative pause / resume /
stop from another thread. Progress goes to a plain callback as `TrainEvent`s."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from core.batches import SequentialBatches, get_batch
from core.checkpoint import Checkpoint, CheckpointError, check_destination, save_checkpoint
from core.corpus import TUNE_SEPARATOR, Corpus, Vocabulary
from core.model import CharLSTM, State, pick_device
from core.presets import ModelConfig, TrainConfig
from core.threads import ThreadPolicy

LN2 = math.log(2.0)


class TrainError(ValueError):
    """Training cannot start as asked; the message says why."""


@dataclass(frozen=True)
class TrainEvent:
    kind: str  # "step", "eval", "checkpoint", "paused", "resumed", "warning", "done"
    step: int
    total_steps: int | None  # None when a wall-clock budget decides the end
    loss: float
    smooth_loss: float
    lr: float
    chars_per_sec: float
    elapsed_s: float
    eta_s: float | None
    val_bpc: float | None = None
    best_val_bpc: float | None = None
    checkpoint: str | None = None
    message: str = ""
    threads: int = 0  # CPU threads torch trains with at this point


@dataclass(frozen=True)
class TrainResult:
    step: int
    stopped: bool  # ended by stop() rather than by reaching its steps / minutes
    loss: float
    val_bpc: float | None
    best_val_bpc: float | None
    elapsed_s: float
    chars_per_sec: float
    checkpoint: Path | None
    best_checkpoint: Path | None
    checkpoint_step: int | None = None  # the step `checkpoint` holds (the last save that worked)


class TrainControl:
    """Thread-safe pause / resume / stop flags, checked by the loop between steps."""

    def __init__(self) -> None:
        self._running = threading.Event()
        self._running.set()
        self._stop = threading.Event()
        self.hurry = False  # stopping because the process is ending: save, skip the last eval

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self, hurry: bool = False) -> None:
        """Stop between steps; the loop saves a checkpoint on its way out. `hurry` (the app's
        terminal has gone, and the process ends within seconds) skips the final evaluation."""
        self.hurry = self.hurry or hurry
        self._stop.set()
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def wait_while_paused(self) -> None:
        self._running.wait()


def best_path_for(path: Path) -> Path:
    return path.with_name(f"{path.stem}.best{path.suffix}")


def check_training_destination(path: Path, *, replace_any: bool = False) -> None:
    """Before a run, so that one that cannot save is refused rather than found out at its end:
    `path` and the best-so-far file beside it can be written (CheckpointError says why not).
    `replace_any` (the user's --force) covers `path` only; the user did not name the other."""
    check_destination(path, replace_any=replace_any)
    check_destination(best_path_for(path))


def learning_rate(cfg: TrainConfig, step: int, progress: float) -> float:
    """Warm-up by steps, then constant or cosine decay over `progress` in [0, 1]."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.learning_rate * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "cosine":
        p = min(max(progress, 0.0), 1.0)
        ratio = cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * p))
        return cfg.learning_rate * ratio
    return cfg.learning_rate


@torch.no_grad()
def evaluate_bpc(
    model: CharLSTM,
    ids: np.ndarray,
    device: torch.device | str = "cpu",
    streams: int = 16,
    chunk: int = 256,
) -> float:
    """Bits per character of `ids` (each predicted from all before it in its stream): the text is
    cut into `streams` contiguous stretches read in parallel, state carried across chunks."""
    if len(ids) < 2:
        raise ValueError("need at least two characters to evaluate")
    was_training = model.training
    model.eval()
    streams = max(1, min(streams, (len(ids) - 1) // 2))
    per = (len(ids) - 1) // streams
    data = torch.as_tensor(ids[: per * streams + 1], dtype=torch.long)
    x = data[:-1].view(streams, per).to(device)
    y = data[1:].view(streams, per).to(device)
    state: State | None = None
    total = 0.0
    for start in range(0, per, chunk):
        logits, state = model(x[:, start : start + chunk], state)
        total += F.cross_entropy(
            logits.reshape(-1, logits.size(-1)),
            y[:, start : start + chunk].reshape(-1),
            reduction="sum",
        ).item()
    model.train(was_training)
    return total / (per * streams) / LN2


def carry_vocabulary(
    state: dict[str, torch.Tensor], old: Vocabulary, new: Vocabulary, fresh: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """A checkpoint's weights for the same model on another vocabulary: the rows of characters
    both vocabularies have keep what they learnt; new characters start from `fresh` (a newly
    initialised model's weights); characters the new corpus lacks are dropped."""
    old_index = old.char2idx
    pairs = [(i, old_index[c]) for i, c in enumerate(new.chars) if c in old_index]
    dst = torch.tensor([i for i, _ in pairs], dtype=torch.long)
    src = torch.tensor([j for _, j in pairs], dtype=torch.long)
    out = dict(state)
    for name in ("embedding.weight", "head.weight", "head.bias"):
        rows = fresh[name].detach().clone()
        rows[dst] = state[name][src].to(rows.dtype)
        out[name] = rows
    return out


def train(
    corpus: Corpus,
    model_config: ModelConfig,
    cfg: TrainConfig,
    *,
    checkpoint_path: str | Path | None = None,
    resume: Checkpoint | None = None,
    on_event: Callable[[TrainEvent], None] | None = None,
    control: TrainControl | None = None,
    allow_new_vocab: bool = False,
) -> TrainResult:
    """Train (or resume) a model on `corpus`; returns when done, stopped, or out of time.
    Resuming on a corpus with other characters is refused unless `allow_new_vocab`. The recipe
    is validated first (ConfigError); a loss or weights that stop being finite numbers end the
    run with a TrainError, and that state is never saved. The calling thread's torch thread
    count is chosen by `ThreadPolicy` and restored afterwards.

    A checkpoint that cannot be written mid-run is a warning (the state is still in memory);
    drivers check the destination before starting with `check_training_destination`."""
    before = torch.get_num_threads()
    try:
        return _train(
            corpus, model_config, cfg, checkpoint_path=checkpoint_path, resume=resume,
            on_event=on_event, control=control, allow_new_vocab=allow_new_vocab,
        )  # fmt: skip
    finally:
        torch.set_num_threads(before)


def import_optimizer_modules() -> None:
    """Take an optimizer step on a one-number model: torch imports its compiler stack
    (torch._dynamo, sympy: ~800 modules, ~0.8 s here) at an optimizer's first step. Training
    calls this before its clock starts, so that the speed it reports is training's; the app
    calls it while it loads torch, so that its first training run does not wait for the imports
    and their objects are there when the app settles its long-lived ones (folkgen_tui/memory).
    """
    weight = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.AdamW([weight])
    weight.sum().backward()
    optimizer.step()


def _train(
    corpus: Corpus,
    model_config: ModelConfig,
    cfg: TrainConfig,
    *,
    checkpoint_path: str | Path | None,
    resume: Checkpoint | None,
    on_event: Callable[[TrainEvent], None] | None,
    control: TrainControl | None,
    allow_new_vocab: bool,
) -> TrainResult:
    cfg.validate()
    threads = ThreadPolicy(cfg.threads)  # measures other processes from now until the loop
    control = control or TrainControl()
    emit = on_event or (lambda e: None)
    device = pick_device(cfg.device)
    vocab = corpus.vocab
    new_vocab = False
    if resume is not None:
        if cfg.minutes is None and cfg.steps <= resume.step:
            raise TrainError(
                f"the checkpoint is already at step {resume.step}, and {cfg.steps} steps were "
                f"asked for: ask for more than {resume.step} steps to continue it"
            )
        model_config = resume.model_config
        unknown = resume.vocab.unknown(corpus.text)
        if not unknown:  # the model knows every character (a subset corpus): keep its vocabulary
            vocab = resume.vocab
        elif allow_new_vocab:
            new_vocab = True
        else:
            shown = "".join(sorted(unknown))
            raise TrainError(
                "the checkpoint was trained on a different vocabulary than this corpus "
                f"(new characters: {shown!r}); train a new model, or carry this one over to the "
                "corpus's characters (folkgen train --new-vocab)"
            )
    split = corpus.split(vocab=vocab)
    model_config = replace(model_config, vocab_size=len(vocab))
    model_config.validate()  # before a model of that size is built
    train_ids = split.train_ids
    if cfg.transpose:  # more keys, same music: the validation tunes stay as they are
        from core.transpose import augment

        shifts = [s for s in range(-cfg.transpose, cfg.transpose + 1) if s]
        extra = augment(split.train_tunes, shifts, set(vocab.chars))
        train_ids = vocab.encode(TUNE_SEPARATOR.join(split.train_tunes + extra))
    if len(train_ids) <= cfg.seq_length + 1:
        raise TrainError(
            f"the corpus is too small ({len(train_ids)} training characters) "
            f"for sequences of {cfg.seq_length}"
        )

    torch.manual_seed(cfg.seed)
    model = CharLSTM(model_config).to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
    )
    step = 0
    best_val: float | None = None
    elapsed_before = 0.0
    if resume is not None:
        if new_vocab:  # the optimizer's moments have the old shapes: they start afresh
            model.load_state_dict(
                carry_vocabulary(resume.model_state, resume.vocab, vocab, model.state_dict())
            )
        else:
            model.load_state_dict(resume.model_state)
            if resume.optimizer_state:
                optimizer.load_state_dict(resume.optimizer_state)
        step = resume.step
        best_val = resume.metrics.get("best_val_bpc")
        elapsed_before = resume.metrics.get("elapsed_s") or 0.0
    model.train()

    path = Path(checkpoint_path) if checkpoint_path else None
    best_path = best_path_for(path) if path else None
    rng = np.random.default_rng([cfg.seed, step])
    sequential = (
        SequentialBatches(train_ids, cfg.seq_length, cfg.batch_size, offset=step)
        if cfg.batching == "sequential"
        else None
    )
    state: State | None = None
    budget = cfg.minutes * 60 if cfg.minutes is not None else None
    total_steps = None if budget else cfg.steps
    chars_per_step = cfg.seq_length * cfg.batch_size
    start_step = step
    import_optimizer_modules()
    t0 = time.perf_counter()
    paused_for = 0.0
    loss_value = smooth = float("nan")
    smooth_acc, smooth_w = 0.0, 0.0
    val_bpc: float | None = None
    last_ckpt: Path | None = None
    corpus_info = corpus.identity()

    def snapshot(kind: str, **extra: object) -> TrainEvent:
        elapsed = time.perf_counter() - t0 - paused_for
        done_steps = step - start_step
        cps = done_steps * chars_per_step / elapsed if elapsed > 0 else 0.0
        if budget:
            eta: float | None = max(0.0, budget - elapsed)
        elif done_steps:
            eta = (cfg.steps - step) * elapsed / done_steps
        else:
            eta = None
        return TrainEvent(
            kind=kind,
            step=step,
            total_steps=total_steps,
            loss=loss_value,
            smooth_loss=smooth,
            lr=optimizer.param_groups[0]["lr"],
            chars_per_sec=cps,
            elapsed_s=elapsed,
            eta_s=eta,
            val_bpc=val_bpc,
            best_val_bpc=best_val,
            threads=threads.threads,
            **extra,  # type: ignore[arg-type]
        )

    def require_finite(what: str, value: float) -> None:
        """A loss or weights that are not finite numbers cannot recover: stop before saving."""
        if math.isfinite(value) and all(bool(torch.isfinite(p).all()) for p in model.parameters()):
            return
        kept = f"; the checkpoint of step {saved_at[0]} is kept" if last_ckpt else ""
        raise TrainError(
            f"training diverged at step {step} (the {what} or the weights are no longer finite "
            f"numbers), so that state was not saved{kept}. Lower the learning rate"
        )

    def save(target: Path) -> None:
        nonlocal last_ckpt
        require_finite("loss", loss_value)
        ckpt = Checkpoint(
            model_config=model_config,
            train_config=cfg,
            vocab=vocab,
            model_state={k: v.detach().cpu() for k, v in model.state_dict().items()},
            optimizer_state=optimizer.state_dict(),
            step=step,
            metrics={
                "loss": loss_value,
                "val_bpc": val_bpc,
                "best_val_bpc": best_val,
                "elapsed_s": elapsed_before + time.perf_counter() - t0 - paused_for,
            },
            corpus=corpus_info,
        )
        try:
            save_checkpoint(ckpt, target)
        except CheckpointError as e:  # keep training: the state is still in memory
            emit(snapshot("warning", message=str(e)))
            return
        if target == path:
            last_ckpt = target
            saved_at[0] = step
        emit(snapshot("checkpoint", checkpoint=str(target)))

    def evaluate() -> None:
        nonlocal val_bpc, best_val
        val_bpc = evaluate_bpc(model, split.val_ids, device)
        require_finite("validation loss", val_bpc)
        improved = best_val is None or val_bpc < best_val
        if improved:
            best_val = val_bpc
        emit(snapshot("eval"))
        if improved and best_path is not None:
            save(best_path)

    saved_at = [-1]  # step of the last regular checkpoint, so the final save is not repeated
    stopped = False
    threads.apply()
    while True:
        threads.maybe_update()
        elapsed = time.perf_counter() - t0 - paused_for
        if budget is not None and elapsed >= budget:
            break
        if budget is None and step >= cfg.steps:
            break
        if control.paused:
            emit(snapshot("paused"))
            pause_start = time.perf_counter()
            control.wait_while_paused()
            paused_for += time.perf_counter() - pause_start
            if not control.stopped:
                emit(snapshot("resumed"))
        if control.stopped:
            stopped = True
            break

        progress = elapsed / budget if budget else step / max(cfg.steps, 1)
        lr = learning_rate(cfg, step, progress)
        for group in optimizer.param_groups:
            group["lr"] = lr
        if sequential is not None:
            xb, yb, reset = sequential.next()
            if reset:
                state = None
        else:
            xb, yb = get_batch(train_ids, cfg.seq_length, cfg.batch_size, rng)
        x = torch.from_numpy(xb).to(device)
        y = torch.from_numpy(yb).to(device)
        logits, new_state = model(x, state)
        if sequential is not None:
            state = (new_state[0].detach(), new_state[1].detach())
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            require_finite("loss", loss_value)
        optimizer.step()
        step += 1
        smooth_acc = 0.95 * smooth_acc + 0.05 * loss_value
        smooth_w = 0.95 * smooth_w + 0.05
        smooth = smooth_acc / smooth_w
        emit(snapshot("step"))
        if cfg.eval_every and step % cfg.eval_every == 0:
            evaluate()
        if path is not None and cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
            save(path)

    evaluated = val_bpc is not None and cfg.eval_every and not step % cfg.eval_every
    if step > start_step and not evaluated and not control.hurry:
        evaluate()
    if path is not None and step > start_step and saved_at[0] != step:
        save(path)
    final = snapshot("done")
    emit(final)
    return TrainResult(
        step=step,
        stopped=stopped,
        loss=loss_value,
        val_bpc=val_bpc,
        best_val_bpc=best_val,
        elapsed_s=final.elapsed_s,
        chars_per_sec=final.chars_per_sec,
        checkpoint=last_ckpt,
        best_checkpoint=best_path if best_path and best_path.exists() else None,
        checkpoint_step=saved_at[0] if last_ckpt else None,
    )
