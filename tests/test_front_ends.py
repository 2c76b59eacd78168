"""One engine, two front ends: the same model, seed and settings through `folkgen generate` and
through the app's Generate screen give the same tune and the same verdicts (abc2midi's, the
musical one, the closest tune of the model's training corpus), and a seed either one prints
brings back the same tune in the other."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Static

from core.cli import main
from core.judge import Judgement
from folkgen_tui.app import FolkgenApp
from folkgen_tui.screens.generate import GenerateScreen, TuneChecked
from folkgen_tui.state import TuneRecord
from tests.app_helpers import show_screen, type_into, wait_for, wait_ready

SETTINGS = {"temperature": "0.8", "top-k": "20", "max-chars": "700"}
# The Dataset screen shows another corpus: near-copies must still be judged against the model's.
OTHER_CORPUS = """X:1
T:Probe Reel
M:4/4
L:1/8
K:D
|:DFAd fdAF|GBdg fdAF|DFAd fdAF|GEFD E2D2:|

X:2
T:Probe Jig
M:6/8
L:1/8
K:G
|:GAB cBA|BGE D3|GAB cBA|BGG G3:|
"""


def cli_tune(capsys: pytest.CaptureFixture[str], model: Path, seed: int | None) -> dict[str, Any]:
    args = ["generate", "--model", str(model), "--json"]
    args += [a for name, value in SETTINGS.items() for a in (f"--{name}", value)]
    args += ["--seed", str(seed)] if seed is not None else []
    assert main(args) == 0
    (line,) = capsys.readouterr().out.splitlines()
    result: dict[str, Any] = json.loads(line)
    return result


MESSAGE = re.compile(r"(?:line (\d+), column (\d+): )?(.*)", re.S)


def pointed_at(text: str, messages: list[str]) -> list[tuple[str, str, str]]:
    """Each abc2midi message as the line of `text` it points at, its column and what it says:
    the app checks the tune credited as it shows it (TuneRecord.shared_abc), `--json` the text
    as made, and the credit can move lines (the model wrote two Z: lines, or none)."""
    lines = text.split("\n")
    found = []
    for message in messages:
        match = MESSAGE.fullmatch(message)
        assert match is not None, message
        line, column, what = match.groups()
        found.append((lines[int(line) - 1] if line else "", column or "", what))
    return found


def assert_same(record: TuneRecord, judged: Judgement, cli: dict[str, Any]) -> bool:
    """The app's tune and verdicts are the CLI's; True when a closest corpus tune was found (a
    tune may share no run of notes with any)."""
    assert record.text == cli["text"] and record.seed == cli["seed"]
    check = record.check
    assert check is not None and record.valid == cli["valid"]
    # The model's own Z: lines are not in the app's text (the credit takes their place), so
    # what abc2midi says of them (`--json` checks the text as made) is the CLI's alone: a
    # drawn seed's "Z:|!" got two warnings there (ambiguous :|, ignoring text).
    shown = set(record.shared_abc.split("\n"))
    replaced = {line for line in cli["text"].split("\n") if line.startswith("Z:")} - shown
    for kind in ("errors", "warnings"):
        mine = [str(m.moved(record.line_offset)) for m in getattr(check, kind)]
        theirs = [m for m in pointed_at(cli["text"], cli[kind]) if m[0] not in replaced]
        assert pointed_at(record.shared_abc, mine) == theirs
    assert record.music == cli["music"]["verdict"] and record.music
    closest, theirs = judged.closest, cli.get("closest")
    mine_closest = (closest.title, round(closest.similarity, 3)) if closest else None
    assert mine_closest == ((theirs["title"], theirs["similarity"]) if theirs else None)
    assert bool(record.novelty) == cli.get("near_copy", False)
    assert record.novelty == judged.near_copy
    return closest is not None


@pytest.mark.asyncio
async def test_the_cli_and_the_app_give_the_same_tune_and_verdicts(
    tiny_checkpoint: Path,  # trained on the default corpus, found here by what it is
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    corpus = tmp_path / "other.abc"
    corpus.write_text(OTHER_CORPUS, encoding="utf-8")
    judged: dict[int, Judgement] = {}
    on_checked = GenerateScreen.on_tune_checked

    def record_judgement(screen: GenerateScreen, message: TuneChecked) -> None:
        judged[message.number] = message.judgement
        on_checked(screen, message)

    monkeypatch.setattr(GenerateScreen, "on_tune_checked", record_judgement)

    from_cli = cli_tune(capsys, tiny_checkpoint, None)  # the CLI draws the seed and prints it
    app = FolkgenApp(corpus, model_path=tiny_checkpoint)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_ready(pilot, model=True)
        assert app.corpus is not None and len(app.corpus.tunes) == 2  # the Dataset corpus
        screen = await show_screen(pilot, "g", GenerateScreen)
        for field, value in SETTINGS.items():
            await type_into(pilot, f"#{field}", value)
        await type_into(pilot, "#seed", str(from_cli["seed"]))
        await pilot.press("enter")
        await wait_for(pilot, lambda: 1 in judged, "the first tune's verdict")
        compared = [assert_same(app.history[0], judged[1], from_cli)]

        await pilot.press("n")  # a fresh seed drawn by the app, shown on the status line
        await wait_for(pilot, lambda: 2 in judged, "the second tune's verdict")
        status = str(screen.query_one("#gen-status", Static).content)
        shown = re.search(r"#2 seed (\d+)", status)
        assert shown is not None, status
        second = app.history[1]
        assert int(shown.group(1)) == second.seed and second.seed != from_cli["seed"]
    compared.append(assert_same(second, judged[2], cli_tune(capsys, tiny_checkpoint, second.seed)))
    # Against the model's training corpus, not the Dataset screen's (two tunes of its own).
    assert any(compared), "neither tune was compared with a corpus tune"

