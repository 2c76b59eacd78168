"""The tunebook (core/library.py, core/library_db.py) and `folkgen library`: schema and migration, two writers at
once, a damaged file, rating / favourites / filter / sort, delete and undo, rename, export and
import, and the CLI through core.cli.main."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest

from core.cli import main
from core.cli_library import GenerateHistory
from core.judge import judge
from core.library import LIBRARY_FILE, Library, LibraryError, filter_rows, model_hash, sort_rows
from core.library_db import SCHEMA_V1, SCHEMA_VERSION
from core.paths import shipped_model_path

ROOT = Path(__file__).parent.parent
DATA = Path(__file__).parent / "data"


def tune(title: str, key: str = "G", metre: str = "4/4", notes: str = "GABc dedB|dedB dedB") -> str:
    return f"X:1\nT:{title}\nM:{metre}\nL:1/8\nK:{key}\n|:{notes}|c2ec B2dB|c2A2 A2BA:|\n\n"


def body(abc: str) -> str:
    """The tune without its X: line: what export renumbers."""
    return "\n".join(line for line in abc.strip().splitlines() if not line.startswith("X:"))


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


# --- schema, migration, two writers, damage -------------------------------------------------------


def test_a_new_tunebook_in_an_empty_data_folder(folkgen_home: Path) -> None:
    assert not folkgen_home.exists()
    with Library.open() as library:
        assert library.path == folkgen_home / LIBRARY_FILE and library.recovered_from is None
        tune_id = library.add(tune("First"), in_tunebook=True)
        assert [r.id for r in library.rows()] == [tune_id] and library.rows(in_tunebook=False) == []
    db = sqlite3.connect(folkgen_home / LIBRARY_FILE)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"tunes", "files"} <= tables
    # Saving looks for the same tune by title: indexed, also in a tunebook made without it.
    plan = " ".join(str(tuple(r)) for r in db.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM tunes WHERE in_tunebook = 1 AND title = 'a'"))  # fmt: skip
    assert "tunes_by_title" in plan
    db.execute("DROP INDEX tunes_by_title")
    db.commit()
    Library.open().close()
    assert db.execute("SELECT 1 FROM sqlite_master WHERE name = 'tunes_by_title'").fetchone()


def test_the_tunebook_holds_a_tune_once(folkgen_home: Path) -> None:
    """Adding to the tunebook a tune it holds (all but X: the same, as import compares) adds the
    files to that entry; the history keeps every tune made, and another title is another tune."""
    with Library.open() as library:
        kept = library.add(tune("Twice"), in_tunebook=True, files=[Path("/a/twice.abc")])
        again = tune("Twice").replace("X:1", "X:7")
        assert library.add(again, in_tunebook=True, files=[Path("/b/twice.abc")]) == kept
        assert library.get(kept).files == (Path("/a/twice.abc"), Path("/b/twice.abc"))
        made = [library.add(tune("Twice")) for _ in range(2)]
        other = library.add(tune("Thrice", notes="GABc dedB|dedB dedB"), in_tunebook=True)
        assert len({kept, *made, other}) == 4
        assert [r.id for r in library.rows()] == [other, kept]
        # Saving one of the history's copies (the app's save, the Library's k) merges it there.
        library.add_files(made[0], [Path("/c/twice.wav")])
        library.rate(made[0], 4)  # what a person gave the copy goes with it
        library.set_notes(made[0], "jig it")
        assert library.keep(made[0], [Path("/c/twice.mid")]) == kept
        assert library.get(kept).files[2:] == (Path("/c/twice.wav"), Path("/c/twice.mid"))
        assert (library.get(kept).rating, library.get(kept).notes) == (4, "jig it")
        assert [r.id for r in library.rows(in_tunebook=False)] == [made[1]]
        assert library.keep(other) == other and library.keep(made[1]) == kept
        assert [r.id for r in library.rows()] == [other, kept] and not library.rows(in_tunebook=False)
        # Deleted, saved anew, then the delete undone: still one entry, the files of both.
        library.set_favourite(kept, True)
        library.played(kept)
        library.delete(kept)
        anew = library.add(tune("Twice"), in_tunebook=True, files=[Path("/d/twice.abc")])
        library.rate(anew, 2)  # (the entry's own rating stays)
        assert library.undo_delete() == anew and not library.holds(kept)
        assert [r.id for r in library.rows()] == [anew, other]
        back = library.get(anew)
        assert back.files[0] == Path("/d/twice.abc") and len(back.files) == 5
        assert (back.rating, back.favourite, back.notes, back.play_count) == (2, True, "jig it", 1)


def test_a_retitled_tune_made_again_and_saved_goes_into_its_entry(folkgen_home: Path) -> None:
    """Opened again from the Library (the same model, seed and settings) and saved, a tune given
    a title of its own went in beside it as an Untitled second entry. Made so (the same model
    and seed, the same notes), it is that entry; another title still makes another tune where
    nothing says it was made the same way (an import)."""
    def made(seed: int = 7) -> int:
        return library.add(tune("Untitled"), model_name="m.pt", model_hash="abc123", seed=seed)

    with Library.open() as library:
        first = made()
        library.keep(first, [Path("/a/tune-1.abc")])
        library.rename(first, "The Student's Jig")
        library.rate(first, 4)
        again = made()
        assert library.keep(again, [Path("/b/tune-8.abc")]) == first
        kept = library.get(first)
        assert (kept.title, kept.rating) == ("The Student's Jig", 4)
        assert kept.files == (Path("/a/tune-1.abc"), Path("/b/tune-8.abc"))
        assert [r.id for r in library.rows()] == [first] and not library.rows(in_tunebook=False)
        other_seed = made(seed=8)
        assert library.keep(other_seed) == other_seed  # another making: another tune


def test_the_apps_save_of_a_tune_whose_history_row_was_merged(folkgen_home: Path) -> None:
    """Generate's tune record keeps its history row's id; the Library's k can merge that row
    into the tunebook's entry of the same music (deleting the row), and the save after it
    failed ("no tune #2") with its files left out. It is added again, into that entry."""
    from folkgen_tui.state import TuneRecord
    from folkgen_tui.tunebook import Tunebook

    text = tune("Merged")
    with Library.open() as library:
        entry = library.add(text, in_tunebook=True)
    errors: list[str] = []
    book = Tunebook(lambda fn, *args: fn(*args))
    book.on_error = errors.append
    record = TuneRecord(1, "X:", text, 5, 1.0, None, 1000, "m.pt")
    book.remember(record, judge(text, check=False))  # the session history
    book.call(lambda library: library.keep(record.library_id or 0))  # the Library's k
    book.keep(record, [Path("/e/merged.abc")])  # then Generate's save
    book.close()  # (waits for the calls)
    assert errors == [] and record.library_id == entry
    with Library.open() as library:
        assert library.get(entry).files == (Path("/e/merged.abc"),) and library.count() == 1


def test_outside_writes_count_another_connections_writes_only(folkgen_home: Path) -> None:
    """What the Library screen watches for (a CLI import while the app shows the tunebook)."""
    with Library.open() as app, Library.open() as cli:
        seen = app.outside_writes()
        app.rate(app.add(tune("Own"), in_tunebook=True), 4)  # the app's own writes
        assert app.outside_writes() == seen
        cli.add(tune("Imported"), source="imported", in_tunebook=True)
        changed = app.outside_writes()
        assert changed != seen and app.outside_writes() == changed  # once per write


def test_a_version_1_tunebook_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(SCHEMA_V1)
    rows = [
        (tune("Kept"), "Kept", "4/4", "G major", 4, 1, 1, 0, "AA", "m.pt", "abc", 7, 0.8, 5,
         "X:", 1000, "generated", 100.0, 4, 1, 1, "/t/kept.abc\n/t/kept.mid"),
        (tune("Gone"), "Gone", "4/4", "G major", 4, 1, 1, 0, "AA", "", "", None, None, None,
         "", None, "imported", 101.0, 0, 0, 1, ""),
        (tune("Later"), "Later", "6/8", "D major", 4, None, 0, 1, "AA", "", "", None, None,
         None, "", None, "imported", 102.0, 0, 0, 0, "/t/later.abc"),
    ]  # fmt: skip
    db.executemany(
        "INSERT INTO tunes (abc, title, metre, key, bars, valid, bars_right, tonic_ending, form, "
        "model_name, model_hash, seed, temperature, top_k, prompt, max_chars, source, created, "
        "rating, favourite, in_tunebook, files) VALUES (" + ", ".join("?" * 22) + ")",
        rows,
    )
    db.execute("DELETE FROM tunes WHERE title = 'Later'")  # id 3 was given out under v1
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()

    with Library.open(path) as library:
        kept, gone = library.get(1), library.get(2)
        assert kept.files == (Path("/t/kept.abc"), Path("/t/kept.mid")) and gone.files == ()
        assert (kept.title, kept.seed, kept.temperature, kept.top_k, kept.rating) == (
            "Kept",
            7,
            0.8,
            5,
            4,
        )
        assert kept.valid is True and kept.tonic_ending is False and kept.favourite
        assert (kept.play_count, kept.notes, kept.grammar) == (0, "", None)
        assert library.add(tune("New")) == 4  # never 3 again
        library.played(1)
        assert library.get(1).play_count == 1
        library.delete(1)  # its files go with it (foreign key, cascade)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    assert db.execute("SELECT count(*) FROM files").fetchone()[0] == 0
    columns = {r[1] for r in db.execute("PRAGMA table_info(tunes)")}
    assert "files" not in columns and {"play_count", "notes"} <= columns


def test_a_newer_schema_is_refused_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    sqlite3.connect(path).execute("PRAGMA user_version = 9").connection.commit()
    with pytest.raises(LibraryError, match="newer folkgen"):
        Library.open(path)
    assert path.is_file() and list(tmp_path.glob("*damaged*")) == []


WRITER = """
    import sys, time
    from pathlib import Path
    from core.judge import judge
    from core.library import Library
    name, go = sys.argv[1], Path(sys.argv[2])
    text = "X:1\\nT:{}\\nM:4/4\\nL:1/8\\nK:G\\n|:GABc dedB|dedB dedB|c2ec B2dB|c2A2 A2BA:|\\n\\n"
    verdict = judge(text.format("x"), check=False)
    library = Library.open()
    while not go.exists():
        time.sleep(0.005)
    ids = []
    for i in range(200):
        ids.append(library.add(text.format(f"{name} {i}"), verdict=verdict))
        time.sleep(0.001)  # an add takes ~0.1 ms: give the other writer its turns
    print(",".join(map(str, ids)))
