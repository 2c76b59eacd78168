"""Sampling speed, as ratios against references measured in the same run (so they hold on any
machine). Each figure is the best of --repeats runs, taken in turn: a shared machine's load
only ever slows a run down.

1. The seed-size model (embedding 256, LSTM 1024, a fresh one on the corpus's vocabulary)
   against the MIT lab's loop (`nn.LSTM` called once per character, then `torch.multinomial`):
   one stream >= 20x, a batch of 16 >= 100x in aggregate, at float32, int8 and int4 (the C
   kernel, core/q4.py, where built; int8's and int4's held-out bits per character are within
   1 % of float32's: tests/test_sample.py). The sampler runs as the app samples: the copy model
   on, with its C kernel where built (core/copy_kernel.c).
2. The shipped model with the grammar against raw sampling (no grammar), same options (the
   copy model on), whole tunes of fresh seeds (issue 14's target: the grammar costs <= 15 %,
   one stream and 16).
   Each run of this part is a child process of its own, which samples as a fresh app does:
   the app's engine makes the grammar once it is idle after loading the model
   (Generator.prepare: the shipped state table of core/grammar_table.py loaded), so that no
   tune waits for it; its time is shown apart. With --cold, as the CLI runs: the first grammar
   tune (the first round's) makes it, and that counts in the figures. Either way each row the
   tunes visit is read from the table (or, with --no-table, built) as they come to it, and
   counts. The first grammar tune is also shown alone. Each round's figure is the best of
   --repeats runs. What exists once the model is loaded and the grammar made is frozen out of
   the garbage collector's sight, as the app's engine does (--no-freeze: as the CLI runs,
   where the collections the state table sets off walk torch's objects too).

--avx2 runs it all again in a child process with the AVX2-only kernels (bench/machine.py);
--avx-vnni with those and the AVX-VNNI int4 kernel (an AVX2 laptop of Intel's from Alder Lake on)."""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
from collections.abc import Callable

import torch
from machine import describe, emulation, rerun_emulating

import core.sample
from core import q4
from core.corpus import load_corpus
from core.generation import load_generator
from core.model import CharLSTM
from core.paths import shipped_model_path
from core.presets import get_preset
from core.sample import SampleOptions, Sampler, int4_supported, seed_style_stream


def best_rate(fn: Callable[[], int], repeats: int) -> float:
    """Characters per second of `fn` (which returns how many it made), best of `repeats`."""
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        n = fn()
        best = max(best, n / (time.perf_counter() - t0))
    return best


def verdict(ratio: float, target: float, at_least: bool = True) -> str:
    ok = ratio >= target if at_least else ratio <= target
    return "PASS" if ok else "MISS"


