"""`folkgen score FILE.abc`: each tune as sheet music (SVG, PNG, an A4 PDF), never overwriting.

Files go to the folkgen tunes folder named after each title, or where --svg/--png/--pdf say (a
taken name gets -2, -3…, as `render` does); --pdf OUT puts every tune on a page of one PDF.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from core.cli_sound import _guarded, _say, _tune_json, chosen_tunes
from core.words import plural

_OUTPUTS = {".svg": "svg", ".png": "png", ".pdf": "pdf"}


def _where(out: str, suffix: str) -> tuple[Path, str]:
    """(folder, stem) for an output named on the command line: OUT.svg or OUT -> OUT.svg."""
    from core.audio import file_target

    folder, stem, _ = file_target(out, suffix)
    return folder, stem


def _write(folder: Path, stem: str, files: dict[str, bytes]) -> dict[str, Path]:
    """Write files at one free stem (all suffixes together); nothing half-written is left."""
    from core.audio import reserve_paths

    paths = reserve_paths(folder, stem, list(files))
    try:
        for path, data in zip(paths, files.values(), strict=True):
            path.write_bytes(data)
    except BaseException:
        for path in paths:
            path.unlink(missing_ok=True)
        raise
    return dict(zip(files, paths, strict=True))


@_guarded
def cmd_score(args: argparse.Namespace) -> int:
    from core.paths import output_dir, slugify
    from core.score import ScoreError, engrave, file_bytes, to_pdf

    numbered = chosen_tunes(args)  # as render picks and numbers them
    asked = {s: getattr(args, name) for s, name in _OUTPUTS.items() if getattr(args, name)}
    each = asked or dict.fromkeys(_OUTPUTS)  # nothing named: all three, in the tunes folder
    report: list[dict[str, Any]] = []
    if not args.json:
        _say(f"{args.file}: {plural(len(numbered), 'tune')}")
    pages: list[str] = []
    for i, tune in numbered:
        entry = _tune_json(i, tune)
        report.append(entry)
        try:
            score = engrave(tune.text)
            svg = score.svg
        except ScoreError as e:
            line = tune.start_line + e.line - 1 if e.line else None  # in the file
            where = f" ({args.file}:{line})" if line else ""
            entry |= {"engraved": False, "error": str(e), "error_line": line}
            if not args.json:
                _say(f"  {i}. {tune.title}: not engraved: {e}{where}")
            continue
        pages.append(svg)
        groups: dict[tuple[Path, str], dict[str, bytes]] = {}
        for suffix, out in each.items():
            if suffix == ".pdf" and asked:
                continue  # --pdf OUT: one PDF of all the tunes, written below
            place = _where(out, suffix) if out else (output_dir(), slugify(tune.title))
            groups.setdefault(place, {})[suffix] = file_bytes(svg, suffix)
        written: dict[str, Path] = {}
        for (folder, stem), files in groups.items():
            written |= _write(folder, stem, files)
        entry |= {"engraved": True} | {suffix[1:]: str(p) for suffix, p in written.items()}
        if score.note:
            entry["note"] = score.note
        if not args.json:  # with only --pdf OUT, the tune is a page of that file (below)
            shown = ", ".join(str(p) for p in written.values()) or f"page {len(pages)} of the PDF"
            _say(f"  {i}. {tune.title}: {shown}" + (f" ({score.note})" if score.note else ""))
    pdf = None
    if ".pdf" in asked and pages:
        pdf = _write(*_where(asked[".pdf"], ".pdf"), {".pdf": to_pdf(pages)})[".pdf"]
        if not args.json:
            _say(f"  {plural(len(pages), 'page')}: {pdf}")
    failed = len(numbered) - len(pages)
    if args.json:
        summary = {"file": args.file, "tunes": report, "engraved": len(pages)}
        print(json.dumps(summary | {"pdf": str(pdf) if pdf else None}))
    return 1 if failed else 0


def add_score_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `score` on the CLI's subparsers."""
    p = subparsers.add_parser(
        "score",
        help="engrave ABC tunes as sheet music (SVG, PNG, PDF)",
        description="Engrave each tune of an ABC file with verovio. Without --svg/--png/--pdf "
        "each tune gets an .svg, a .png and an A4 .pdf in the folkgen tunes folder, named after "
        "its title; --pdf OUT writes one PDF with a page per tune. Existing files are never "
        "overwritten: a taken name gets -2, -3…. Exit status 1 when a tune could not be engraved.",
    )
    p.add_argument("file", metavar="FILE.abc", help="ABC file (tunes separated by blank lines)")
    p.add_argument("--svg", metavar="OUT", help="write the SVG here (only what is asked for)")
    p.add_argument("--png", metavar="OUT", help="write the PNG here")
    p.add_argument("--pdf", metavar="OUT", help="write one PDF, a page per tune, here")
    p.add_argument("--tune", type=int, metavar="N", help="engrave only the N-th tune (from 1)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_score)
