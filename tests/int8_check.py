"""The int8 and int4 samplers against float32, measured in a process of its own so that the
instruction set can be chosen (FBGEMM_ENABLE_INSTRUCTIONS=AVX2 runs fbgemm's kernels of an
AVX2-only CPU on any x86, read once per process; FOLKGEN_Q4_KERNEL=avx2 does the same for the
int4 kernel). Prints one JSON object, a key per model and precision:

- `step_error`: the largest error of int8 logits after a single step from the same state as
  float32, relative to the spread (max - min) of float32's logits at that step;
- `top_agree`: how often the most likely next character is the same;
- `bpc_fp32`, `bpc_low`: bits per character of held-out text, each stepping on its own state.

Usage: python -m tests.int8_check CHECKPOINT: the checkpoint's model at int8 ("checkpoint") and
int4 ("checkpoint_int4", where the kernel is built), and a fresh seeded two-layer model on its
vocabulary at int8 ("two_layers", the sampler's other code path)."""

from __future__ import annotations

import json
import sys

import numpy as np
import torch

from core.checkpoint import load_checkpoint
from core.corpus import Vocabulary, load_corpus
from core.model import CharLSTM
from core.presets import ModelConfig
from core.sample import Sampler, StreamState, int4_supported

STREAMS = 16
CHARS = 4096


def copy_state(st: StreamState) -> StreamState:
    rec = None if st.rec is None else st.rec.copy()
    return StreamState(st.h.copy(), st.c.copy(), rec)


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64) - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def measure(
    model: CharLSTM, vocab: Vocabulary, ids: np.ndarray, precision: str
) -> dict[str, float]:
    fp, q = Sampler(model, vocab, "fp32"), Sampler(model, vocab, precision)
    per = (len(ids) - 1) // STREAMS
    x = ids[: per * STREAMS].reshape(STREAMS, per)
    y = ids[1 : per * STREAMS + 1].reshape(STREAMS, per)
    st_fp, st_q = fp.zero_state(STREAMS), q.zero_state(STREAMS)
    worst, agree, nll_fp, nll_q = 0.0, 0, 0.0, 0.0
    rows = np.arange(STREAMS)
    for t in range(per):
        same = copy_state(st_fp)  # int8's single step from float32's state
        ref = fp.step(x[:, t], st_fp)
        one = q.step(x[:, t], same)
        spread = ref.max(axis=1) - ref.min(axis=1)
        worst = max(worst, float((np.abs(one - ref).max(axis=1) / spread).max()))
        agree += int((one.argmax(axis=1) == ref.argmax(axis=1)).sum())
        own = q.step(x[:, t], st_q)  # int8 on its own state, as it samples
        nll_fp -= log_softmax(ref)[rows, y[:, t]].sum()
        nll_q -= log_softmax(own)[rows, y[:, t]].sum()
    n = per * STREAMS
    return {
        "step_error": worst,
        "top_agree": agree / n,
        "bpc_fp32": nll_fp / n / np.log(2),
        "bpc_low": nll_q / n / np.log(2),
    }


def main() -> None:
    ckpt = load_checkpoint(sys.argv[1])
    torch.manual_seed(1)
    two_layers = CharLSTM(ModelConfig(len(ckpt.vocab), 24, 96, num_layers=2)).eval()
    val = load_corpus().split(vocab=ckpt.vocab).val_ids[: CHARS + 1]
    cases = [("checkpoint", ckpt.build_model(), "int8"), ("two_layers", two_layers, "int8")]
    if int4_supported():
        cases.append(("checkpoint_int4", ckpt.build_model(), "int4"))
    print(json.dumps({name: measure(m, ckpt.vocab, val, p) for name, m, p in cases}))


if __name__ == "__main__":
    main()