def seed_model(chars: int, repeats: int) -> None:
    vocab = load_corpus().vocab
    torch.manual_seed(0)
    cfg = get_preset("seed").model
    model = CharLSTM(type(cfg)(**{**cfg.to_dict(), "vocab_size": len(vocab)})).eval()
    one = SampleOptions(seed=1, max_chars=chars, stop_at_tune_end=False)
    batch = SampleOptions(seed=1, max_chars=max(chars // 4, 200), stop_at_tune_end=False)

    seed_style_stream(model, vocab, "X", 50)  # warm-up
    lab = best_rate(lambda: len(seed_style_stream(model, vocab, "X", chars)), repeats)
    print(f"\n1. seed-size model (LSTM {cfg.hidden_size}), {torch.get_num_threads()} torch threads")
    print(f"{'sampler':44} {'chars/s':>10} {'x lab':>8}  target")
    print(f"{'lab loop (nn.LSTM per char, multinomial)':44} {lab:10,.0f} {1:8.1f}")
    precisions = ["fp32", "int8"] + (["int4"] if int4_supported() else [])
    if int4_supported():
        print(f"int4 kernel: {q4.configure()}, {q4.threads()} threads")
    for precision in precisions:
        s = Sampler(model, vocab, precision)
        s.generate(SampleOptions(seed=0, max_chars=50, stop_at_tune_end=False))  # warm-up
        for n, opts, target in ((1, one, 20), (16, batch, 100)):

            def run(s: Sampler = s, n: int = n, o: SampleOptions = opts) -> int:
                return sum(map(len, s.generate_batch(n, o)))

            r = best_rate(run, repeats)
            name = f"folkgen sampler, {n} stream{'s' if n > 1 else ''}, {precision}"
            print(f"{name:44} {r:10,.0f} {r / lab:8.1f}  >= {target}x {verdict(r / lab, target)}")


Cell = tuple[int, float, float]  # characters made, wall seconds, this process's CPU seconds


def shipped_run(rounds: int, freeze: bool, table: bool, cold: bool) -> None:
    """One run of part 2 in this process, as a fresh app samples (`cold`: as the CLI): prints
    its figures as JSON (the grammar's preparation, the first grammar tune, then per stream
    count and round: raw, then grammar). The grammar is made as the app's engine makes it, idle
    after loading the model, or with `cold` by the first grammar tune (in the first round);
    either loads the shipped state table unless `table` is False. With `freeze` the objects
    that exist once the model is loaded (and the grammar made, unless `cold`) are moved out of
    the garbage collector's sight, as the app's engine does (core.engine): else each full
    collection, which the grammar's growing state table sets off, walks torch's too."""
    path = shipped_model_path()
    assert path is not None
    if not table:  # as a build without the file
        core.sample.shipped_grammar_table_path = lambda: path.with_suffix(".no-table")
    generator = load_generator(path)
    sampler = generator.sampler
    out: dict[str, object] = {"precision": sampler.precision, "hidden": sampler.hidden}
    if freeze:
        gc.collect()
        gc.freeze()
    if not cold:  # as the app's engine, once idle after loading
        t0 = time.perf_counter()
        generator.prepare()
        out["prepare"] = time.perf_counter() - t0
        if freeze:
            gc.freeze()

    def tunes(n: int, seeds: list[int], grammar: bool) -> Cell:
        t0, c0 = time.perf_counter(), time.process_time()
        count = 0
        for s in seeds:
            count += sum(
                map(len, sampler.generate_batch(n, SampleOptions(seed=s, grammar=grammar)))
            )
            if grammar and "first" not in out:  # the process's first grammar tune
                out["first"] = (count, time.perf_counter() - t0, time.process_time() - c0)
        return count, time.perf_counter() - t0, time.process_time() - c0

    tunes(1, [1], False)  # warm-up: the model's first steps, no grammar
    tunes(16, [2], False)
    for n, per_round in ((1, 4), (16, 1)):
        cells = []
        for r in range(rounds):
            seeds = [100 + 16 * per_round * r + 16 * k for k in range(per_round)]
            pair = {}
            for grammar in (False, True) if r % 2 == 0 else (True, False):  # drift cancels
                pair[grammar] = tunes(n, seeds, grammar)
            cells.append([pair[False], pair[True]])
        out[str(n)] = cells
    out["rows"] = [sampler.grammar.rows_read, sampler.grammar.rows_made]
    print(json.dumps(out))


def shipped_model(rounds: int, repeats: int, freeze: bool, table: bool, cold: bool) -> None:
    """Part 2: `repeats` runs, each in a fresh child process (the same seeds, so the same
    work); each round's figure is its best run, as a shared machine's load only ever slows a
    run down."""
    if shipped_model_path() is None:
        print("\n2. no shipped model here: grammar cost not measured")
        return
    runs = []
    for _ in range(repeats):
        cmd = [sys.executable, __file__, "--part", "shipped-run", "--rounds", str(rounds)]
        cmd += ([] if freeze else ["--no-freeze"]) + ([] if table else ["--no-table"])
        cmd += ["--cold"] if cold else []
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        runs.append(json.loads(proc.stdout.splitlines()[-1]))

    def best(cells: list[Cell]) -> Cell:
        assert len({c[0] for c in cells}) == 1, "runs of the same seeds made different tunes"
        return cells[0][0], min(c[1] for c in cells), min(c[2] for c in cells)

    first = runs[0]
    print(f"\n2. shipped model (LSTM {first['hidden']}, {first['precision']}), grammar on vs off, "
          f"whole tunes, copy model on; {rounds} rounds of fresh seeds, best of {repeats} "
          "runs per round, all chars / all time; long-lived objects "
          f"{'frozen as in the app' if freeze else 'not frozen (as the CLI runs)'}")  # fmt: skip
    read, made = first["rows"]
    source = (f"the shipped state table loaded ({read:,} of its rows read)" if table
              else "no stored state table")  # fmt: skip
    if cold:
        print(f"   from the first grammar tune of each process (as the CLI), {source}, "
              f"{made:,} rows built")  # fmt: skip
    else:
        prepared = min(r["prepare"] for r in runs)
        print(f"   made as the app's engine makes it, idle after loading the model: "
              f"{prepared * 1000:.0f} ms (--cold: by the first grammar tune, as the CLI); "
              f"{source}, {made:,} rows built")  # fmt: skip
    first, first_s, _ = best([r["first"] for r in runs])
    print(f"   first grammar tune in a process: {first / first_s:,.0f} chars/s "
          f"({first_s * 1000:.0f} ms, {first} chars"
          f"{', the grammar making counted' if cold else ''})")  # fmt: skip
    print(f"   {'streams':8} {'raw chars/s':>12} {'grammar chars/s':>16} {'cost':>7}  target"
          f"{'cost by CPU time':>24}")  # fmt: skip
    for n in (1, 16):
        totals = {False: [0.0, 0.0, 0.0], True: [0.0, 0.0, 0.0]}  # chars, wall s, CPU s
        costs = []
        for r in range(rounds):
            rates = {}
            for g, grammar in enumerate((False, True)):
                cell = best([run[str(n)][r][g] for run in runs])
                for i, v in enumerate(cell):
                    totals[grammar][i] += v
                rates[grammar] = cell[0] / cell[1]
            costs.append(1 - rates[True] / rates[False])
        (raw_n, raw_s, raw_cpu), (gram_n, gram_s, gram_cpu) = totals[False], totals[True]
        raw, gram = raw_n / raw_s, gram_n / gram_s
        cost, cpu_cost = 1 - gram / raw, 1 - (gram_n / gram_cpu) / (raw_n / raw_cpu)
        print(f"   {n:<8} {raw:12,.0f} {gram:16,.0f} {cost:7.1%}  <= 15 % "
              f"{verdict(cost, 0.15, at_least=False)}{cpu_cost:14.1%}"
              f"   (rounds: {min(costs):.0%} to {max(costs):.0%})")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--chars", type=int, default=1500, help="characters per seed-model run")
    ap.add_argument("--repeats", type=int, default=3, help="runs per figure (best)")
    ap.add_argument("--rounds", type=int, default=8, help="rounds of fresh seeds (grammar)")
    ap.add_argument("--part", choices=["all", "seed", "shipped", "shipped-run"], default="all")
    emulate = ap.add_mutually_exclusive_group()
    emulate.add_argument("--avx2", action="store_true", help="emulate an AVX2-only CPU")
    emulate.add_argument(
        "--avx-vnni", action="store_true", help="emulate an AVX2 CPU with AVX-VNNI (one that has it)"
    )
    ap.add_argument(
        "--no-freeze", action="store_true",
        help="part 2 without the app's gc.freeze of what exists once the model is loaded",
    )  # fmt: skip
    ap.add_argument(
        "--cold", action="store_true",
        help="part 2 as the CLI runs: the first grammar tune makes the grammar, and it counts",
    )  # fmt: skip
    ap.add_argument(
        "--no-table", action="store_true",
        help="part 2 without the shipped grammar state table (every row built as tunes go)",
    )  # fmt: skip
    args = ap.parse_args()
    wanted = "avx2" if args.avx2 else "avx-vnni" if args.avx_vnni else None
    if wanted is not None and emulation() != wanted:
        rerun_emulating(wanted, __file__, sys.argv[1:])
    if emulation() == "avx-vnni" and q4.available() and "avx-vnni" not in q4.supported():
        sys.exit("--avx-vnni: this CPU has no AVX-VNNI, so its int4 kernel cannot run here")
    if args.part == "shipped-run":  # one run of part 2, for the parent (which prints it)
        shipped_run(args.rounds, not args.no_freeze, not args.no_table, args.cold)
        return
    print(f"torch {torch.__version__}; {describe()}")
    if args.part in ("all", "seed"):
        seed_model(args.chars, args.repeats)
    if args.part in ("all", "shipped"):
        shipped_model(args.rounds, args.repeats, not args.no_freeze, not args.no_table, args.cold)
    print(describe().splitlines()[0].split("; ")[1] + " (at the end)")


if __name__ == "__main__":
    main()
