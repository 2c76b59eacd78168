"""`python -m core.torchrun ARGS`: torchrun (torch.distributed.run) as `folkgen train --nproc`
starts it, less torchrun's own report when a rank fails. A rank says why it stopped
(`folkgen: error: …`); torchrun then printed its warnings about stopping the other ranks and a
40-line traceback of itself, which buried that one line."""

from __future__ import annotations

import logging
import sys


def main(argv: list[str]) -> int:
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import main as torchrun

    # Its warnings (sending SIGTERM to the other ranks) and its own traceback say nothing to a
    # person; a rank's error log line stays.
    logging.getLogger("torch.distributed.elastic").setLevel(logging.ERROR)
    try:
        torchrun(argv)
    except ChildFailedError as e:
        rank, failure = e.get_first_failure()
        if failure.exitcode < 0:  # killed: the rank could not say why
            print(f"folkgen: training process {rank} was ended by signal {-failure.exitcode}",
                  file=sys.stderr)  # fmt: skip
            return 1
        said = e.failures.get(0)
        if said is None or said.exitcode <= 0:  # rank 0 says only what every rank says alike
            print(f"folkgen: training process {rank} stopped (exit status {failure.exitcode})",
                  file=sys.stderr)  # fmt: skip
        return failure.exitcode
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
