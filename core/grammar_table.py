"""The ABC grammar's state table, prebuilt and stored, so that a fresh process looks its rows up
instead of building them (issue 14).

A grammar builds a state's row (its mask, next states, effects and gates) on the state's first
visit, at 0.15-0.25 ms each; the shipped model's tunes still meet hundreds of new states per
batch of 16 after a hundred tunes, which cost a fresh process more than the grammar's own steps.
`python -m core.grammar_table` samples tunes with the shipped model from a fresh table and
stores the table it filled beside the model (core/models/default.grammar.npz); Sampler.grammar
loads it when its fingerprint (AbcGrammar.fingerprint: the grammar's code and rules, options,
vocabulary, keys) matches the grammar's, so no other vocabulary, keys or grammar version ever
uses it. The rows are the grammar's own, so the tunes drawn are the same with it or without it
(tests/test_grammar_table.py). The file also holds how many of the sampled tunes visited each
state: the rows of those that at least HOT_VISITS did (a quarter of the 22,000, which hold ~92 %
of a fresh tune's visits) are read ahead while the app is idle (AbcGrammar.read_ahead), not by its first
tunes.

The file is an .npz of integer and byte arrays read with allow_pickle=False: the states' fields
as ints into small tables of their strings and tuples (JSON), rows as ints, and each row's
effects and gates by character as one of a few hundred maps that rows share. A file that is too
big, unreadable, of another fingerprint or inconsistent (kinds, arities, ids out of range) is
ignored, and the grammar builds its rows as it goes. Written atomically (a temporary file
renamed over the old one).
"""

from __future__ import annotations

import argparse
import gc
import json
import zipfile
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from core.abc_grammar import (
    _EFFECT_USES,
    _GATE_READS,
    UNBUILT,
    UNSTEPPED,
    AbcGrammar,
    Effect,
    Gate,
    StoredRow,
    StoredTable,
    _Key,
)
from core.paths import replace_file

FORMAT = 2
MAX_FILE_BYTES = 32 << 20  # what the arrays may unpack to, all together
MAX_STATES = 1 << 22
# Of the sampled tunes (6,400 by default), those that make a state's row read ahead: as 2 of
# 1,600 did, the rows most tunes visit (5,200, ~40 ms), the rest read as tunes come to them.
HOT_VISITS = 8
_FIELDS = _Key._fields
_STRING_FIELDS = ("sec", "meter", "unit")
_INT_FIELDS = ("rep", "pend", "slur", "nb", "tup", "bar", "t", "first", "done", "last", "ends", "tl", "lim")
# The items of each kind of lexical state (see abc_grammar's table of them), gate and effect.
_LEX_ITEMS = {
    "S": 1, "HL": 1, "HF": 2, "HV": 3, "BL": 1, "BF": 2, "N": 2, "P": 6, "L": 6, "TIE": 2,
    "BR": 3, "TP": 1, "TN": 1, "LB": 1, "IN": 5, "CE": 4, "GE": 1, "G": 2, "PI": 6, "CO": 3,
    "CP": 1, "BANG": 1, "F": 1,
}  # fmt: skip
_GATE_ITEMS = {
    "tie": 2, "tie_end": 2, "cad_pitch": 2, "cad_note": 1, "cad_rest": 1, "cad_chord": 1,
    "close": 9, "end": 6,
}  # fmt: skip
_EFFECT_ITEMS = {
    "pitch": 2, "pitch+": 2, "note": 2, "tie": 1, "bar": 4, "newbar": 2, "close": 2, "first": 1,
    "second": 1, "key": 2, "end": 1,
}  # fmt: skip
assert set(_GATE_ITEMS) == set(_GATE_READS) and set(_EFFECT_ITEMS) == set(_EFFECT_USES)

T = TypeVar("T")
_Pairs = tuple[tuple[int, int], ...]  # a row's (character, sequence id) pairs
Value = str | int | bool | None | tuple["Value", ...]


class BadTable(ValueError):
    """A stored table that is not what this format writes."""


def _plain(value: object) -> object:
    """A state's part, gate or effect as JSON (tuples as lists)."""
    return [_plain(v) for v in value] if isinstance(value, tuple) else value


