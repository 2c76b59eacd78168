"""`folkgen library …`: the tunebook from the command line (list, show, play, rate, favourite,
rename, export, import, delete), and the history that `generate` writes every tune into.

Errors end with one line on stderr and exit status 1, as the sound commands do.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from core.abc import plural, printable
from core.cli_sound import _fail, _guarded, _say, add_voice_arguments, voice_from_args
from core.library import IMPORT_BATCH, SORTS, Library, LibraryError, LibraryTune, model_hash

if TYPE_CHECKING:
    from core.judge import Judgement
    from core.sample import SampleOptions

LibraryHandler = Callable[[argparse.Namespace, Library], int]


def _warn(library: Library) -> None:
    if library.recovered_from is not None:
        print(f"folkgen: warning: {printable(library.recovery_message)}", file=sys.stderr)


def _with_library(handler: LibraryHandler) -> Callable[[argparse.Namespace], int]:
    """Open the tunebook for the command (saying so when a damaged one was replaced), close it
    after, and turn its errors into one line and exit status 1."""

    @_guarded
    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            with Library.open() as library:
                _warn(library)
                return handler(args, library)
        except LibraryError as e:
            return _fail(str(e))

    return run


# --- what a tune looks like -----------------------------------------------------------------------


def _stars(rating: int) -> str:
    return "★" * rating + "·" * (5 - rating)


def _when(created: float) -> str:
    return datetime.fromtimestamp(created).strftime("%Y-%m-%d %H:%M")


def _tune_json(tune: LibraryTune) -> dict[str, object]:
    data = asdict(tune)
    data["files"] = [str(p) for p in tune.files]
    return data


def _line(tune: LibraryTune) -> str:
    title = printable(tune.title)
    title = title if len(title) <= 32 else title[:31] + "…"
    return (
        f"{tune.id:>5}  {_stars(tune.rating)}  {'♥' if tune.favourite else ' '}  {title:<32}  "
        f"{printable(tune.key):<12} {printable(tune.metre):<5} {tune.bars:>3} {'bar ' if tune.bars == 1 else 'bars'}  "
        f"{tune.form:<6} {_when(tune.created)}"
    )


def _verdict(tune: LibraryTune) -> str:
    def said(value: bool | None, yes: str, no: str) -> str:
        return "not checked" if value is None else (yes if value else no)

    return ", ".join(
        (
            said(tune.valid, "abc2midi-clean", "abc2midi finds errors"),
            said(tune.bars_right, "bars right", "bars off"),
            said(tune.tonic_ending, "ends on the tonic", "does not end on the tonic"),
        )
    )


# --- commands -------------------------------------------------------------------------------------


@_with_library
def cmd_list(args: argparse.Namespace, library: Library) -> int:
    descending = args.sort in ("rating", "created")  # best and newest first, names A to Z
    tunes = library.search(
        sort=args.sort,
        descending=descending != args.reverse,
        text=args.filter or "",
        favourites=args.favourites,
        in_tunebook=not args.history,
    )
    if args.json:
        print(json.dumps([_tune_json(t) for t in tunes], ensure_ascii=False))
        return 0
    where = "history" if args.history else "tunebook"
    if not tunes:
        _say(f"no tunes in the {where}" + (" match" if args.filter or args.favourites else ""))
        return 0
    for tune in tunes:
        _say(_line(tune))
    _say(f"{plural(len(tunes), 'tune')} in the {where} ({library.path})")
    return 0


@_with_library
def cmd_show(args: argparse.Namespace, library: Library) -> int:
    tune = library.get(args.id)
    if args.json:
        print(json.dumps(_tune_json(tune), ensure_ascii=False))
        return 0
    place = "tunebook" if tune.in_tunebook else "history"
    _say(f"#{tune.id} {tune.title}  ({place}, {tune.source} {_when(tune.created)})")
    _say(f"  {tune.key}, {tune.metre or 'no M:'}, {plural(tune.bars, 'bar')}, {tune.form or 'no form'}")
    _say(f"  {_verdict(tune)}")
    _say(
        f"  rating {_stars(tune.rating)}{', favourite' if tune.favourite else ''}, played {tune.play_count}×"
    )
    if tune.model_name:
        settings = [f"seed {tune.seed}", f"temperature {tune.temperature}"]
        settings += [f"top-k {tune.top_k}"] if tune.top_k else []
        settings += [f"max {tune.max_chars} characters"] if tune.max_chars is not None else []
        settings += ["no grammar"] if tune.grammar is False else []
        _say(f"  model {tune.model_name} ({tune.model_hash}): {', '.join(settings)}")
    if tune.notes:
        _say(f"  notes: {tune.notes}")
    for path in tune.files:
        _say(f"  file: {path}{'' if path.exists() else ' (missing)'}")
    _say()
    _say(tune.shared_abc.strip("\n"))  # as an export writes it: credited, if generated
    return 0


@_with_library
def cmd_play(args: argparse.Namespace, library: Library) -> int:
    from core.audio import Player, render, wav_facts

    tune = library.get(args.id)
    voice = voice_from_args(args)
    # The tune as written is a WAV this command rendered, alone; a saved set's (beside its .mid)
    # plays in the voice chosen as it was saved (a fiddle at 150, say).
    saved_sets = {p.with_suffix("") for p in tune.files if p.suffix == ".mid"}
    wav = next((p for p in tune.files if p.suffix == ".wav" and p.with_suffix("") not in saved_sets
                and p.is_file()), None)  # fmt: skip
    if wav is None or not voice.plain:  # rendered into the tunes folder (as `play` does)
        done = render(tune.abc, midi=False, voice=voice)
        assert done.wav_path is not None  # wav=True
        wav = done.wav_path
        if voice.plain:  # the tune as written: found next time
            library.add_files(tune.id, [wav])
    player = Player()
    try:
        player.play(wav)  # without a sound device this fails: say "playing" only after it
        _say(f"playing #{tune.id} {tune.title} ({_clock(wav_facts(wav)[0])}): {wav}")
        library.played(tune.id)
        player.wait()
    except KeyboardInterrupt:
        player.stop()
        print("stopped", file=sys.stderr)
        return 130
    return 0


def _clock(seconds: float) -> str:
    return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"


@_with_library
def cmd_rate(args: argparse.Namespace, library: Library) -> int:
    library.rate(args.id, args.stars)
    tune = library.get(args.id)
    _say(f"#{tune.id} {tune.title}: {_stars(tune.rating) if tune.rating else 'not rated'}")
    return 0


@_with_library
def cmd_favourite(args: argparse.Namespace, library: Library) -> int:
    library.set_favourite(args.id, not args.off)
    tune = library.get(args.id)
    _say(f"#{tune.id} {tune.title}: {'a favourite' if tune.favourite else 'not a favourite'}")
    return 0


@_with_library
def cmd_rename(args: argparse.Namespace, library: Library) -> int:
    library.rename(args.id, args.title)
    _say(f"#{args.id} is now {library.get(args.id).title}")
    return 0


@_with_library
def cmd_note(args: argparse.Namespace, library: Library) -> int:
    library.set_notes(args.id, args.notes)
    tune = library.get(args.id)
    _say(f"#{tune.id} {tune.title}: " + (f"notes: {tune.notes}" if tune.notes else "no notes"))
    return 0


@_with_library
def cmd_delete(args: argparse.Namespace, library: Library) -> int:
    tune = library.get(args.id)
    library.delete(args.id)
    _say(f"deleted #{tune.id} {tune.title} (its files stay on disk)")
    return 0


def _ids(text: str) -> list[int]:
    try:
        ids = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"tune ids separated by commas, not {text!r}") from None
    if not ids:
        raise argparse.ArgumentTypeError("no tune ids given")
    return ids


@_with_library
def cmd_export(args: argparse.Namespace, library: Library) -> int:
    if not (args.out or args.midi or args.pdf):
        return _fail("say where to export: OUT.abc, --midi DIR or --pdf OUT.pdf")
    if args.ids:
        ids = args.ids
    else:  # the tunebook (or its favourites) in the order the tunes were made
        ids = [
            t.id
            for t in library.search(sort="created", descending=False, favourites=args.favourites)
        ]
        if not ids:
            return _fail(
                "no favourite tunes to export" if args.favourites else "the tunebook is empty"
            )
    from core.audio import file_target, folder_target

    # Every destination checked before any is written (a folder given for --pdf was found out
    # once every tune was engraved; OUT.abc was written before a --midi FILE failed).
    for target, suffix in ((args.out, ".abc"), (args.pdf, ".pdf")):
        if target:
            file_target(target, suffix, own_suffix=True)
    if args.midi:
        folder_target(args.midi)
    problems: list[str] = []
    if args.out:
        _say(f"wrote {plural(len(ids), 'tune')} to {library.export_abc(ids, args.out)}")
    if args.midi:
        made = library.export_midi(ids, Path(args.midi), problems)
        _say(f"wrote {plural(len(made), 'MIDI file')} to {Path(args.midi).expanduser()}")
    if args.pdf:
        pdf = library.export_pdf(ids, args.pdf, problems)
        if pdf is not None:
            _say(f"wrote a PDF tunebook to {pdf}")
    for problem in problems:
        print(f"folkgen: not exported: {printable(problem)}", file=sys.stderr)
    return 1 if problems else 0


@_with_library
def cmd_import(args: argparse.Namespace, library: Library) -> int:
    done = [0]
    tty = sys.stderr.isatty()

    def progress(checked: int, total: int) -> None:
        done[0] = checked
        if total > IMPORT_BATCH and (tty or checked == total or checked % 1024 < IMPORT_BATCH):
            end = "\n" if checked == total or not tty else ""
            print(f"\rchecked {checked:,} of {total:,} tunes", end=end, file=sys.stderr,
                  flush=True)  # fmt: skip

    try:
        report = library.import_path(Path(args.path), progress)
    except KeyboardInterrupt:
        print(f"\nfolkgen: interrupted after {done[0]:,} tunes checked: those added so far stay in "
              "the tunebook", file=sys.stderr)  # fmt: skip
        return 130
    if args.json:
        print(json.dumps(asdict(report), ensure_ascii=False))
    else:
        bad = f" ({report.invalid} with abc2midi errors)" if report.invalid else ""
        _say(f"imported {plural(len(report.added), 'tune')}{bad} from {plural(report.files, 'file')}")
        if report.already:
            _say(f"{plural(report.already, 'tune')} {'was' if report.already == 1 else 'were'} in the tunebook already")
        for reason in report.skipped:
            print(f"folkgen: skipped: {printable(reason)}", file=sys.stderr)
    return 0 if report.added or report.already else 1


# --- the history `generate` writes ----------------------------------------------------------------


class GenerateHistory:
    """Records each tune `folkgen generate` makes in the tunebook's history (kept in the
    tunebook itself with --save). The tunebook failing never fails the generation: it is said
    once on stderr and the tunes still come."""

    def __init__(self, model_path: Path | None) -> None:
        self._model_path = model_path
        self._hash: str | None = None
        self._library: Library | None = None
        self._broken = False

    def _open(self) -> Library | None:
        if self._library is None and not self._broken:
            try:
                self._library = Library.open()
                self._hash = model_hash(self._model_path) if self._model_path else ""
            except (LibraryError, OSError) as e:
                self._give_up(e)
                return None
            _warn(self._library)
        return self._library

    def _give_up(self, e: Exception) -> None:
        self._broken = True
        print(f"folkgen: warning: tunes are not kept in the history: {e}", file=sys.stderr)

    def record(
        self, text: str, opts: SampleOptions, verdict: Judgement, saved: Sequence[Path] | None
    ) -> int | None:
        """The tune's id in the tunebook, or None when the tunebook could not take it."""
        library = self._open()
        if library is None:
            return None
        try:
            return library.add(
                text, model_name=self._model_path.name if self._model_path else "", model_hash=self._hash or "",
                seed=opts.seed, temperature=opts.temperature, top_k=opts.top_k or None,
                prompt=opts.prompt, max_chars=opts.max_chars, in_tunebook=saved is not None,
                files=saved or (), verdict=verdict, grammar=opts.grammar,
            )  # fmt: skip
        except LibraryError as e:
            self._give_up(e)
            return None

    def close(self) -> None:
        if self._library is not None:
            self._library.close()


