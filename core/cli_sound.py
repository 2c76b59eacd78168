"""The sound subcommands of the CLI: `folkgen check | render | play FILE.abc`.

Each handler takes the parsed arguments and returns the exit status; errors end with one line
on stderr (never a traceback), and --json prints one JSON object on stdout for scripts.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.abc import (
    AbcMessage,
    SoundError,
    Tune,
    TuneCheck,
    check_tune,
    extract_tunes,
    plural,
    printable,
)
from core.voice import TEMPO_RANGE, TRANSPOSE_RANGE, Voice, VoiceError, instrument_names

Handler = Callable[[argparse.Namespace], int]

# An ABC file larger than this is refused unread (the 817-tune default corpus is 0.2 MB).
MAX_ABC_BYTES = 10 * 1024 * 1024


def _say(text: str = "") -> None:
    """Print lines for a person: tune text and tool messages never reach the terminal raw."""
    print("\n".join(printable(line) for line in text.split("\n")))


def _fail(msg: str) -> int:
    print(f"folkgen: error: {printable(msg)}", file=sys.stderr)
    return 1


def _guarded(handler: Handler) -> Handler:
    """Turn the sound path's errors into a one-line message and exit status 1."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except SoundError as e:
            return _fail(str(e))
        except BrokenPipeError:  # the CLI's main handles a closed pipe (`| head`)
            raise
        except OSError as e:
            where = f"{e.filename}: " if e.filename else ""
            return _fail(where + (e.strerror or str(e)))

    return run


class AbcFileError(SoundError):
    """An .abc file could not be read as tunes."""


_KINDS = {
    stat.S_IFDIR: "a folder",
    stat.S_IFIFO: "a named pipe",
    stat.S_IFCHR: "a device",
    stat.S_IFBLK: "a device",
    stat.S_IFSOCK: "a socket",
}


def _not_regular(path: Path, mode: int) -> AbcFileError:
    kind = _KINDS.get(stat.S_IFMT(mode), "a special file")
    return AbcFileError(f"{path}: {kind}, not an ABC file")


def _too_large(path: Path) -> AbcFileError:
    return AbcFileError(
        f"{path}: larger than an ABC file may be here (the limit is {MAX_ABC_BYTES // 2**20} MB)"
    )


def read_abc_bytes(path: Path) -> bytes:
    """A regular file's bytes, at most MAX_ABC_BYTES of them.

    Checked with stat before opening: opening a FIFO blocks, and reading /dev/zero never ends.
    O_NONBLOCK and fstat cover a file swapped for something else between the two.
    """
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(path, st.st_mode)
    if st.st_size > MAX_ABC_BYTES:
        raise _too_large(path)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise _not_regular(path, mode)
        data = f.read(MAX_ABC_BYTES + 1)  # a file may grow, or lie about its size (/proc)
    if len(data) > MAX_ABC_BYTES:
        raise _too_large(path)
    return data


def read_tunes(file: str) -> list[Tune]:
    """The tunes of an .abc file (its end closes the last tune)."""
    return read_abc_file(file)[0]


def read_abc_file(file: str) -> tuple[list[Tune], list[int]]:
    """The tunes of an .abc file, and the lines where it has words alone between them: passed
    over (core.corpus.holds_music), as import and training pass over them, not numbered as
    broken tunes (`--tune N` counts tunes)."""
    path = Path(file).expanduser()
    from core.corpus import NO_TUNES, NotAbcText, abc_text, holds_music

    try:
        text = abc_text(path, read_abc_bytes(path))
    except NotAbcText as e:
        raise AbcFileError(str(e)) from None
    blocks = extract_tunes(text, eof_ends_tune=True)
    tunes = [t for t in blocks if holds_music(t.text)]
    if not tunes:
        raise AbcFileError(f"{path}: {NO_TUNES}")
    return tunes, [t.start_line for t in blocks if not holds_music(t.text)]


def chosen_tunes(args: argparse.Namespace) -> list[tuple[int, Tune]]:
    """The tunes of args.file, or only the --tune N-th, each with its number in the file (from
    1): what a report calls it (tune 2 alone was "1.")."""
    numbered = list(enumerate(read_tunes(args.file), start=1))
    if args.tune is None:
        return numbered
    if not 1 <= args.tune <= len(numbered):
        raise AbcFileError(
            f"{args.file} has {plural(len(numbered), 'tune')}; --tune must be 1 to {len(numbered)}"
        )
    return [numbered[args.tune - 1]]