def _tupled(value: object, depth: int = 0) -> Value:
    """JSON back to the grammar's values: lists as tuples; nothing else but str, int, bool,
    None, and nothing nested deeper than the grammar nests."""
    if isinstance(value, list) and depth < 4:
        return tuple(_tupled(v, depth + 1) for v in value)
    if value is None or isinstance(value, str | int):  # bool is an int
        return value
    raise BadTable(f"unexpected value {value!r:.40}")


def _kinded(value: Value, items: dict[str, int], what: str) -> tuple[Value, ...]:
    if not (isinstance(value, tuple) and value and items.get(str(value[0])) == len(value)):
        raise BadTable(f"not a {what}: {value!r:.60}")
    return value


def _json(data: object) -> np.ndarray:
    return np.frombuffer(json.dumps(data, separators=(",", ":")).encode(), dtype=np.uint8)


def _unjson(array: np.ndarray) -> object:
    if array.dtype != np.uint8 or array.ndim != 1:
        raise BadTable("not a JSON byte array")
    return json.loads(array.tobytes())


class _Interned(Generic[T]):
    """Distinct values, each with its index: what the int arrays point into."""

    def __init__(self) -> None:
        self.index: dict[T, int] = {}

    def __call__(self, value: T) -> int:
        return self.index.setdefault(value, len(self.index))

    def plain(self) -> list[object]:
        return [_plain(v) for v in self.index]


def save(grammar: AbcGrammar, path: Path, visits: Mapping[_Key, int] | None = None) -> int:
    """Store the grammar's built rows at `path` (atomically), each state with how many tunes
    visited it (`visits`, by state; none by default); returns the file's size."""
    table = grammar.snapshot()
    visited = [(visits or {}).get(k, 0) for k in table.keys]
    strings, lexes, tfs = (
        _Interned[str](),
        _Interned[tuple[Any, ...]](),
        _Interned[tuple[int, int]](),
    )
    effects, gates = _Interned[tuple[Effect, ...]](), _Interned[tuple[tuple[int, Gate], ...]]()
    keys = np.array(
        [
            [
                strings(getattr(k, f)) if f in _STRING_FIELDS
                else lexes(k.lex) if f == "lex" else tfs(k.tf) if f == "tf" else getattr(k, f)
                for f in _FIELDS
            ]
            for k in table.keys
        ],
        dtype=np.int64,
    )  # fmt: skip
    small = len(table.keys) <= np.iinfo(np.int16).max  # ids fit: half the bytes to unpack
    rows = np.array(table.rows, dtype=np.int16 if small else np.int32)
    rows = rows.reshape(len(table.keys), len(grammar.chars))
    # Rows share their effects and gates by character far more often than not (a few hundred
    # distinct maps for ten thousand rows): each map is stored once.
    fx_maps, gx_maps = _Interned[_Pairs](), _Interned[_Pairs]()
    fx = [
        fx_maps(tuple((i, effects(seq)) for i, seq in by_char.items())) for by_char in table.effects
    ]
    gx = [gx_maps(tuple((i, gates(seq)) for i, seq in gated)) for gated in table.gates]
    arrays = {
        "meta": _json({"format": FORMAT, "fingerprint": grammar.fingerprint()}),
        "atoms": _json([strings.plain(), lexes.plain(), tfs.plain()]),
        "keys": keys,
        "visits": np.array(visited, dtype=np.int32),
        "rows": rows,
        "effects": _json(effects.plain()),
        "gates": _json(gates.plain()),
        **_flat("fx_maps", fx_maps),
        **_flat("gx_maps", gx_maps),
        "fx": np.array(fx, dtype=np.int32),
        "gx": np.array(gx, dtype=np.int32),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, lambda f: np.savez_compressed(f, **arrays))  # type: ignore[arg-type]
    return path.stat().st_size


def _array(data: np.lib.npyio.NpzFile, name: str, dtype: type, ndim: int) -> np.ndarray:
    array: np.ndarray = data[name]
    if array.dtype != dtype or array.ndim != ndim:
        raise BadTable(f"{name}: {array.dtype} with {array.ndim} dimensions")
    return array