# --- registration ---------------------------------------------------------------------------------


def add_library_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `library` and its subcommands on the CLI's subparsers."""
    p = subparsers.add_parser(
        "library",
        help="the tunebook: list, play, rate, export and import tunes",
        description="The tunebook: the tunes you keep (generate --save, the app's save, import) "
        "and the history of every tune generated. It is one SQLite file in the folkgen data "
        "folder; the app and these commands may use it at the same time.",
    )
    sub = p.add_subparsers(dest="library_command", required=True, metavar="COMMAND")

    def tune_id(q: argparse.ArgumentParser) -> None:
        q.add_argument("id", type=int, metavar="ID", help="the tune's number (see `library list`)")

    q = sub.add_parser("list", help="list the tunebook's tunes")
    q.add_argument("--sort", choices=SORTS, default="created", help="order (default: created)")
    q.add_argument("--reverse", action="store_true", help="the other way round")
    q.add_argument(
        "--filter", metavar="TEXT", help="only tunes whose title, key, metre or ABC hold every word"
    )
    q.add_argument("--favourites", action="store_true", help="only favourites")
    q.add_argument("--history", action="store_true", help="the generated tunes not kept, instead")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=cmd_list)

    q = sub.add_parser("show", help="a tune's facts, settings and ABC")
    tune_id(q)
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=cmd_show)

    q = sub.add_parser("play", help="play a tune (counts the play)")
    tune_id(q)
    add_voice_arguments(q)
    q.set_defaults(func=cmd_play)

    q = sub.add_parser("rate", help="give a tune 1 to 5 stars (0 clears)")
    tune_id(q)
    q.add_argument("stars", type=int, choices=range(6), metavar="N", help="0 to 5")
    q.set_defaults(func=cmd_rate)

    q = sub.add_parser("favourite", help="mark a tune as a favourite")
    tune_id(q)
    q.add_argument("--off", action="store_true", help="unmark it")
    q.set_defaults(func=cmd_favourite)

    q = sub.add_parser("rename", help="retitle a tune (its T: line too)")
    tune_id(q)
    q.add_argument("title", help="the new title")
    q.set_defaults(func=cmd_rename)

    q = sub.add_parser("note", help="write your notes on a tune ('' clears them)")
    tune_id(q)
    q.add_argument("notes", help="the notes, one line")
    q.set_defaults(func=cmd_note)

    q = sub.add_parser(
        "export",
        help="tunes as one .abc tunebook, MIDI files or a PDF",
        description="Write the tunebook's tunes (or the favourites, or the ids given) as one .abc "
        "file numbered X:1…n with their titles, as MIDI files, or as a PDF of a page per tune. "
        "Existing files are never overwritten: a taken name gets -2, -3….",
    )
    q.add_argument("out", nargs="?", metavar="OUT.abc", help="the .abc tunebook to write")
    which = q.add_mutually_exclusive_group()
    which.add_argument("--favourites", action="store_true", help="only the favourites")
    which.add_argument("--ids", type=_ids, metavar="1,2,…", help="these tunes, in this order")
    q.add_argument("--midi", metavar="DIR", help="also a MIDI file per tune in DIR")
    q.add_argument("--pdf", metavar="OUT.pdf", help="also a PDF, a page of sheet music per tune")
    q.set_defaults(func=cmd_export)

    q = sub.add_parser(
        "import",
        help="take an .abc file or a folder of them into the tunebook",
        description="Each tune is checked by abc2midi and heard as music (the verdicts are "
        "kept); tunes already in the tunebook are not added twice; files and text that are no "
        "tune are reported. Exit status 1 when nothing could be imported.",
    )
    q.add_argument("path", metavar="PATH", help="an .abc file or a folder of them")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=cmd_import)

    q = sub.add_parser("delete", help="remove a tune from the tunebook (its files stay)")
    tune_id(q)
    q.set_defaults(func=cmd_delete)
