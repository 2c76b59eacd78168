"""Training at scale (issue 17), each figure against a reference measured in the same run.

1. The single-process loop (core/train.py's Trainer) against the loop it replaced, loaded from
   git (`git show b42e18e:core/train.py` into a temporary module: no copy of the old code lives
   in the repository; names removed since are stood in for): chars/s in turns, same recipe and
   seed. Target: ratio >= 0.97.
2. chars/s of `folkgen train` as 1 and as 2 CPU processes (`--nproc 2`, torchrun + gloo; each
   rank a share of the cores), the same recipe per rank.
3. The GPU, when there is one: chars/s of the seed and default recipes.
4. A 100 MB corpus (the default corpus transposed to every key and repeated, in a temp file):
   seconds to load it and take the first training step, and the peak resident memory (VmHWM)
   of the process that did, in a fresh process.

Prints the CPU's vector extensions and the load average: on a loaded machine the ratios hold,
the absolute figures do not."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import describe  # noqa: E402  (the repository root is on the path now)

OLD_LOOP = "b42e18e"  # the commit whose core/train.py is "today's loop" for issue 17
BIG_BYTES = 100_000_000


def old_train_module() -> ModuleType:
    """core/train.py as it was at OLD_LOOP, imported under another name."""
    source = subprocess.run(
        ["git", "show", f"{OLD_LOOP}:core/train.py"], cwd=ROOT, capture_output=True, text=True,
        check=True,
    ).stdout  # fmt: skip
    import core.batches

    if not hasattr(core.batches, "SequentialBatches"):  # removed since, with the option
        source = source.replace(
            "from core.batches import SequentialBatches, get_batch",
            "from core.batches import get_batch\n\nSequentialBatches = None",
        ).replace('cfg.batching == "sequential"', 'getattr(cfg, "batching", "") == "sequential"')
    folder = tempfile.mkdtemp(prefix="old-train-")
    path = Path(folder) / "train_b42e18e.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("train_b42e18e", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def loop_ratio(preset: str, steps: int, rounds: int) -> None:
    import core.train as new
    from core.corpus import load_corpus
    from core.presets import get_preset

    old = old_train_module()
    corpus = load_corpus()
    p = get_preset(preset)
    # One thread: both loops compute the same numbers (the automatic count follows other
    # processes' load, and with it the order of torch's sums), and on a shared machine two
    # OpenMP threads waiting for each other make each run's speed a lottery.
    cfg = replace(p.train, steps=steps, eval_every=0, checkpoint_every=0, device="cpu", threads=1)
    ratios: list[float] = []
    speeds: dict[str, list[float]] = {"old": [], "new": []}
    losses: dict[str, float] = {}
    for i in range(rounds):
        pair = (("old", old), ("new", new)) if i % 2 == 0 else (("new", new), ("old", old))
        for name, module in pair:
            result = module.train(corpus, p.model, cfg)
            speeds[name].append(result.chars_per_sec)
            losses[name] = result.loss
        ratios.append(speeds["new"][-1] / speeds["old"][-1])
    o, n = statistics.median(speeds["old"]), statistics.median(speeds["new"])
    print(
        f"loop, {preset} preset, 1 thread, {steps} steps x {rounds} rounds in turns: today's "
        f"{o:,.0f} chars/s, Trainer {n:,.0f} chars/s; ratio (median of the rounds') "
        f"{statistics.median(ratios):.3f} (target >= 0.97; rounds: "
        f"{' '.join(f'{r:.2f}' for r in ratios)}); same final loss: {losses['old'] == losses['new']}"
    )


def cli_speed(preset: str, steps: int, nproc: int, home: str) -> float:
    out = Path(home) / f"p{nproc}.pt"
    command = [sys.executable, "-m", "core.cli", "train", "--preset", preset, "--steps",
               str(steps), "--out", str(out), "--json", "--force"]  # fmt: skip
    if nproc > 1:
        command += ["--nproc", str(nproc)]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, check=True,
        env={**os.environ, "FOLKGEN_HOME": home},
    )  # fmt: skip
    return float(json.loads(done.stdout.strip().splitlines()[-1])["chars_per_sec"])


def processes(preset: str, steps: int) -> None:
    with tempfile.TemporaryDirectory() as home:
        one = cli_speed(preset, steps, 1, home)
        two = cli_speed(preset, steps, 2, home)
    print(
        f"folkgen train, {preset} preset per rank, {steps} steps: 1 process {one:,.0f} chars/s, "
        f"2 processes (gloo) {two:,.0f} chars/s all ranks together, x{two / one:.2f}"
    )


def gpu() -> None:
    import torch

    if not torch.cuda.is_available():
        print("GPU: none here (not measured)")
        return
    from core.corpus import load_corpus
    from core.presets import get_preset
    from core.train import train

    corpus = load_corpus()
    print(f"GPU: {torch.cuda.get_device_name()}")
    for preset, steps in (("seed", 300), ("default", 300)):
        p = get_preset(preset)
        cfg = replace(p.train, steps=steps, eval_every=0, checkpoint_every=0, device="cuda")
        result = train(corpus, p.model, cfg)
        print(f"  {preset} preset, {steps} steps: {result.chars_per_sec:,.0f} chars/s")


def make_big_corpus(path: Path, size: int) -> int:
    """The default corpus in every key a transposition reaches, repeated up to `size` bytes."""
    from core.corpus import load_corpus
    from core.transpose import augment

    tunes = [t.strip("\n") for t in load_corpus().tunes]
    tunes += augment(tunes, [s for s in range(-6, 7) if s])
    block = ("\n\n".join(t.strip("\n") for t in tunes) + "\n\n").encode("utf-8")
    with path.open("wb") as f:
        for _ in range(size // len(block)):
            f.write(block)
        f.write(block[: size % len(block)].rsplit(b"\n\n", 1)[0] + b"\n\n")
    return len(tunes)


def _status_kb(field: str) -> int:
    status = Path("/proc/self/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith(field))


def big_child(path: str, preset_name: str) -> None:
    """In a fresh process: load the corpus and take the preset's first step; print JSON."""
    t0 = time.perf_counter()
    from core.corpus import load_corpus
    from core.presets import get_preset
    from core.train import TrainControl, Trainer, TrainEvent

    t_import = time.perf_counter()
    base = _status_kb("VmRSS")  # torch and the rest, before the corpus
    corpus = load_corpus(path)
    t_load = time.perf_counter()
    preset = get_preset(preset_name)
    cfg = replace(preset.train, eval_every=0, checkpoint_every=0, device="cpu")
    control = TrainControl()
    first: list[float] = []

    def on_event(e: TrainEvent) -> None:
        if e.kind == "step" and not first:
            first.append(time.perf_counter())
            control.stop(hurry=True)  # no final evaluation: this measures the start

    Trainer(corpus, preset.model, cfg, on_event=on_event, control=control).run()
    print(json.dumps({
        "tunes": len(corpus.tunes), "chars": len(corpus.text), "import_s": t_import - t0,
        "load_s": t_load - t_import, "first_step_s": first[0] - t_load,
        "peak_rss_mb": _status_kb("VmHWM") / 1024, "base_rss_mb": base / 1024,
    }))  # fmt: skip


