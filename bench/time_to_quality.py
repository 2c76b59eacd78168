"""Time to quality: the seed recipe (the MIT lab, exactly) against folkgen's default recipe,
trained in this run on the same by-tune train / validation split. The default gets a quarter of
the seed's wall time (its schedule fitted to that budget), then twice that to show it keeps
improving. Prints held-out bits per character against wall time for each run."""

from __future__ import annotations

import argparse
from dataclasses import replace

from core.corpus import load_corpus
from core.presets import get_preset
from core.train import TrainEvent, train


def run(name: str, preset: str, **overrides: object) -> list[tuple[float, int, float]]:
    p = get_preset(preset)
    cfg = replace(p.train, **overrides)  # type: ignore[arg-type]
    curve: list[tuple[float, int, float]] = []

    def on_event(e: TrainEvent) -> None:
        if e.kind == "eval" and e.val_bpc is not None:
            curve.append((e.elapsed_s, e.step, e.val_bpc))
            print(
                f"  {name:>22}  {e.elapsed_s:7.1f}s  step {e.step:5d}  {e.val_bpc:.3f} bpc",
                flush=True,
            )

    train(load_corpus(), p.model, cfg, on_event=on_event)
    return curve


def first_time_below(curve: list[tuple[float, int, float]], level: float) -> str:
    return next((f"{t:.0f}s" for t, _, v in curve if v <= level), "never")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seed-steps", type=int, default=3000, help="steps of the seed recipe")
    args = ap.parse_args()
    print(f"seed recipe, {args.seed_steps} steps:")
    seed = run("seed", "seed", steps=args.seed_steps, eval_every=100)
    seed_time = seed[-1][0]
    seed_best = min(v for _, _, v in seed)
    seed_best_step = next(s for _, s, v in seed if v == seed_best)
    quarter = seed_time / 4
    print(f"default recipe, a quarter of the seed's time ({quarter:.0f}s):")
    short = run("default (1/4 seed time)", "default", minutes=quarter / 60)
    print(f"default recipe, half the seed's time ({2 * quarter:.0f}s):")
    longer = run("default (1/2 seed time)", "default", minutes=2 * quarter / 60)

    print()
    print(f"{'run':28} {'wall s':>7} {'best bpc':>9} {'final bpc':>10} {'reaches seed best':>18}")
    for name, curve in (("seed (lab recipe)", seed), ("default, 1/4 seed time", short),
                        ("default, 1/2 seed time", longer)):  # fmt: skip
        best = min(v for _, _, v in curve)
        print(f"{name:28} {curve[-1][0]:7.0f} {best:9.3f} {curve[-1][2]:10.3f} "
              f"{first_time_below(curve, seed_best):>18}")  # fmt: skip
    target = seed_best - 0.10
    short_final = short[-1][2]
    print(
        f"\nseed best: {seed_best:.3f} bpc at step {seed_best_step}; seed final: {seed[-1][2]:.3f}"
    )
    print(
        f"target for the default in 1/4 of the time: <= {target:.3f} -> {short_final:.3f} "
        f"({'ok' if short_final <= target else 'MISSED'})"
    )
    verdict = "ok" if longer[-1][2] < short_final else "MISSED"
    print(f"more time helps: {short_final:.3f} -> {longer[-1][2]:.3f} ({verdict})")


if __name__ == "__main__":
    main()
