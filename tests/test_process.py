"""Process-wide settings made at the studio's start (folkgen_tui/process.py), each checked in a
fresh interpreter: they act on the whole process, and Textual reads its frame rate on import."""

from __future__ import annotations

import gc
import importlib
import os
import subprocess
import sys
import threading

import pytest

from folkgen_tui.process import GIVE_WAY_INTERVAL, KeyHold, giving_way

FRAME_RATE = (
    "import gc\n"
    "from folkgen_tui import process\n"
    "process.configure()\n"
    "assert not gc.isenabled()  # held off until the app's first model is ready\n"
    "from textual import constants\n"
    "print(constants.MAX_FPS)\n"
)


def textual_frame_rate(env: dict[str, str]) -> int:
    done = subprocess.run(
        [sys.executable, "-c", FRAME_RATE], env=env, capture_output=True, text=True, check=True
    )
    return int(done.stdout)


def test_the_studio_draws_at_120_frames_a_second_unless_the_user_says_otherwise() -> None:
    env = {k: v for k, v in os.environ.items() if k != "TEXTUAL_FPS"}
    assert textual_frame_rate(env) == 120  # Textual's own default is 60
    assert textual_frame_rate({**env, "TEXTUAL_FPS": "30"}) == 30


def test_a_key_hold_holds_a_running_collector_only_and_releases_it_once() -> None:
    hold = KeyHold()
    try:
        gc.enable()
        assert hold.hold() and not gc.isenabled()
        assert not hold.hold()  # held already: one release
        hold.release()
        assert gc.isenabled()
        hold.release()  # again: nothing
        assert gc.isenabled()
        gc.disable()  # off (start-up): a key leaves it off
        assert not hold.hold()
        hold.release()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_giving_way_shortens_the_switch_interval_while_any_thread_is_within_it() -> None:
    """Restored to what it was as the last thread leaves, an exception too; two model loads in
    a row overlap there, and each restoring what it found left it short for good."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.002)  # restored to this, not to CPython's default
    try:
        with pytest.raises(ImportError), giving_way():
            assert sys.getswitchinterval() == pytest.approx(GIVE_WAY_INTERVAL)
            importlib.import_module("folkgen_no_such_module")
        assert sys.getswitchinterval() == pytest.approx(0.002)
        first_in, second_in, first_out = (threading.Event() for _ in range(3))
        seen: list[float] = []

        def first() -> None:
            with giving_way():
                first_in.set()
                second_in.wait(5)
            first_out.set()

        def second() -> None:
            first_in.wait(5)
            with giving_way():
                second_in.set()
                first_out.wait(5)
                seen.append(sys.getswitchinterval())  # the first has left: still short
            seen.append(sys.getswitchinterval())

        threads = [threading.Thread(target=first), threading.Thread(target=second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert seen == [pytest.approx(GIVE_WAY_INTERVAL), pytest.approx(0.002)]
    finally:
        sys.setswitchinterval(before)
