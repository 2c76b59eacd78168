"""The training loop: cross-entropy, Adam(W), optional warm-up + cosine schedule, clipping,
periodic validation in bits per character, atomic checkpoints, and cooperative pause / resume /
stop from another thread. Progress goes to a plain callback as `TrainEvent`s."""

from __future__ import annotations

import contextlib
import gc
import math
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from core import distributed
from core.batches import get_batch, random_starts
from core.checkpoint import (
    Checkpoint,
    CheckpointError,
    check_destination,
    is_checkpoint_file,
    one_writer,
    save_checkpoint,
)
from core.corpus import TUNE_SEPARATOR, Corpus, Vocabulary
from core.distributed import Ranks
from core.model import CharLSTM, State, pick_device
from core.paths import best_path_for
from core.presets import ModelConfig, TrainConfig
from core.threads import ThreadPolicy, all_cores
from core.train_events import NothingLeftToTrain as NothingLeftToTrain
from core.train_events import TrainControl as TrainControl  # their home before core.engine
from core.train_events import TrainError as TrainError
from core.train_events import TrainEvent as TrainEvent
from core.train_events import TrainResult as TrainResult
from core.train_events import divergence

LN2 = math.log(2.0)
# On a GPU, steps between reads of the loss and, under torchrun, between the ranks' agreements
# on stopping and the clock: each read waits for the GPU to finish its queued work.
GPU_SYNC_EVERY = 16
# Validation reads at most this many characters (the first validation tunes): all of the default
# corpus's ~20,000, and a few seconds of a large corpus's, not minutes at every evaluation.
MAX_EVAL_CHARS = 1_000_000
# Transposed copies of at most this many characters in all. A small corpus gains keys from them;
# a large one has its keys already, and copying 100 MB twice takes minutes of pure Python and
# triples the text held in memory.
MAX_TRANSPOSED_CHARS = 20_000_000


def transposable(tunes: list[str], shifts: int, seed: int) -> list[str]:
    """The training tunes to transpose: all of them when their copies stay within
    MAX_TRANSPOSED_CHARS, else a seeded sample of them that does."""
    budget = MAX_TRANSPOSED_CHARS // max(shifts, 1)
    if sum(map(len, tunes)) <= budget:
        return tunes
    order = np.random.default_rng(seed).permutation(len(tunes))
    sizes = np.cumsum([len(tunes[i]) for i in order])
    return [tunes[i] for i in sorted(order[: int(np.searchsorted(sizes, budget, "right"))])]


def check_training_destination(
    path: Path, *, replace_any: bool = False, resumed: Path | None = None
) -> None:
    """Before a run, so that one that cannot save is refused rather than found out at its end:
    `path` and the best-so-far file beside it can be written (CheckpointError says why not).
    `replace_any` (the user's --force) covers `path` only; the user did not name the other, if
    it is not a checkpoint. A trained model in either is kept, but for the `resumed` run's own
    or with `replace_any`: a new run into it replaced a model and its best without a word."""
    check_destination(path, replace_any=replace_any)
    best = best_path_for(path)
    if best.exists() and not best.is_dir() and not is_checkpoint_file(best):
        raise CheckpointError(  # (check_destination's message offers --force, not for this one)
            f"{best} exists and is not a folkgen checkpoint: the run keeps its best model there; "
            "move or rename that file, or choose another --out"
        )
    check_destination(best)
    own = resumed is not None and resumed.expanduser().resolve() == path.expanduser().resolve()
    for kept in () if replace_any or own else (path, best):
        if kept.is_file() and is_checkpoint_file(kept):
            raise CheckpointError(
                f"{kept} holds a trained model already: --resume {path} trains it on; or "
                "choose another --out (--force replaces it)"
            )