def _in_file(tune: Tune, msg: AbcMessage) -> dict[str, object]:
    """A message with its line counted in the file rather than in the tune."""
    line = tune.start_line + msg.line - 1 if msg.line else 0
    return {"line": line, "column": msg.column, "text": msg.text}


def _messages(file: str, tune: Tune, check: TuneCheck) -> list[str]:
    out = []
    for kind, msgs in (("error", check.errors), ("warning", check.warnings)):
        for m in msgs:
            d = _in_file(tune, m)
            where = f"{file}:{d['line']}:{d['column']}" if m.line else file
            out.append(f"    {where}: {kind}: {m.text}")
    return out


def _tune_json(index: int, tune: Tune) -> dict[str, Any]:
    return {
        "index": index,
        "title": tune.title,
        "line": tune.start_line,
        "complete": tune.complete,
        "incomplete_reason": tune.incomplete_reason or None,
    }


def _check_json(tune: Tune, check: TuneCheck) -> dict[str, Any]:
    data = check.to_dict()
    data["errors"] = [_in_file(tune, m) for m in check.errors]
    data["warnings"] = [_in_file(tune, m) for m in check.warnings]
    return data


def _duration(seconds: float) -> str:
    return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"


# --- check --------------------------------------------------------------------------------------


@_guarded
def cmd_check(args: argparse.Namespace) -> int:
    tunes, words = read_abc_file(args.file)
    results = [(tune, check_tune(tune.text)) for tune in tunes]
    valid = sum(c.valid for _, c in results)
    if args.json:
        report = [_tune_json(i, t) | _check_json(t, c) for i, (t, c) in enumerate(results, start=1)]
        summary = {"file": args.file, "tunes": report, "valid": valid, "count": len(tunes)}
        print(json.dumps(summary | {"words_passed_over": words}))
        return 0 if valid == len(tunes) else 1
    _say(f"{args.file}: {plural(len(tunes), 'tune')}, {valid} valid")
    if words:
        where = ("line " if len(words) == 1 else "lines ") + ", ".join(str(n) for n in words)
        _say(f"  passed over words that are no tune, with no field or bar line ({where})")
    for i, (tune, check) in enumerate(results, start=1):
        verdict = "valid" if check.valid else "INVALID"
        played = f", {plural(check.bars, 'bar')} played, {_duration(check.duration_seconds)}"
        facts = played if check.valid else ""
        _say(f"  {i}. {tune.title} (line {tune.start_line}): {verdict}{facts}")
        if not tune.complete:
            _say(f"    incomplete: {tune.incomplete_reason}")
        for line in _messages(args.file, tune, check):
            _say(line)
    return 0 if valid == len(tunes) else 1


# --- render -------------------------------------------------------------------------------------


@_guarded
def cmd_render(args: argparse.Namespace) -> int:
    from core.audio import InvalidTune, TooLong, render

    tunes = chosen_tunes(args)
    voice = voice_from_args(args)
    explicit = args.wav is not None or args.midi is not None
    report: list[dict[str, Any]] = []
    failed = 0
    if not args.json:
        played = "" if voice.plain else f", played as {voice.describe()}"
        _say(f"{args.file}: {plural(len(tunes), 'tune')}{played}")
    for i, tune in tunes:
        entry = _tune_json(i, tune)
        try:
            done = render(
                tune.text,
                midi=not explicit,
                wav=not explicit,
                midi_to=args.midi,
                wav_to=args.wav,
                voice=voice,
            )
        except InvalidTune as e:
            failed += 1
            entry |= {"rendered": False, "error": str(e), "check": _check_json(tune, e.check)}
            if not args.json:
                _say(f"  {i}. {tune.title}: not rendered, abc2midi made no MIDI:")
                _say("\n".join(_messages(args.file, tune, e.check)))
            report.append(entry)
            continue
        except TooLong as e:
            failed += 1
            report.append(entry | {"rendered": False, "error": str(e)})
            if not args.json:
                _say(f"  {i}. {tune.title}: not rendered: {e}")
            continue
        entry |= {"rendered": True} | done.to_dict() | {"check": _check_json(tune, done.check)}
        report.append(entry)
        if not args.json:
            files = ", ".join(str(p) for p in (done.wav_path, done.midi_path) if p)
            _say(f"  {i}. {tune.title}: {files} ({_duration(done.duration_seconds)})")
            if not done.check.valid:
                _say("    the tune has errors; the files hold what abc2midi made of it:")
                _say("\n".join(_messages(args.file, tune, done.check)))
    if args.json:
        summary = {"file": args.file, "voice": voice.to_dict(), "tunes": report}
        print(json.dumps(summary | {"rendered": len(tunes) - failed}))
    return 1 if failed else 0


