"""The grammar's stored state table (core/grammar_table.py): the shipped table is this grammar's
and tunes drawn with it are the tunes drawn without it; a stored table reads back as the rows
that were built; a damaged, hostile or foreign file is ignored, never used and never fatal."""

from __future__ import annotations

import json
import pickle
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from core import grammar_table
from core.abc_grammar import AbcGrammar, GrammarState
from core.checkpoint import load_checkpoint
from core.corpus import Vocabulary, load_corpus
from core.generation import Generator
from core.paths import shipped_model_path
from core.sample import SampleOptions, Sampler, stream_parts

TUNE = "X:1\nT:Test\nM:6/8\nL:1/8\nK:G Major\n|:GAB cde|"


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return load_corpus().vocab


def test_the_shipped_table_is_this_grammars_and_draws_the_same_tunes(keyed: Sampler) -> None:
    """The sampler reads its rows from the shipped table (regenerate it with `python -m
    core.grammar_table` after a change to the grammar), most of those its tunes visit ahead
    of them (as the app's engine does once idle), and draws what a grammar that builds every
    row draws, seed for seed, one stream and a batch."""
    used = keyed._grammar  # the session's sampler: other tests may have read rows already
    keyed._grammar = None  # so a grammar as a fresh process makes it
    try:
        with_table = keyed.grammar
        assert with_table.rows_read == 0 and with_table.states_seen > 5000, (
            "the shipped grammar table is not this grammar's: run python -m core.grammar_table"
        )
        runs = [
            (16, SampleOptions(seed=2024, grammar=True)),
            (1, SampleOptions(seed=7, grammar=True, temperature=0.8, top_k=12)),
        ]
        path = shipped_model_path()
        assert path is not None
        Generator(load_checkpoint(path), keyed, None).prepare()  # as the app's engine, idle
        ahead = with_table.rows_read
        drawn = [keyed.generate_batch(n, opts) for n, opts in runs]
        late = with_table.rows_read - ahead + with_table.rows_made  # rows the tunes waited for
        visited = {
            key for (_, opts), tunes in zip(runs, drawn, strict=True)
            for b, tune in enumerate(tunes) for key in with_table.states_visited(
                tune, opts.prompt, stream_parts((opts.seed or 0) + b)
            )
        }  # fmt: skip
        assert ahead > 1000 and late < len(visited) / 8
        keyed._grammar = AbcGrammar(keyed.vocab, keys=keyed.keys)  # every row built as tunes go
        assert [keyed.generate_batch(n, opts) for n, opts in runs] == drawn
    finally:
        keyed._grammar = used


def _walks(g: AbcGrammar, seed: int, walks: int = 4, steps: int = 400) -> list[str]:
    """Random walks through the grammar, favouring music (notes, bar lines, line ends)."""
    rng = np.random.default_rng(seed)
    favour = np.array([5.0 if c in "ABCDEFGabcdefg|:2/\n" else 1.0 for c in g.chars])
    texts = []
    for _ in range(walks):
        state, text = g.start("X:"), []
        for _ in range(steps):
            p = favour * g.mask(state)
            ch = g.chars[int(rng.choice(len(p), p=p / p.sum()))]
            g.advance(state, ch)
            text.append(ch)
        texts.append("".join(text))
    return texts


