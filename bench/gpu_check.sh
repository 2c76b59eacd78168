#!/bin/bash
# The CUDA path on a machine with a GPU, in one short run (README: "Training on a GPU"): training
# at three recipes, checkpoints carried GPU -> CPU and back, DDP over nccl, more ranks than GPUs
# refused, a --minutes budget, and tunes drawn from the GPU's checkpoint.
#   bash bench/gpu_check.sh CORPUS.abc OUT_DIR
# Needs python3 with torch (CUDA) and numpy; platformdirs too (PYTHONPATH may point to a folder
# that holds it). Writes OUT_DIR/default_gpu.pt, the default recipe trained on the GPU.
C=${1:?an .abc corpus}
OUT=${2:?a folder for the checkpoint}
export PYTHONUNBUFFERED=1 FOLKGEN_HOME=${FOLKGEN_HOME:-$(mktemp -d)}
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$(cd "$(dirname "$0")/.." && pwd)"
TMP=$(mktemp -d)
T="python3 -m core.cli train --corpus $C"
step() {
    echo; echo "== $*"
    local t0; t0=$(date +%s%N)
    "$@" 2>&1 | grep -v Warning | tail -4
    echo "($(( ($(date +%s%N) - t0) / 1000000 )) ms wall)"
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import sys, torch; print(sys.version.split()[0], torch.__version__, 'cuda', \
torch.cuda.is_available(), 'bf16', torch.cuda.is_bf16_supported(), torch.get_num_threads(), 'threads')"
step $T --device cuda --preset default --out "$OUT/default_gpu.pt" --json
step $T --device cpu --preset default --steps 60 --out "$TMP/cpu.pt" --json
step $T --device cuda --preset seed --steps 600 --out "$TMP/seed_gpu.pt" --json
step $T --device cuda --preset default --steps 400 --batch-size 256 --out "$TMP/big.pt" --json
step $T --resume "$OUT/default_gpu.pt" --device cpu --steps 3020 --out "$TMP/resumed_cpu.pt" --json
step $T --resume "$TMP/cpu.pt" --device cuda --steps 100 --out "$TMP/cpu_to_gpu.pt" --json
step $T --nproc 1 --device cuda --steps 200 --out "$TMP/ddp1.pt" --json
gpus=$(python3 -c "import torch; print(torch.cuda.device_count())")
step $T --nproc $((gpus + 1)) --device cuda --steps 50 --out "$TMP/too_many.pt" --json
step $T --device cuda --preset tiny --minutes 0.2 --out "$TMP/minutes.pt" --json
step python3 -m core.cli generate --model "$OUT/default_gpu.pt" --count 3 --seed 7 --json
python3 - "$OUT/default_gpu.pt" <<'PY'
import sys

import torch

devices = set()


def walk(o: object) -> None:
    if isinstance(o, torch.Tensor):
        devices.add(str(o.device))
    elif isinstance(o, dict):
        for v in o.values():
            walk(v)
    elif isinstance(o, (list, tuple)):
        for v in o:
            walk(v)


walk(torch.load(sys.argv[1], map_location="cpu", weights_only=False))
print("tensors of the GPU's checkpoint are on:", sorted(devices))
PY
