"""The tunebook: every generated tune (the session history) and the tunes a person keeps, rates
and imports, in one SQLite file in the data folder. Standard library sqlite3 only; no torch.

The file itself (schema, migrations, a damaged file) is core/library_db.py's. WAL mode lets the
app and the CLI read while the other writes; every write here is one short `BEGIN IMMEDIATE`
transaction, and the busy timeout makes a second writer wait instead of failing.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import sqlite3
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from operator import attrgetter
from pathlib import Path

from core.abc import printable
from core.corpus import (
    MAX_CORPUS_BYTES,
    CorpusError,
    credited,
    generation_credit,
    header_field,
    last_tune,
    load_corpus,
)
from core.judge import Judgement, judge
from core.library_db import LibraryError as LibraryError
from core.library_db import open_database, sqlite_failure
from core.paths import data_home
from core.search import matching
from core.threads import all_cores

LIBRARY_FILE = "tunebook.sqlite3"
HISTORY_KEEP = 10_000  # session-history tunes kept (the tunebook itself is never pruned)
MAX_NOTES = 2_000  # characters of your notes on a tune
IMPORT_BATCH = 64  # tunes checked, then added, at a time by an import
SORTS = ("rating", "created", "title", "key", "metre")
SOURCES = ("generated", "imported")

Verdict = Judgement  # the musical verdict `add` stores: core.judge's, as the CLI and app show it

# --- records --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LibraryTune:
    id: int
    abc: str
    title: str
    metre: str
    key: str
    bars: int
    valid: bool | None  # abc2midi's verdict; None when it could not check
    bars_right: bool | None
    tonic_ending: bool | None
    form: str
    model_name: str
    model_hash: str
    seed: int | None
    temperature: float | None
    top_k: int | None
    prompt: str
    max_chars: int | None
    source: str  # "generated" | "imported"
    created: float
    rating: int
    favourite: bool
    play_count: int
    notes: str
    in_tunebook: bool  # False: session history only
    files: tuple[Path, ...]  # rendered files on disk (.abc/.mid/.wav/.svg/.png/.pdf)
    grammar: bool | None = None  # sampled with the ABC grammar (None: not known, e.g. imported)

    @property
    def shared_abc(self) -> str:
        """The tune's text as a file (.abc, .mid) and the Library show it: a generated one
        credited to its making (as a save writes it: core.audio.save_tune), not with the Z:
        line the model wrote (often a corpus tune's id), an imported one as it came. `abc` is
        the text as made, which Generate opens again."""
        if self.source != "generated":
            return self.abc
        made = (self.model_name, self.seed, self.temperature, self.top_k, self.prompt)
        return credited(self.abc, generation_credit(*made))


@dataclass(frozen=True)
class TuneRow:
    """The light row a 10,000-tune table lists, sorts and filters in memory."""

    id: int
    title: str
    key: str
    metre: str
    bars: int
    rating: int
    favourite: bool
    created: float
    form: str
    search_text: str  # lower-cased title, key, metre and ABC, for filtering as one types


@dataclass(frozen=True)
class ImportReport:
    added: tuple[int, ...]  # ids of the new tunebook tunes
    already: int  # tunes the tunebook held already (same music and title), not added again
    invalid: int  # of the added, tunes abc2midi found errors in (kept, with that verdict)
    skipped: tuple[str, ...]  # files and pieces of text that are no tune, each with the reason
    files: int  # .abc files read


def _opt_bool(value: int | None) -> bool | None:
    return None if value is None else bool(value)


def _tune(row: sqlite3.Row, files: Sequence[str]) -> LibraryTune:
    return LibraryTune(
        id=row["id"], abc=row["abc"], title=row["title"], metre=row["metre"], key=row["key"],
        bars=row["bars"], valid=_opt_bool(row["valid"]), bars_right=_opt_bool(row["bars_right"]),
        tonic_ending=_opt_bool(row["tonic_ending"]), form=row["form"],
        model_name=row["model_name"], model_hash=row["model_hash"], seed=row["seed"],
        temperature=row["temperature"], top_k=row["top_k"], prompt=row["prompt"],
        max_chars=row["max_chars"], source=row["source"], created=row["created"],
        rating=row["rating"], favourite=bool(row["favourite"]), play_count=row["play_count"],
        notes=row["notes"], in_tunebook=bool(row["in_tunebook"]),
        files=tuple(Path(p) for p in files), grammar=_opt_bool(row["grammar"]),
    )  # fmt: skip


def search_text(title: str, key: str, metre: str, abc: str) -> str:
    return f"{title}\n{key}\n{metre}\n{abc}".lower()


def filter_rows(rows: Iterable[TuneRow], text: str) -> list[TuneRow]:
    """The rows whose title, key, metre or ABC hold every word of `text` (any case)."""
    return matching(rows, text, attrgetter("search_text"))


def title_order(title: str) -> tuple[str, str]:
    """A title's place in an A-Z list: by its letters without their accents first ("Éanlaith"
    with the E's, "Ça Ira" with the C's: by code point they came after "Vincent"), then as
    written."""
    folded = title.casefold()
    if folded.isascii():  # most titles: nothing to set aside (a 10,000-tune sort: 2 ms, not 10)
        return folded, folded
    bare = "".join(c for c in unicodedata.normalize("NFKD", folded) if not unicodedata.combining(c))
    return bare, folded


def sort_rows(
    rows: Sequence[TuneRow], sort: str = "created", descending: bool = True
) -> list[TuneRow]:
    """The rows in the order `Library.search` gives (ties by creation, then title)."""
    if sort not in SORTS:
        raise LibraryError(f"cannot sort by {sort!r}; choose one of {', '.join(SORTS)}")
    keys = {
        "rating": lambda r: (r.rating, r.created, r.id),
        "created": lambda r: (r.created, r.id),
        "title": lambda r: (*title_order(r.title), r.id),
        "key": lambda r: (r.key.casefold(), *title_order(r.title), r.id),
        "metre": lambda r: (r.metre, *title_order(r.title), r.id),
    }
    return sorted(rows, key=keys[sort], reverse=descending)


def _row_of(tune: LibraryTune) -> TuneRow:
    return TuneRow(
        tune.id, tune.title, tune.key, tune.metre, tune.bars, tune.rating, tune.favourite,
        tune.created, tune.form, search_text(tune.title, tune.key, tune.metre, tune.abc),
    )  # fmt: skip


def model_hash(path: Path) -> str:
    """A checkpoint file's content hash (sha256, first 16 hex): the model, wherever it lies."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()[:16]


