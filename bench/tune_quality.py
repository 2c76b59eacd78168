"""Quality of sampled tunes, through the real abc2midi: for N tunes at each temperature, the
share that are clean (MIDI written, no `Error` line), that have every header field (X T M L K),
meters and keys against the corpus, and near-copies of a training tune (6-gram Dice >= 0.80,
see core/novelty.py). Uses --model, else the model `folkgen generate` would use."""

from __future__ import annotations

import argparse
import time
from collections import Counter

from core.abc import check_tune, extract_tunes
from core.checkpoint import load_checkpoint
from core.corpus import compute_stats, header_field, load_corpus, normalize_key
from core.novelty import NoveltyIndex
from core.paths import resolve_model_path
from core.sample import SampleOptions, Sampler

HEADERS = ("X", "T", "M", "L", "K")


def share(counter: Counter[str], total: int, name: str) -> float:
    return 100 * counter.get(name, 0) / max(total, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model")
    ap.add_argument("--tunes", type=int, default=100)
    ap.add_argument("--temperatures", default="1.0,0.8")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--grammar",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="grammar-aware sampling (core/abc_grammar.py)",
    )
    args = ap.parse_args()
    path, why = resolve_model_path(args.model)
    ckpt = load_checkpoint(path)
    sampler = Sampler(ckpt.build_model(), ckpt.vocab)
    corpus = load_corpus()
    stats = compute_stats(corpus)
    index = NoveltyIndex(corpus.tunes)
    print(f"model: {path} ({why}), step {ckpt.step}, val {ckpt.metrics.get('best_val_bpc')}")
    for temp in (float(t) for t in args.temperatures.split(",")):
        t0 = time.perf_counter()
        texts = sampler.generate_batch(
            args.tunes,
            SampleOptions(temperature=temp, seed=args.seed, max_chars=1500, grammar=args.grammar),
        )
        sample_s = time.perf_counter() - t0
        tunes = ["X:" + t for t in texts]
        checks = [check_tune(t) for t in tunes]
        valid = sum(c.valid for c in checks)
        clean = sum(c.clean for c in checks)
        complete = sum(all(tt.complete for tt in extract_tunes(t)) for t in tunes)
        headers = sum(all(header_field(t, h) for h in HEADERS) for t in tunes)
        matches = [index.closest(t) for t in tunes]
        near = sum(1 for m in matches if m is not None and m.is_near_copy)
        top = max((m.similarity for m in matches if m is not None), default=0.0)
        meters = Counter(header_field(t, "M") or "?" for t in tunes)
        keys = Counter(normalize_key(header_field(t, "K") or "") for t in tunes)
        errors = Counter(c.errors[0].text.split(":")[0][:40] for c in checks if c.errors)
        n = len(tunes)
        grammar = "on" if args.grammar else "off"
        print(f"\ntemperature {temp}, grammar {grammar}: {n} tunes sampled in {sample_s:.1f}s")
        print(f"  clean (MIDI written, no Error line): {100 * valid / n:5.1f} %   (target >= 90 %)")
        print(f"  clean and without warnings:         {100 * clean / n:5.1f} %")
        print(f"  all header fields (X T M L K):        {100 * headers / n:5.1f} %")
        print(f"  ended by a blank line (not cut off):  {100 * complete / n:5.1f} %")
        print(f"  near-copies (>= 80 % 6-gram Dice):    {100 * near / n:5.1f} %   (target <= 2 %); "
              f"closest {top:.0%}")  # fmt: skip
        print("  meter   generated  corpus")
        for meter, count in stats.meters[:7]:
            print(
                f"  {meter:7} {share(meters, n, meter):7.1f} %  {100 * count / stats.tunes:5.1f} %"
            )
        print("  key            generated  corpus")
        for key, count in stats.keys[:6]:
            print(f"  {key:14} {share(keys, n, key):7.1f} %  {100 * count / stats.tunes:5.1f} %")
        if errors:
            print(
                "  most common first errors: "
                + "; ".join(f"{e} ({k})" for e, k in errors.most_common(5))
            )


if __name__ == "__main__":
    main()