def test_a_stored_table_reads_back_as_the_rows_built(
    vocab: Vocabulary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Walks replayed on a grammar that adopted the table meet, step by step, the same states
    with the same masks (gated ones too) and counts, every row read, none built; the rows of
    states that at least HOT_VISITS walks visited are read ahead, and only those; a character
    the mask forbids (a prompt's) still falls back; walks beyond the table build as usual.
    (HOT_VISITS as for a table of this test's few walks.)"""
    monkeypatch.setattr(grammar_table, "HOT_VISITS", 2)
    built = AbcGrammar(vocab)
    texts = _walks(built, seed=3)
    visits = Counter(key for text in texts for key in built.states_visited(text, "X:"))
    hot = sum(n >= grammar_table.HOT_VISITS for n in visits.values())
    assert 10 < hot < len(visits) - 100  # most states are met by one walk alone
    built.advance(built.start("X:1\nT:t\nM:6/8\nK:G\n"), "Q")  # a fallback, left out of the file
    path = tmp_path / "table.npz"
    grammar_table.save(built, path, visits)
    assert path.stat().st_mode & 0o777 == 0o644 and [p.name for p in tmp_path.iterdir()] == [
        "table.npz"
    ]  # written whole, then renamed over
    read = AbcGrammar(vocab)
    assert grammar_table.load(read, path)
    assert read.read_ahead() == hot and read.rows_read == hot and read.read_ahead() == 0
    for text in texts:
        a, b = built.start("X:"), read.start("X:")
        for ch in text:
            assert built._keys[a.sid] == read._keys[b.sid]
            assert np.array_equal(built.mask(a), read.mask(b))
            assert all(getattr(a, f) == getattr(b, f) for f in GrammarState.__slots__[1:])
            built.advance(a, ch)
            read.advance(b, ch)
    assert read.rows_read > 200 and read.rows_made == 0
    stray = read.start("X:1\nT:t\nM:6/8\nK:G\n")
    read.advance(stray, "Q")
    assert read.is_free(stray)
    _walks(read, seed=4, walks=2)
    assert read.rows_made > 0


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def _tampered(arrays: dict[str, np.ndarray], name: str, value: np.ndarray, path: Path) -> Path:
    np.savez_compressed(path, **{**arrays, name: value})  # type: ignore[arg-type]
    return path


def test_a_damaged_hostile_or_foreign_table_is_ignored(
    vocab: Vocabulary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """None of these is used, and the grammar that tried each still builds its rows: no file,
    random bytes, a cut file, another grammar's table (other options or keys), an object
    array (a pickle), a file over the size bound, ids out of range, an unknown state kind,
    an effects map out of range, visits below zero or not one per state; and no table is
    adopted once a row is built."""
    g = AbcGrammar(vocab)
    _walks(g, seed=5, walks=1, steps=200)
    good = tmp_path / "good.npz"
    grammar_table.save(g, good)
    arrays = _arrays(good)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(np.random.default_rng(0).bytes(5000))
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes()[:-3000])
    rows = arrays["rows"].copy()
    rows[0, 0] = len(rows)
    atoms = json.loads(arrays["atoms"].tobytes())
    atoms[1][0] = ["Q", 1]
    fx = arrays["fx"].copy()
    fx[-1] = len(arrays["fx_maps_at"]) - 1  # one map past the last
    visits = arrays["visits"].copy()
    visits[0] = -1
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, **{**arrays, "keys": np.array([pickle.dumps(1)], dtype=object)})  # type: ignore[arg-type]
    bad = [
        tmp_path / "missing.npz",
        junk,
        cut,
        pickled,
        _tampered(arrays, "rows", rows, tmp_path / "rows.npz"),
        _tampered(arrays, "atoms", grammar_table._json(atoms), tmp_path / "lex.npz"),
        _tampered(arrays, "fx", fx, tmp_path / "maps.npz"),
        _tampered(arrays, "visits", visits, tmp_path / "visits.npz"),
        _tampered(arrays, "visits", visits[1:], tmp_path / "short.npz"),
    ]
    for path in bad:
        fresh = AbcGrammar(vocab)
        assert not grammar_table.load(fresh, path), path.name
        assert fresh.accepts(TUNE) and fresh.rows_made > 0 and fresh.rows_read == 0
    assert not grammar_table.load(AbcGrammar(vocab, metre=False), good)
    assert not grammar_table.load(AbcGrammar(vocab, keys=["D major"]), good)
    started = AbcGrammar(vocab)
    started.mask(started.start("X:"))
    assert not grammar_table.load(started, good)
    monkeypatch.setattr(grammar_table, "MAX_FILE_BYTES", good.stat().st_size - 1)
    assert not grammar_table.load(AbcGrammar(vocab), good)
    monkeypatch.undo()
    assert grammar_table.load(AbcGrammar(vocab), good)  # the file itself was sound
