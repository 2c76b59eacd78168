"""Where folkgen keeps its files, and where the default corpus lives. No heavy imports."""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import re
import tempfile
import unicodedata
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

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


def previews_dir() -> Path:
    """Scores written for a look where the app cannot draw them (a pane too narrow): apart from
    the tunes folder, where saves and exports go (browsing a corpus filled it)."""
    return data_home() / "previews"


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


def checkpoint_files(folder: Path | None = None) -> list[Path]:
    """Checkpoint files (*.pt) in the user's folder, newest first. Reads no file: no torch."""
    folder = folder or checkpoints_dir()
    if not folder.is_dir():
        return []
    files = [p for p in folder.glob("*.pt") if p.is_file()]
    return sorted(files, key=lambda p: p.stat().st_mtime, reverse=True)


def shipped_model_path() -> Path | None:
    """The default model shipped inside the package, if this build has one."""
    path = Path(__file__).parent / "models" / "default.pt"
    return path if path.is_file() else None


def shipped_grammar_table_path() -> Path:
    """The shipped model's prebuilt grammar state table (core/grammar_table.py makes it)."""
    return Path(__file__).parent / "models" / "default.grammar.npz"


NEWEST = "newest checkpoint"
NO_MODEL = "no model yet: train one first (folkgen train, or the Train screen)"


def default_models() -> list[tuple[Path, str]]:
    """The models to generate with when none is asked for, each with why, in the order to try
    them: the user's checkpoints newest first, then the shipped default. The next is for when
    one cannot be loaded (core.generation.load_first_generator): one damaged or half-copied
    file, the newest, stopped generation."""
    files = checkpoint_files()
    models = [(path, NEWEST if i == 0 else f"{NEWEST} that loads") for i, path in enumerate(files)]
    shipped = shipped_model_path()
    return models + ([(shipped, "shipped default model")] if shipped is not None else [])


def resolve_model_path(explicit: str | Path | None = None) -> tuple[Path, str]:
    """The model to generate with and why: the one asked for, else the first of
    default_models. Raises FileNotFoundError with advice when there is none."""
    if explicit:
        return named_model(explicit), "chosen"
    models = default_models()
    if not models:
        raise FileNotFoundError(NO_MODEL)
    return models[0]


def named_model(name: str | Path) -> Path:
    """A checkpoint the user names: a path, else a file of the checkpoints folder by its name
    (".pt" may be left out), else the shipped model by its: the names the app's Models screen
    shows ("default.pt" was "no such checkpoint file" anywhere but in the package's folder)."""
    path = Path(name).expanduser()
    if path.exists() or path.parent != Path("."):
        return path
    file_name = path.name if path.suffix == ".pt" else f"{path.name}.pt"
    for found in (checkpoints_dir() / file_name, shipped_model_path()):
        if found is not None and found.name == file_name and found.is_file():
            return found
    return path


def slugify(title: str, max_len: int = 60) -> str:
    """A safe file-name stem: 'Paddy Fahey's (No. 2)' -> 'paddy-faheys-no-2'."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower().replace("'", "")).strip("-")
    return slug[:max_len].rstrip("-") or "untitled"


# The time (and a claim's number, a best model's mark) that ends a run's file name.
_RUN_STAMP = re.compile(r"-\d{8}-\d{6}(?:-\d+)?(?:\.best)?$")


def output_recipe(preset: str, resume: Path | None) -> str:
    """The recipe a run's new file is named after: the preset's, or for a resumed model
    "from-" and its file's name without its time (its recipe is the checkpoint's, not the
    preset chosen; the new file has a time of its own: cut at 24 characters, the old one's
    left half a time, as in awk8-abc-from-mytunes-tiny-20261204-05-20261204-053107.pt)."""
    return preset if resume is None else f"from-{slugify(_RUN_STAMP.sub('', resume.stem), 24)}"


def training_output_path(
    corpus_name: str, preset: str, resumed: Path | None = None, claim: bool = True
) -> Path:
    """Where a training run saves. A resumed user checkpoint is continued in its own file;
    anything else (a new model, the shipped one, which belongs to the installed package, a
    run's best model, which continued in its own file was replaced by a worse one) gets a new
    file in the checkpoints folder, named after the corpus, the recipe and the time, and
    claimed for this run (`claimed_name`; not by the ranks of a run that do not write)."""
    if resumed is not None and continued_in_place(resumed):
        return resumed
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    stem = f"{slugify(corpus_name, 30)}-{preset}-{stamp}"
    return claimed_name(checkpoints_dir(), stem) if claim else checkpoints_dir() / f"{stem}.pt"


def replace_file(path: Path, write: Callable[[BinaryIO], object], mode: int = 0o644) -> None:
    """Replace the file at `path` whole or not at all: `write` fills a temporary file beside it,
    which is then renamed over it. Written in place, a full disk mid-write left the old contents
    gone and the new ones cut short. A symbolic link (a settings file kept with the user's other
    dotfiles) stays one: the file it points to is replaced. The temporary file is never left
    behind; what fails (OSError, or whatever `write` raises) is raised with the old file as it
    was. (Not synced to the disk: core.checkpoint's save, whose files are worth the wait, is.)"""
    path = path.resolve()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, mode)  # mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def best_path_for(path: Path) -> Path:
    """Where the run that saves at `path` keeps its best model by validation."""
    return path.with_name(f"{path.stem}.best{path.suffix}")


def is_best_path(path: Path) -> bool:
    """A run's best model by validation (best_path_for's name)."""
    return path.stem.endswith(".best")


def continued_in_place(resumed: Path) -> bool:
    """A resumed checkpoint trains on in its own file (training_output_path): not the shipped
    model, nor a run's best model."""
    shipped = shipped_model_path()
    is_shipped = shipped is not None and resumed.resolve() == shipped.resolve()
    return not is_shipped and not is_best_path(resumed)


def claimed_name(folder: Path, stem: str) -> Path:
    """folder/STEM.pt, or STEM-2.pt, STEM-3.pt… where that name is taken: by a checkpoint (or its
    best model), or by another run that chose it and has not saved yet. Runs started in the same
    second (a sweep of them, in parallel) each saved over the others' files under one name. A
    run claims its name with a hidden empty file, .NAME.claim, made only where none is (O_EXCL,
    atomic), and gives it up as its process ends (release_claims); one left by a crash only
    keeps that name from use. (Not core.audio.reserve_paths, which makes the files themselves:
    an empty .pt would be listed as the newest checkpoint, and refused as the run's
    destination.) Where no claim can be made (a folder not writable), the name is not claimed:
    the run's own check of its destination says what is wrong."""
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        path = folder / f"{stem}{f'-{n}' if n > 1 else ''}.pt"
        claim = folder / f".{path.name}.claim"
        n += 1
        try:
            os.close(os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            continue  # another run's, until it ends
        except OSError:
            return path
        if path.exists() or best_path_for(path).exists():  # saved by a run that has ended
            claim.unlink(missing_ok=True)
            continue
        _claims.add((claim, os.getpid()))
        return path


_claims: set[tuple[Path, int]] = set()  # claims made, with the process that made each


def release_claims() -> None:
    """Give up this process's claims on checkpoint names (at exit; and by the app before its
    lifeline's forced exit, which skips atexit). A forked child leaves its parent's alone."""
    while _claims:
        claim, pid = _claims.pop()
        if pid == os.getpid():
            claim.unlink(missing_ok=True)


atexit.register(release_claims)
