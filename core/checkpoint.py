"""One file per checkpoint: weights, configs, vocabulary, optimiser state, step and metrics.

Written atomically (temp file in the same folder, fsync, rename, fsync of the folder), so a crash
or a kill while saving leaves the previous checkpoint intact and never a half-written file.

Read defensively: the app loads the newest checkpoint at start with no user action, so a file is
checked for size, for its archive's entries and for every field, shape and dtype before anything
of the size it claims is allocated. Any problem is a CheckpointError with a one-line reason.
"""

from __future__ import annotations

import contextlib
import math
import os
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from core.checkpoint_meta import CheckpointError as CheckpointError  # one class, where it was
from core.checkpoint_meta import CheckpointMeta, CorpusInfo, Metrics
from core.corpus import Vocabulary
from core.model import CharLSTM
from core.presets import MAX_PARAMETERS, MAX_STEPS, ConfigError, ModelConfig, TrainConfig

FORMAT = "folkgen-checkpoint"
VERSION = 1
# Weights plus AdamW's two moments are 12 bytes a parameter; the rest is a few kilobytes.
MAX_CHECKPOINT_BYTES = 12 * MAX_PARAMETERS + (16 << 20)
MAX_PICKLE_BYTES = 1 << 20  # the non-tensor part: configs, vocabulary, metrics (a few KB)
MAX_ENTRIES = 1000
MAX_KEYS_TEXT = 8_000  # the corpus's K: values, ";"-separated (a few hundred characters)
FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)  # float16: `export --half`
METRIC_NAMES = ("loss", "val_bpc", "best_val_bpc", "elapsed_s")



@dataclass
class Checkpoint:
    model_config: ModelConfig
    train_config: TrainConfig
    vocab: Vocabulary
    model_state: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any] | None = None
    step: int = 0
    metrics: Metrics = field(default_factory=dict)  # val_bpc, best_val_bpc, loss, elapsed_s
    corpus: CorpusInfo = field(default_factory=dict)  # what it was trained on, not where
    path: Path | None = None

    def build_model(self, device: torch.device | str = "cpu") -> CharLSTM:
        model = CharLSTM(self.model_config)
        model.load_state_dict({k: v.float() for k, v in self.model_state.items()})
        return model.to(device).eval()

    @property
    def meta(self) -> CheckpointMeta:
        """All but the tensors: what another process is told of this checkpoint."""
        return CheckpointMeta(
            self.model_config, self.train_config, self.vocab, self.step, dict(self.metrics),
            dict(self.corpus), self.path,
        )  # fmt: skip


def slim(ckpt: Checkpoint, half: bool = False) -> Checkpoint:
    """A copy for sharing or shipping: no optimiser state, optionally half-precision weights
    (loading turns them back into float32)."""
    state = {
        k: (v.half() if half and v.is_floating_point() else v) for k, v in ckpt.model_state.items()
    }
    return replace(ckpt, model_state=state, optimizer_state=None, path=None)