def check_steps_left(done: int, cfg: TrainConfig) -> None:
    """A checkpoint of `done` steps resumed with `cfg` has training left: a time budget, or
    steps past `done` (NothingLeftToTrain where not: said before a model is built)."""
    if cfg.minutes is None and cfg.steps <= done:
        raise NothingLeftToTrain(done, cfg.steps)


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
    ranks: Ranks | None = None,
) -> TrainResult:
    """Train (or resume) a model on `corpus`; returns when done, stopped, or out of time.
    Resuming on a corpus with other characters is refused unless `allow_new_vocab`. The recipe
    is validated first (ConfigError); a loss or weights that stop being finite numbers end the
    run with a TrainError, and that state is never saved. The calling thread's torch thread
    count is chosen by `ThreadPolicy` and restored afterwards.

    A checkpoint that cannot be written mid-run is a warning (the state is still in memory);
    drivers check the destination before starting with `check_training_destination`. A run
    saving to the file of another under way is refused at its start (`one_writer`).

    Under torchrun (`ranks` from core.distributed.from_env) every rank calls this: the model is
    wrapped in DistributedDataParallel, rank 0 alone evaluates, reports and saves."""
    before = torch.get_num_threads()
    ranks = ranks or Ranks()
    started = False
    trainer: Trainer | None = None
    held: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
    if checkpoint_path is not None and ranks.master:  # rank 0 alone saves
        held = one_writer(checkpoint_path)  # refused here if another run is saving there
    try:
        with held:
            trainer = Trainer(
                corpus, model_config, cfg, checkpoint_path=checkpoint_path, resume=resume,
                on_event=on_event, control=control, allow_new_vocab=allow_new_vocab,
                ranks=ranks,
            )  # fmt: skip
            started = distributed.start(ranks, trainer.device)
            return trainer.run()
    finally:
        if started:
            if trainer is not None:
                trainer.drop_ddp()
            distributed.stop()
        torch.set_num_threads(before)


def import_optimizer_modules() -> None:
    """Take an optimizer step on a one-number model: torch imports its compiler stack
    (torch._dynamo, sympy: ~800 modules, ~0.8 s here) at an optimizer's first step. Training
    calls this before its clock starts, so that the speed it reports is training's; the app
    calls it while it loads torch, so that its first training run does not wait for the imports
    and their objects are there when the app settles its long-lived ones (folkgen_tui/process).
    """
    weight = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.AdamW([weight])
    torch.autograd.backward(weight.sum())  # Tensor.backward, typed
    optimizer.step()


