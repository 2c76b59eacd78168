"""The tunebook's SQLite file: its schema and migrations (`PRAGMA user_version`), the
connection's settings (WAL, foreign keys, busy timeout) and what happens to a damaged file: it
is moved aside, kept for a person to look at, and a fresh one made. Standard library only."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

BUSY_TIMEOUT_S = 15.0  # a writer waits this long for another (the app, a CLI import) to finish


class LibraryError(Exception):
    """A tunebook operation failed; the message is for a person, shown as it is."""


# --- schema ---------------------------------------------------------------------------------------

# Version 1, the previous schema: the rendered files as one newline-separated text column, no
# play count or notes. Kept verbatim: the migration reads files made by it (and tests make them).
SCHEMA_V1 = """
CREATE TABLE tunes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    abc TEXT NOT NULL,
    title TEXT NOT NULL,
    metre TEXT NOT NULL DEFAULT '',
    key TEXT NOT NULL DEFAULT '',
    bars INTEGER NOT NULL DEFAULT 0,
    valid INTEGER,
    bars_right INTEGER,
    tonic_ending INTEGER,
    form TEXT NOT NULL DEFAULT '',
    model_name TEXT NOT NULL DEFAULT '',
    model_hash TEXT NOT NULL DEFAULT '',
    seed INTEGER,
    temperature REAL,
    top_k INTEGER,
    prompt TEXT NOT NULL DEFAULT '',
    max_chars INTEGER,
    source TEXT NOT NULL DEFAULT 'generated',
    created REAL NOT NULL,
    rating INTEGER NOT NULL DEFAULT 0 CHECK (rating BETWEEN 0 AND 5),
    favourite INTEGER NOT NULL DEFAULT 0,
    in_tunebook INTEGER NOT NULL DEFAULT 0,
    files TEXT NOT NULL DEFAULT ''
);
CREATE INDEX tunes_by_book ON tunes (in_tunebook, created);
"""

# Version 2 (current): play count, notes and whether sampling used the grammar (it changes the
# tune a seed gives; NULL: not known); the files in a table of their own, one row each,
# gone with their tune (foreign key, ON DELETE CASCADE).
_TUNES_V2 = """
CREATE TABLE {name} (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    abc TEXT NOT NULL,
    title TEXT NOT NULL,
    metre TEXT NOT NULL DEFAULT '',
    key TEXT NOT NULL DEFAULT '',
    bars INTEGER NOT NULL DEFAULT 0,
    valid INTEGER,
    bars_right INTEGER,
    tonic_ending INTEGER,
    form TEXT NOT NULL DEFAULT '',
    model_name TEXT NOT NULL DEFAULT '',
    model_hash TEXT NOT NULL DEFAULT '',
    seed INTEGER,
    temperature REAL,
    top_k INTEGER,
    prompt TEXT NOT NULL DEFAULT '',
    max_chars INTEGER,
    source TEXT NOT NULL DEFAULT 'generated',
    created REAL NOT NULL,
    rating INTEGER NOT NULL DEFAULT 0 CHECK (rating BETWEEN 0 AND 5),
    favourite INTEGER NOT NULL DEFAULT 0,
    play_count INTEGER NOT NULL DEFAULT 0,
    notes TEXT NOT NULL DEFAULT '',
    in_tunebook INTEGER NOT NULL DEFAULT 0,
    grammar INTEGER
);
"""
_FILES_V2 = """
CREATE TABLE files (
    tune_id INTEGER NOT NULL REFERENCES tunes (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    path TEXT NOT NULL,
    PRIMARY KEY (tune_id, position)
);
CREATE INDEX tunes_by_book ON tunes (in_tunebook, created);
"""
SCHEMA_VERSION = 2

# Columns of a tune row, in LibraryTune's order (files come from their own table).
_COLUMNS = (
    "id", "abc", "title", "metre", "key", "bars", "valid", "bars_right", "tonic_ending", "form",
    "model_name", "model_hash", "seed", "temperature", "top_k", "prompt", "max_chars", "source",
    "created", "rating", "favourite", "play_count", "notes", "in_tunebook",
)  # fmt: skip
_V1_COLUMNS = tuple(c for c in _COLUMNS if c not in ("play_count", "notes"))


def _run_script(db: sqlite3.Connection, script: str) -> None:
    """Each statement of `script` inside the open transaction (executescript would commit)."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def _create_v2(db: sqlite3.Connection) -> None:
    _run_script(db, _TUNES_V2.format(name="tunes") + _FILES_V2)


def _migrate_v1_to_v2(db: sqlite3.Connection) -> None:
    """Rebuild `tunes` without the files column (SQLite cannot drop it in place before 3.35),
    keeping ids and the AUTOINCREMENT counter, and move each tune's files into their table."""
    cols = ", ".join(_V1_COLUMNS)
    files = db.execute("SELECT id, files FROM tunes WHERE files != ''").fetchall()
    seq = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'tunes'").fetchone()
    db.execute(_TUNES_V2.format(name="tunes_v2"))
    db.execute(f"INSERT INTO tunes_v2 ({cols}) SELECT {cols} FROM tunes")
    db.execute("DROP TABLE tunes")
    db.execute("ALTER TABLE tunes_v2 RENAME TO tunes")
    db.execute("DELETE FROM sqlite_sequence WHERE name = 'tunes_v2'")
    if seq is not None:  # ids of tunes deleted under v1 are never given out again
        db.execute("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'tunes'", seq)
    _run_script(db, _FILES_V2)
    db.executemany(
        "INSERT INTO files (tune_id, position, path) VALUES (?, ?, ?)",
        [(i, n, p) for i, text in files for n, p in enumerate(text.split("\n")) if p],
    )


# --- opening: create, migrate, recover ------------------------------------------------------------


def _is_damage(e: sqlite3.DatabaseError) -> bool:
    """A file SQLite cannot read as a database (not one, or corrupt), as against a busy or
    read-only one, which are reported and never moved aside."""
    name = getattr(e, "sqlite_errorname", "")
    text = str(e).lower()
    return (
        name in ("SQLITE_NOTADB", "SQLITE_CORRUPT")
        or "malformed" in text
        or "not a database" in text
    )


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )
    db.row_factory = sqlite3.Row
    return db


