"""The headless command line: `folkgen stats | train | generate | evaluate` (and the sound
commands from core.cli_sound). Heavy modules are imported inside the commands that need them."""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from core.abc import SoundError, plural
from core.corpus import (
    CorpusError,
    CreditedStream,
    UnknownCharacters,
    compute_stats,
    credited,
    generation_credit,
    load_corpus,
)
from core.paths import (
    NO_MODEL,
    DefaultCorpusMissing,
    default_models,
    named_model,
    output_recipe,
    resolve_model_path,
    training_output_path,
)
from core.presets import PRESETS, ConfigError, get_preset, with_overrides
from core.terminal import leave_gone_terminal
from core.train_events import NothingLeftToTrain

if TYPE_CHECKING:
    from core.corpus import Corpus
    from core.generation import Generator
    from core.novelty import NoveltyIndex


class CliError(Exception):
    """Ends the command with a one-line message and exit status 1."""


# The exit status of a command ended by Ctrl+C (128 + SIGINT), after what it saves and says.
INTERRUPTED = 130
# Columns for train's progress line where it is not drawn on a terminal: its whole length.
UNCUT_WIDTH = 1_000


def _err(msg: str) -> None:
    print(f"folkgen: error: {msg}", file=sys.stderr)


def _finite(obj: object) -> object:
    """JSON has no NaN or infinity: a number that is not finite is written as null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    return obj


def _emit_json(obj: object) -> None:
    print(json.dumps(_finite(obj), ensure_ascii=False, allow_nan=False))


def _number(text: str, kind: type[int] | type[float]) -> int | float:
    """`text` as a number; argparse's own message named this function ("invalid
    _positive_int value")."""
    try:
        return kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"must be {what}, not {text!r}") from None


