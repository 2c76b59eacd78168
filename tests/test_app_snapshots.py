"""Snapshots of every screen (pytest-textual-snapshot). Deterministic: a fixed FOLKGEN_HOME and
time zone, no shipped model, a checkpoint with fixed bytes and date, torch loaded and the app
idle before the picture, no notifications. Update with: pytest tests/test_app_snapshots.py
--snapshot-update (and look at the pictures in snapshot_report.html first)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from folkgen_tui.app import FolkgenApp
from folkgen_tui.screens.models import ModelsScreen
from tests.app_helpers import generate_tune, make_checkpoint, wait_for, wait_ready

SnapCompare = Callable[..., bool]
FIXED_CREATED = 1_700_000_000.0  # tunebook dates in the Library snapshot (2023-11-14 UTC)


@pytest.fixture
def snapshot_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = Path("/tmp/folkgen-tui-snapshots")  # shown on the Models screen: a fixed path
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir()
    monkeypatch.setenv("FOLKGEN_HOME", str(home))
    monkeypatch.setattr("core.paths.shipped_model_path", lambda: None)
    old_tz = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield home
    if old_tz is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old_tz
    time.tzset()
    shutil.rmtree(home, ignore_errors=True)


def make_app(**kwargs: Any) -> FolkgenApp:
    return FolkgenApp(autoload_model=False, theme="gruvbox", **kwargs)


async def settle(pilot: Pilot[Any]) -> None:
    await pilot.pause(0.1)
    pilot.app.clear_notifications()
    await pilot.pause()


def test_dataset_summary(snap_compare: SnapCompare, snapshot_home: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await wait_ready(pilot)
        await settle(pilot)

    assert snap_compare(make_app(), run_before=run_before)


def test_dataset_summary_wide(snap_compare: SnapCompare, snapshot_home: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await wait_ready(pilot)
        await settle(pilot)

    assert snap_compare(make_app(), run_before=run_before, terminal_size=(140, 40))


def test_dataset_tunes(snap_compare: SnapCompare, snapshot_home: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await wait_ready(pilot)
        await pilot.press("u", "down", "down")
        await settle(pilot)

    assert snap_compare(make_app(), run_before=run_before)


def test_dataset_vocabulary(snap_compare: SnapCompare, snapshot_home: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await wait_ready(pilot)
        await pilot.press("v")
        await settle(pilot)

    assert snap_compare(make_app(), run_before=run_before)


def test_train(snap_compare: SnapCompare, snapshot_home: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await wait_ready(pilot)
        await pilot.press("t")
        await settle(pilot)

    assert snap_compare(make_app(), run_before=run_before)


def test_score_view(snap_compare: SnapCompare, snapshot_home: Path) -> None:
    """The Dataset's first tune as sheet music in Unicode half blocks (no terminal graphics)."""
    from folkgen_tui.widgets.score_view import ScoreView

    async def run_before(pilot: Pilot[Any]) -> None:
        await wait_ready(pilot)
        await pilot.press("u", "v")
        score = pilot.app.screen.query_one("#tune-score", ScoreView)
        await wait_for(pilot, lambda: score.engraved and score.up_to_date, "the score")
        await settle(pilot)

    assert snap_compare(make_app(), run_before=run_before, terminal_size=(130, 40))


def test_generate_a_tune(snap_compare: SnapCompare, snapshot_home: Path) -> None:
    model = make_checkpoint(snapshot_home / "checkpoints" / "snapshot.pt")

    async def run_before(pilot: Pilot[Any]) -> None:
        await wait_ready(pilot, model=True)
        # Greedy sampling (temperature 0) from a fixed untrained model: the same text always.
        _, record = await generate_tune(
            pilot, {"temperature": "0", "max-chars": "160", "seed": "1"}
        )
        await wait_for(pilot, lambda: record.check is not None or record.check_error, "check")
        await settle(pilot)

    assert snap_compare(make_app(model_path=model), run_before=run_before, terminal_size=(100, 30))


def test_models(snap_compare: SnapCompare, snapshot_home: Path) -> None:
    make_checkpoint(snapshot_home / "checkpoints" / "snapshot.pt")
    broken = snapshot_home / "checkpoints" / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    os.utime(broken, (1_600_000_000, 1_600_000_000))

    async def run_before(pilot: Pilot[Any]) -> None:
        await wait_ready(pilot)
        await pilot.press("m")
        screen = pilot.app.screen
        assert isinstance(screen, ModelsScreen)
        await wait_for(pilot, lambda: len(screen.infos) == 2, "the checkpoint details")
        await settle(pilot)

    assert snap_compare(make_app(), run_before=run_before, terminal_size=(100, 30))


def test_library(snap_compare: SnapCompare, snapshot_home: Path) -> None:
    """The tunebook of six tunes (fixed creation times, ratings, favourites), newest first."""
    from core.corpus import load_corpus
    from core.library import LIBRARY_FILE, Library
    from folkgen_tui.screens.library import LibraryScreen

    tunes = load_corpus().tunes[:6]
    with Library.open(snapshot_home / LIBRARY_FILE) as library:
        for n, tune in enumerate(tunes):
            created = FIXED_CREATED + n * 86_400
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr("core.library.time.time", lambda created=created: created)
                generated = n % 2 == 0
                tune_id = library.add(
                    tune, source="generated" if generated else "imported", in_tunebook=True,
                    model_name="snapshot.pt" if generated else "", seed=n if generated else None,
                    temperature=1.0 if generated else None,
                )  # fmt: skip
            library.rate(tune_id, n % 6)
            library.set_favourite(tune_id, n in (1, 5))

    async def run_before(pilot: Pilot[Any]) -> None:
        await wait_ready(pilot)
        await pilot.press("l")
        screen = pilot.app.screen
        assert isinstance(screen, LibraryScreen)
        await wait_for(pilot, lambda: screen.loaded and screen.tune is not None, "the tunebook")
        await settle(pilot)

    assert snap_compare(make_app(), run_before=run_before, terminal_size=(110, 30))


def test_help(snap_compare: SnapCompare, snapshot_home: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await wait_ready(pilot)
        await pilot.press("question_mark")
        await settle(pilot)

    assert snap_compare(make_app(), run_before=run_before)