def _keys(data: np.lib.npyio.NpzFile) -> list[_Key]:
    atoms = _tupled(_unjson(data["atoms"]))
    if not (isinstance(atoms, tuple) and len(atoms) == 3):
        raise BadTable("atoms")
    strings, lexes, tfs = (a if isinstance(a, tuple) else () for a in atoms)
    if not all(isinstance(s, str) for s in strings):
        raise BadTable("strings")
    for lex in lexes:
        _kinded(lex, _LEX_ITEMS, "lexical state")
    if not all(isinstance(tf, tuple) and len(tf) == 2 for tf in tfs):
        raise BadTable("tuplet factors")
    keys = _array(data, "keys", np.int64, 2)
    if keys.shape[1] != len(_FIELDS) or not 0 < len(keys) <= MAX_STATES:
        raise BadTable(f"keys: shape {keys.shape}")
    columns: list[list[Value]] = []
    for f, column in zip(_FIELDS, keys.T, strict=True):
        atoms_of = lexes if f == "lex" else tfs if f == "tf" else strings
        if f in _INT_FIELDS:
            columns.append(column.tolist())
        elif column.min() < 0 or column.max() >= len(atoms_of):
            raise BadTable(f"keys: {f} out of range")
        else:
            columns.append([atoms_of[j] for j in column.tolist()])
    return list(map(_Key._make, zip(*columns, strict=True)))


def _decode(data: np.lib.npyio.NpzFile, chars: int) -> StoredTable:
    """The table in `data`, checked (raises BadTable, or what numpy and json raise on a
    damaged file): the states now, each row when a stream first comes to it."""
    keys = _keys(data)
    states = len(keys)
    rows: np.ndarray = data["rows"]
    if rows.dtype not in (np.int16, np.int32) or rows.shape != (states, chars):
        raise BadTable(f"rows: {rows.dtype} {rows.shape} for {states} states of {chars} characters")
    if rows.min() < UNSTEPPED or rows.max() >= states:
        raise BadTable("rows: a next state out of range")
    effect_seqs = _sequences(data, "effects", _effects)
    gate_seqs = _sequences(data, "gates", _gates)
    fx_maps = _Maps(data, "fx_maps", chars, effect_seqs)
    gx_maps = _Maps(data, "gx_maps", chars, gate_seqs)
    fx = _array(data, "fx", np.int32, 1)
    gx = _array(data, "gx", np.int32, 1)
    for links, maps in ((fx, fx_maps), (gx, gx_maps)):
        if len(links) != states or (states and (links.min() < 0 or links.max() >= len(maps))):
            raise BadTable("fx or gx: out of range")
    fx_of, gx_of = fx.tolist(), gx.tolist()
    visits = _array(data, "visits", np.int32, 1)
    if len(visits) != states or (states and visits.min() < 0):
        raise BadTable("visits")
    fx_dicts: dict[int, dict[int, tuple[Effect, ...]]] = {}  # rows that share a map share it

    def row(sid: int) -> StoredRow:
        effects = fx_dicts.get(fx_of[sid])
        if effects is None:
            effects = fx_dicts[fx_of[sid]] = dict(fx_maps[fx_of[sid]])
        return rows[sid].tolist(), rows[sid] != UNBUILT, effects, gx_maps[gx_of[sid]]

    return StoredTable(keys, row, np.flatnonzero(visits >= HOT_VISITS).tolist())


def _flat(name: str, maps: _Interned[_Pairs]) -> dict[str, np.ndarray]:
    """Maps of (character, sequence) pairs as one int array of pairs and where each starts."""
    pairs = [pair for m in maps.index for pair in m]
    at = np.cumsum([0, *(len(m) for m in maps.index)])
    return {
        name: np.array(pairs, dtype=np.int32).reshape(-1, 2),
        name + "_at": at.astype(np.int32),
    }


class _Maps(Generic[T]):
    """A row's effects or gates by character, read from the flat arrays on first use."""

    def __init__(self, data: np.lib.npyio.NpzFile, name: str, chars: int, seqs: list[T]):
        self.pairs = _array(data, name, np.int32, 2)
        at = _array(data, name + "_at", np.int32, 1)
        if self.pairs.shape[1:] != (2,) or not len(at) or at[0] != 0:
            raise BadTable(f"{name}: shape {self.pairs.shape}")
        if (np.diff(at) < 0).any() or at[-1] != len(self.pairs):
            raise BadTable(f"{name}: starts out of order")
        if len(self.pairs) and (
            self.pairs.min() < 0
            or self.pairs[:, 0].max() >= chars
            or self.pairs[:, 1].max() >= len(seqs)
        ):
            raise BadTable(f"{name}: out of range")
        self.at, self.seqs = at.tolist(), seqs
        self.done: dict[int, tuple[tuple[int, T], ...]] = {}

    def __len__(self) -> int:
        return len(self.at) - 1

    def __getitem__(self, m: int) -> tuple[tuple[int, T], ...]:
        found = self.done.get(m)
        if found is None:
            pairs = self.pairs[self.at[m] : self.at[m + 1]].tolist()
            found = self.done[m] = tuple((i, self.seqs[k]) for i, k in pairs)
        return found