"""


def test_two_processes_adding_at_once_lose_none(folkgen_home: Path, tmp_path: Path) -> None:
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(WRITER), name, str(go)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for name in ("app", "cli")
    ]
    Library.open().close()  # made before either writer starts
    holder = sqlite3.connect(folkgen_home / LIBRARY_FILE, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # a third writer holds the lock as they start
    time.sleep(0.5)
    go.touch()  # both start writing together, and first wait for the holder
    time.sleep(0.3)
    holder.execute("COMMIT")
    holder.close()
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    ids = [set(map(int, out.strip().split(","))) for out, _ in outs]
    assert len(ids[0]) == len(ids[1]) == 200 and not ids[0] & ids[1]
    with Library.open() as library:
        titles = [r.title for r in library.rows(in_tunebook=False)]
    assert len(titles) == 400
    assert sorted(titles) == sorted(f"{n} {i}" for n in ("app", "cli") for i in range(200))
    # Interleaved, not one after the other: each writer's ids are not one unbroken run.
    assert max(ids[0]) > min(ids[1]) and max(ids[1]) > min(ids[0])


@pytest.mark.parametrize("damage", ["not a database", "malformed"])
def test_a_damaged_file_is_kept_aside_and_a_fresh_one_made(
    damage: str, tmp_path: Path, folkgen_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = folkgen_home / LIBRARY_FILE
    folkgen_home.mkdir()
    if damage == "not a database":
        bad = b"these are not the bytes of a database\n" * 200
    else:
        with Library.open() as library:
            verdict = judge(tune("x"), check=False)
            for i in range(300):
                library.add(tune(f"Reel {i}") * 3, verdict=verdict, in_tunebook=True)
        good = path.read_bytes()
        bad = good[: 4096 * 3] + b"\xff" * 4096 + good[4096 * 4 :]  # a page of the table
    path.write_bytes(bad)

    code, out, err = run(capsys, "library", "list")
    assert code == 0 and "no tunes in the tunebook" in out
    [warning] = err.splitlines()
    aside = next(folkgen_home.glob(f"{LIBRARY_FILE}.damaged-*"))
    assert warning.startswith("folkgen: warning: the tunebook ") and str(aside) in warning
    assert damage in warning and "a new, empty tunebook was started" in warning
    assert aside.read_bytes() == bad  # kept as it was, for a person to look at

    with Library.open() as library:  # the fresh one works, and is not moved again
        assert library.recovered_from is None
        tune_id = library.add(tune("After"), in_tunebook=True)
        assert library.get(tune_id).title == "After"
    assert len(list(folkgen_home.glob("*damaged*"))) == 1


# --- rating, favourites, filter, sort; delete and undo; rename --------------------------------------


@pytest.fixture
def library(tmp_path: Path) -> Library:
    with Library.open(tmp_path / "book.sqlite3") as lib:
        yield lib  # type: ignore[misc]


def fill(library: Library) -> dict[str, int]:
    specs = [("Morning Dew", "Em", "4/4"), ("Banish Misfortune", "D", "6/8"),
             ("Cooley's", "Em", "4/4"), ("Athole Highlanders", "A", "6/8")]  # fmt: skip
    ids = {}
    for title, key, metre in specs:
        ids[title] = library.add(tune(title, key, metre), in_tunebook=True, seed=1)
        time.sleep(0.002)  # distinct creation times
    library.add(tune("Only In History"))
    return ids


def test_rate_favourite_filter_and_sort(library: Library) -> None:
    ids = fill(library)
    library.rate(ids["Cooley's"], 5)
    library.rate(ids["Banish Misfortune"], 3)
    library.set_favourite(ids["Banish Misfortune"], True)
    library.set_favourite(ids["Morning Dew"], True)
    library.set_favourite(ids["Morning Dew"], False)

    def titles(**kw: object) -> list[str]:
        return [t.title for t in library.search(**kw)]  # type: ignore[arg-type]

    assert titles(sort="rating")[:2] == ["Cooley's", "Banish Misfortune"]
    assert titles(sort="title", descending=False) == [
        "Athole Highlanders", "Banish Misfortune", "Cooley's", "Morning Dew"
    ]  # fmt: skip
    assert titles(sort="created") == [
        "Athole Highlanders", "Cooley's", "Banish Misfortune", "Morning Dew"
    ]  # fmt: skip
    assert titles(sort="key", descending=False) == [
        "Athole Highlanders", "Banish Misfortune", "Cooley's", "Morning Dew"
    ]  # fmt: skip
    assert titles(sort="metre", descending=False)[2:] == ["Athole Highlanders", "Banish Misfortune"]
    assert titles(favourites=True) == ["Banish Misfortune"]
    assert titles(text="e MINOR") == ["Cooley's", "Morning Dew"]  # key words, any case
    assert titles(text="6/8 banish") == ["Banish Misfortune"]  # every word must match
    assert titles(text="dedb") == titles()  # the ABC itself is searched
    assert titles(in_tunebook=False) == ["Only In History"]
    # The screen's in-memory path gives what the query gives.
    rows = library.rows()
    assert [r.title for r in sort_rows(filter_rows(rows, "e minor"), "title", False)] == [
        "Cooley's", "Morning Dew"
    ]  # fmt: skip
    # Accented titles among the plain ones (by code point, "Ça" and "Éan" came after "Morning").
    accented = [replace(rows[0], title=t, id=100 + i) for i, t in enumerate(("Éanlaith", "Ça Ira"))]
    assert [r.title for r in sort_rows([*rows, *accented], "title", False)] == [
        "Athole Highlanders", "Banish Misfortune", "Ça Ira", "Cooley's", "Éanlaith", "Morning Dew"
    ]  # fmt: skip
    cooleys = library.get(ids["Cooley's"])
    assert cooleys.rating == 5 and not cooleys.favourite and cooleys.key == "E minor"
    library.rate(ids["Cooley's"], 0)
    assert library.get(ids["Cooley's"]).rating == 0
    with pytest.raises(LibraryError, match="0 to 5"):
        library.rate(ids["Cooley's"], 6)
    with pytest.raises(LibraryError, match="no tune #999"):
        library.rate(999, 1)
    with pytest.raises(LibraryError, match="cannot sort by"):
        library.search(sort="colour")


def test_delete_and_undo(library: Library) -> None:
    ids = fill(library)
    target = ids["Cooley's"]
    library.rate(target, 4)
    library.keep(target, [Path("/t/cooleys.abc"), Path("/t/cooleys.wav")])
    before = library.get(target)
    library.delete(target)
    with pytest.raises(LibraryError, match=f"no tune #{target}"):
        library.get(target)
    assert "Cooley's" not in [r.title for r in library.rows()]
    later = library.add(tune("Made After"), in_tunebook=True)
    assert later > max(ids.values()) + 1  # ids are never given out twice
    assert library.undo_delete() == target
    assert library.get(target) == before  # rating, files, times: all of it
    assert library.undo_delete() is None


def test_history_is_pruned_and_the_tunebook_never(
    library: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("core.library.HISTORY_KEEP", 3)
    kept = library.add(tune("Kept"), in_tunebook=True)
    history = [library.add(tune(f"Drawn {i}")) for i in range(5)]
    assert [r.id for r in library.rows(in_tunebook=False)] == history[:1:-1]  # the newest 3
    assert [r.id for r in library.rows()] == [kept]


def test_notes_are_one_line_and_cleared_by_nothing(library: Library) -> None:
    tune_id = library.add(tune("Noted"), in_tunebook=True)
    library.set_notes(tune_id, "  learnt from Mary,\n play it slow  ")
    assert library.get(tune_id).notes == "learnt from Mary, play it slow"
    library.set_notes(tune_id, "")
    assert library.get(tune_id).notes == ""
    with pytest.raises(LibraryError, match="at most"):
        library.set_notes(tune_id, "x" * 2_001)
    with pytest.raises(LibraryError, match="no tune"):
        library.set_notes(tune_id + 99, "lost")


def test_rename_rewrites_the_title_line(library: Library) -> None:
    tune_id = library.add(tune("Old Name"), in_tunebook=True)
    library.rename(tune_id, "  The New\nName  ")
    renamed = library.get(tune_id)
    assert renamed.title == "The New Name"
    assert renamed.abc.splitlines()[:2] == ["X:1", "T:The New Name"]
    assert renamed.abc.count("T:") == 1 and "Old Name" not in renamed.abc
    untitled = library.add("X:7\nM:4/4\nL:1/8\nK:D\nDEFG ABcd|\n\n", in_tunebook=True)
    assert library.get(untitled).title == "Untitled"
    library.rename(untitled, "Named At Last")
    assert library.get(untitled).abc.startswith("X:7\nT:Named At Last\nM:4/4\n")
    with pytest.raises(LibraryError, match="needs some text"):
        library.rename(untitled, " \n ")


# --- export and import ----------------------------------------------------------------------------


def test_export_then_import_gives_the_same_tunes(library: Library, tmp_path: Path) -> None:
    ids = fill(library)
    order = [ids["Cooley's"], ids["Morning Dew"], ids["Banish Misfortune"]]
    out = library.export_abc(order, tmp_path / "book.abc")
    text = out.read_text(encoding="utf-8")
    assert [line for line in text.splitlines() if line.startswith("X:")] == ["X:1", "X:2", "X:3"]
    # Generated tunes are credited to their making (seed 1 here, no model named), as a save is.
    credit = "Z:generated by folkgen: model unknown, seed 1"
    assert [line for line in text.splitlines() if line.startswith("Z:")] == [credit] * 3
    assert library.export_abc(order, tmp_path / "book.abc") == tmp_path / "book-2.abc"  # kept
    assert out.read_text(encoding="utf-8") == text

    with Library.open(tmp_path / "other.sqlite3") as other:
        report = other.import_path(out)
        assert (len(report.added), report.already, report.invalid, report.skipped) == (3, 0, 0, ())
        got = [other.get(i) for i in report.added]
        want = [library.get(i) for i in order]
        assert [t.title for t in got] == [t.title for t in want]
        assert [body(t.abc).replace(credit + "\n", "") for t in got] == [body(t.abc) for t in want]
        assert all(t.source == "imported" and t.in_tunebook and t.valid for t in got)
        assert [(t.key, t.metre, t.bars, t.form) for t in got] == [
            (t.key, t.metre, t.bars, t.form) for t in want
        ]
        again = other.import_path(out)
        assert again.added == () and again.already == 3
        # Imported tunes keep their own Z: lines in a book; their credit makes no new tune.
        mine = other.add(tune("Transcribed").replace("T:Transcribed\n", "T:Transcribed\nZ:me\n"),
                         source="imported", in_tunebook=True)  # fmt: skip
        book = other.export_abc([*report.added, mine], tmp_path / "again.abc").read_text()
        assert [line for line in book.splitlines() if line.startswith("Z:")] == [credit] * 3 + [
            "Z:me"
        ]
    assert library.import_path(out).already == 3  # where they were made: the same tunes

    # A tune with blank lines, or lines of spaces, inside it (a prompt can hold them) stays one
    # tune in the book: such a line would end it there.
    gappy = library.add("X:1\nT:Gappy\nM:C\nK:G\nGABc dedB|\n\n\ndedB GABc|\n \t\nG8|]\n")
    book = library.export_abc([gappy, order[0]], tmp_path / "gappy.abc")
    with Library.open(tmp_path / "third.sqlite3") as third:
        report = third.import_path(book)
        assert len(report.added) == 2 and third.get(report.added[0]).title == "Gappy"


def test_an_exported_generated_tune_is_credited_in_its_abc_and_midi(
    library: Library, tmp_path: Path
) -> None:
    """With the settings that made it, after the Z: line typed in its prompt (kept after a
    rename, which rewrites its T: line), in place of the one the model wrote."""
    prompt = "X:1\nT:Mine\nZ:transcribed by me\n"
    made = prompt + "Z: id:dc-slide-34\nM:6/8\nL:1/8\nK:D\n|:ADC A3|D2B FDA:|\n\n"
    tune_id = library.add(made, model_name="default.pt", seed=3, temperature=0.9, top_k=4,
                          prompt=prompt, in_tunebook=True)  # fmt: skip
    library.rename(tune_id, "Better Name")
    credit = "generated by folkgen: model default.pt, seed 3, temperature 0.9, top-k 4"
    book = library.export_abc([tune_id], tmp_path / "book.abc").read_text(encoding="utf-8")
    fields = [line for line in book.splitlines() if line.startswith(("T:", "Z:"))]
    assert fields == ["T:Better Name", "Z:transcribed by me", f"Z:{credit}"]
    (midi,) = library.export_midi([tune_id], tmp_path / "midi")
    assert credit.encode() in midi.read_bytes() and b"id:dc" not in midi.read_bytes()


def test_library_show_gives_a_generated_tune_as_exported(
    folkgen_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`library show` (and the Library screen) give the text an export writes: it printed the
    Z: line the model wrote, "Z: id:dc-slide-34", a corpus tune's id, for all to copy."""
    made = "X:1\nT:Mine\nZ: id:dc-slide-34\nM:6/8\nL:1/8\nK:D\n|:ADC A3|D2B FDA:|\n"
    with Library.open(folkgen_home / LIBRARY_FILE) as library:
        tune_id = library.add(made, model_name="default.pt", seed=3, temperature=0.9,
                              in_tunebook=True)  # fmt: skip
        tune = library.get(tune_id)
    credit = "Z:generated by folkgen: model default.pt, seed 3, temperature 0.9"
    assert tune.abc == made and tune.shared_abc.splitlines()[2] == credit
    code, out, _ = run(capsys, "library", "show", str(tune_id))
    assert code == 0 and credit in out.splitlines() and "id:dc" not in out
    code, out, _ = run(capsys, "library", "show", str(tune_id), "--json")
    assert json.loads(out)["abc"] == made  # the data as made, for scripts