def _on_cpu(value: Any) -> Any:
    """Tensors in nested dicts and lists moved to host memory: a checkpoint written on a GPU
    loads anywhere (the optimizer's moments live where the weights trained)."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: _on_cpu(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_on_cpu(v) for v in value]
    return value


class Trainer:
    """One training run, in the same loop for a process on a CPU, on a GPU and for each rank of
    a torchrun: `run` repeats `step`, with `evaluate` and `save` every so many steps."""

    def __init__(
        self,
        corpus: Corpus,
        model_config: ModelConfig,
        cfg: TrainConfig,
        *,
        checkpoint_path: str | Path | None = None,
        resume: Checkpoint | None = None,
        on_event: Callable[[TrainEvent], None] | None = None,
        control: TrainControl | None = None,
        allow_new_vocab: bool = False,
        ranks: Ranks | None = None,
    ) -> None:
        cfg.validate()
        self.ranks = ranks = ranks or Ranks()
        # Ranks on one machine share its cores: a fixed share each, never a core between two.
        cores = all_cores()
        requested = cfg.threads or (
            distributed.threads_per_rank(cores, ranks) if ranks.enabled else 0
        )
        # More threads than cores wait for each other at every operation (99 on 2 cores: each
        # step ~30x as long); a recipe may come from a larger machine (a resumed checkpoint).
        too_many = requested > cores
        capped = f"threads: {requested} asked for, {cores} used (the cores this run may use)"
        self.threads = ThreadPolicy(min(requested, cores))  # watches others from now on
        self.control = control or TrainControl()
        self.on_event = on_event if ranks.master else None
        self.cfg = cfg
        self.device = pick_device(distributed.device_for(cfg.device, ranks))
        self.on_gpu = self.device.type != "cpu"
        vocab = corpus.vocab
        new_vocab = False
        if resume is not None:
            check_steps_left(resume.step, cfg)
            model_config = resume.model_config
            unknown = resume.vocab.unknown(corpus.text)
            if not unknown:  # the model knows every character (a subset corpus): keep its vocab
                vocab = resume.vocab
            elif allow_new_vocab:
                new_vocab = True
            else:
                shown = "".join(sorted(unknown))
                raise TrainError(
                    "the checkpoint was trained on a different vocabulary than this corpus "
                    f"(new characters: {shown!r}); train a new model, or carry this one over to "
                    "the corpus's characters (folkgen train --new-vocab)"
                )
        self.vocab = vocab
        self.split = split = corpus.split(vocab=vocab, compact=True)
        self.model_config = model_config = replace(model_config, vocab_size=len(vocab))
        model_config.validate()  # before a model of that size is built
        train_ids = split.train_ids
        self.notes: list[str] = []  # said once training starts (the CLI prints, the app shows)
        if too_many:
            self.notes.append(capped)
        if cfg.transpose:  # more keys, same music: the validation tunes stay as they are
            from core.transpose import augment

            shifts = [s for s in range(-cfg.transpose, cfg.transpose + 1) if s]
            tunes = transposable(split.train_tunes, len(shifts), cfg.seed)
            if len(tunes) < len(split.train_tunes):
                self.notes.append(
                    f"transposition ±{cfg.transpose} on {len(tunes):,} of the "
                    f"{len(split.train_tunes):,} training tunes (a large corpus has its keys)"
                )
            extra = augment(tunes, shifts, set(vocab.chars))
            train_ids = vocab.encode_compact(TUNE_SEPARATOR.join(split.train_tunes + extra))
        if len(train_ids) <= cfg.seq_length + 1:
            raise TrainError(
                f"the corpus is too small ({len(train_ids)} training characters) "
                f"for sequences of {cfg.seq_length}"
            )

        torch.manual_seed(cfg.seed)
        self.model = model = CharLSTM(model_config).to(self.device)
        self.optimizer = torch.optim.AdamW(
            model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
        )
        self.step_count = 0
        self.best_val: float | None = None
        self.elapsed_before = 0.0
        if resume is not None:
            if new_vocab:  # the optimizer's moments have the old shapes: they start afresh
                model.load_state_dict(
                    carry_vocabulary(resume.model_state, resume.vocab, vocab, model.state_dict())
                )
            else:
                model.load_state_dict(resume.model_state)
                if resume.optimizer_state:
                    self.optimizer.load_state_dict(resume.optimizer_state)
            self.step_count = resume.step
            # The best so far is only to beat on the same corpus's held-out tunes: on another,
            # the best checkpoint was picked across two validation sets.
            same = corpus.is_described_by(resume.corpus)
            self.best_val = resume.metrics.get("best_val_bpc") if same else None
            self.elapsed_before = resume.metrics.get("elapsed_s") or 0.0
        model.train()
        self.net: torch.nn.Module = model
        if ranks.enabled:
            # Same first weights everywhere (DDP also copies rank 0's), then each rank its own
            # dropout masks and windows: no two ranks train on the same batch.
            torch.manual_seed(cfg.seed + ranks.rank)
        self.path = Path(checkpoint_path) if checkpoint_path else None
        self.best_path = best_path_for(self.path) if self.path else None
        self.corpus_info = corpus.identity()
        self._batches_for(train_ids)
        self._precision()
        # The run's own state, set afresh by `run`.
        self.budget: float | None = cfg.minutes * 60 if cfg.minutes is not None else None
        self.total_steps: int | None = None if self.budget else cfg.steps
        self.chars_per_step = cfg.seq_length * cfg.batch_size * ranks.world_size  # all ranks
        self.start_step = self.step_count
        self.loss_value = self.smooth = float("nan")
        self.smooth_acc, self.smooth_w = 0.0, 0.0
        self.loss_sum: torch.Tensor | None = None  # GPU: the losses since the last read
        self.loss_count = 0
        self.val_bpc: float | None = None
        self.last_ckpt: Path | None = None
        self.saved_at = -1  # step of the last regular checkpoint: the final save is not repeated
        self.stop_agreed = False
        self.t0 = time.perf_counter()
        self.paused_for = 0.0
        self.clock = 0.0  # under torchrun: rank 0's elapsed seconds at the last agreement

    # --- set-up ---------------------------------------------------------------------------------

    def _batches_for(self, train_ids: np.ndarray) -> None:
        cfg, ranks = self.cfg, self.ranks
        seed = [cfg.seed, self.step_count]
        if ranks.enabled:
            seed += [ranks.rank, ranks.world_size]
        self.rng = np.random.default_rng(seed)
        self.train_ids = train_ids
        self.data: torch.Tensor | None = None
        if self.on_gpu:  # the text goes to the GPU once
            self.data = torch.from_numpy(train_ids).to(self.device)
            self.window = torch.arange(cfg.seq_length, device=self.device)

    def _precision(self) -> None:
        """bf16 autocast on GPUs that have it, else fp16 with a grad scaler; fp32 elsewhere."""
        self.amp_dtype: torch.dtype | None = None
        self.scaler: torch.amp.GradScaler | None = None
        if self.device.type == "cuda":
            if torch.cuda.is_bf16_supported():
                self.amp_dtype = torch.bfloat16
            else:
                self.amp_dtype = torch.float16
                self.scaler = torch.amp.GradScaler("cuda")

    def _autocast(self) -> contextlib.AbstractContextManager[object]:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    # --- reporting ------------------------------------------------------------------------------

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0 - self.paused_for

    def snapshot(self, kind: str, **extra: object) -> TrainEvent:
        elapsed = self.elapsed()
        done_steps = self.step_count - self.start_step
        cps = done_steps * self.chars_per_step / elapsed if elapsed > 0 else 0.0
        if self.budget:
            eta: float | None = max(0.0, self.budget - elapsed)
        elif done_steps:
            eta = (self.cfg.steps - self.step_count) * elapsed / done_steps
        else:
            eta = None
        return TrainEvent(
            kind=kind,
            step=self.step_count,
            total_steps=self.total_steps,
            loss=self.loss_value,
            smooth_loss=self.smooth,
            lr=self.optimizer.param_groups[0]["lr"],
            chars_per_sec=cps,
            elapsed_s=elapsed,
            eta_s=eta,
            val_bpc=self.val_bpc,
            best_val_bpc=self.best_val,
            threads=self.threads.threads,
            **extra,  # type: ignore[arg-type]
        )

    def emit(self, kind: str, **extra: object) -> None:
        if self.on_event is not None:
            self.on_event(self.snapshot(kind, **extra))

    def require_finite(self, what: str, value: float) -> None:
        """A loss or weights that are not finite numbers cannot recover: stop before saving."""
        model = self.model
        if math.isfinite(value) and all(bool(torch.isfinite(p).all()) for p in model.parameters()):
            return
        kept = f"; the checkpoint of step {self.saved_at} is kept" if self.last_ckpt else ""
        raise TrainError(
            f"training diverged at step {self.step_count} (the {what} or the weights are no "
            f"longer finite numbers), so that state was not saved{kept}. Lower the learning rate"
        )

    # --- evaluation and checkpoints (rank 0) ----------------------------------------------------

    def current_loss(self) -> float:
        """The loss to check and save: the last one read, or on a GPU the mean of the steps since
        (this rank's, read without the others: rank 0 alone saves)."""
        if self.loss_sum is not None:
            return float((self.loss_sum / self.loss_count).item())
        return self.loss_value

    def save(self, target: Path) -> None:
        loss = self.current_loss()
        self.require_finite("loss", loss)
        ckpt = Checkpoint(
            model_config=self.model_config,
            train_config=self.cfg,
            vocab=self.vocab,
            model_state={k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            optimizer_state=_on_cpu(self.optimizer.state_dict()) if self.on_gpu
            else self.optimizer.state_dict(),
            step=self.step_count,
            metrics={
                "loss": loss,
                "val_bpc": self.val_bpc,
                "best_val_bpc": self.best_val,
                "elapsed_s": self.elapsed_before + self.elapsed(),
            },
            corpus=self.corpus_info,
        )  # fmt: skip
        try:
            save_checkpoint(ckpt, target)
        except CheckpointError as e:  # keep training: the state is still in memory
            self.emit("warning", message=str(e))
            return
        if target == self.path:
            self.last_ckpt = target
            self.saved_at = self.step_count
        self.emit("checkpoint", checkpoint=str(target))

    def evaluate(self) -> None:
        val_ids = self.split.val_ids[:MAX_EVAL_CHARS]
        self.val_bpc = val_bpc = evaluate_bpc(self.model, val_ids, self.device)
        self.require_finite("validation loss", val_bpc)
        improved = self.best_val is None or val_bpc < self.best_val
        if improved:
            self.best_val = val_bpc
        self.emit("eval")
        if improved and self.best_path is not None:
            self.save(self.best_path)

    # --- one step -------------------------------------------------------------------------------

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.cfg
        if self.data is not None:  # windows cut on the GPU: only their starts travel
            starts = torch.from_numpy(
                random_starts(len(self.train_ids), cfg.seq_length, cfg.batch_size, self.rng)
            )
            if self.device.type == "cuda":
                starts = starts.pin_memory()
            idx = starts.to(self.device, non_blocking=True)[:, None] + self.window
            return self.data[idx].long(), self.data[idx + 1].long()
        else:
            xb, yb = get_batch(self.train_ids, cfg.seq_length, cfg.batch_size, self.rng)
        x = torch.from_numpy(xb).to(self.device, torch.long, non_blocking=self.on_gpu)
        y = torch.from_numpy(yb).to(self.device, torch.long, non_blocking=self.on_gpu)
        return x, y

    def step(self, progress: float) -> None:
        """One optimizer step at the schedule's learning rate for `progress` (0..1)."""
        cfg, optimizer = self.cfg, self.optimizer
        lr = learning_rate(cfg, self.step_count, progress)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = self.next_batch()
        with self._autocast():
            logits, _ = self.net(x)
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), y.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            torch.autograd.backward(self.scaler.scale(loss))  # Tensor.backward, typed
            self.scaler.unscale_(optimizer)  # clip the true gradients
        else:
            torch.autograd.backward(loss)
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.read_loss(loss)
        if self.scaler is not None:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()
        self.step_count += 1

    def read_loss(self, loss: torch.Tensor) -> None:
        """The loss as a number: every step on a CPU (reading it costs nothing there), every
        GPU_SYNC_EVERY steps on a GPU (their mean). Under torchrun, the mean over the ranks."""
        if not self.on_gpu:
            value = distributed.mean_loss(loss) if self.ranks.enabled else loss
            self.loss_value = value.item()
            self._smooth_with(self.loss_value)
        else:
            detached = loss.detach().float()
            self.loss_sum = detached if self.loss_sum is None else self.loss_sum + detached
            self.loss_count += 1
            if (self.step_count + 1 - self.start_step) % GPU_SYNC_EVERY:
                return
            total = self.loss_sum / self.loss_count
            self.loss_sum, self.loss_count = None, 0
            value = distributed.mean_loss(total) if self.ranks.enabled else total
            self.loss_value = value.item()
            self._smooth_with(self.loss_value)
        if not math.isfinite(self.loss_value):
            self.require_finite("loss", self.loss_value)

    def _smooth_with(self, value: float) -> None:
        self.smooth_acc = 0.95 * self.smooth_acc + 0.05 * value
        self.smooth_w = 0.95 * self.smooth_w + 0.05
        self.smooth = self.smooth_acc / self.smooth_w

    # --- the loop -------------------------------------------------------------------------------

    def _agree(self) -> None:
        """Under torchrun, the ranks agree on stopping and on rank 0's clock at the same steps
        (every step on CPUs, every GPU_SYNC_EVERY on GPUs); a stop asked on one rank stops all."""
        every = GPU_SYNC_EVERY if self.on_gpu else 1
        if (self.step_count - self.start_step) % every:
            return
        control = self.control
        stop, hurry, clock = distributed.agree(
            control.stopped, control.hurry, self.elapsed(), self.device
        )
        self.clock = clock
        self.stop_agreed = stop
        if stop and not control.stopped:
            control.stop(hurry=hurry)
        elif hurry and not control.hurry:
            control.stop(hurry=True)

    def drop_ddp(self) -> None:
        """Let go of the DistributedDataParallel wrapper while the process group lives. Its
        reducer holds the group; freed last from there, the group is destroyed with the GIL
        held and waits for gloo's thread, which waits for the GIL (a rank hung at its end)."""
        self.net = self.model
        gc.collect()  # the wrapper may sit in a reference cycle

    def run(self) -> TrainResult:
        cfg, control, ranks = self.cfg, self.control, self.ranks
        if ranks.enabled:
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
            distributed.report_for_tests(ranks, pid=os.getpid())
        budget = self.budget
        import_optimizer_modules()
        self.t0 = time.perf_counter()
        self.paused_for = 0.0
        self.clock = 0.0
        stopped = False
        self.threads.apply()
        for note in self.notes:
            self.emit("warning", message=note)
        while True:
            self.threads.maybe_update()
            if ranks.enabled:
                self._agree()
            elapsed = self.clock if ranks.enabled else self.elapsed()
            if budget is not None and elapsed >= budget:
                break
            if budget is None and self.step_count >= cfg.steps:
                break
            if control.paused:
                self.emit("paused")
                pause_start = time.perf_counter()
                control.wait_while_paused()
                self.paused_for += time.perf_counter() - pause_start
                if not control.stopped:
                    self.emit("resumed")
            if self.stop_agreed if ranks.enabled else control.stopped:
                stopped = True
                break
            self.step(elapsed / budget if budget else self.step_count / max(cfg.steps, 1))
            self.emit("step")
            step = self.step_count
            if ranks.master and cfg.eval_every and step % cfg.eval_every == 0:
                self.evaluate()
            every = cfg.checkpoint_every
            if self.path is not None and ranks.master and every and step % every == 0:
                self.save(self.path)
        return self.finish(stopped)

    def finish(self, stopped: bool) -> TrainResult:
        cfg, step = self.cfg, self.step_count
        if self.loss_sum is not None:  # a GPU run's last steps since the loss was read
            mean = self.loss_sum / self.loss_count  # every rank has the same count here
            self.loss_value = (distributed.mean_loss(mean) if self.ranks.enabled else mean).item()
            self._smooth_with(self.loss_value)
            self.loss_sum = None
        if self.ranks.master:
            evaluated = self.val_bpc is not None and cfg.eval_every and not step % cfg.eval_every
            if step > self.start_step and not evaluated and not self.control.hurry:
                self.evaluate()
            if self.path is not None and step > self.start_step and self.saved_at != step:
                self.save(self.path)
        if self.ranks.enabled:
            if distributed.reporting():
                state = self.model.state_dict()
                distributed.report_for_tests(
                    self.ranks, sha=distributed.weights_hash(state), step=step, stopped=stopped,
                    threads=self.threads.threads,
                )  # fmt: skip
            distributed.barrier()  # rank 0 has saved before any rank leaves
        final = self.snapshot("done")
        if self.on_event is not None:
            self.on_event(final)
        best = self.best_path
        # Judged where steps were taken: with none, the loss is no figure (NaN).
        moved = step > self.start_step
        diverged = divergence(self.val_bpc, self.loss_value, len(self.vocab)) if moved else None
        return TrainResult(
            step=step,
            stopped=stopped,
            loss=self.loss_value,
            val_bpc=self.val_bpc,
            best_val_bpc=self.best_val,
            elapsed_s=final.elapsed_s,
            chars_per_sec=final.chars_per_sec,
            checkpoint=self.last_ckpt,
            best_checkpoint=best if best and self.ranks.master and best.exists() else None,
            checkpoint_step=self.saved_at if self.last_ckpt else None,
            diverged=diverged,
        )
