from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.corpus import (
    Corpus,
    CorpusError,
    Credit,
    CreditedStream,
    UnknownCharacters,
    Vocabulary,
    compute_stats,
    credited,
    generation_credit,
    header_field,
    load_corpus,
    normalize_key,
    split_tunes,
    tune_chunks,
)
from core.paths import DefaultCorpusMissing, default_corpus_path
from core.score import _without_comment


def test_default_corpus_matches_the_seed() -> None:
    corpus = load_corpus()
    assert len(corpus.tunes) == 817
    assert len(corpus.vocab) == 83
    assert corpus.text == "\n\n".join(corpus.tunes)
    assert list(corpus.vocab.chars) == sorted(set(corpus.text))


def test_split_tunes_follows_the_overlapped_regex() -> None:
    text = "X:1\nA\n\nX:2\nB\n\n\nX:3\nC\n\ntrailing"
    # A triple newline yields the next tune twice (with and without its leading newline).
    assert split_tunes(text, lab=True) == ["X:1\nA", "X:2\nB", "\nX:3\nC", "X:3\nC"]


def test_one_splitter_for_files_and_generated_text() -> None:
    """Blank lines (empty or only spaces) separate tunes, line ends of any kind; the last tune
    ends with the text. extract_tunes (generated text, files to play) reads the same chunks."""
    from core.abc import extract_tunes

    text = "\nX:1\r\nK:G\r\nGAB|\r\n  \nX:2\nK:D\nDEF|\n\n\n\nX:3\nK:A\nABc|"
    assert split_tunes(text) == ["X:1\nK:G\nGAB|", "X:2\nK:D\nDEF|", "X:3\nK:A\nABc|"]
    chunks = tune_chunks(text)
    assert [(c.start_line, c.closed) for c in chunks] == [(2, True), (6, True), (12, False)]
    tunes = extract_tunes(text)
    assert [t.text for t in tunes] == split_tunes(text)
    assert [t.start_line for t in tunes] == [2, 6, 12] and not tunes[-1].complete


def test_tunes_run_together_split_at_each_x_line() -> None:
    """Collections often leave out the blank line between tunes: an X: line can only start a
    tune, so it ends the one before, which is closed as a blank line would close it. A file
    header with no blank line after it stays with the first tune (abc2midi reads it so), and an
    X: line starting a tune after a blank line splits nothing more; nor do the header's
    directives."""
    from core.abc import extract_tunes

    text = "%abc-2.1\nX:1\nT:A\nK:G\nGAB|\nX:2\nT:B\nK:D\nDEF|\n\nX:3\nK:A\nABc|\n"
    chunks = tune_chunks(text)
    assert [c.text for c in chunks] == [
        "%abc-2.1\nX:1\nT:A\nK:G\nGAB|", "X:2\nT:B\nK:D\nDEF|", "X:3\nK:A\nABc|"
    ]
    assert [(c.start_line, c.closed) for c in chunks] == [(1, True), (6, True), (11, False)]
    tunes = extract_tunes(text, eof_ends_tune=True)
    assert [t.complete for t in tunes] == [True, True, True]
    # A tune without its X: line ends as well, at its K: line's body.
    assert split_tunes("T:no number\nK:G\nGAB|\nX:5\nK:D\nDEF|") == [
        "T:no number\nK:G\nGAB|", "X:5\nK:D\nDEF|"
    ]
    assert split_tunes("%%scale 0.8\n%%font x\nX:1\nK:G\nG|") == ["%%scale 0.8\n%%font x\nX:1\nK:G\nG|"]


def test_a_file_header_and_comment_blocks_are_no_tunes() -> None:
    """ABC 2.1's file header (comments, directives, fields, then a blank line) and a comment
    block between tunes are left out: they were counted as a tune with no K: line (`check`
    failed the file, the corpus had an "Untitled" tune). A block with music but no K: line is
    still a (broken) tune, and a generated header cut off before its K: line is kept."""
    from core.abc import extract_tunes

    header = "%abc-2.1\n%%pagewidth 21cm\n% My session tunes\nM:6/8\n\n"
    text = header + "X:1\nT:A\nK:G\nGAB|\n\n% the next one is a jig\n\nX:2\nK:D\nDEF|\n\n% end\n"
    chunks = tune_chunks(text)
    assert [c.text for c in chunks] == ["X:1\nT:A\nK:G\nGAB|", "X:2\nK:D\nDEF|"]
    assert [c.start_line for c in chunks] == [6, 13]
    assert [t.complete for t in extract_tunes(text, eof_ends_tune=True)] == [True, True]
    assert split_tunes("T:no key\nGAB|\n\nX:1\nK:G\nG|") == ["T:no key\nGAB|", "X:1\nK:G\nG|"]
    # Words alone between tunes (a collection's notes) are none: they were trained on.
    notes = "See also: temperamentlinear and the\nexamples below.\n\nExample:\n\nX:1\nK:G\nG|"
    assert split_tunes(notes) == ["X:1\nK:G\nG|"]
    cut = extract_tunes("T:My tune\nM:6/8\nL:1/8")
    assert len(cut) == 1 and "cut off" in cut[0].incomplete_reason


