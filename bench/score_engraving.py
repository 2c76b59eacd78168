"""Sheet music for every tune (issue 15): engrave each default-corpus tune that abc2midi accepts
(core.abc.check_tune) as core/score.py does, and every one of --generated N tunes of the shipped
model at the app's defaults (first tune of each, tune i drawn with seed + i; the app shows the
score of any tune, so these are engraved whatever abc2midi says). Prints the count, every
failure with its message, and the time: engraving (ABC -> SVG, in verovio's child process)
against abc2midi's check of the same tunes in the same run, and the PNG step on a sample."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

from core.abc import check_tune, extract_tunes
from core.corpus import load_corpus
from core.score import ScoreError, engrave, to_png

PNG_SAMPLE = 50  # tunes drawn to PNG: resvg's cost per tune, not per corpus


def timed(fn: Callable[[str], object], tunes: list[str]) -> tuple[float, list[tuple[int, str]]]:
    """Seconds for fn over all tunes, and (index, message) of each ScoreError."""
    failures: list[tuple[int, str]] = []
    t0 = time.perf_counter()
    for i, tune in enumerate(tunes):
        try:
            fn(tune)
        except ScoreError as e:
            failures.append((i, str(e)))
    return time.perf_counter() - t0, failures


def generated(n: int, seed: int) -> list[str]:
    """The first tune of n texts the shipped model streams with the app's default options."""
    from core.checkpoint import load_checkpoint
    from core.paths import resolve_model_path
    from core.sample import DEFAULT_PROMPT, SampleOptions, Sampler

    ckpt = load_checkpoint(resolve_model_path(None)[0])
    sampler = Sampler(ckpt.build_model(), ckpt.vocab)
    texts = sampler.generate_batch(n, SampleOptions(seed=seed, grammar=True))  # as the app draws
    return [extract_tunes(DEFAULT_PROMPT + t, eof_ends_tune=True)[0].text for t in texts]


def measure(name: str, tunes: list[str], only_accepted: bool = True) -> dict[str, object]:
    t0 = time.perf_counter()
    checks = [check_tune(t).valid for t in tunes]
    check_s = time.perf_counter() - t0
    accepted = [t for t, ok in zip(tunes, checks, strict=True) if ok or not only_accepted]
    timed(engrave, accepted[:1])  # start the engraver's process outside the timing
    engrave_s, failures = timed(engrave, accepted)
    sample = accepted[:PNG_SAMPLE]
    png_s, _ = timed(lambda t: to_png(engrave(t).svg), sample)
    return {
        "set": name,
        "tunes": len(tunes),
        "abc2midi_accepted": sum(checks),
        "engraving_tried": len(accepted),
        "engraved": len(accepted) - len(failures),
        "failures": [{"index": i, "error": e} for i, e in failures],
        "abc2midi_check_s": round(check_s, 2),
        "engrave_s": round(engrave_s, 2),
        "engrave_ms_per_tune": round(1000 * engrave_s / len(accepted), 1),
        "engrave_vs_check": round(engrave_s / check_s, 2),
        "engrave_and_png_ms_per_tune": round(1000 * png_s / len(sample), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--generated", type=int, default=50, help="tunes from the shipped model (0: none)"
    )
    ap.add_argument(
        "--seed", type=int, default=1000, help="generated tune i is drawn with seed + i"
    )
    ap.add_argument("--json", action="store_true", help="one JSON object instead of lines")
    args = ap.parse_args()

    rows = [measure("default corpus", load_corpus().tunes)]
    if args.generated:
        tunes = generated(args.generated, args.seed)
        rows.append(measure(f"generated ({args.generated})", tunes, only_accepted=False))
    if args.json:
        print(json.dumps(rows))
        return
    for r in rows:
        print(
            f"{r['set']}: {r['engraved']}/{r['engraving_tried']} engraved "
            f"({r['abc2midi_accepted']} of the {r['tunes']} pass abc2midi) in {r['engrave_s']} s, "
            f"{r['engrave_ms_per_tune']} ms a tune; abc2midi's check of the same tunes "
            f"{r['abc2midi_check_s']} s (engraving takes {r['engrave_vs_check']}x that); "
            f"with the PNG {r['engrave_and_png_ms_per_tune']} ms a tune"
        )
        for f in r["failures"]:  # type: ignore[attr-defined]
            print(f"  tune {f['index']}: {f['error']}")


if __name__ == "__main__":
    main()
