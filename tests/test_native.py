"""Building and loading the C kernels (core/native.py): a stale library is built again, a build
that fails leaves the numpy path with a reason and is not tried again for the same sources."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from core import native


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """native's state reset, its sources copied into tmp_path and its library built there."""
    sources = []
    for src in native.SOURCES:
        sources.append(tmp_path / src.name)
        shutil.copy(src, sources[-1])
    monkeypatch.setattr(native, "SOURCES", tuple(sources))
    monkeypatch.setattr(native, "HERE", tmp_path)
    monkeypatch.setattr(native, "LIBRARY", tmp_path / "_native.so")
    monkeypatch.setattr(native, "FAILED", tmp_path / "_native.failed")
    monkeypatch.setattr(native, "_lib", None)
    monkeypatch.setattr(native, "_lib_tried", False)
    monkeypatch.setattr(native, "_problem", "")
    monkeypatch.delenv("FOLKGEN_NO_NATIVE", raising=False)
    return tmp_path


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_a_missing_or_stale_library_is_built_on_first_use(
    fresh: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert native.library() is not None and native.LIBRARY.exists()
    assert native.LIBRARY.stat().st_mode & 0o044  # others may read it
    assert not list(fresh.glob("*.building"))
    with open(native.SOURCES[1], "a") as f:
        f.write("/* changed */\n")
    assert not native._current()  # built from other sources
    monkeypatch.setattr(native, "_lib_tried", False)
    assert native.library() is not None and native._current()


def test_a_build_that_fails_is_said_and_not_tried_again(
    fresh: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    native.SOURCES[1].write_text("this is not C\n")
    runs = []
    real_run = subprocess.run

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        runs.append(args)
        return real_run(*args, **kwargs)

    monkeypatch.setattr(subprocess, "run", counted)
    assert native.library() is None
    assert "could not be built" in native.problem() and len(runs) == 1
    assert not native.LIBRARY.exists() and not list(fresh.glob("*.building"))
    monkeypatch.setattr(native, "_lib_tried", False)
    assert native.library() is None and len(runs) == 1  # the same sources: not tried again
    assert native.build(quiet=True) is False and len(runs) == 2  # python -m core.native tries


def test_folkgen_no_native_turns_them_off_unless_0(
    fresh: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOLKGEN_NO_NATIVE", "1")
    assert native.library() is None and "FOLKGEN_NO_NATIVE" in native.problem()
    monkeypatch.setattr(native, "_lib_tried", False)
    monkeypatch.setenv("FOLKGEN_NO_NATIVE", "0")
    if shutil.which("cc") is not None:
        assert native.library() is not None