def test_vocabulary_encodes_vectorised_and_round_trips() -> None:
    vocab = Vocabulary.from_text("X:1\nABC|")
    ids = vocab.encode("CBA|\n")
    assert ids.dtype == np.int64
    assert vocab.decode(ids) == "CBA|\n"
    assert vocab.char2idx["\n"] == 0
    with pytest.raises(UnknownCharacters, match="'é'"):
        vocab.encode("ABé")


def test_split_is_by_tune_deterministic_and_disjoint() -> None:
    corpus = load_corpus()
    a, b = corpus.split(), corpus.split()
    assert a.val_tunes == b.val_tunes
    assert 0.07 < len(a.val_tunes) / len(corpus.tunes) < 0.13
    train_set = {t.strip() for t in a.train_tunes}
    assert not any(t.strip() in train_set for t in a.val_tunes)  # duplicates stay on one side
    assert len(a.train_tunes) + len(a.val_tunes) == len(corpus.tunes)
    assert corpus.vocab.decode(a.val_ids[:50]) == "\n\n".join(a.val_tunes)[:50]


def test_stats_of_the_default_corpus() -> None:
    stats = compute_stats(load_corpus())
    assert stats.tunes == 817 and len(stats.vocabulary) == 83
    meters = dict(stats.meters)
    assert meters["C"] > 350 and meters["6/8"] > 200
    keys = dict(stats.keys)
    assert keys["G major"] > 200 and keys["A Dorian"] > 50 and keys["D Mixolydian"] > 50
    # ... and as the tunes spell them (Generate's key picker offers these), the commonest first
    assert stats.written_keys[:2] == [("G Major", keys["G major"]), ("D Major", keys["D major"])]
    assert stats.length_min == 56 and stats.length_max == 603
    assert sum(n for _, n in stats.length_histogram) == 817
    starts = [start for start, _ in stats.length_histogram]
    assert starts[0] == 56 and len(starts) == 10 and starts[-1] <= 603
    assert len(set(np.diff(starts))) == 1  # whole buckets of one width
    assert sum(n for _, n in stats.vocabulary) == stats.characters


def test_the_corpus_and_its_statistics_come_without_numpy() -> None:
    """The app loads the corpus on a thread as it starts: numpy's import (~50 ms holding the
    interpreter) comes as the first model does (FolkgenApp._model_ready)."""
    code = (
        "import sys\n"
        "from core.corpus import compute_stats, load_corpus\n"
        "stats = compute_stats(load_corpus())\n"
        "print(stats.tunes, 'numpy' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["817", "False"]


def test_statistics_count_every_character_most_common_first_ties_in_order() -> None:
    tunes = ["X:1\nK:G\nbbaa|", "X:2\nK:D\nccc|"]
    stats = compute_stats(Corpus("two", tunes))
    text = "\n\n".join(tunes)
    counts = [(c, text.count(c)) for c in sorted(set(text))]
    assert stats.vocabulary == sorted(counts, key=lambda cn: -cn[1])  # stable: ties by character
    assert stats.vocabulary[:2] == [("\n", 6), (":", 4)]
    assert stats.length_mean == (len(tunes[0]) + len(tunes[1])) / 2
    assert stats.length_histogram == [(12, 1), (13, 1)]  # the lengths, one bucket each
    spelled = compute_stats(Corpus("three", [*tunes, "X:3\nK:Gmaj\nB|"]))
    assert spelled.keys == [("G major", 2), ("D major", 1)]  # one key, two spellings
    assert spelled.written_keys == [("G", 1), ("D", 1), ("Gmaj", 1)]


def test_a_corpus_of_many_slices_is_counted_whole() -> None:
    tunes = load_corpus().tunes * 7  # ~1.4 MB: counted a slice at a time
    corpus = Corpus("many", tunes)
    assert len(corpus.text) > 1 << 20
    stats = compute_stats(corpus)
    assert dict(stats.vocabulary) == {c: corpus.text.count(c) for c in corpus.vocab.chars}


def test_a_few_tunes_get_whole_length_buckets(tmp_path: Path) -> None:
    """Two tunes 3 characters apart: a bucket per length, in order (float edges cut to ints
    named ranges that ran backwards and repeated: "64–63", "64–63", "65–64")."""
    tune = "X:1\nT:A\nM:C\nK:G\nGABc|\n"
    path = tmp_path / "two.abc"
    path.write_text(tune + "\n" + tune.replace("GABc", "GABcdef") + "\n", encoding="utf-8")
    stats = compute_stats(load_corpus(path))
    n = len(tune) - 1  # the tune as the corpus keeps it, without its last line break
    assert (stats.length_min, stats.length_max) == (n, n + 3)
    assert stats.length_histogram == [(n, 1), (n + 1, 0), (n + 2, 0), (n + 3, 1)]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("D Major", "D major"), ("Ador", "A Dorian"), ("Em", "E minor"), ("G", "G major"),
     ("D Mixolydian", "D Mixolydian"), ("F#m", "F# minor"), ("Bb", "Bb major"),
     ("G clef=bass", "G major"), ("Ador bass", "A Dorian")],  # settings are no part of it
)  # fmt: skip
def test_normalize_key(value: str, expected: str) -> None:
    assert normalize_key(value) == expected