# --- writing ----------------------------------------------------------------------------------


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (where the platform can open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(ckpt: Checkpoint, path: str | Path) -> Path:
    path = Path(path)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model_config": ckpt.model_config.to_dict(),
        "train_config": ckpt.train_config.to_dict(),
        "vocab": "".join(ckpt.vocab.chars),
        "model_state": ckpt.model_state,
        "optimizer_state": ckpt.optimizer_state,
        "step": ckpt.step,
        "metrics": ckpt.metrics,
        "corpus": ckpt.corpus,
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise CheckpointError(f"cannot write a checkpoint in {path.parent}: {e.strerror}") from None
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; a checkpoint is an ordinary shareable file
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:  # Ctrl+C and MemoryError too: never leave the temp file behind
        Path(tmp).unlink(missing_ok=True)
        if not isinstance(e, OSError | RuntimeError):
            raise
        reason = getattr(e, "strerror", None) or str(e)
        raise CheckpointError(f"could not save checkpoint {path}: {reason}") from None
    _fsync_folder(path.parent)
    ckpt.path = path
    return path


def is_checkpoint_file(path: Path) -> bool:
    """Whether `path` is a folkgen checkpoint (reads its header, not its tensors)."""
    try:
        return _read_payload(path).get("format") == FORMAT
    except CheckpointError:
        return False


def check_destination(path: str | Path, *, replace_any: bool = False) -> Path:
    """Check, before any work, that a checkpoint can be saved at `path`: not a folder, not an
    existing file other than a folkgen checkpoint (unless `replace_any`: the user said so), in
    a folder that takes a new file (a probe file is written and removed). CheckpointError if not."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder; give a file name for the checkpoint")
    if path.exists() and not replace_any and not is_checkpoint_file(path):
        raise CheckpointError(
            f"{path} exists and is not a folkgen checkpoint; choose another file name "
            "(or --force to replace it)"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A block written and synced: a full disk answers ENOSPC here, not at the first save.
        with tempfile.TemporaryFile(prefix=f".{path.name}.", suffix=".probe", dir=path.parent) as f:
            f.write(bytes(4096))
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise CheckpointError(f"cannot write a checkpoint in {path.parent}: {e.strerror}") from None
    return path


@contextlib.contextmanager
def one_writer(path: str | Path) -> Iterator[None]:
    """Hold `path` (and the best-so-far file beside it) for one training run's saves. A second
    run into the same file, a checkpoint resumed in two windows or `--out` naming the file of a
    run under way, is refused at its start (CheckpointError) where both used to save over each
    other's work. An advisory lock (flock) on a hidden .NAME.lock beside it, holding the run's
    pid: the kernel lets go of it however the process ends (a killed run's file is taken over by
    the next). Where no lock can be had (not a POSIX system, a file system without locks, a
    folder that takes no file: check_destination says so), the run is not guarded."""
    path = Path(path).expanduser().resolve()  # one file, one lock, by whatever way it is named
    lock = path.with_name(f".{path.name}.lock")
    fd = _lock(lock, path)
    if fd is None:
        yield
        return
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            lock.unlink()  # while held: a run waiting on this file takes a new one (_lock)
        os.close(fd)


def _lock(lock: Path, path: Path) -> int | None:
    """The lock file's descriptor, locked; None where no lock can be had."""
    try:
        import fcntl
    except ImportError:
        return None
    while True:
        try:  # never through a link, nor anything but a plain file (a folder shared with others)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        except OSError:
            return None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 20).decode("ascii", "replace").strip()
            os.close(fd)
            process = f" (process {holder})" if holder.isdigit() else ""
            raise CheckpointError(
                f"another training run{process} is saving to {path}; start this one once that "
                "run has ended"
            ) from None
        except OSError:
            os.close(fd)
            return None
        try:  # the file its last holder removed as it let go: lock the one now there instead
            if os.stat(lock).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


# --- reading ----------------------------------------------------------------------------------


def _check_archive(path: Path, size: int) -> None:
    """Refuse, from the size and the zip directory alone, a file that would make torch allocate
    more than the bound: torch writes its archives with every entry stored, uncompressed, so
    stored entries within the bounded file size bound what loading takes."""
    if size > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(
            f"{path}: {size / 1e6:,.0f} MB is more than a folkgen checkpoint can be "
            f"(at most {MAX_CHECKPOINT_BYTES / 1e6:,.0f} MB); not loaded"
        )
    with path.open("rb") as f:
        magic = f.read(4)
    if magic[:2] != b"PK":
        raise CheckpointError(f"{path}: not a folkgen checkpoint")
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, ValueError, EOFError) as e:
        detail = (str(e).splitlines() or [type(e).__name__])[0][:120]
        raise CheckpointError(
            f"{path}: cannot read it (truncated or corrupted: {detail})"
        ) from None
    if len(entries) > MAX_ENTRIES:
        raise CheckpointError(f"{path}: {len(entries):,} entries, not a folkgen checkpoint")
    for entry in entries:
        if entry.compress_type != zipfile.ZIP_STORED or entry.file_size != entry.compress_size:
            raise CheckpointError(f"{path}: holds compressed data, not a folkgen checkpoint")
        if entry.filename.endswith("data.pkl") and entry.file_size > MAX_PICKLE_BYTES:
            raise CheckpointError(f"{path}: its settings part is too large; not loaded")
    if sum(e.file_size for e in entries) > size:  # entries overlapping: read more than once
        raise CheckpointError(f"{path}: its entries claim more than the file holds; not loaded")