def big_corpus() -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.abc"
        distinct = make_big_corpus(path, BIG_BYTES)
        size = path.stat().st_size
        for preset in ("tiny", "default"):  # the default recipe transposes (a sample: core.train)
            done = subprocess.run(
                [sys.executable, __file__, "--big-child", str(path), "--preset", preset],
                cwd=ROOT, capture_output=True, text=True, check=True,
            )  # fmt: skip
            r = json.loads(done.stdout)
            print(
                f"{size / 1e6:.0f} MB corpus ({r['tunes']:,} tunes, {distinct:,} distinct, "
                f"{r['chars']:,} chars): load {r['load_s']:.1f} s, then the {preset} recipe's "
                f"set-up and first step {r['first_step_s']:.1f} s (imports {r['import_s']:.1f} s "
                f"before); peak resident memory {r['peak_rss_mb']:,.0f} MB, of which the corpus "
                f"and training set-up {r['peak_rss_mb'] - r['base_rss_mb']:,.0f} MB "
                f"({(r['peak_rss_mb'] - r['base_rss_mb']) * 2**20 / size:.1f} bytes per corpus "
                "byte)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--big-child", help=argparse.SUPPRESS)
    parser.add_argument("--preset", default="tiny", help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--skip-big", action="store_true", help="leave out the 100 MB corpus")
    args = parser.parse_args()
    if args.big_child:
        big_child(args.big_child, args.preset)
        return
    print(f"{describe()}; cores: {os.cpu_count()}")
    loop_ratio("tiny", 200, args.rounds)
    loop_ratio("default", 20, args.rounds)
    processes("tiny", 300)
    processes("default", 60)
    gpu()
    if not args.skip_big:
        big_corpus()
    print(f"load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