def test_import_of_a_folder_reports_the_bad_file(library: Library, tmp_path: Path) -> None:
    folder = tmp_path / "tunes"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "mixed.abc").write_bytes((DATA / "tunes.abc").read_bytes())
    (folder / "binary.abc").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")  # a picture, misnamed
    (folder / "readme.txt").write_text("not an abc file")
    report = library.import_path(folder)
    assert report.files == 2 and len(report.added) == 3 and report.invalid == 1
    [bad_file, keyless] = report.skipped
    assert "binary.abc" in bad_file and "binary file" in bad_file
    assert "no K: (key) line" in keyless
    assert keyless.startswith(f"{folder / 'sub' / 'mixed.abc'}: 'X:4'")  # which file: a folder's
    titles = {library.get(i).title: library.get(i) for i in report.added}
    assert set(titles) == {"Good Scale", "Open Chord", "Long Bar"}
    assert titles["Open Chord"].valid is False and titles["Good Scale"].valid is True
    with pytest.raises(LibraryError, match="no such file"):
        library.import_path(tmp_path / "missing.abc")
    os.mkfifo(tmp_path / "pipe.abc")  # refused unread: opening a FIFO to read would block
    with pytest.raises(LibraryError, match="not a regular file"):
        library.import_path(tmp_path / "pipe.abc")
    latin = tmp_path / "latin1.abc"  # read as Latin-1 (Windows-1252): it was refused whole
    latin.write_bytes("X:1\nT:Café “Noir”\nK:G\nGABc|\n".encode("cp1252"))
    (added,) = library.import_path(latin).added
    assert library.get(added).title == "Café “Noir”"


