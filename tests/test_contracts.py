"""The layering as import contracts (/work/shared/DESIGN.md): core never imports the app, Textual
or rich's live display; the text-and-sound modules never import torch (the Dataset screen and
the sound path work before torch has loaded); screens and widgets never import the app module
(they see it through folkgen_tui.studio). Every import statement counts, inside functions and
`if TYPE_CHECKING:` blocks too."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TORCH_FREE = ("corpus", "abc", "audio", "library", "voice", "score")  # core modules, when present


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, module: str) -> Iterator[tuple[int, str]]:
    """(line, module) for every import statement of a file, relative ones resolved against
    `module`, the file's dotted name."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package[: len(package) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            yield node.lineno, base
            for alias in node.names:  # `from folkgen_tui import app` imports folkgen_tui.app
                yield node.lineno, f"{base}.{alias.name}"


def within(module: str, forbidden: str) -> bool:
    return module == forbidden or module.startswith(forbidden + ".")


def breaches(files: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in files
        for line, module in imports(path, module_name(path))
        if any(within(module, f) for f in forbidden)
    ]


def python_files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def torch_free_files() -> list[Path]:
    return [p for name in TORCH_FREE if (p := ROOT / "core" / f"{name}.py").exists()]


def test_the_checker_sees_every_kind_of_import(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from ..app import FolkgenApp\n"
        "def f():\n"
        "    import torch.nn\n"
        "from folkgen_tui import app\n",
        encoding="utf-8",
    )
    found = set(imports(probe, "folkgen_tui.screens.probe"))
    assert {(3, "folkgen_tui.app"), (5, "torch.nn"), (6, "folkgen_tui.app")} <= found
    assert module_name(ROOT / "folkgen_tui" / "screens" / "base.py") == "folkgen_tui.screens.base"
    assert within("folkgen_tui.app", "folkgen_tui.app")
    assert not within("folkgen_tui.apps", "folkgen_tui.app")


def test_core_never_imports_the_app_textual_or_live_display() -> None:
    assert breaches(python_files("core"), ("textual", "rich.live", "folkgen_tui")) == []


def test_text_and_sound_modules_never_import_torch() -> None:
    files = torch_free_files()
    assert {p.stem for p in files} >= {"corpus", "abc", "audio"}
    assert breaches(files, ("torch",)) == []


def test_importing_the_text_and_sound_modules_leaves_torch_unloaded() -> None:
    """What they import in turn counts too: each is imported in a fresh interpreter."""
    names = [module_name(p) for p in torch_free_files()]
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "    if 'torch' in sys.modules:\n"
        "        sys.exit(f'importing {name} loaded torch')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr or done.stdout


def test_screens_and_widgets_never_import_the_app_module() -> None:
    files = python_files("folkgen_tui/screens") + python_files("folkgen_tui/widgets")
    assert breaches(files, ("folkgen_tui.app",)) == []
