"""Where folkgen keeps its files, and where the default corpus lives. No heavy imports."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from platformdirs import user_data_path

MITDL_INSTALL_HINT = (
    "the default corpus comes from the mitdeeplearning package, which is not installed. "
    "Install it without its (TensorFlow) dependencies: "
    "pip install --no-deps --no-build-isolation 'setuptools<81' mitdeeplearning==0.7.5 "
    "(or run `make setup`)"
)


class DefaultCorpusMissing(FileNotFoundError):
    """The mitdeeplearning package (which holds irish.abc) is not installed."""


def data_home() -> Path:
    """The per-user folder for checkpoints, renders and history (FOLKGEN_HOME overrides it)."""
    env = os.environ.get("FOLKGEN_HOME")
    home = Path(env).expanduser() if env else user_data_path("folkgen", appauthor=False)
    return home


def checkpoints_dir() -> Path:
    return data_home() / "checkpoints"


def output_dir() -> Path:
    return data_home() / "tunes"


def default_corpus_path() -> Path:
    """Locate mitdeeplearning/data/irish.abc without importing the package (it imports TensorFlow)."""
    spec = importlib.util.find_spec("mitdeeplearning")
    if spec is None or not spec.submodule_search_locations:
        raise DefaultCorpusMissing(MITDL_INSTALL_HINT)
    for location in spec.submodule_search_locations:
        path = Path(location) / "data" / "irish.abc"
        if path.is_file():
            return path
    raise DefaultCorpusMissing(MITDL_INSTALL_HINT)
