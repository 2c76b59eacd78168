from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest

from core.corpus import load_corpus
from core.novelty import GIVE_WAY_EVERY, NEAR_COPY, NoveltyIndex, tune_body


def test_body_ignores_headers_and_layout() -> None:
    assert tune_body("X:1\nT:A\nM:C\nK:G\nGAB c2 |!\nd e f|\n") == "GABc2|def|"


def test_the_tunebook_and_a_verdict_with_the_corpus_come_without_numpy() -> None:
    """The app opens its tunebook as it builds the Library screen, ~0.7 s after its first frame,
    and checks each tune against the corpus: numpy's import (~50 ms holding the interpreter) was
    the tunebook's then, and a key pressed meanwhile waited for it. The default corpus's index is
    plain Python (numpy's import comes as the first model does: FolkgenApp._model_ready)."""
    code = (
        "import sys\n"
        "from core.corpus import load_corpus\n"
        "from core.judge import judge\n"
        "from core.library import Library\n"
        "from core.novelty import NoveltyIndex\n"
        "tunes = load_corpus().tunes\n"
        "match = judge(tunes[5], NoveltyIndex(tunes), check=False).closest\n"
        "print(match.index, match.similarity, 'numpy' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["5", "1.0", "False"]


def test_copies_and_new_tunes() -> None:
    tunes = load_corpus().tunes
    index = NoveltyIndex(tunes)
    copy = tunes[10].replace("T:", "T:Not ", 1).replace("\n", "\n\n", 0)
    match = index.closest(copy)
    assert match is not None and match.index == 10 and match.similarity == 1.0
    assert match.is_near_copy and match.describe().startswith(f"close to {match.title} (100%")
    # Half of one tune's body replaced by different music: no longer a near-copy.
    lines = tunes[10].splitlines()
    k = next(i for i, line in enumerate(lines) if line.startswith("K:"))
    body = lines[k + 1 :]
    altered = "\n".join(
        lines[: k + 1] + body[: len(body) // 2] + ["ceg" * 30 + "|"] * (len(body) - len(body) // 2)
    )
    m2 = index.closest(altered)
    assert m2 is not None and m2.similarity < NEAR_COPY
    fresh = index.closest("X:1\nT:New\nK:G\n" + "zzzz|" * 20)
    assert fresh is None or fresh.similarity < 0.1
    assert index.closest("X:1\nT:Empty\nK:G\n") is None


def test_building_the_index_lets_other_threads_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app builds it on a worker thread while its UI answers keys: it lets go of the
    interpreter every few tunes (a key otherwise waited a switch interval, 5 ms, at a time)."""
    import core.novelty

    tunes = load_corpus().tunes
    pauses: list[float] = []
    # Its own name for the time module only: the module's sleep is every thread's.
    monkeypatch.setattr(core.novelty, "time", SimpleNamespace(sleep=pauses.append))
    NoveltyIndex(tunes)
    assert len(pauses) == -(-len(tunes) // GIVE_WAY_EVERY) and set(pauses) == {0}