def _read_payload(path: Path) -> dict[str, Any]:
    """The unpickled top level (tensors memory-mapped, not read), after the archive checks."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint file") from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read it ({e.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        what = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise CheckpointError(f"{path}: {what}, not a checkpoint file")
    if info.st_size == 0:
        raise CheckpointError(f"{path}: empty file, not a checkpoint")
    try:
        _check_archive(path, info.st_size)
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read it ({e.strerror})") from None
    # torch raises many kinds (RuntimeError, ValueError, EOFError, UnpicklingError…) on bad bytes.
    except Exception as e:
        if isinstance(e, CheckpointError):
            raise
        detail = (str(e).splitlines() or [type(e).__name__])[0][:120]
        raise CheckpointError(
            f"{path}: cannot read it (truncated or corrupted: {detail})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a folkgen checkpoint")
    return payload


def _check_version(version: object) -> None:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CheckpointError(f"unknown checkpoint format version {str(version)[:20]!r}")
    if version > VERSION:
        raise CheckpointError(
            f"checkpoint format version {version} is newer than this folkgen understands "
            f"({VERSION}); upgrade folkgen"
        )


def _vocabulary(value: object, size: int) -> Vocabulary:
    """The stored vocabulary: sorted distinct characters, as many as the model's outputs."""
    if not isinstance(value, str) or list(value) != sorted(set(value)):
        raise ValueError("the vocabulary must be sorted distinct single characters")
    if len(value) != size:
        raise ValueError(f"the vocabulary has {len(value)} characters, the model {size}")
    return Vocabulary(tuple(value))


def parameter_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """CharLSTM's parameters in order, with their shapes, by arithmetic: nothing allocated
    (test_checkpoint compares this with a real model)."""
    v, e, h = cfg.vocab_size, cfg.embedding_dim, cfg.hidden_size
    shapes: dict[str, tuple[int, ...]] = {"embedding.weight": (v, e)}
    for layer in range(cfg.num_layers):
        shapes[f"lstm.weight_ih_l{layer}"] = (4 * h, e if layer == 0 else h)
        shapes[f"lstm.weight_hh_l{layer}"] = (4 * h, h)
        shapes[f"lstm.bias_ih_l{layer}"] = (4 * h,)
        shapes[f"lstm.bias_hh_l{layer}"] = (4 * h,)
    shapes["head.weight"] = (v, h)
    shapes["head.bias"] = (v,)
    return shapes


def _model_state(value: object, shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    if not isinstance(value, dict) or set(value) != set(shapes):
        raise ValueError("the weights do not have the model's parts")
    for name, tensor in value.items():
        if not isinstance(tensor, torch.Tensor) or tensor.dtype not in FLOAT_DTYPES:
            raise ValueError(f"{name} is not a tensor of floats")
        if tuple(tensor.shape) != shapes[name]:
            raise ValueError(f"{name} has shape {tuple(tensor.shape)}, not {shapes[name]}")
        if not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"{name} holds values that are not finite numbers (training diverged)")
    return dict(value)


def _is_setting(value: object) -> bool:
    """An optimiser hyper-parameter: a finite number, a flag, None, or a tuple of numbers."""
    if isinstance(value, tuple | list):
        return all(_is_setting(v) and not isinstance(v, tuple | list) for v in value)
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, bool | int)