# --- play ---------------------------------------------------------------------------------------


@_guarded
def cmd_play(args: argparse.Namespace) -> int:
    from core.audio import PlaybackUnavailable, Player, render

    tunes = chosen_tunes(args)
    voice = voice_from_args(args)
    player = Player()
    try:
        for place, (_, tune) in enumerate(tunes):
            done = render(tune.text, midi=False, voice=voice)
            assert done.wav_path is not None  # wav=True
            try:  # without a sound device this fails: say "playing" after
                player.play(done.wav_path)
            except PlaybackUnavailable as e:  # the tunes after it went unsaid: say them, and how
                left = len(tunes) - place - 1
                if not left:
                    raise
                raise SoundError(
                    f"{e}; {plural(left, 'more tune')} not played (folkgen render "
                    f"{args.file} saves every tune as a WAV)"
                ) from None
            _say(f"playing {tune.title} ({_duration(done.duration_seconds)}): {done.wav_path}")
            player.wait()
    except KeyboardInterrupt:
        player.stop()
        print("stopped", file=sys.stderr)
        return 130
    return 0


# --- voice --------------------------------------------------------------------------------------


def _voice_type(field: str) -> Callable[[str], object]:
    """An argparse type that checks one field of a Voice, with core.voice's message."""

    def parse(text: str) -> object:
        try:
            if field == "instrument":
                return Voice(instrument=text).instrument
            if field == "tempo":
                return Voice(tempo=int(text)).tempo
            return Voice(transpose=int(text)).transpose
        except VoiceError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None

    return parse


def add_voice_arguments(p: argparse.ArgumentParser) -> None:
    """--instrument, --tempo and --transpose: the voice the MIDI and WAV play in."""
    p.add_argument(
        "--instrument", type=_voice_type("instrument"), metavar="NAME",
        help=f"play on this instrument (a General MIDI sound): {instrument_names()}; "
        "default: the tune's own (abc2midi: piano)",
    )  # fmt: skip
    p.add_argument(
        "--tempo", type=_voice_type("tempo"), metavar="BPM",
        help=f"quarter notes a minute, {TEMPO_RANGE[0]}-{TEMPO_RANGE[1]}, in place of the "
        "tune's Q: (default: its Q:, else 120)",
    )  # fmt: skip
    p.add_argument(
        "--transpose", type=_voice_type("transpose"), default=0, metavar="N",
        help=f"play N semitones higher ({TRANSPOSE_RANGE[0]} to {TRANSPOSE_RANGE[1]}; "
        "the ABC is not changed)",
    )  # fmt: skip


def voice_from_args(args: argparse.Namespace) -> Voice:
    """The Voice of add_voice_arguments' flags (each already checked by argparse)."""
    return Voice(args.instrument, args.tempo, args.transpose)


# --- registration -------------------------------------------------------------------------------


def add_sound_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register check, render and play on the CLI's subparsers."""
    p = subparsers.add_parser(
        "check",
        help="check ABC tunes with abc2midi",
        description="Check each tune of an ABC file with abc2midi: errors and warnings with their "
        "line and column in the file, bars and length. Exit status 1 when a tune is invalid.",
    )
    p.add_argument("file", metavar="FILE.abc", help="ABC file (tunes separated by blank lines)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_check)

    p = subparsers.add_parser(
        "render",
        help="render ABC tunes to MIDI and WAV",
        description="Render each tune of an ABC file to MIDI (abc2midi) and WAV (timidity). "
        "Without --wav/--midi both go to the folkgen tunes folder. Existing files are never "
        "overwritten: a taken name gets -2, -3…. Exit status 1 when a tune could not be rendered.",
    )
    p.add_argument("file", metavar="FILE.abc", help="ABC file (tunes separated by blank lines)")
    p.add_argument("--wav", metavar="OUT", help="write the WAV file here (only what is asked for)")
    p.add_argument("--midi", metavar="OUT", help="write the MIDI file here")
    p.add_argument("--tune", type=int, metavar="N", help="render only the N-th tune (from 1)")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_voice_arguments(p)
    p.set_defaults(func=cmd_render)

    p = subparsers.add_parser(
        "play",
        help="play ABC tunes",
        description="Render the tunes of an ABC file to WAV (kept in the folkgen tunes folder) and "
        "play them one after another. Ctrl+C stops.",
    )
    p.add_argument("file", metavar="FILE.abc", help="ABC file (tunes separated by blank lines)")
    p.add_argument("--tune", type=int, metavar="N", help="play only the N-th tune (from 1)")
    add_voice_arguments(p)
    p.set_defaults(func=cmd_play)