def test_header_field() -> None:
    assert header_field("X:1\nT:Tune\nM:6/8\nK:G\nabc", "M") == "6/8"
    assert header_field("X:1\nabc", "K") is None
    # Without its comment (the Tunes tab showed "C % 0 sh…"); \% is a percent sign, kept.
    assert header_field("X:1\nM:6/8 % a jig\nK:C % 0 sharps\nabc", "K") == "C"
    assert header_field("X:1\nM:6/8 % a jig\nK:C\nabc", "M") == "6/8"
    assert header_field("X:1\nT:100\\% Irish % (a title)\nK:C\nabc", "T") == "100\\% Irish"


def test_a_generated_tune_is_credited_in_place_of_the_z_lines_the_model_wrote() -> None:
    credit = generation_credit("default.pt", 42, 0.8, 5)
    line = "generated by folkgen: model default.pt, seed 42, temperature 0.8, top-k 5"
    assert credit == Credit(line, "")
    assert generation_credit("", None, None, None).line == "generated by folkgen: model unknown"
    # A file's name on one line, its % escaped: the seed after it is not read as a comment.
    odd = generation_credit("50%\nmix.pt", 7, None, None).line
    assert odd == "generated by folkgen: model 50\\% mix.pt, seed 7"
    assert _without_comment(odd) == odd
    # The default corpus's own Z: line, written by a model (it names another tune of it).
    made = "X:29\nT:Pigeo of Brave\nZ: id:dc-slide-34\nM:6/8\nL:1/8\nK:D\nADC A3|D2B FDA|\n"
    assert credited(made, credit) == (
        f"X:29\nT:Pigeo of Brave\nZ:{line}\nM:6/8\nL:1/8\nK:D\nADC A3|D2B FDA|\n"
    )
    me = Credit("me", "X:")
    # After the last title; every Z: line of the header goes; the body is left alone.
    assert credited("X:2\nZ:a\nT:One\nT:Two\nZ:b\nK:G\nGAB|\nZ:c\n", me) == (
        "X:2\nT:One\nT:Two\nZ:me\nK:G\nGAB|\nZ:c\n"
    )
    # The tunes of a prompt before the generated one keep theirs; no title: after X:.
    tunes = "X:1\nT:Mine\nZ:my own transcription\nK:D\ndef|\n\n"
    assert credited(tunes + "X:2\nZ: id:x\nM:C\nK:G\nGAB|", Credit("me", tunes + "X:2")) == (
        tunes + "X:2\nZ:me\nM:C\nK:G\nGAB|"
    )
    # A Z: line typed in the prompt of the tune is the user's: it stays, the credit after it.
    typed = "X:1\nT:Mine\nZ:my own\n"
    assert credited(typed + "Z:dc\nK:D\ndef|", Credit("me", typed)) == (
        "X:1\nT:Mine\nZ:my own\nZ:me\nK:D\ndef|"
    )
    assert credited(typed + "K:D\ndef|", Credit("me", "X:1\nT:Renamed\n")) == (
        "X:1\nT:Mine\nZ:me\nK:D\ndef|"  # a text that no longer starts with its prompt
    )
    # A prompt ending in a bare "Z:" left the line to the model, which filled it with a corpus
    # tune's id: the model's, not the user's. A Z: line begun with words stays the user's.
    left = Credit("me", "X:1\nT:Zed\nZ:")
    assert credited("X:1\nT:Zed\nZ: id:dc-ocarolan-12\nK:D\ndef|", left) == (
        "X:1\nT:Zed\nZ:me\nK:D\ndef|"
    )
    assert credited("X:1\nZ:by me, with\nK:D\nd|", Credit("me", "X:1\nZ:by me")) == (
        "X:1\nZ:by me, with\nZ:me\nK:D\nd|"
    )
    # Continuation lines (+:) stay with their field: the credit goes after them, and those of
    # a Z: line the model wrote go with it.
    assert credited("X:1\nT:A\n+:B\nZ: id:x\n+:y\nM:C\nK:D\nabc|", me) == (
        "X:1\nT:A\n+:B\nZ:me\nM:C\nK:D\nabc|"
    )
    # No prompt: no line is the user's (a Z: line first in the text too goes).
    assert credited("Z:dc\nX:3\nT:A\nK:D\nabc|", Credit("me")) == "X:3\nT:A\nZ:me\nK:D\nabc|"
    assert credited("", me) == ""