# --- the command line -----------------------------------------------------------------------------


def test_cli_generate_keeps_history_and_save_keeps_the_tune(
    capsys: pytest.CaptureFixture[str], folkgen_home: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    model = shipped_model_path()
    assert model is not None
    common = [
        "generate",
        "--json",
        "--model",
        str(model),
        "--max-chars",
        "60",
        "--temperature",
        "0.5",
    ]
    code, out, _ = run(capsys, *common, "--seed", "11", "--top-k", "7")
    history = json.loads(out)
    code, out, _ = run(capsys, *common, "--seed", "12", "--save", str(tmp_path / "kept"))
    saved = json.loads(out)
    assert code == 0
    with Library.open() as library:
        first, second = library.get(history["tunebook_id"]), library.get(saved["tunebook_id"])
    assert not first.in_tunebook and second.in_tunebook
    assert first.abc == history["text"] and second.abc == saved["text"]
    assert (first.seed, first.temperature, first.top_k, first.max_chars) == (11, 0.5, 7, 60)
    assert first.model_name == "default.pt" and first.model_hash == model_hash(model)
    assert len(first.model_hash) == 16 and first.grammar is True and first.prompt == "X:"
    assert second.files == tuple(Path(p) for p in saved["saved"]) and second.files[0].is_file()

    # The same command again: the same tune, saved into another folder, is one entry with the
    # files of both saves (it made a second entry).
    code, out, _ = run(capsys, *common, "--seed", "12", "--save", str(tmp_path / "again"))
    again = json.loads(out)
    assert code == 0 and again["text"] == saved["text"] and again["tunebook_id"] == second.id
    with Library.open() as library:
        files = library.get(second.id).files
    assert files == tuple(Path(p) for p in saved["saved"] + again["saved"])

    code, out, _ = run(capsys, "library", "list", "--json")
    assert [t["id"] for t in json.loads(out)] == [second.id]
    code, out, _ = run(capsys, "library", "list", "--history", "--json")
    assert [t["seed"] for t in json.loads(out)] == [11]

    # Saved into a folder named relative to where one stands: kept by where it is, so that
    # library show finds the files from anywhere (it said "rel/….abc (missing)").
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, *common, "--seed", "13", "--save", "rel")
    rel = json.loads(out)
    monkeypatch.chdir(folkgen_home.parent)
    code, out, _ = run(capsys, "library", "show", str(rel["tunebook_id"]))
    files = [line.split("file: ", 1)[1] for line in out.splitlines() if "file: " in line]
    assert code == 0 and files and all(f.startswith(str(tmp_path / "rel") + "/") for f in files)
    assert "(missing)" not in out