def _positive_int(text: str) -> int:
    value = int(_number(text, int))
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, not {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(_number(text, int))
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


# Tunes one `generate` makes: each goes into the history, which keeps the last 10,000
# (core.library.HISTORY_KEEP), so a runaway --count pushed all of it out.
MAX_COUNT = 1_000


def _tune_count(text: str) -> int:
    value = _positive_int(text)
    if value > MAX_COUNT:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_COUNT:,}, not {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(_number(text, float))
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


# --- stats ------------------------------------------------------------------------------------


def cmd_stats(args: argparse.Namespace) -> int:
    corpus = load_corpus(args.corpus)
    stats = compute_stats(corpus)
    if args.json:  # the files a folder's corpus left out, as the text says them on stderr
        _emit_json({**stats.to_dict(), "skipped": list(corpus.skipped)})
        return 0
    print(f"{stats.name}: {plural(stats.tunes, 'tune')}, {stats.characters:,} characters")
    print(f"vocabulary: {len(stats.vocabulary)} characters")
    print(
        f"tune length: {stats.length_min}–{stats.length_max} characters, "
        f"mean {stats.length_mean:.0f}"
    )
    print("meters: " + ", ".join(f"{m} {n}" for m, n in stats.meters))
    print("keys:   " + ", ".join(f"{k} {n}" for k, n in stats.keys[:10]))
    common = ", ".join(f"{c!r} {n}" for c, n in stats.vocabulary[:12])
    print(f"most common characters: {common}")
    for skipped in corpus.skipped:
        print(f"skipped: {skipped}", file=sys.stderr)
    return 0


# --- train ------------------------------------------------------------------------------------


def _launch_ranks(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """`folkgen train --nproc N`: the same command as N ranks on this machine, under torchrun
    (which sets each one's RANK, LOCAL_RANK and WORLD_SIZE)."""
    import contextlib
    import subprocess

    from core.threads import all_cores

    if "WORLD_SIZE" in os.environ:
        raise CliError("--nproc starts torchrun itself; under torchrun, leave it out")
    cores = all_cores()
    if args.nproc > cores:  # each rank loads torch and the model: 99 of them ran out of memory
        raise CliError(f"--nproc {args.nproc} is more ranks than this machine's {cores} cores "
                       f"(each rank needs a core of its own): use at most {cores}")  # fmt: skip
    rest = [a for i, a in enumerate(argv) if not _is_nproc(argv, i)]
    command = [
        sys.executable, "-m", "core.torchrun", "--standalone",
        f"--nproc-per-node={args.nproc}", "-m", "core.cli", *rest,
    ]  # fmt: skip
    # Each rank's share of the cores (training sets it again); said here, torchrun does not
    # print its banner about choosing 1 for every rank.
    threads = os.environ.get("OMP_NUM_THREADS") or str(max(1, cores // args.nproc))
    # torchrun in a session of its own: a Ctrl+C in the terminal reaches this process alone,
    # which asks the ranks to save and stop (torchrun told would SIGKILL them 30 s later).
    proc = subprocess.Popen(
        command, env={**os.environ, "OMP_NUM_THREADS": threads}, start_new_session=True
    )
    interrupted = False

    def on_stop(signum: int, frame: object) -> None:
        """Asked to end (SIGTERM, Ctrl+C, the terminal gone): the ranks (torchrun's children)
        save and stop, and torchrun ends with them. Told itself, torchrun would end with a
        traceback and status 1; left alone at a hang-up, the ranks trained on unseen."""
        nonlocal interrupted
        interrupted = interrupted or signum == signal.SIGINT
        try:
            ranks = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        except OSError:  # not Linux: through torchrun
            ranks = []
        for pid in ranks:
            with contextlib.suppress(OSError):
                os.kill(int(pid), signal.SIGTERM)
        if not ranks:
            proc.send_signal(signal.SIGTERM)

    def on_hang_up(signum: int, frame: object) -> None:
        """The terminal has gone: told once, however many hang-ups come (each rank's second
        SIGTERM would end it before it saved)."""
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        leave_gone_terminal()
        on_stop(signum, frame)

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    if signal.getsignal(signal.SIGHUP) != signal.SIG_IGN:  # under nohup the run goes on
        signal.signal(signal.SIGHUP, on_hang_up)
    status = proc.wait()
    return INTERRUPTED if interrupted and status == 0 else status  # as a single process


def _is_nproc(argv: Sequence[str], i: int) -> bool:
    """Whether argv[i] is --nproc (or argparse's abbreviation of it, --npro), its value, or
    --nproc=N: what the ranks must not be given again."""

    def option(a: str) -> bool:  # a prefix argparse resolved to --nproc: it was unambiguous
        name = a.split("=", 1)[0]
        return len(name) >= 3 and "--nproc".startswith(name)

    if option(argv[i]):
        return True
    return i > 0 and option(argv[i - 1]) and "=" not in argv[i - 1]


def cmd_train(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    if args.new_vocab and not args.resume:  # refused as argparse refuses --steps with --minutes
        args.usage_error("argument --new-vocab: not allowed without argument --resume")
    if args.nproc:  # before torch is imported: this process only waits for torchrun
        return _launch_ranks(args, sys.argv[1:] if args.argv is None else args.argv)
    from core import distributed
    from core.checkpoint import load_checkpoint
    from core.train import (
        TrainControl,
        TrainEvent,
        check_steps_left,
        check_training_destination,
        train,
    )

    ranks = distributed.from_env()
    preset = get_preset(args.preset or "default")
    resume = load_checkpoint(named_model(args.resume)) if args.resume else None
    if resume is not None and ranks.master:
        # What a resumed run does that the command line does not say (it went unsaid).
        if args.preset:
            print(f"--preset {args.preset} is not used: a resumed model keeps its own recipe",
                  file=sys.stderr)  # fmt: skip
        budget = resume.train_config.minutes
        if budget and args.steps is None and args.minutes is None:
            print(f"resuming with the checkpoint's time budget, {budget:g} minutes (--steps or "
                  "--minutes sets another)", file=sys.stderr)  # fmt: skip
    cfg = preset.train if resume is None else resume.train_config
    given = {field: getattr(args, _dest(flag)) for field, flag in TRAIN_FLAGS.items()}
    try:
        cfg = with_overrides(cfg, **given)
    except ConfigError as e:  # named by the option typed ("--lr (learning rate) must be …")
        flag = TRAIN_FLAGS.get(e.field or "")
        if flag is None or given[e.field or ""] is None or e.problem == str(e):
            raise
        raise CliError(_named(flag, str(e).removesuffix(" " + e.problem), e.problem)) from None
    corpus = load_corpus(args.corpus)
    if resume is not None and args.corpus is None and not corpus.is_described_by(resume.corpus):
        # Resumed on the default corpus unasked, a model of one's own tunes was trained on
        # others and saved over itself (its keys, its best model, all another corpus's).
        name, tunes = resume.corpus.get("name", "?"), resume.corpus.get("tunes", "?")
        raise CliError(
            f"{args.resume} was trained on {name} ({tunes} tunes), not on the default corpus: "
            "give --corpus, that corpus's file or folder (or another's, to carry the model on "
            "to it)"
        )
    if resume is not None:
        try:
            check_steps_left(resume.step, cfg)
        except NothingLeftToTrain as e:  # in the options' words: what was typed, and what to type
            raise CliError(_nothing_left(e, args.steps)) from None
    # Carried over to another vocabulary, the model is a new one: it never replaces the old.
    resumed = resume.path if resume is not None and not args.new_vocab else None
    recipe = output_recipe(preset.name, resume.path if resume is not None else None)
    out = Path(args.out) if args.out else training_output_path(
        corpus.name, recipe, resumed, claim=ranks.master
    )
    if ranks.master:  # rank 0 alone writes, on its machine
        check_training_destination(out, replace_any=args.force, resumed=resumed)

    control = TrainControl()
    interrupted = False

    def on_sigint(signum: int, frame: object) -> None:
        nonlocal interrupted
        interrupted = True  # saved and said as a stop; the exit status tells scripts
        control.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl+C aborts

    def on_sigterm(signum: int, frame: object) -> None:
        # Asked to end (a job scheduler, torchrun, kill): save at once, without the last
        # evaluation; under torchrun every rank stops at the next step. A second one ends it.
        control.stop(hurry=True)
        leave_gone_terminal()  # a rank told by a launcher whose terminal has gone
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def on_sighup(signum: int, frame: object) -> None:
        # The terminal has gone (its window closed, an SSH link dropped): as SIGTERM. It may
        # come again (a shell passes its own on, and the kernel sends one as the terminal
        # closes, before or after): one event, ignored from now until the process ends.
        control.stop(hurry=True)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        leave_gone_terminal()

    previous = signal.signal(signal.SIGINT, on_sigint)
    previous_term = signal.signal(signal.SIGTERM, on_sigterm)
    previous_hup = signal.getsignal(signal.SIGHUP)
    if previous_hup != signal.SIG_IGN:  # under nohup the run outlives its terminal, as asked
        signal.signal(signal.SIGHUP, on_sighup)
    quiet = args.json or not sys.stderr.isatty() and not args.progress or not ranks.master
    total = None if cfg.minutes else cfg.steps
    # Not on a terminal (--progress into a log) the line is drawn once, at the end: whole, not
    # cut at 80 columns (its ETA went).
    console = None if sys.stdout.isatty() else Console(width=UNCUT_WIDTH)
    progress = Progress(
        TextColumn("[bold]training"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        TextColumn(" elapsed"),  # beside the ETA, an unlabelled time read as a second one
        TimeElapsedColumn(),
        transient=False,
        disable=quiet,
        console=console,
    )
    task = progress.add_task("train", total=total or cfg.minutes * 60, status="")  # type: ignore[operator]
    last_draw = [0.0]

    def on_event(e: TrainEvent) -> None:
        now = time.monotonic()
        if e.kind == "step" and now - last_draw[0] < 0.2:
            return
        last_draw[0] = now
        val = f"  val {e.val_bpc:.3f} bits/char" if e.val_bpc is not None else ""
        eta = f"  eta {e.eta_s:.0f}s" if e.eta_s is not None else ""
        steps = f"{e.step}/{e.total_steps}" if e.total_steps else f"{e.step}"
        # The loss in nats (cross-entropy, as PyTorch gives it); validation in bits a character.
        speed = f"  {e.chars_per_sec:,.0f} chars/s"  # after the ETA: a narrow terminal cuts it
        status = f"step {steps}  loss {e.smooth_loss:.3f} nats{val}{eta}{speed}"
        progress.update(task, completed=e.step if total else e.elapsed_s, status=status)
        if e.kind == "warning" and not args.json:
            progress.console.print(f"warning: {e.message}", soft_wrap=True)

    try:
        with progress:
            result = train(
                corpus,
                preset.model,
                cfg,
                checkpoint_path=out,
                resume=resume,
                allow_new_vocab=args.new_vocab,
                on_event=on_event,
                control=control,
                ranks=ranks,
            )
            # A terminal that went during the run (the hang-up may come before it closes):
            # the progress bar's last draw and the summary go nowhere rather than fail.
            leave_gone_terminal()
    finally:  # (None: a handler not set from Python, which cannot be put back)
        hup = previous_hup if signal.getsignal(signal.SIGHUP) is on_sighup else None
        for sig, handler in ((signal.SIGINT, previous), (signal.SIGTERM, previous_term),
                             (signal.SIGHUP, hup)):  # fmt: skip
            if handler is not None:
                signal.signal(sig, handler)
    if not ranks.master:  # rank 0 reports and saves
        return 0
    summary: dict[str, object] = {
        "steps": result.step,
        "stopped": result.stopped,
        "loss": result.loss,
        "val_bpc": result.val_bpc,
        "best_val_bpc": result.best_val_bpc,
        "seconds": round(result.elapsed_s, 2),
        "chars_per_sec": round(result.chars_per_sec, 1),
        "checkpoint": str(result.checkpoint) if result.checkpoint else None,
        "best_checkpoint": str(result.best_checkpoint) if result.best_checkpoint else None,
        "diverged": result.diverged,
    }
    if args.json:
        _emit_json(summary)
    else:
        how = "stopped" if result.stopped else "done"
        val = f", validation {result.val_bpc:.3f} bits/char" if result.val_bpc is not None else ""
        print(
            f"{how} after {result.step} steps in {result.elapsed_s:.1f}s "
            f"({result.chars_per_sec:,.0f} chars/s){val}"
        )
        if result.checkpoint:
            print(f"checkpoint: {result.checkpoint}")
        if result.best_checkpoint:
            print(f"best by validation: {result.best_checkpoint} ({result.best_val_bpc:.3f})")
        if result.diverged:  # it finished and saved: status 0, but not a model to use
            print(f"folkgen: warning: {result.diverged} (--lr)", file=sys.stderr)
    status = _train_saved(result.step, result.checkpoint_step, out)
    return INTERRUPTED if interrupted and status == 0 else status


def _nothing_left(e: NothingLeftToTrain, steps: int | None) -> str:
    """Why a resumed run has nothing to do, in the options' words: --steps counts from the
    start, and without it the checkpoint's own steps (all done) were the ones asked for."""
    if steps is None:
        return (f"the checkpoint has done its {plural(e.done, 'step')}: give --steps N (more "
                f"than {e.done}) or --minutes M to train it on")  # fmt: skip
    return (f"--steps {steps} counts from the start, and the checkpoint is already at step "
            f"{e.done}: give more than {e.done} (or --minutes M)")  # fmt: skip


def _train_saved(step: int, saved_step: int | None, out: Path) -> int:
    """Exit status of a run: 1, with the reason, when its last state is not in a checkpoint."""
    if saved_step == step:
        return 0
    if saved_step is None:
        _err(f"nothing was saved to {out} (see the warnings above)")
    else:
        _err(f"{out} holds step {saved_step}, not the run's last step {step} (see the warnings)")
    return 1


# --- generate ---------------------------------------------------------------------------------


def load_generator_for(model: str | None, precision: str = "auto") -> tuple[Generator, str]:
    """The model to generate with (core.generation, as the app) and why it was chosen: the one
    named, else the first of the defaults that loads, each passed over said on stderr."""
    from core.generation import load_first_generator, load_generator

    if model:
        path, why = resolve_model_path(model)
        return load_generator(path, precision), why
    models = default_models()
    if not models:
        raise CliError(NO_MODEL)
    generator, path, passed_over = load_first_generator([p for p, _ in models], precision)
    for line in passed_over:
        print(f"folkgen: warning: {line}", file=sys.stderr)
    return generator, dict(models)[path]


def novelty_index_for(corpus: Corpus | None, corpus_path: str | None = None) -> NoveltyIndex | None:
    """The near-copy index for a model's tunes: of the corpus the user names, else of the
    model's training corpus when it is known here. None otherwise."""
    from core.novelty import NoveltyIndex

    if corpus_path is not None:
        return NoveltyIndex(load_corpus(corpus_path).tunes)  # asked for: its errors are shown
    return NoveltyIndex(corpus.tunes) if corpus is not None else None


def cmd_generate(args: argparse.Namespace) -> int:
    from core.audio import save_tune
    from core.cli_library import GenerateHistory
    from core.cli_sound import voice_from_args
    from core.judge import judge
    from core.sample_options import MAX_SEED, SampleOptions, SettingError, random_seed

    seed = args.seed if args.seed is not None else random_seed()
    seeds = args.count * (args.max_tries if args.valid_only else 1)  # one each try, from seed
    if not 0 <= seed <= MAX_SEED - seeds + 1:
        why = f" (its {seeds} tunes or tries take it and the seeds after it)" if seeds > 1 else ""
        raise CliError(
            f"--seed must be a whole number from 0 to {MAX_SEED - seeds + 1:,}{why}, not {seed}"
        )
    prompt = args.prompt.replace("\\n", "\n")

    def options(seed: int) -> SampleOptions:
        return SampleOptions(
            prompt=prompt, temperature=args.temperature, top_k=args.top_k or None, seed=seed,
            max_chars=args.max_chars, grammar=args.grammar,
        )  # fmt: skip

    try:  # before the model loads (seconds)
        options(seed).check_settings()
    except SettingError as e:  # named by the option typed
        if e.field not in SAMPLE_FLAGS:
            raise
        raise CliError(_named(SAMPLE_FLAGS[e.field], e.field, e.problem)) from None
    if args.save:  # before any sampling: a folder that cannot be written fails at once
        folder = Path(args.save).expanduser()
        if folder.exists() and not folder.is_dir():
            raise CliError(f"{args.save} exists and is not a folder (--save takes a folder)")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CliError(f"cannot make the folder {args.save} ({e.strerror})") from None
        if not os.access(folder, os.W_OK | os.X_OK):
            raise CliError(f"cannot write in {args.save}")
    generator, why = load_generator_for(args.model, args.precision)
    sampler, ckpt = generator.sampler, generator.checkpoint
    print(f"model: {ckpt.path} ({why}; {sampler.precision} sampling)", file=sys.stderr)
    if sampler.note:
        print(f"note: {sampler.note}", file=sys.stderr)
    novelty = novelty_index_for(generator.corpus, args.corpus)
    history = GenerateHistory(ckpt.path)  # every tune shown goes into the tunebook's history
    if args.grammar:  # before the prompt is printed: a prompt the grammar cannot follow
        problem = sampler.prompt_problem(sampler.model_prompt(prompt))
        if problem is not None:  # the app offers the grammar's keys; here, the way around it
            raise CliError(f"{problem} (--no-grammar samples the model's raw output)")
    stream_out = not args.json and not args.valid_only
    rejected = 0
    for _ in range(args.count):
        cut_off = 0  # tries that reached --max-chars before the tune's end
        for _attempt in range(args.max_tries):
            opts = options(seed)
            seed += 1
            opts.validate(sampler.vocab)
            model = ckpt.path.name if ckpt.path else ""
            credit = generation_credit(model, opts.seed, opts.temperature, opts.top_k, prompt)
            t0 = time.perf_counter()
            if stream_out:  # printed credited, as saved: the model's Z: line named a corpus tune
                out = CreditedStream(prompt, credit)
                sys.stdout.write(out.start())
                parts = []
                for ch in sampler.stream(opts):
                    parts.append(ch)
                    sys.stdout.write(out.feed(ch))
                    if ch == "\n":
                        sys.stdout.flush()
                sys.stdout.write(out.end())
                generated = "".join(parts)
            else:
                generated = sampler.generate(opts)
            seconds = time.perf_counter() - t0
            text = prompt + generated
            # The text printed (JSON's is as made), so that an error's line and column point
            # into it; the app checks what it shows, credited too.
            shown = text if args.json else credited(text, credit)
            verdict = judge(shown, novelty)  # the app's verdict, through the same call
            if verdict.check_error and (args.valid_only or args.save):
                raise CliError(verdict.check_error)
            check = verdict.check
            if not args.valid_only or (check is not None and check.valid):
                break
            rejected += 1
            cut_off += bool(verdict.incomplete) and len(generated) >= args.max_chars
            first = check.first_error if check is not None else verdict.incomplete
            print(f"[seed {opts.seed}: rejected, {first}]", file=sys.stderr)
        else:
            raise CliError(_no_valid_tune(args.max_tries, args.max_chars, cut_off))
        match = verdict.closest
        saved = None
        if args.save:
            saved = save_tune(text, args.save, voice=voice_from_args(args), credit=credit)
        tune_id = history.record(text, opts, verdict, saved.paths if saved is not None else None)
        if args.json:
            obj: dict[str, object] = {
                "text": text, "chars": len(generated), "seconds": round(seconds, 4),
                "seed": opts.seed, "model": str(ckpt.path), "precision": sampler.precision,
            }  # fmt: skip
            if verdict.incomplete:
                obj["incomplete"] = verdict.incomplete
            if check is not None:
                obj["valid"] = check.valid
                obj["errors"] = [str(m) for m in check.errors]
                obj["warnings"] = [str(m) for m in check.warnings]
            if verdict.music is not None:
                music = verdict.music
                obj["music"] = {
                    "verdict": verdict.musical_verdict, "bars": music.bars, "form": music.form,
                    "bars_off": music.bars_off, "ends_on_tonic": music.ends_on_tonic,
                    "key": music.key, "meter": music.meter,
                }  # fmt: skip
            if match is not None:
                obj["closest"] = {"title": match.title, "similarity": round(match.similarity, 3)}
                obj["near_copy"] = match.is_near_copy
            if saved is not None:
                obj["saved"] = [str(p) for p in saved.paths]
                obj["save_problem"] = saved.problem
            obj["tunebook_id"] = tune_id
            _emit_json(obj)
            continue
        if not stream_out:
            sys.stdout.write(shown)
        if not shown.endswith("\n\n"):
            sys.stdout.write("\n" if shown.endswith("\n") else "\n\n")
        sys.stdout.flush()
        notes = [f"seed {opts.seed}", f"{len(generated)} characters in {seconds:.2f}s"]
        if verdict.incomplete:  # as the app says it: cut off by --max-chars, say
            notes.append(verdict.incomplete)
        if check is not None:
            # As the app says it: "valid, 1 warning (...)" where abc2midi warned.
            notes.append(check.validity() if check.valid else f"invalid: {check.first_error}")
        elif verdict.check_error:
            notes.append(f"not checked: {verdict.check_error}")
        if verdict.musical_verdict:
            notes.append(verdict.musical_verdict)
        if match is not None and match.is_near_copy:
            notes.append(match.describe())
        if saved is not None:
            notes.append("saved " + ", ".join(p.name for p in saved.paths))
            if saved.problem:
                notes.append(saved.problem)
        if tune_id is not None:
            notes.append(f"{'tunebook' if saved is not None else 'history'} #{tune_id}")
        print(f"[{'; '.join(notes)}]", file=sys.stderr)
    if args.valid_only:
        print(f"[{plural(rejected, 'invalid tune')} rejected]", file=sys.stderr)
    history.close()
    return 0


def _no_valid_tune(tries: int, max_chars: int, cut_off: int) -> str:
    """Why --valid-only found nothing, and what to change: a limit that cut every try short
    leaves no room for a whole tune, whatever the temperature or the training."""
    said = f"no valid tune in {tries} {'try' if tries == 1 else 'tries'}"
    if cut_off == tries:
        each = "it was" if tries == 1 else "each was"
        return f"{said}; {each} cut off at {max_chars} characters: raise --max-chars"
    return f"{said}; lower the temperature or train longer"


# --- evaluate ---------------------------------------------------------------------------------


def cmd_evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from core.checkpoint import load_checkpoint
    from core.train import evaluate_bpc

    ckpt = load_checkpoint(named_model(args.model))
    corpus = load_corpus(args.corpus)
    missing = ckpt.vocab.unknown(corpus.text)  # set ops and str methods: no per-character loop
    unknown = sum(corpus.text.count(c) for c in missing)
    text = corpus.text.translate({ord(c): None for c in missing})
    ids = ckpt.vocab.encode(text)
    if len(ids) < 2:
        raise CliError("nothing to evaluate: the corpus has no characters the model knows")
    bpc = evaluate_bpc(ckpt.build_model(), np.asarray(ids))
    result = {
        "bpc": round(bpc, 4), "chars": len(ids), "unknown_chars": unknown,
        "tunes": len(corpus.tunes), "model": str(ckpt.path), "corpus": corpus.name,
    }  # fmt: skip
    own = bool(ckpt.corpus) and corpus.is_described_by(ckpt.corpus)
    val = ckpt.metrics.get("val_bpc")
    held_out = f" (on its held-out tunes: {val:.3f} when saved)" if val is not None else ""
    result["training_corpus"] = own
    # Its training corpus in another file (split into a folder, copied twice): the figure read
    # as a held-out one (0.98 against 1.43). Known where that corpus is the default one.
    learnt = 0 if own else _tunes_learnt(corpus, ckpt.corpus)
    result["training_tunes"] = len(corpus.tunes) if own else learnt
    if args.json:
        _emit_json(result)
    else:
        print(f"{bpc:.3f} bits per character over {len(ids):,} characters of {corpus.name}")
        if own:  # a lower figure than the Models screen's validation one, and why
            print("this is the model's training corpus: its tunes include those it learnt from"
                  + held_out)  # fmt: skip
        elif learnt:
            print(f"{learnt:,} of its {plural(len(corpus.tunes), 'tune')} are tunes of the model's "
                  f"training corpus: not a held-out figure{held_out}")  # fmt: skip
        if unknown:
            print(f"{plural(unknown, 'character')} outside the model's vocabulary "
                  f"{'was' if unknown == 1 else 'were'} left out")  # fmt: skip
    return 0


def _tunes_learnt(corpus: Corpus, trained_on: dict[str, str | int]) -> int:
    """How many of `corpus`'s tunes are tunes of a checkpoint's training corpus, where that is
    the default corpus (the only one known here: a checkpoint holds its hash, not its tunes)."""
    from core.corpus import training_corpus

    training = training_corpus(trained_on) if trained_on else None
    if training is None:
        return 0
    known = {tune.strip() for tune in training.tunes}
    return sum(tune.strip() in known for tune in corpus.tunes)


# --- export -----------------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace) -> int:
    from core.checkpoint import (
        check_destination,
        is_checkpoint_file,
        load_checkpoint,
        save_checkpoint,
        slim,
    )

    source = named_model(args.model)
    ckpt = load_checkpoint(source)
    target = Path(args.out).expanduser()
    if target.exists() and target.resolve() == source.resolve():
        raise CliError(f"{target} is the checkpoint being exported; give another file name")
    if target.is_file() and is_checkpoint_file(target) and not args.force:
        # A training run's checkpoint holds what resuming needs; the export has none of it.
        raise CliError(f"{target} is a folkgen checkpoint already; --force to replace it")
    out = save_checkpoint(
        slim(ckpt, half=args.half), check_destination(args.out, replace_any=args.force)
    )
    size = out.stat().st_size / 1e6
    print(
        f"wrote {out} ({size:.1f} MB, step {ckpt.step}, weights only{', float16' if args.half else ''})"
    )
    return 0


# --- parser -----------------------------------------------------------------------------------

# The recipe's fields that train's options set, and each option: cmd_train passes them to
# with_overrides, and a value core refuses (ConfigError's field) is named by the option typed.
TRAIN_FLAGS = {
    "steps": "--steps", "minutes": "--minutes", "device": "--device", "threads": "--threads",
    "seed": "--seed", "learning_rate": "--lr", "batch_size": "--batch-size",
    "seq_length": "--seq-length",
}  # fmt: skip
# Generate's options that core.sample_options checks, by the name its SettingError gives
# ("max chars"): said of the option too ("--max-chars (max chars) must be …").
SAMPLE_FLAGS = {"temperature": "--temperature", "top-k": "--top-k", "max chars": "--max-chars"}


def _named(flag: str, label: str, problem: str) -> str:
    """A value refused, said of the option typed and by core's name for it where that is
    another: "--lr (learning rate) must be …", "--threads must be …"."""
    return f"{flag if label == flag.removeprefix('--') else f'{flag} ({label})'} {problem}"


def _dest(flag: str) -> str:
    """argparse's attribute for an option: --batch-size is args.batch_size."""
    return flag.removeprefix("--").replace("-", "_")


def _recipe_default(field: str) -> str:
    """A train option's default, for its help: the value where every preset has the same one,
    else the preset's (listed under train --help)."""
    values = {getattr(preset.train, field) for preset in PRESETS.values()}
    return f"default: {values.pop()}" if len(values) == 1 else "default: the preset's"


def _presets_table() -> str:
    """train --help's epilog: what each preset sets of what train's options change."""
    rows = [("preset", "LSTM", "--steps", "--lr", "--batch-size", "--seq-length", "schedule")]
    for name, preset in sorted(PRESETS.items()):
        cfg = preset.train
        warm = f", warm-up {cfg.warmup_steps}" if cfg.warmup_steps else ""
        rows.append((name, str(preset.model.hidden_size), str(cfg.steps),
                     f"{cfg.learning_rate:g}", str(cfg.batch_size), str(cfg.seq_length),
                     cfg.schedule + warm))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]  # fmt: skip
    return ("presets (an option left out takes the preset's value; a resumed model keeps\n"
            "its own recipe):\n" + "\n".join(lines))  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="folkgen",
        description="Train a character-level LSTM on folk tunes in ABC notation and generate new ones.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "stats", help="corpus statistics", description="Statistics of an ABC corpus."
    )
    p.add_argument("--corpus", help="an .abc file or a folder of them (default: the Irish corpus)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser(
        "train", help="train a model", description="Train (or resume) a model.",
        epilog=_presets_table(), formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("--corpus", help="an .abc file or a folder of them (default: the Irish corpus)")
    p.add_argument(
        "--preset", choices=sorted(PRESETS),
        help="recipe (default: default; a resumed model keeps its own)",
    )
    budget = p.add_mutually_exclusive_group()
    budget.add_argument(
        "--steps", type=_positive_int,
        help="number of optimiser steps, counted from the start of the model's training "
        f"({_recipe_default('steps')})",
    )  # fmt: skip
    budget.add_argument(
        "--minutes", type=_positive_float,
        help="wall-clock budget (fractions allowed), in place of --steps (default: none, the "
        "steps end the run; a resumed model keeps its own)",
    )  # fmt: skip
    p.add_argument("--out", help="checkpoint file to write (default: in the user data folder)")
    p.add_argument(
        "--force", action="store_true",
        help="replace --out: a trained model there (and its best), or a file that is no checkpoint"
    )
    p.add_argument("--resume", help="continue from this checkpoint, at the same step")
    p.add_argument(
        "--new-vocab", action="store_true",
        help="with --resume on a corpus with other characters: carry the model over (shared "
        "characters keep what they learnt) and save it as a new checkpoint",
    )  # fmt: skip
    p.add_argument(
        "--device", help="auto (default: a CUDA or Apple GPU when there is one), cpu, cuda or mps"
    )
    p.add_argument(
        "--nproc", type=_positive_int,
        help="train as this many processes on this machine (one per GPU, or CPU cores shared), "
        "through torchrun; see the README for several machines",
    )  # fmt: skip
    p.add_argument(
        "--threads", type=int,
        help="CPU threads (default 0: every core, fewer while other programs keep cores busy)",
    )  # fmt: skip
    p.add_argument("--seed", type=int, help=f"random seed ({_recipe_default('seed')})")
    p.add_argument(
        "--lr", type=_positive_float, help=f"learning rate ({_recipe_default('learning_rate')})"
    )
    p.add_argument(
        "--batch-size", type=_positive_int,
        help=f"sequences per step ({_recipe_default('batch_size')})",
    )  # fmt: skip
    p.add_argument(
        "--seq-length", type=_positive_int,
        help=f"characters per sequence ({_recipe_default('seq_length')})",
    )  # fmt: skip
    p.add_argument(
        "--progress", action="store_true", help="show progress even when not on a terminal"
    )
    p.add_argument("--json", action="store_true", help="print a JSON summary and nothing else")
    p.set_defaults(func=cmd_train, usage_error=p.error)

    p = sub.add_parser(
        "generate", help="generate tunes", description="Sample new tunes from a model."
    )
    p.add_argument(
        "--model", help="checkpoint (default: newest of yours that loads, else the shipped model)"
    )
    p.add_argument(
        "--prompt", default="X:", help=r"text to start from; \n for a new line (default: X:)"
    )
    p.add_argument(
        "--temperature", type=float, default=1.0,
        help="sampling temperature, 0 = greedy (default: %(default)g)",
    )  # fmt: skip
    p.add_argument(
        "--top-k", type=_non_negative_int, default=0,
        help="sample from the k most likely characters (default: %(default)s, all)",
    )  # fmt: skip
    p.add_argument(
        "--seed", type=int,
        help="random seed (default: a random one); tune i uses seed + i, but with --valid-only "
        "every try takes the next seed, so a rejected try moves the tunes after it on; each "
        "tune's seed is printed with it",
    )  # fmt: skip
    p.add_argument(
        "--count", type=_tune_count, default=1,
        help=f"number of tunes, at most {MAX_COUNT:,} (default: %(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--max-chars", type=_positive_int, default=1000,
        help="length limit per tune, in characters after the prompt (default: %(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--precision", default="auto", choices=["auto", "fp32", "int8", "int4"],
        help="sampler arithmetic (default auto: int4 for one-layer models of 512 units or more "
        "where the C kernels are built, else int8; fp32 below 512); each draws its own tunes "
        "for a seed"
    )
    p.add_argument(
        "--valid-only",
        action="store_true",
        help="keep sampling until a tune passes abc2midi's check",
    )
    p.add_argument(
        "--max-tries", type=_positive_int, default=20,
        help="samples per tune with --valid-only (default: %(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--no-grammar", dest="grammar", action="store_false",
        help="raw model output: do not restrict sampling to what ABC syntax allows",
    )  # fmt: skip
    p.add_argument(
        "--save",
        metavar="DIR",
        help="save each tune as .abc, .mid, .wav and its score (.svg, .png, .pdf) in DIR",
    )
    from core.cli_sound import add_voice_arguments

    add_voice_arguments(p)  # the voice of --save's .mid and .wav
    p.add_argument(
        "--corpus",
        help="flag near-copies of this corpus's tunes (default: the model's own corpus, when it "
        "is the default one)",
    )
    p.add_argument(
        "--json", action="store_true", help="one JSON object per tune, nothing else on stdout"
    )
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser(
        "evaluate", help="bits per character of a corpus under a model",
        description="Bits per character of an ABC corpus under a model: how well it predicts "
        "those tunes (lower is better). Says when the corpus is, or holds tunes of, the model's "
        "training corpus.",
    )  # fmt: skip
    p.add_argument("--model", required=True, help="checkpoint")
    p.add_argument("--corpus", help="an .abc file or folder (default: the Irish corpus)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "export", help="a weights-only copy of a checkpoint, to share or ship",
        description="Write a copy of a checkpoint without its optimiser state (it can generate "
        "and be evaluated, and resuming from it restarts the optimiser).",
    )  # fmt: skip
    p.add_argument("model", help="checkpoint to read")
    p.add_argument("out", help="file to write")
    p.add_argument("--half", action="store_true", help="store the weights as float16")
    p.add_argument(
        "--force", action="store_true", help="replace OUT where it exists (a checkpoint or not)"
    )
    p.set_defaults(func=cmd_export)

    try:
        from core.cli_sound import add_sound_commands
    except ImportError:  # the sound commands are optional at this stage
        pass
    else:
        add_sound_commands(sub)
    from core.cli_score import add_score_command

    add_score_command(sub)
    from core.cli_library import add_library_command

    add_library_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(argv) if argv is not None else None  # train --nproc passes them on
    try:
        return int(args.func(args) or 0)
    except (
        CliError,
        CorpusError,
        DefaultCorpusMissing,
        UnknownCharacters,
        ValueError,
        SoundError,
    ) as e:
        _said_once(str(e))
    except BrokenPipeError:
        return 0
    except OSError as e:  # a file or folder that cannot be used; said in one line
        _said_once(f"{e.filename or ''}: {e.strerror}" if e.strerror else str(e))
    except KeyboardInterrupt:
        _said_once("interrupted")
        return INTERRUPTED
    return 1


def _said_once(msg: str) -> None:
    """Under `train --nproc` every rank has the same command line, files and machine, so what
    stops one stops each alike: local rank 0 says it, torchrun names the ranks that ended."""
    ranked = os.environ.get("WORLD_SIZE", "1") != "1"  # torchrun's; a stray LOCAL_RANK is not
    if not ranked or os.environ.get("LOCAL_RANK", "0") == "0":
        _err(msg)


if __name__ == "__main__":
    sys.exit(main())