# Saving or importing a tune looks for one of the same music among the tunebook's of the same
# title (Library._held): without it each add read the whole table (2.8 ms at 20,000 tunes).
# Not part of the schema's version: a folkgen without it reads the file as before.
TITLE_INDEX = "CREATE INDEX IF NOT EXISTS tunes_by_title ON tunes (in_tunebook, title)"


def _prepare(db: sqlite3.Connection) -> None:
    """Settings, then the schema brought to SCHEMA_VERSION in one exclusive transaction (two
    processes opening a new file at once: the second finds it made)."""
    db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    db.execute("PRAGMA foreign_keys = ON")
    if db.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
        raise LibraryError("the tunebook's folder does not allow SQLite's write-ahead log")
    db.execute("PRAGMA synchronous = NORMAL")  # with WAL: consistent after a crash, fast commits
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        problem = db.execute("PRAGMA quick_check(1)").fetchone()[0]
        if problem != "ok":
            raise sqlite3.DatabaseError(f"database disk image is malformed ({problem})")
        # A tunebook made before it gets it once; it only speeds saving up, so a writer that
        # holds the file (or a full disk) leaves it for a later open, without waiting long.
        db.execute("PRAGMA busy_timeout = 200")
        with contextlib.suppress(sqlite3.OperationalError):
            db.execute(TITLE_INDEX)
        db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise LibraryError(
                f"the tunebook was written by a newer folkgen (schema {version}; this one "
                f"reads up to {SCHEMA_VERSION}): update folkgen"
            )
        if version == 0:
            if db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                raise sqlite3.DatabaseError("file is not a database: it is some other database")
            _create_v2(db)
        elif version == 1:
            _migrate_v1_to_v2(db)
        db.execute(TITLE_INDEX)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


@contextlib.contextmanager
def _recovery_lock(path: Path) -> Iterator[None]:
    """One process at a time moves a damaged file aside (the others then find the fresh one)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _move_aside(path: Path) -> Path:
    """Rename the damaged file (and its write-ahead log) to a dated name beside it."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 2
    while aside.exists():
        aside = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
        n += 1
    os.replace(path, aside)
    for suffix in ("-wal", "-shm"):
        extra = path.with_name(path.name + suffix)
        if extra.exists():
            os.replace(extra, aside.with_name(aside.name + suffix))
    return aside


def sqlite_failure(e: sqlite3.Error, path: Path) -> LibraryError:
    text = str(e)
    if "locked" in text or "busy" in text:
        return LibraryError(f"{path}: the tunebook is busy (another folkgen is writing); try again")
    if "readonly" in text or "read-only" in text:
        return LibraryError(f"{path}: the tunebook cannot be written here (read-only)")
    return LibraryError(f"{path}: {text}")


@dataclass(frozen=True)
class Opened:
    db: sqlite3.Connection
    recovered_from: Path | None  # where a damaged file was moved, when one was
    reason: str  # why it was moved ("" when it was not)


def _ready(path: Path) -> sqlite3.Connection:
    db = _connect(path)
    try:
        _prepare(db)
    except BaseException:
        db.close()
        raise
    return db


def open_database(path: Path) -> Opened:
    """Open (creating or migrating) the tunebook file; a damaged one is moved aside and a fresh
    one made. LibraryError when it cannot be opened."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LibraryError(
            f"{path.parent}: cannot make the tunebook's folder ({e.strerror})"
        ) from None
    try:
        return Opened(_ready(path), None, "")
    except sqlite3.DatabaseError as e:
        if not _is_damage(e):
            raise sqlite_failure(e, path) from None
        reason = " ".join(str(e).split())  # quick_check's report spans lines
    with _recovery_lock(path):
        try:  # another process may have recovered it meanwhile
            return Opened(_ready(path), None, "")
        except sqlite3.DatabaseError as e:
            if not _is_damage(e):
                raise sqlite_failure(e, path) from None
        try:
            aside = _move_aside(path)
            return Opened(_ready(path), aside, reason)
        except (OSError, sqlite3.Error) as e:
            raise LibraryError(
                f"{path}: damaged ({reason}), and no fresh one could be made: {e}"
            ) from None
