"""Time from launch to the first frame of folkgen-tui in a real pseudo-terminal (80x24), and to
the moment torch and the model are loaded in the background. Target: first frame < 1 s."""

from __future__ import annotations

import tempfile
import time

from pty_app import Terminal


def measure(home: str) -> tuple[float | None, float | None]:
    term = Terminal(home, cols=80, rows=24)
    first = ready = None
    try:
        term.wait_for(b"Dataset", timeout=20)
        first = time.perf_counter() - term.started
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 20:
            if b"model default" in term.text or b"no model yet" in term.text:
                ready = time.perf_counter() - term.started
                break
            term.read(0.01)
    except TimeoutError:
        pass
    finally:
        term.close()
    return first, ready


def main() -> None:
    with tempfile.TemporaryDirectory() as home:
        for _ in range(3):
            first, ready = measure(home)
            shown = f"{first:.2f} s" if first else "not seen"
            verdict = "ok" if first and first < 1 else "MISSED"
            loaded = f"{ready:.2f} s" if ready else "not seen"
            print(f"first frame {shown} (target < 1 s: {verdict}); torch + model ready {loaded}")


if __name__ == "__main__":
    main()