def _optimizer_state(value: object, shapes: dict[str, tuple[int, ...]]) -> dict[str, Any] | None:
    """AdamW's state for these parameters: groups over indices 0..n-1 with finite settings, and
    per parameter a scalar step and moments of the parameter's shape."""
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("state"), dict):
        raise ValueError("the optimiser state is not a table")
    groups = value.get("param_groups")
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise ValueError("the optimiser state has no parameter groups")
    if not all(isinstance(g.get("params"), list) for g in groups):
        raise ValueError("the optimiser state has a group without parameters")
    if [i for g in groups for i in g["params"]] != list(range(len(shapes))):
        raise ValueError("the optimiser state does not cover the model's parameters")
    for g in groups:
        if not all(_is_setting(v) for k, v in g.items() if k != "params"):
            raise ValueError("the optimiser state has a setting that is not a finite number")
    order = list(shapes.values())
    for index, moments in value["state"].items():
        if not (isinstance(index, int) and 0 <= index < len(order) and isinstance(moments, dict)):
            raise ValueError("the optimiser state names a parameter the model lacks")
        for tensor in moments.values():
            if not isinstance(tensor, torch.Tensor) or tensor.dtype not in FLOAT_DTYPES:
                raise ValueError("the optimiser state holds something other than float tensors")
            if tensor.numel() != 1 and tuple(tensor.shape) != order[index]:
                raise ValueError("the optimiser state does not fit the model's shapes")
    return value


def _metrics(value: object) -> Metrics:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("the metrics are not a table")
    metrics: Metrics = {}
    for name in METRIC_NAMES:
        if name not in value:
            continue
        number = value[name]
        if number is not None and (
            isinstance(number, bool)
            or not isinstance(number, int | float)
            or not math.isfinite(number)
            or number < 0
        ):
            raise ValueError(f"metric {name} is not a finite number ({str(number)[:20]!r})")
        metrics[name] = None if number is None else float(number)
    return metrics


def _corpus_info(value: object) -> CorpusInfo:
    """What the corpus was: name and sha256 (text), tunes (a count), the keys it names (text,
    core.corpus.recorded_key_spellings reads it); older files add a path, kept for display
    only (it names a place on the machine that trained)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("the corpus description is not a table")
    info: CorpusInfo = {}
    for name, kind in (("name", str), ("sha256", str), ("path", str), ("tunes", int),
                       ("keys", str)):  # fmt: skip
        item = value.get(name)
        if item is None:
            continue
        if not isinstance(item, kind) or isinstance(item, bool):
            raise ValueError(f"the corpus {name} is not {'text' if kind is str else 'a count'}")
        if name == "keys" and isinstance(item, str) and len(item) > MAX_KEYS_TEXT:
            raise ValueError(f"the corpus's keys are over {MAX_KEYS_TEXT:,} characters")
        info[name] = item
    return info


def _step(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_STEPS:
        raise ValueError(f"the step is not a whole number from 0 to {MAX_STEPS:,}")
    return value


def _checkpoint(payload: dict[str, Any], path: Path) -> Checkpoint:
    """Every field checked, in the order that keeps allocation bounded: configs (sizes) first,
    then tensor shapes against what the configs imply."""
    _check_version(payload.get("version"))
    model_config = ModelConfig.from_dict(payload.get("model_config"))
    train_config = TrainConfig.from_dict(payload.get("train_config"))
    shapes = parameter_shapes(model_config)
    return Checkpoint(
        model_config=model_config,
        train_config=train_config,
        vocab=_vocabulary(payload.get("vocab"), model_config.vocab_size),
        model_state=_model_state(payload.get("model_state"), shapes),
        optimizer_state=_optimizer_state(payload.get("optimizer_state"), shapes),
        step=_step(payload.get("step", 0)),
        metrics=_metrics(payload.get("metrics")),
        corpus=_corpus_info(payload.get("corpus")),
        path=path,
    )


def load_checkpoint(path: str | Path) -> Checkpoint:
    path = Path(path).expanduser()
    payload = _read_payload(path)
    try:
        return _checkpoint(payload, path)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None
    except ConfigError as e:
        raise CheckpointError(f"{path}: damaged checkpoint (its settings: {e})") from None
    except ValueError as e:
        raise CheckpointError(f"{path}: damaged checkpoint ({e})") from None
