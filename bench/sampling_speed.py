"""Sampling speed against the seed-style loop (`nn.LSTM` called once per character, then
`torch.multinomial`, as in the MIT lab), both measured in this run on the seed-size model
(embedding 256, LSTM 1024). Targets: one stream >= 20x, a batch of 16 >= 100x in aggregate."""

from __future__ import annotations

import argparse
import os
import time

import torch

from core.corpus import load_corpus
from core.model import CharLSTM
from core.presets import get_preset
from core.sample import SampleOptions, Sampler, seed_style_stream


def rate(fn, chars: int) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    n = fn()
    return (n or chars) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--chars", type=int, default=1500, help="characters per measurement")
    args = ap.parse_args()
    vocab = load_corpus().vocab
    torch.manual_seed(0)
    cfg = get_preset("seed").model
    model = CharLSTM(type(cfg)(**{**cfg.to_dict(), "vocab_size": len(vocab)})).eval()
    n = args.chars
    opts = SampleOptions(seed=1, max_chars=n, stop_at_tune_end=False)

    seed_style_stream(model, vocab, "X", 50)  # warm-up
    seed = rate(lambda: len(seed_style_stream(model, vocab, "X", n)), n)
    rows = [("seed-style loop (nn.LSTM per char, multinomial)", seed, None)]
    for precision in ("fp32", "int8"):
        s = Sampler(model, vocab, precision)
        s.generate(SampleOptions(seed=0, max_chars=50, stop_at_tune_end=False))
        rows.append(
            (
                f"folkgen sampler, 1 stream, {precision}",
                rate(lambda s=s: len(s.generate(opts)), n),
                20,
            )
        )
        batch_opts = SampleOptions(seed=1, max_chars=max(n // 4, 200), stop_at_tune_end=False)
        rows.append((
            f"folkgen sampler, 16 streams, {precision}",
            rate(lambda s=s, o=batch_opts: sum(map(len, s.generate_batch(16, o))), 0),
            100,
        ))  # fmt: skip
    auto = Sampler(model, vocab).precision
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; "
        f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}; default precision: {auto}"
    )
    print(f"{'sampler':52} {'chars/s':>10} {'x seed':>8}  target")
    for name, r, target in rows:
        ratio = r / seed
        verdict = (
            "" if target is None else (f">= {target}x " + ("ok" if ratio >= target else "MISSED"))
        )
        print(f"{name:52} {r:10,.0f} {ratio:8.1f}  {verdict}")


if __name__ == "__main__":
    main()