def test_a_stream_is_credited_once_its_header_is_whole() -> None:
    """What `folkgen generate` prints, a character at a time: the credited text, the header
    held only until its K: line ends, the body as it comes."""
    made = "T:Pigeo of Brave\nZ: id:dc-slide-34\nM:6/8\nL:1/8\nK:D\nADC A3|D2B FDA|\n"
    for prompt in ("X:", "X:1\n", "X:1\nT:Mine\nZ:my own\n", "X:1\nM:6/8\nK:D\n", ""):
        for generated in (made, made[:20], "Z:dc\n" + made):  # whole; cut off before K:
            credit = Credit("me", prompt)
            stream = CreditedStream(prompt, credit)
            given = [stream.start()] + [stream.feed(ch) for ch in generated] + [stream.end()]
            assert "".join(given) == credited(prompt + generated, credit), (prompt, generated)
            assert "id:dc" not in "".join(given) or "K:" in prompt  # (then it is in the body)
    stream = CreditedStream("X:1\n", Credit("me", "X:1\n"))
    assert stream.start() == "" and [stream.feed(ch) for ch in "T:A\n"] == [""] * 4
    assert [stream.feed(ch) for ch in "K:D\n"] == ["", "", "", "X:1\nT:A\nZ:me\nK:D\n"]
    assert [stream.feed(ch) for ch in "ab"] == ["a", "b"] and stream.end() == ""
    whole = CreditedStream("X:1\nK:D\n", Credit("me", "X:1\nK:D\n"))
    assert whole.start() == "X:1\nZ:me\nK:D\n" and whole.feed("a") == "a"


def test_user_file_and_folder(tmp_path: Path) -> None:
    (tmp_path / "a.abc").write_text(
        "X:1\nT:A\nK:G\nGAB|\n\nX:2\nT:B\nK:D\ndef|\n", encoding="utf-8"
    )
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.abc").write_text("X:3\r\nT:C\r\nK:A\r\nabc|\r\n", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not abc")
    (tmp_path / "bad.abc").write_bytes(b"X:4\nT:\x00\xfe\nK:G\n")  # no text
    (tmp_path / "latin.abc").write_bytes(b"X:5\nT:Caf\xe9 \x93Noir\x94\nK:G\nGAB|\n")  # Windows-1252
    (tmp_path / "odd.abc").write_bytes(b"X:6\nT:\x81\xe9\nK:G\nGAB|\n")  # past Windows-1252
    assert len(load_corpus(tmp_path / "a.abc").tunes) == 2  # the last tune needs no blank line
    folder = load_corpus(tmp_path)
    assert [header_field(t, "T") for t in folder.tunes] == ["A", "B", "Café “Noir”", "\x81é", "C"]
    assert "\r" not in folder.text
    assert len(folder.skipped) == 1 and "bad.abc: looks like a binary file" in folder.skipped[0]
    # A file of words alone (no tune) is named with its path, as the other skipped ones are.
    (tmp_path / "sub" / "notes.abc").write_text("Tunes collected in 1903.\n", encoding="utf-8")
    assert load_corpus(tmp_path).skipped[1] == (
        f"{tmp_path / 'sub' / 'notes.abc'}: no tunes found (tunes are separated by blank lines)"
    )
    with pytest.raises(CorpusError, match="^" + re.escape(f"{tmp_path / 'sub' / 'notes.abc'}: no")):
        load_corpus(tmp_path / "sub" / "notes.abc")


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "no tunes"), (b"\n\n\n  \n", "no tunes"), (b"\x00\x01\x02ABC", "binary"),
     (b"X:1\nT:caf\x00\nK:G\n", "binary")],
)  # fmt: skip
def test_bad_user_files_give_clear_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "x.abc"
    path.write_bytes(content)
    with pytest.raises(CorpusError, match=message):
        load_corpus(path)


def test_missing_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(CorpusError, match="no such file"):
        load_corpus(tmp_path / "nope.abc")
    with pytest.raises(CorpusError, match="no .abc files"):
        load_corpus(tmp_path)
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DefaultCorpusMissing, match="pip install --no-deps"):
        default_corpus_path()


def test_counts_are_written_with_their_word() -> None:
    from core.words import plural

    assert plural(1, "tune") == "1 tune" and plural(2, ".abc file") == "2 .abc files"
    assert plural(0, "page") == "0 pages" and plural(12060, "tune") == "12,060 tunes"
