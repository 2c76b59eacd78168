"""The engine (core.engine) with every sampled character slowed down and written to a file, for
tests of what the app does while a tune is still coming: FOLKGEN_TEST_SLOW_SAMPLING is
"SECONDS_PER_CHARACTER:FILE". Tests run it by setting core.engine.Engine.module to this module."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

from core import engine
from core.sample import Sampler
from core.sample_options import SampleOptions


def main(argv: list[str]) -> None:
    delay, path = os.environ["FOLKGEN_TEST_SLOW_SAMPLING"].split(":", 1)
    real = Sampler.stream

    def slow(self: Sampler, options: SampleOptions) -> Iterator[str]:
        with open(path, "a", encoding="utf-8") as drawn:
            for ch in real(self, options):
                time.sleep(float(delay))
                drawn.write(ch)
                drawn.flush()
                yield ch

    Sampler.stream = slow  # type: ignore[method-assign]
    engine.main(argv)