def _sequences(data: np.lib.npyio.NpzFile, name: str, check: Callable[[Value], T]) -> list[T]:
    """The distinct effect or gate sequences the maps point into, each checked."""
    seqs = _tupled(_unjson(data[name]), -1)
    if not isinstance(seqs, tuple):
        raise BadTable(name)
    return [check(seq) for seq in seqs]


def _effects(value: Value) -> tuple[Effect, ...]:
    if not isinstance(value, tuple):
        raise BadTable("effects")
    return tuple(_kinded(e, _EFFECT_ITEMS, "effect") for e in value)


def _gates(value: Value) -> tuple[tuple[int, Gate], ...]:
    if not isinstance(value, tuple):
        raise BadTable("gates")
    out = []
    for item in value:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], int)):
            raise BadTable("gates")
        out.append((item[0], _kinded(item[1], _GATE_ITEMS, "gate")))
    return tuple(out)


def load(grammar: AbcGrammar, path: Path | None) -> bool:
    """Give a fresh grammar the table stored at `path` where it is this grammar's (same
    fingerprint) and sound; False (the grammar unchanged) where there is none or it is not."""
    if path is None:
        return False
    try:
        if not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
            return False
        with zipfile.ZipFile(path) as zf:  # what the members unpack to, before numpy reads
            if sum(info.file_size for info in zf.infolist()) > MAX_FILE_BYTES:
                return False
        with np.load(path, allow_pickle=False) as data:
            meta = _unjson(data["meta"])
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                return False
            if meta.get("fingerprint") != grammar.fingerprint():
                return False
            # Tens of thousands of small objects, all long-lived: the collector's passes over
            # them while they are made were a fifth of the load (~4 of 19 ms).
            collecting = gc.isenabled()
            gc.disable()
            try:
                table = _decode(data, len(grammar.chars))
            finally:
                if collecting:
                    gc.enable()
    except Exception:  # a damaged or foreign file, whatever it breaks: built as we go instead
        return False
    return grammar.adopt(table)


def main(argv: Sequence[str] | None = None) -> None:
    from core.generation import load_generator
    from core.paths import shipped_grammar_table_path, shipped_model_path
    from core.sample import SampleOptions, stream_parts

    ap = argparse.ArgumentParser(
        prog="python -m core.grammar_table",
        description="Prebuild the shipped model's grammar state table: sample tunes from a "
        "fresh table and store it beside the model.",
    )
    # 6,400: a fresh process's first tunes then build a third of the rows they built with the
    # 1,600 of before (~1 us a character of the grammar's cost there), for 0.22 MB more.
    ap.add_argument("--tunes", type=int, default=6400, help="tunes to sample (batches of 16)")
    ap.add_argument("--out", type=Path, default=None, help="where to store it")
    args = ap.parse_args(argv)
    model = shipped_model_path()
    if model is None:
        raise SystemExit("no shipped model in this build")
    sampler = load_generator(model).sampler
    grammar = AbcGrammar(sampler.vocab, keys=sampler.keys)
    sampler._grammar = grammar  # a fresh table, not the stored one
    seeds = range(1_000_000, 1_000_000 + args.tunes, 16)  # far from the tests' and bench's
    visits: Counter[_Key] = Counter()  # by state: how many tunes passed through it
    for n, seed in enumerate(seeds, 1):
        opts = SampleOptions(seed=seed, grammar=True)
        for b, tune in enumerate(sampler.generate_batch(16, opts)):
            visits.update(grammar.states_visited(tune, opts.prompt, stream_parts(seed + b)))
        print(f"\r{16 * n} tunes: {grammar.states_seen} states, {grammar.rows_made} rows",
              end="", flush=True)  # fmt: skip
    out = args.out or shipped_grammar_table_path()
    size = save(grammar, out, visits)
    print(f"\nstored {out} ({size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