# --- the tune text --------------------------------------------------------------------------------

_T_LINE = re.compile(r"^T:.*$", re.M)
_X_LINE = re.compile(r"^X:.*$", re.M)


def _one_line(text: str) -> str:
    """Text a person typed as one printable line, its runs of white space single spaces."""
    return printable(" ".join(text.split())).strip()


def _clean_title(title: str) -> str:
    cleaned = _one_line(title)
    if not cleaned:
        raise LibraryError("a title needs some text")
    return cleaned


def retitled(abc: str, title: str) -> str:
    """`abc` with its first T: line saying `title` (one is added after X: when there is none)."""
    if _T_LINE.search(abc):
        return _T_LINE.sub(lambda _: f"T:{title}", abc, count=1)
    x = _X_LINE.search(abc)
    at = x.end() + 1 if x is not None else 0
    return abc[:at] + f"T:{title}\n" + abc[at:]


def _numbered(abc: str, number: int) -> str:
    """The tune's text as a tunebook entry: without blank lines around it, X: set to `number`."""
    # A blank line (or one of spaces) would end the tune in the book: none are kept.
    text = re.sub(r"\n[ \t]*(?=\n)", "", abc.strip("\n"))
    if _X_LINE.search(text):
        return _X_LINE.sub(f"X:{number}", text, count=1)
    return f"X:{number}\n{text}"


def _music_key(abc: str, titled: bool = True) -> str:
    """What makes two texts the same tune for import: everything but X: and Z: lines (a saved
    or exported tune's number and credit) and blank edges; and but T: lines, not `titled`."""
    left_out = ("X:", "Z:") if titled else ("X:", "Z:", "T:")
    return "\n".join(line for line in abc.strip().splitlines() if not line.startswith(left_out))


