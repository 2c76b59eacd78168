"""`folkgen-tui` (and `python -m folkgen_tui`): the lifeline first, then the app.

The lifeline is installed before the app's modules are imported (Textual, the screens: about half
a second on a slow machine), so a terminal closed at any moment of start-up ends the process."""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> None:
    from folkgen_tui import process

    process.configure()  # process-wide settings first, before any thread starts
    from folkgen_tui.lifeline import Lifeline

    lifeline = Lifeline()
    lifeline.install()
    from folkgen_tui import graphics

    graphics.start()  # asks the terminal what images it shows while the app's modules import
    from folkgen_tui.app import run

    run(argv, lifeline)  # (it waits for the terminal's answer once the app is made)


if __name__ == "__main__":
    main()