def test_generating_goes_on_when_the_tunebook_cannot_be_written(
    folkgen_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from core.sample import SampleOptions

    (folkgen_home / LIBRARY_FILE).mkdir(parents=True)  # in the way: no database can be made
    history = GenerateHistory(None)
    text = tune("Drawn")
    verdict = judge(text, check=False)
    assert [history.record(text, SampleOptions(seed=s), verdict, None) for s in (1, 2)] == [
        None
    ] * 2
    [warning] = capsys.readouterr().err.splitlines()  # said once
    assert warning.startswith("folkgen: warning: tunes are not kept in the history: ")
    assert str(folkgen_home / LIBRARY_FILE) in warning
    history.close()


def test_cli_library_commands(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(capsys, "library", "import", str(DATA / "tunes.abc"))
    assert code == 0 and "imported 3 tunes (1 with abc2midi errors) from 1 file\n" in out
    assert err.splitlines() == [
        f"folkgen: skipped: {DATA / 'tunes.abc'}: 'X:4'…: not a tune (no K: (key) line, so no tune"
        " body)"
    ]
    code, out, _ = run(capsys, "library", "list", "--json", "--sort", "title")
    listed = {t["title"]: t["id"] for t in json.loads(out)}
    assert list(listed) == ["Good Scale", "Long Bar", "Open Chord"]
    good = listed["Good Scale"]

    assert run(capsys, "library", "rate", str(good), "4")[:2] == (0, f"#{good} Good Scale: ★★★★·\n")
    assert run(capsys, "library", "favourite", str(good))[0] == 0
    code, out, _ = run(capsys, "library", "list", "--favourites")
    assert code == 0 and "Good Scale" in out and "Long Bar" not in out and "★★★★·  ♥" in out
    code, out, _ = run(capsys, "library", "list", "--filter", "G MAJOR bar")  # every word
    assert "Long Bar" in out and "Good Scale" not in out and "1 tune in the" in out
    note = run(capsys, "library", "note", str(good), "play it slow")
    assert note[:2] == (0, f"#{good} Good Scale: notes: play it slow\n")
    code, out, _ = run(capsys, "library", "show", str(good))
    assert code == 0 and "CDEF GABc|cBAG FEDC" in out and "abc2midi-clean" in out
    assert "notes: play it slow" in out

    code, out, _ = run(capsys, "library", "export", "--favourites", str(tmp_path / "fav.abc"),
                       "--midi", str(tmp_path / "midi"))  # fmt: skip
    assert code == 0 and (tmp_path / "fav.abc").read_text().startswith("X:1\nT:Good Scale\n")
    assert [p.name for p in (tmp_path / "midi").iterdir()] == ["good-scale.mid"]
    code, out, _ = run(capsys, "library", "export", "--ids", f"{good},{listed['Long Bar']}",
                       "--pdf", str(tmp_path / "book.pdf"))  # fmt: skip
    pdf = (tmp_path / "book.pdf").read_bytes()
    assert code == 0 and f"wrote a PDF tunebook to {tmp_path / 'book.pdf'}" in out
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page\n") == 2  # a page a tune
    code, _, err = run(capsys, "library", "export", "--ids", f"{good},999", str(tmp_path / "x.abc"))
    assert (code, err) == (1, "folkgen: error: no tune #999 in the tunebook\n")
    assert not (tmp_path / "x.abc").exists()
    # A folder where a file is wanted, and a file where a folder is: said so (the PDF went
    # beside the folder, named after it; a file for --midi gave "File exists").
    folder = tmp_path / "midi"
    code, _, err = run(capsys, "library", "export", "--ids", str(good), "--pdf", str(folder))
    assert code == 1 and f"{folder} is a folder; give a file name" in err
    code, _, err = run(capsys, "library", "export", "--ids", str(good), str(folder) + "/")
    assert code == 1 and "is a folder; give a file name" in err
    code, _, err = run(capsys, "library", "export", "--ids", str(good), f"{tmp_path}/new/")
    assert code == 1 and "new is a folder; give a file name" in err  # not there yet: as meant
    assert not (tmp_path / "midi.pdf").exists() and not (tmp_path / "midi.abc").exists()
    assert not (tmp_path / "new.abc").exists()
    code, _, err = run(capsys, "library", "export", "--ids", str(good), str(tmp_path / "b.abc"),
                       "--midi", str(tmp_path / "fav.abc"))  # fmt: skip
    assert code == 1 and "fav.abc is a file; MIDI files go into a folder" in err
    assert not (tmp_path / "b.abc").exists()  # every destination checked before any is written
    with pytest.raises(SystemExit) as refused:  # favourites or the ids given, not both
        main(["library", "export", "--favourites", "--ids", str(good), str(tmp_path / "x.abc")])
    assert refused.value.code == 2 and "not allowed with" in capsys.readouterr().err
    assert not (tmp_path / "x.abc").exists()

    code, out, _ = run(capsys, "library", "delete", str(good))
    assert code == 0 and f"deleted #{good} Good Scale" in out
    for argv in (["rate", str(good), "3"], ["show", str(good)], ["play", str(good)]):
        code, out, err = run(capsys, "library", *argv)
        assert (code, out, err) == (1, "", f"folkgen: error: no tune #{good} in the tunebook\n")
    code, _, err = run(capsys, "library", "import", str(tmp_path / "nothing"))
    assert code == 1 and err.count("\n") == 1 and "no such file or folder" in err


def test_cli_play_renders_once_and_counts(folkgen_home: Path) -> None:
    """The tune as written, rendered once and then reused; never a saved set's WAV, which
    plays in the voice chosen as it was saved."""
    from core.audio import render
    from core.voice import Voice

    with Library.open() as library:
        tune_id = library.add(tune("Played"), in_tunebook=True)
        saved = render(tune("Played"), folkgen_home / "saved", voice=Voice("fiddle", 150))
        assert saved.midi_path is not None and saved.wav_path is not None
        library.add_files(tune_id, [saved.midi_path, saved.wav_path])
    code = "import sys; from core.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "ALSA_CONFIG_PATH": str(DATA / "alsa-null.conf")}
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, "-c", code, "library", "play", str(tune_id)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert (
            proc.returncode == 0
            and proc.stderr == ""
            and f"playing #{tune_id} Played" in proc.stdout
        )
    with Library.open() as library:
        played = library.get(tune_id)
    assert played.play_count == 2
    plain = folkgen_home / "tunes" / "played.wav"
    assert played.files == (saved.midi_path, saved.wav_path, plain)  # rendered once, then reused
    assert f": {plain}\n" in proc.stdout
    assert list((folkgen_home / "tunes").iterdir()) == [folkgen_home / "tunes" / "played.wav"]
    nocard = {**os.environ, "ALSA_CONFIG_PATH": str(DATA / "alsa-nocard.conf")}
    proc = subprocess.run(
        [sys.executable, "-c", code, "library", "play", str(tune_id)],
        cwd=ROOT, env=nocard, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1 and "playing" not in proc.stdout  # no sound device: not played
    assert "cannot play sound here" in proc.stderr
    with Library.open() as library:
        assert library.get(tune_id).play_count == 2


def test_an_import_goes_in_batches_and_a_stopped_one_keeps_what_it_took(
    library: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large collection said nothing for minutes, and Ctrl+C kept nothing: every tune was
    checked before any was added. Now a batch at a time, progress told after each."""
    import core.library

    monkeypatch.setattr(core.library, "IMPORT_BATCH", 4)
    book = tmp_path / "ten.abc"
    book.write_text("".join(f"X:{n}\nT:Tune {n}\nM:4/4\nL:1/8\nK:G\nGABc d{'Bcd'[n % 3]}BG|\n\n"
                            for n in range(10)), encoding="utf-8")  # fmt: skip
    seen: list[tuple[int, int]] = []

    def stop(done: int, total: int) -> None:
        seen.append((done, total))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        library.import_path(book, stop)
    assert seen == [(4, 10)] and len(library.rows()) == 4
    seen.clear()
    report = library.import_path(book, lambda done, total: seen.append((done, total)))
    assert seen == [(4, 6), (6, 6)] and len(report.added) == 6 and report.already == 4