def _facts(abc: str, verdict: Judgement) -> dict[str, object]:
    """The columns of the tune's header (title, metre) and of its verdict (key, bars, valid,
    bars right, tonic, form)."""
    music, check = verdict.music, verdict.check
    tune = last_tune(abc)  # as judge judges (a prompt's tunes come before it)
    title = printable(" ".join((header_field(tune, "T") or "").split())).strip()
    return {
        "title": title or "Untitled",
        "metre": printable(header_field(tune, "M") or ""),
        "key": music.key if music is not None else "?",
        "bars": music.bars if music is not None else 0,
        "valid": check.valid if check is not None else None,
        "bars_right": music.all_right if music is not None else None,
        "tonic_ending": music.ends_on_tonic if music is not None else None,
        "form": music.form if music is not None else "",
    }


# --- the tunebook ---------------------------------------------------------------------------------


class Library:
    """One open tunebook. Safe to share between threads (one lock around the connection)."""

    def __init__(self, db: sqlite3.Connection, path: Path, recovered_from: Path | None) -> None:
        self._db = db
        self._lock = threading.RLock()
        self._deleted: list[tuple[dict[str, object], list[str]]] = []  # this process's deletes
        self.path = path
        self.recovered_from = recovered_from  # where a damaged file was moved, when one was
        self.recovery_reason = ""

    @classmethod
    def open(cls, path: Path | None = None) -> Library:
        """Open (creating or migrating) the tunebook; a damaged file is moved aside, named in
        `recovered_from`, and a fresh tunebook made. LibraryError when it cannot be opened."""
        path = Path(path) if path is not None else data_home() / LIBRARY_FILE
        opened = open_database(path)
        library = cls(opened.db, path, opened.recovered_from)
        library.recovery_reason = opened.reason
        return library

    @property
    def recovery_message(self) -> str:
        """A line for a person when a damaged tunebook was replaced, else ""."""
        if self.recovered_from is None:
            return ""
        return (
            f"the tunebook {self.path} could not be read ({self.recovery_reason}); it is kept as "
            f"{self.recovered_from} and a new, empty tunebook was started"
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing --

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at once (BEGIN IMMEDIATE: a busy writer is waited for,
        never a deadlock between two readers turning writers)."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as e:
                if self._db.in_transaction:  # a failed COMMIT (disk full) leaves it open
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                raise sqlite_failure(e, self.path) from None

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as e:
                raise sqlite_failure(e, self.path) from None

    def outside_writes(self) -> int:
        """A number that changes whenever another connection (another folkgen process, the CLI)
        has written to the tunebook since it was last read: sqlite's data_version. This
        connection's own writes leave it as it is."""
        with self._read() as db:
            return int(db.execute("PRAGMA data_version").fetchone()[0])

    @staticmethod
    def _files(
        db: sqlite3.Connection, tune_id: int | None = None, *, in_tunebook: bool = True
    ) -> dict[int, list[str]]:
        """Each tune's files: of one tune, or of every tune in the tunebook (or history)."""
        if tune_id is not None:
            rows = db.execute(
                "SELECT tune_id, path FROM files WHERE tune_id = ? ORDER BY position", (tune_id,)
            )
        else:
            rows = db.execute(
                "SELECT tune_id, path FROM files JOIN tunes ON tunes.id = tune_id "
                "WHERE in_tunebook = ? ORDER BY tune_id, position",
                (int(in_tunebook),),
            )
        out: dict[int, list[str]] = {}
        for tune_id, p in rows:
            out.setdefault(tune_id, []).append(p)
        return out

    @staticmethod
    def _add_files(db: sqlite3.Connection, tune_id: int, files: Sequence[Path]) -> None:
        start = db.execute(
            "SELECT coalesce(max(position) + 1, 0) FROM files WHERE tune_id = ?", (tune_id,)
        ).fetchone()[0]
        known = {r[0] for r in db.execute("SELECT path FROM files WHERE tune_id = ?", (tune_id,))}
        # Absolute: a file saved as `--save rel` read "rel/x.abc (missing)" from any other folder.
        paths = [str(Path(p).absolute()) for p in files]
        new = [p for p in dict.fromkeys(paths) if p not in known]
        db.executemany(
            "INSERT INTO files (tune_id, position, path) VALUES (?, ?, ?)",
            [(tune_id, start + n, p) for n, p in enumerate(new)],
        )

    def _update(self, tune_id: int, sql: str, params: Sequence[object]) -> None:
        with self._write() as db:
            if db.execute(sql, [*params, tune_id]).rowcount == 0:
                raise LibraryError(f"no tune #{tune_id} in the tunebook")

    # -- adding --

    def add(
        self,
        abc: str,
        *,
        source: str = "generated",
        model_name: str = "",
        model_hash: str = "",
        seed: int | None = None,
        temperature: float | None = None,
        top_k: int | None = None,
        prompt: str = "",
        max_chars: int | None = None,
        in_tunebook: bool = False,
        files: Sequence[Path] = (),
        verdict: Verdict | None = None,
        grammar: bool | None = None,
    ) -> int:
        """Store a tune (history, or the tunebook with in_tunebook) with its settings and
        verdict (judged here, abc2midi included, when not given); its id. The tunebook holds a
        tune once: one whose music it holds already (as import compares them: all but X: and
        Z:) gets `files` added to that entry, whose id comes back (`generate --seed 5 --save`
        run twice kept two entries)."""
        if source not in SOURCES:
            raise LibraryError(f"a tune's source is one of {', '.join(SOURCES)}, not {source!r}")
        facts = _facts(abc, verdict if verdict is not None else judge(abc))
        values: dict[str, object] = facts | {
            "abc": abc, "model_name": model_name, "model_hash": model_hash, "seed": seed,
            "temperature": temperature, "top_k": top_k, "prompt": prompt,
            "max_chars": max_chars, "source": source, "created": time.time(),
            "in_tunebook": int(in_tunebook), "grammar": grammar,
        }  # fmt: skip
        cols = ", ".join(values)
        marks = ", ".join("?" * len(values))
        with self._write() as db:
            held = self._held(db, abc, str(facts["title"])) if in_tunebook else None
            if held is not None:
                self._add_files(db, held, files)
                return held
            cursor = db.execute(
                f"INSERT INTO tunes ({cols}) VALUES ({marks})", list(values.values())
            )
            tune_id = cursor.lastrowid
            assert tune_id is not None
            self._add_files(db, tune_id, files)
            if not in_tunebook:
                self._prune_history(db)
        return tune_id

    @staticmethod
    def _prune_history(db: sqlite3.Connection) -> None:
        db.execute(
            "DELETE FROM tunes WHERE in_tunebook = 0 AND id < (SELECT id FROM tunes WHERE "
            "in_tunebook = 0 ORDER BY id DESC LIMIT 1 OFFSET ?)",
            (HISTORY_KEEP - 1,),
        )

    def add_files(self, tune_id: int, files: Sequence[Path]) -> None:
        """Record more files made of a tune (a render, a score); known ones are not repeated."""
        with self._write() as db:
            if db.execute("SELECT 1 FROM tunes WHERE id = ?", (tune_id,)).fetchone() is None:
                raise LibraryError(f"no tune #{tune_id} in the tunebook")
            self._add_files(db, tune_id, files)

    def holds(self, tune_id: int) -> bool:
        """Whether tune `tune_id` is here (in the tunebook or the history): not once deleted,
        or merged into an entry of the same music (`keep`)."""
        with self._read() as db:
            return db.execute("SELECT 1 FROM tunes WHERE id = ?", (tune_id,)).fetchone() is not None

    @staticmethod
    def _carry(db: sqlite3.Connection, row: sqlite3.Row | dict[str, object], into: int) -> None:
        """What a person gave a tune that merges into another entry (`row`: its columns) goes
        with it: a rating or notes where the entry has none, the favourite mark, its plays."""
        db.execute(
            "UPDATE tunes SET rating = CASE WHEN rating = 0 THEN ? ELSE rating END, "
            "favourite = max(favourite, ?), notes = CASE WHEN notes = '' THEN ? ELSE notes END, "
            "play_count = play_count + ? WHERE id = ?",
            (row["rating"], row["favourite"], row["notes"], row["play_count"], into),
        )

    @staticmethod
    def _held(db: sqlite3.Connection, abc: str, title: str) -> int | None:
        """The tunebook's entry with this music (all but X: and Z:, as import compares)."""
        music = _music_key(abc)
        same_title = db.execute(
            "SELECT id, abc FROM tunes WHERE in_tunebook = 1 AND title = ? ORDER BY id", (title,)
        )
        return next((int(i) for i, text in same_title if _music_key(text) == music), None)

    @staticmethod
    def _made_again(db: sqlite3.Connection, row: sqlite3.Row) -> int | None:
        """The tunebook's entry that a generated tune is made again of (the same model, seed
        and music; titled anew since): opened again from the Library and saved, it went in
        beside it as an Untitled second entry."""
        if row["source"] != "generated" or not row["model_hash"] or row["seed"] is None:
            return None
        music = _music_key(row["abc"], titled=False)
        alike = db.execute(
            "SELECT id, abc FROM tunes WHERE in_tunebook = 1 AND source = 'generated' AND "
            "model_hash = ? AND seed = ? ORDER BY id", (row["model_hash"], row["seed"]),
        )  # fmt: skip
        return next((int(i) for i, text in alike if _music_key(text, titled=False) == music), None)

    def keep(self, tune_id: int, files: Sequence[Path] = ()) -> int:
        """Move a history tune into the tunebook (what saving does), with its saved files; its
        id there. One whose music the tunebook holds already goes into that entry, whose id
        comes back: its files are added there and its history row goes."""
        with self._write() as db:
            row = db.execute("SELECT * FROM tunes WHERE id = ?", (tune_id,)).fetchone()
            if row is None:
                raise LibraryError(f"no tune #{tune_id} in the tunebook")
            held = None
            if not row["in_tunebook"]:
                held = self._held(db, row["abc"], row["title"]) or self._made_again(db, row)
            if held is None:
                db.execute("UPDATE tunes SET in_tunebook = 1 WHERE id = ?", (tune_id,))
                self._add_files(db, tune_id, files)
                return tune_id
            own = self._files(db, tune_id).get(tune_id, [])
            self._add_files(db, held, [*map(Path, own), *files])
            self._carry(db, row, held)
            db.execute("DELETE FROM tunes WHERE id = ?", (tune_id,))  # files: ON DELETE CASCADE
            return held

    # -- reading --

    def get(self, tune_id: int) -> LibraryTune:
        with self._read() as db:
            row = db.execute("SELECT * FROM tunes WHERE id = ?", (tune_id,)).fetchone()
            if row is None:
                raise LibraryError(f"no tune #{tune_id} in the tunebook")
            return _tune(row, self._files(db, tune_id).get(tune_id, []))

    def rows(self, *, in_tunebook: bool = True) -> list[TuneRow]:
        """The tunebook's (or the history's) rows, newest first: one query."""
        with self._read() as db:
            cursor = db.execute(
                "SELECT id, title, key, metre, bars, rating, favourite, created, form, abc "
                "FROM tunes WHERE in_tunebook = ? ORDER BY created DESC, id DESC",
                (int(in_tunebook),),
            )
            return [
                TuneRow(i, t, k, m, b, r, bool(f), c, form, search_text(t, k, m, abc))
                for i, t, k, m, b, r, f, c, form, abc in cursor
            ]

    def search(
        self,
        *,
        sort: str = "created",
        descending: bool = True,
        text: str = "",
        favourites: bool = False,
        in_tunebook: bool = True,
    ) -> list[LibraryTune]:
        """Tunes sorted by rating, created, title, key or metre, holding every word of `text`
        (as `filter_rows` reads it), only favourites if asked."""
        if sort not in SORTS:
            raise LibraryError(f"cannot sort by {sort!r}; choose one of {', '.join(SORTS)}")
        with self._read() as db:
            where = "in_tunebook = ?" + (" AND favourite = 1" if favourites else "")
            tunes = [
                _tune(row, [])
                for row in db.execute(f"SELECT * FROM tunes WHERE {where}", (int(in_tunebook),))
            ]
            files = self._files(db, in_tunebook=in_tunebook)
        rows = sort_rows(filter_rows([_row_of(t) for t in tunes], text), sort, descending)
        by_id = {t.id: t for t in tunes}
        return [
            replace(by_id[r.id], files=tuple(Path(p) for p in files.get(r.id, []))) for r in rows
        ]

    def count(self, *, in_tunebook: bool = True) -> int:
        with self._read() as db:
            return int(
                db.execute(
                    "SELECT count(*) FROM tunes WHERE in_tunebook = ?", (int(in_tunebook),)
                ).fetchone()[0]
            )

    # -- changing --

    def rate(self, tune_id: int, stars: int) -> None:
        """0 to 5 stars; 0 clears the rating."""
        if not 0 <= stars <= 5:
            raise LibraryError(f"a rating is 0 to 5 stars, not {stars}")
        self._update(tune_id, "UPDATE tunes SET rating = ? WHERE id = ?", (stars,))

    def set_favourite(self, tune_id: int, on: bool) -> None:
        self._update(tune_id, "UPDATE tunes SET favourite = ? WHERE id = ?", (int(on),))

    def set_notes(self, tune_id: int, notes: str) -> None:
        """Your notes on a tune, as one line ("" clears them)."""
        cleaned = _one_line(notes)
        if len(cleaned) > MAX_NOTES:
            raise LibraryError(f"notes are at most {MAX_NOTES:,} characters")
        self._update(tune_id, "UPDATE tunes SET notes = ? WHERE id = ?", (cleaned,))

    def rename(self, tune_id: int, title: str) -> None:
        """A new title, written into the stored ABC's T: line too."""
        title = _clean_title(title)
        with self._write() as db:
            row = db.execute("SELECT abc FROM tunes WHERE id = ?", (tune_id,)).fetchone()
            if row is None:
                raise LibraryError(f"no tune #{tune_id} in the tunebook")
            db.execute(
                "UPDATE tunes SET title = ?, abc = ? WHERE id = ?",
                (title, retitled(row["abc"], title), tune_id),
            )

    def played(self, tune_id: int) -> None:
        self._update(tune_id, "UPDATE tunes SET play_count = play_count + 1 WHERE id = ?", ())

    def delete(self, tune_id: int) -> None:
        """Remove a tune (its files on disk stay); `undo_delete` brings it back."""
        with self._write() as db:
            row = db.execute("SELECT * FROM tunes WHERE id = ?", (tune_id,)).fetchone()
            if row is None:
                raise LibraryError(f"no tune #{tune_id} in the tunebook")
            files = self._files(db, tune_id).get(tune_id, [])
            db.execute("DELETE FROM tunes WHERE id = ?", (tune_id,))  # files: ON DELETE CASCADE
        self._deleted.append((dict(zip(row.keys(), tuple(row), strict=True)), files))

    def undo_delete(self) -> int | None:
        """Restore the last tune this process deleted, with its id; None when there is none.
        A tunebook tune whose music the tunebook holds again since (saved anew) goes into that
        entry, whose id comes back: the tunebook holds a tune once."""
        with self._lock:
            if not self._deleted:
                return None
            values, files = self._deleted[-1]
            cols = ", ".join(values)
            with self._write() as db:
                held = None
                if values["in_tunebook"]:
                    held = self._held(db, str(values["abc"]), str(values["title"]))
                if held is not None:
                    self._add_files(db, held, [Path(p) for p in files])
                    self._carry(db, values, held)
                    self._deleted.pop()
                    return held
                db.execute(
                    f"INSERT INTO tunes ({cols}) VALUES ({', '.join('?' * len(values))})",
                    list(values.values()),
                )
                tune_id = int(str(values["id"]))
                self._add_files(db, tune_id, [Path(p) for p in files])
            self._deleted.pop()
            return tune_id

    # -- export and import --

    def _tunes(self, ids: Sequence[int]) -> list[LibraryTune]:
        if not ids:
            raise LibraryError("no tunes to export")
        return [self.get(i) for i in ids]

    def export_abc(self, ids: Sequence[int], out: str | Path) -> Path:
        """One .abc tunebook of the tunes in `ids` order, X: 1..n, titles kept. Never
        overwrites: a taken name gets -2, -3… (as render does); the file written."""
        from core.audio import file_target, reserve_paths

        tunes = self._tunes(ids)
        shared = [_numbered(t.shared_abc, n) for n, t in enumerate(tunes, start=1)]
        text = "\n\n".join(shared) + "\n"
        folder, stem, suffix = file_target(out, ".abc", own_suffix=True)
        path = reserve_paths(folder, stem, [suffix])[0]
        try:
            path.write_text(text, encoding="utf-8")
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path

    def export_midi(
        self, ids: Sequence[int], folder: Path, problems: list[str] | None = None
    ) -> list[Path]:
        """A MIDI file per tune in `folder`, named after its title, never overwriting. A tune
        abc2midi cannot make MIDI of raises LibraryError, or, given `problems`, is noted there
        and the rest are made; a file for `folder` is refused (core.audio.folder_target)."""
        from core.abc import SoundError
        from core.audio import folder_target, render

        folder = folder_target(folder)
        made: list[Path] = []
        for tune in self._tunes(ids):
            try:
                done = render(tune.shared_abc, folder, midi=True, wav=False)
            except SoundError as e:
                if problems is None:
                    raise LibraryError(f"#{tune.id} {tune.title}: {e}") from None
                problems.append(f"#{tune.id} {tune.title}: {e}")
                continue
            assert done.midi_path is not None
            made.append(done.midi_path)
        return made

    def export_pdf(
        self, ids: Sequence[int], out: str | Path, problems: list[str] | None = None
    ) -> Path | None:
        """One PDF, a page per tune verovio can engrave (the others noted in `problems`, or
        LibraryError); never overwrites. None when no tune could be engraved."""
        from core.audio import file_target, reserve_paths
        from core.score import ScoreError, engrave, to_pdf

        pages: list[str] = []
        for tune in self._tunes(ids):
            try:
                pages.append(engrave(tune.abc).svg)
            except ScoreError as e:
                if problems is None:
                    raise LibraryError(f"#{tune.id} {tune.title}: {e}") from None
                problems.append(f"#{tune.id} {tune.title}: {e}")
        if not pages:
            return None
        data = to_pdf(pages)
        folder, stem, suffix = file_target(out, ".pdf", own_suffix=True)
        path = reserve_paths(folder, stem, [suffix])[0]
        try:
            path.write_bytes(data)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path

    def import_path(
        self, path: Path, progress: Callable[[int, int], None] | None = None
    ) -> ImportReport:
        """Take an .abc file, or a folder of them, into the tunebook: each tune checked by
        abc2midi and heard (the verdicts stored), tunes it holds already left out, files and
        text that are no tune reported. Read through core.corpus's guards (regular files only,
        size limits, UTF-8). Tunes go in IMPORT_BATCH at a time, `progress(done, total)` told
        after each: a large collection (~13 ms a tune) says how far it is, and one stopped
        (Ctrl+C) keeps the tunes taken so far (all were checked before any was added)."""
        path = Path(path).expanduser()
        if not path.exists():
            raise LibraryError(f"{path}: no such file or folder")
        files = (
            sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() == ".abc")
            if path.is_dir()
            else [path]
        )
        if not files:
            raise LibraryError(f"{path}: no .abc files in this folder")
        if path.is_dir() and sum(f.stat().st_size for f in files) > MAX_CORPUS_BYTES:
            raise LibraryError(
                f"{path}: its .abc files hold more than {MAX_CORPUS_BYTES // 1_000_000} MB; "
                "import a part of the folder"
            )
        skipped: list[str] = []
        texts: list[tuple[Path, str]] = []  # each tune with its file, to name it if skipped
        for f in files:
            try:
                texts += [(f, tune) for tune in load_corpus(f).tunes]
            except (CorpusError, OSError) as e:
                if not path.is_dir():
                    raise LibraryError(str(e)) from None
                skipped.append(str(e) if isinstance(e, CorpusError) else f"{f}: {e.strerror or e}")
        with self._read() as db:
            known = {
                _music_key(abc)
                for (abc,) in db.execute("SELECT abc FROM tunes WHERE in_tunebook = 1")
            }
        fresh: list[tuple[Path, str]] = []
        already = 0
        for f, text in texts:
            key = _music_key(text)
            if key in known:
                already += 1
                continue
            known.add(key)
            fresh.append((f, text.strip("\n") + "\n\n"))  # a blank line ends it, as in a file
        added: list[int] = []
        invalid = 0
        with ThreadPoolExecutor(max_workers=all_cores()) as pool:  # abc2midi per tune
            for at in range(0, len(fresh), IMPORT_BATCH):
                batch = fresh[at : at + IMPORT_BATCH]
                verdicts = pool.map(judge, [text for _, text in batch])
                for (f, text), verdict in zip(batch, verdicts, strict=True):
                    if verdict.incomplete:  # named by its file: a folder's skips said no file
                        first = text.strip().splitlines()[0][:40]
                        skipped.append(f"{f}: {printable(first)!r}…: not a tune "
                                       f"({verdict.incomplete})")  # fmt: skip
                        continue
                    added.append(
                        self.add(text, source="imported", in_tunebook=True, verdict=verdict)
                    )
                    invalid += verdict.check is not None and not verdict.check.valid
                if progress is not None:
                    progress(at + len(batch), len(fresh))
        return ImportReport(tuple(added), already, invalid, tuple(skipped), len(files))
