"""Musical quality of generated tunes (issue 12): the corpus's distinct tunes beside N tunes
sampled at each temperature, grammar on, with the tunes `folkgen generate --count N --seed S
--temperature T` prints (tune i drawn with seed S + i, at the CLI's length limit). For each set:
bar lengths against the metre, form, last note against the tonic, repeated bars, keys the corpus
never uses (core/music_analysis.py has the definitions), then abc2midi-clean, near-copies of a
corpus tune (6-gram Dice >= 0.80, core/novelty.py) and distinct tunes; ✓/✗ against the issue's
targets at the first temperature. Uses --model, else the model `folkgen generate` would use."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TypeVar

from core.abc import check_tune
from core.corpus import load_corpus
from core.generation import load_generator
from core.music_analysis import (
    ROWS,
    MusicSummary,
    analyse_tune,
    corpus_keys,
    distinct_tunes,
    summarize,
)
from core.novelty import NoveltyIndex, tune_body
from core.paths import resolve_model_path
from core.sample import DEFAULT_PROMPT, SampleOptions, Sampler

T = TypeVar("T")
CLI_MAX_CHARS = SampleOptions().max_chars  # `folkgen generate`'s default length limit

# The "done when" targets (at temperature 1.0): (field, at least?, bound).
TARGETS: dict[str, tuple[bool, float]] = {
    "bars_right_pct": (True, 97),
    "all_right_pct": (True, 90),
    "tonic_ending_pct": (True, 65),
    "aabb_pct": (True, 40),
    "one_part_pct": (False, 5),
    "repeated_bars_pct": (True, 15),
    "unknown_key_pct": (False, 3),
    "clean_pct": (True, 100),
    "near_copy_pct": (False, 2),
}
EXTRA_ROWS = (
    ("clean_pct", "abc2midi-clean (MIDI written, no Error line)"),
    ("unwarned_pct", "no abc2midi warning either (the app's \"valid\", not \"valid, 1 warning\")"),
    ("near_copy_pct", "near-copies of a corpus tune (6-gram Dice >= 0.80)"),
    ("distinct", "distinct tunes (by their music)"),
)


@dataclass(frozen=True)
class SetFigures:
    """One column of the table: the musical summary and the checks beside it."""

    name: str
    music: MusicSummary
    clean_pct: float
    unwarned_pct: float  # valid and no warning shown (TuneCheck.clean)
    near_copy_pct: float | None  # None for the corpus itself
    distinct: int
    seconds: dict[str, float]

    def value(self, name: str) -> float | None:
        """A row's figure, by its field name in MusicSummary or here."""
        value = getattr(self.music, name) if hasattr(self.music, name) else getattr(self, name)
        return None if value is None else float(value)


def timed(seconds: dict[str, float], what: str, fn: Callable[[], T]) -> T:
    t0 = time.perf_counter()
    result = fn()
    seconds[what] = round(time.perf_counter() - t0, 3)
    return result


def figures(
    name: str,
    tunes: Sequence[str],
    keys: frozenset[str],
    novelty: NoveltyIndex | None,
    seconds: dict[str, float],
) -> SetFigures:
    analyses = timed(seconds, "analysis", lambda: [analyse_tune(t) for t in tunes])
    checks = timed(seconds, "abc2midi", lambda: [check_tune(t) for t in tunes])
    n = max(len(tunes), 1)
    near = None
    if novelty is not None:
        matches = [novelty.closest(t) for t in tunes]
        near = 100 * sum(m is not None and m.is_near_copy for m in matches) / n
    return SetFigures(
        name=name,
        music=summarize(analyses, keys),
        clean_pct=100 * sum(c.valid for c in checks) / n,
        unwarned_pct=100 * sum(c.clean for c in checks) / n,
        near_copy_pct=near,
        distinct=len({tune_body(t) for t in tunes}),
        seconds=seconds,
    )


def sample(sampler: Sampler, n: int, temperature: float, seed: int, max_chars: int) -> list[str]:
    """The tunes the CLI prints for the same settings: stream b of a batch draws with seed + b,
    as `folkgen generate` draws its tune b."""
    opts = SampleOptions(temperature=temperature, seed=seed, max_chars=max_chars, grammar=True)
    return [DEFAULT_PROMPT + text for text in sampler.generate_batch(n, opts)]


def fmt(value: float | None, name: str) -> str:
    if value is None:
        return "—"
    return f"{value:.0f}" if name == "distinct" else f"{value:.1f} %"


def target_cell(name: str, value: float | None, n: int) -> tuple[str, str]:
    """The target as text and ✓/✗ for the value (blank where the issue sets none)."""
    if name == "distinct":
        return f"{n}", "✓" if value == n else "✗"
    if name not in TARGETS or value is None:
        return "", ""
    at_least, bound = TARGETS[name]
    ok = value >= bound if at_least else value <= bound
    sign = "" if bound == 100 else "≥ " if at_least else "≤ "
    return f"{sign}{bound:g} %", "✓" if ok else "✗"


def print_table(columns: Sequence[SetFigures], n: int) -> None:
    judged = columns[1] if len(columns) > 1 else None
    head = ["measure", *(c.name for c in columns), f"target ({judged.name})" if judged else "", ""]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name, label in (*((f, lbl) for f, lbl in ROWS), *EXTRA_ROWS):
        cells = [fmt(c.value(name), name) for c in columns]
        target, mark = target_cell(name, judged.value(name), n) if judged else ("", "")
        print("| " + " | ".join([label, *cells, target, mark]) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", help="checkpoint (default: the one `folkgen generate` would use)")
    ap.add_argument("--tunes", type=int, default=200, help="tunes per temperature")
    ap.add_argument("--temperatures", default="1.0,0.8", help="comma-separated; targets: first")
    ap.add_argument("--seed", type=int, default=1000, help="tune i is drawn with seed + i")
    ap.add_argument("--max-chars", type=int, default=CLI_MAX_CHARS, help="length limit per tune")
    ap.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    args = ap.parse_args()

    path, why = resolve_model_path(args.model)
    generator = load_generator(path)  # as `folkgen generate` and the app: the corpus's keys
    sampler = generator.sampler
    corpus = load_corpus()
    tunes = distinct_tunes(corpus.tunes)
    keys = corpus_keys(tunes)
    novelty = NoveltyIndex(corpus.tunes)
    columns = [figures(f"corpus ({len(tunes)})", tunes, keys, None, {})]
    for temp in (float(t) for t in args.temperatures.split(",")):
        t0 = time.perf_counter()
        texts = sample(sampler, args.tunes, temp, args.seed, args.max_chars)
        seconds = {"sampling": round(time.perf_counter() - t0, 3)}
        columns.append(figures(f"T={temp:.1f}", texts, keys, novelty, seconds))

    if args.json:
        out = {
            "model": str(path),
            "why": why,
            "tunes": args.tunes,
            "seed": args.seed,
            "max_chars": args.max_chars,
            "sets": [asdict(c) for c in columns],
        }
        print(json.dumps(out, indent=1))
        return
    print(f"model: {path} ({why}); {args.tunes} tunes per temperature, grammar on, seed "
          f"{args.seed}, at most {args.max_chars} characters; corpus: {corpus.name}, distinct")  # fmt: skip
    print_table(columns, args.tunes)
    for c in columns:
        took = ", ".join(f"{k} {v:.2f}s" for k, v in c.seconds.items())
        print(f"  {c.name}: {took}")


if __name__ == "__main__":
    main()
