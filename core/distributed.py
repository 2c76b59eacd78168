"""Data-parallel training across processes with PyTorch's own engine (torchrun + DDP).

torchrun starts one process per GPU (or per group of CPU cores) and tells each who it is through
the environment: RANK (0..WORLD_SIZE-1 over all machines), LOCAL_RANK (on this machine) and
WORLD_SIZE. Without those variables training is one plain process, and nothing here is used.

The trainer keeps its ranks in step with one small all-reduce (`agree`): a stop asked for on any
rank (Ctrl+C, SIGTERM), and rank 0's clock for a `--minutes` budget and its schedule, so that
every rank takes the same number of steps at the same learning rates."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from core.words import plural

# Test-only: a folder where each rank writes its process id at start and a hash of its weights
# at the end (tests/test_distributed.py compares the ranks and signals rank 0).
REPORT_ENV = "FOLKGEN_TEST_DDP_REPORT"


@dataclass(frozen=True)
class Ranks:
    """Where this process stands among the training processes (one plain process by default)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    local_world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def master(self) -> bool:
        """Rank 0 alone evaluates, reports and writes checkpoints."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError:
        raise ValueError(f"{name}={value!r} in the environment is not a whole number") from None


def from_env() -> Ranks:
    """The ranks torchrun set in the environment; one plain process when it set none."""
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    local_world = _env_int("LOCAL_WORLD_SIZE", world)
    if world < 1 or not 0 <= rank < world or not 0 <= local_rank < max(local_world, 1):
        raise ValueError(
            f"inconsistent ranks in the environment: RANK={rank}, LOCAL_RANK={local_rank}, "
            f"WORLD_SIZE={world}"
        )
    return Ranks(rank, local_rank, world, max(local_world, 1))


def threads_per_rank(cores: int, ranks: Ranks) -> int:
    """CPU threads for each of this machine's ranks, so that together they fill the cores
    without sharing one (OpenMP threads that share a core wait for each other at every op)."""
    return max(1, cores // ranks.local_world_size)


def device_for(name: str, ranks: Ranks) -> str:
    """The device name a rank trains on: its own GPU (cuda:LOCAL_RANK) under torchrun. More
    ranks on a machine than it has GPUs are refused, by every rank alike (two ranks on one GPU
    are refused by nccl; a rank past the last GPU failed with 'invalid device ordinal')."""
    if ranks.enabled and name in ("auto", "cuda") and torch.cuda.is_available():
        gpus = torch.cuda.device_count()
        if ranks.local_world_size > gpus:
            raise ValueError(
                f"{ranks.local_world_size} training processes on this machine, and it has "
                f"{plural(gpus, 'GPU')}: each process trains on a GPU of its own (--nproc "
                f"{gpus}, or --device cpu to train on the CPU's cores)"
            )
        return f"cuda:{ranks.local_rank}"
    return name


def start(ranks: Ranks, device: torch.device) -> bool:
    """Join the process group (nccl between GPUs, gloo between CPU processes); True when this
    call made it, so the caller ends it with `stop`."""
    if not ranks.enabled or dist.is_initialized():
        return False
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return True


def stop() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def _wire(device: torch.device) -> torch.device:
    """Where the numbers of a collective live: the GPU for nccl, host memory for gloo."""
    return device if device.type == "cuda" else torch.device("cpu")


def agree(
    stop_asked: bool, hurry: bool, elapsed_s: float, device: torch.device
) -> tuple[bool, bool, float]:
    """(stop, hurry, elapsed) the same on every rank: stop and hurry when any rank asks, and rank
    0's clock. One all-reduce of three numbers (the largest of each; other ranks send a clock of
    0). Every rank must call it at the same steps."""
    clock = elapsed_s if dist.get_rank() == 0 else 0.0
    values = torch.tensor(
        [float(stop_asked), float(hurry), clock], dtype=torch.float64, device=_wire(device)
    )
    dist.all_reduce(values, op=dist.ReduceOp.MAX)
    stop_all, hurry_all, clock = values.tolist()
    return stop_all > 0, hurry_all > 0, clock


def mean_loss(loss: torch.Tensor) -> torch.Tensor:
    """The loss averaged over the ranks (a detached copy): what the whole batch scored; a loss
    that stops being finite on one rank then stops every rank the same way."""
    value = loss.detach().float().to(_wire(loss.device), copy=True)
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / dist.get_world_size()


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def weights_hash(state: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(state[name].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def reporting() -> bool:
    """Whether a test asked for reports (REPORT_ENV): the weights' hash is made only then."""
    return bool(os.environ.get(REPORT_ENV))


def report_for_tests(ranks: Ranks, **fields: object) -> None:
    """Under REPORT_ENV only: add `fields` to this rank's report file (JSON)."""
    folder = os.environ.get(REPORT_ENV)
    if not folder:
        return
    path = Path(folder) / f"rank{ranks.rank}.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data.update(fields)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)
