"""Grammar-aware sampling (core/abc_grammar.py). Syntax, against the real abc2midi: the rules
agree with abc2midi, the grammar accepts the corpus tunes abc2midi accepts, its masks never
empty, and sampling with it is reproducible and gives valid tunes far more often than without it.
Music, against core/music_analysis.py: bars fill exactly, parts close after 8 bars, the tune ends
after two parts on the tonic, K: names only the keys given; and sampled tunes are so."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.abc import check_tune
from core.abc_grammar import PARTS_PRIOR, UNBUILT, AbcGrammar, GrammarState, draw_parts
from core.checkpoint import load_checkpoint
from core.corpus import Vocabulary, load_corpus
from core.music_analysis import analyse_tune, corpus_keys, summarize
from core.paths import shipped_model_path
from core.sample import DEFAULT_PROMPT, SampleOptions, Sampler

HEADER = "X:1\nT:Test\nM:6/8\nL:1/8\nK:G Major\n"
BAR = "GAB cde"  # a full bar of 6/8 (it ends on E, not on G, the tonic)


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return load_corpus().vocab


@pytest.fixture(scope="module")
def grammar(vocab: Vocabulary) -> AbcGrammar:
    """ABC syntax only: abc2midi is its oracle (the music rules have the analyser)."""
    return AbcGrammar(vocab, metre=False, form=False, tonic=False)


@pytest.fixture(scope="module")
def music(vocab: Vocabulary) -> AbcGrammar:
    return AbcGrammar(vocab)


@pytest.fixture(scope="module")
def shipped() -> Sampler:
    path = shipped_model_path()
    assert path is not None
    ckpt = load_checkpoint(path)
    return Sampler(ckpt.build_model(), ckpt.vocab, "fp32")


# --- the rules, with abc2midi as the oracle ------------------------------------------------------

BODIES = [
    ("ABc def|[1 ABc:|[2 def|]", True),
    ("ABc def:|\nABc|[1 def:|\n[2 fed|]", False),  # a first ending after a :| was played...
    ("ABc def:|\n|:ABc|[1 def:|\n[2 fed|]", True),  # ... needs a |: first
    ("ABc|[1 def:|[2 fed|]\nABc|[1 def:|[2 fed|]", True),  # a second ending's end reopens
    ("ABc|[2 def|]", False),  # a second ending without a first
    ("ABc|[1 def|]", False),  # a first ending not closed by :|
    ("ABc|[1 def:|[2 fed|[1 ABc:|", False),  # a second ending not closed
    ("|:ABc def|", False),  # a |: never closed
    ("|:ABc|:def:|", False),
    ("ABc def:|ABc::def:|", False),
    ("ABc|[1 def:|[2 fed|]ABc::def:|", False),  # a second ending's close leaves :| played ...
    ("ABc|[1 def:|[2 fed|]\n|:ABc::def:|", True),  # ... until a |:
    ("A>B c>d|", True),
    ("A>B2 c|", False),  # broken rhythm between notes of unequal length
    ("A>B>c d|", False),  # chained
    ("(3ABc>d e2f|", False),  # a tuplet's last note and a note outside it
    ("(3A>Bc d2e|", True),
    ("A2-A2 B-|B c|", True),
    ("A2-B2 c|", False),  # a tie to another pitch
    ("(3ABc (3def|", True),
    ("(3AB(3cde f|", False),  # nested tuplets
    ("(1AB c|", False),
    ("A3 2 B|", False),  # a stray length
    ("A//2 B|", False),
    ("ABc d,|", False),  # "," after a lower-case note
    ('"G"ABc "Am7"def|', True),
    ('"Verse"ABc|', False),  # an annotation where abc2midi wants a guitar chord
    ("ABc def|!\nABc def|]!", True),
    ("A/B/c d3/2e/ z2|", True),
    ("ABc def|\nK:D Major\nABc def|", True),
]
HEADERS = [
    ("X:1\nT:t\nM:6/8\nL:1/8\nK:G Dorian\n", True),
    ("X:1\nT:t\nM:6/8\nL:1/8\nK:G Dirian\n", False),
    ("X:1\nT:t\nM:6/7\nL:1/8\nK:G\n", False),
    ("X:1\nT:t\nM:6/8\nL:1/3\nK:G\n", False),
    ("X:1\nM:C|\nK:Bb Mixolydian\n", True),
]


@pytest.mark.parametrize(
    ("tune", "valid"),
    [(HEADER + body + "\n", ok) for body, ok in BODIES]
    + [(h + "ABc def|\n", ok) for h, ok in HEADERS],
)
def test_grammar_agrees_with_abc2midi(grammar: AbcGrammar, tune: str, valid: bool) -> None:
    assert check_tune(tune).valid == valid
    assert grammar.accepts(tune + "\n") == valid  # with the blank line that ends the tune


def test_corpus_tunes_abc2midi_accepts_are_accepted(grammar: AbcGrammar) -> None:
    """abc2midi runs on the tunes the grammar rejects and on a sample of those it accepts (all
    817 would take ~10 s). Measured on the whole corpus: the grammar accepts 751 tunes, all
    valid, and rejects all 61 invalid ones and 5 valid ones (two with no music after K:, two
    with music on their M: line, one with a stray letter "s" in a body line)."""
    tunes = [t.lstrip("\n") for t in load_corpus().tunes]
    accepted = [grammar.accepts(t + "\n\n") for t in tunes]
    rejected_valid = sum(
        check_tune(t).valid for t, ok in zip(tunes, accepted, strict=True) if not ok
    )
    sample = [t for t, ok in zip(tunes, accepted, strict=True) if ok][::20]
    assert all(check_tune(t).valid for t in sample)
    valid_total = sum(accepted) + rejected_valid
    assert rejected_valid <= 0.02 * valid_total, (rejected_valid, valid_total)
    assert sum(accepted) >= 0.9 * len(tunes)


# --- the automaton -------------------------------------------------------------------------------


@pytest.mark.parametrize("features", [{}, {"chords": True, "slurs": True}])
def test_masks_never_empty_and_walks_stay_in_the_grammar(
    vocab: Vocabulary, features: dict[str, bool]
) -> None:
    """Random walks over allowed characters: every state allows something, and no allowed
    character leads to a dead end (which would drop the stream into the free state)."""
    g = AbcGrammar(vocab, metre=False, form=False, tonic=False, **features)
    rng = np.random.default_rng(0)
    ends = 0
    for _ in range(40):
        state = g.start("X:")
        for _ in range(600):
            mask = g.mask(state)
            assert mask.shape == (len(vocab),) and mask.dtype == bool and mask.any()
            g.advance(state, vocab.chars[int(rng.choice(np.flatnonzero(mask)))])
            assert not g.is_free(state)
            ends += g.allows(state, "X")  # a blank line ended the tune
    assert ends > 0


def test_the_tune_end_waits_for_open_structures(grammar: AbcGrammar) -> None:
    def blank_line_allowed(text: str) -> bool:
        state = grammar.start("")
        for ch in text:
            assert grammar.allows(state, ch), (text, ch)
            grammar.advance(state, ch)
        return grammar.allows(state, "\n")

    assert not blank_line_allowed(HEADER)  # no music yet
    assert blank_line_allowed(HEADER + "ABc def|\n")
    assert not blank_line_allowed(HEADER + "ABc|[1 def|\n")  # inside a first ending
    assert blank_line_allowed(HEADER + "ABc|[1 def:|\n")
    assert not blank_line_allowed(HEADER + "|:ABc def|\n")  # a |: waiting for its :|
    state = grammar.start(HEADER + 'ABc "G')  # a guitar chord open: the line cannot end
    assert not grammar.allows(state, "\n") and grammar.allows(state, '"')
    state = grammar.start(HEADER + "ABc def:|\n")  # no first ending after a played :|
    assert not grammar.allows(state, "[") and grammar.allows(state, "|")


def test_header_fields(grammar: AbcGrammar) -> None:
    state = grammar.start("X:")
    assert not grammar.allows(state, "\n") and grammar.allows(state, "7")
    assert not grammar.allows(state, "A")
    state = grammar.start("X:12\n")
    assert {c for c in "TZMLK" if grammar.allows(state, c)} == set("TZMLK")
    assert not grammar.allows(state, "A") and not grammar.allows(state, "|")
    state = grammar.start("X:12\nK:D")
    assert (
        grammar.allows(state, " ")
        and grammar.allows(state, "\n")
        and not grammar.allows(state, "|")
    )
    state = grammar.start("X:12\nK:D M")
    assert {c for c in grammar.chars if grammar.allows(state, c)} == {
        "a",
        "i",
    }  # Major, Minor, Mixolydian
    assert grammar.accepts("T:The Humours of Ballyloughlin's No. 2\n", prompt="X:1\n")
    assert not grammar.accepts("T:A|B\n", prompt="X:1\n")


def test_a_prompt_outside_the_grammar_frees_the_stream_until_the_next_line(
    grammar: AbcGrammar,
) -> None:
    state = grammar.start("X:1\nT:t\nK:G\nAB } cd")  # "}" is not in the vocabulary
    assert grammar.is_free(state) and grammar.mask(state).all()
    grammar.advance(state, "\n")
    assert not grammar.is_free(state) and not grammar.allows(state, "}")
    state = grammar.start("X:1\nT:t\nK:G\n|:A2d fed|" * 3)  # X: inside a body: free, then back
    assert grammar.mask(state).any()
    grammar.advance(state, "\n")
    assert not grammar.is_free(state)


def test_chords_only_when_asked_for(vocab: Vocabulary) -> None:
    tune = HEADER + "[CEG]2 [ce]A|\n\n"
    syntax = {"metre": False, "form": False, "tonic": False}
    assert not AbcGrammar(vocab, **syntax).accepts(tune)
    assert AbcGrammar(vocab, chords=True, **syntax).accepts(tune)
    assert check_tune(tune).valid


# --- sampling --------------------------------------------------------------------------------------


def test_masked_draw_is_an_exact_renormalised_sample(shipped: Sampler) -> None:
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]], dtype=np.float32))
    allowed = np.array([[True, False, True, True]])
    rng = [np.random.default_rng(0)]
    draws = [int(shipped._draw(logits, SampleOptions(), rng, allowed)[0]) for _ in range(20000)]
    freq = np.bincount(draws, minlength=4) / len(draws)
    assert np.allclose(freq, np.array([0.5, 0.0, 0.15, 0.05]) / 0.7, atol=0.012)
    top2 = {
        int(shipped._draw(logits, SampleOptions(top_k=2), rng, allowed)[0]) for _ in range(2000)
    }
    assert top2 == {0, 2}  # top-k over what the grammar allows
    greedy = SampleOptions(temperature=0)
    assert int(shipped._draw(logits, greedy, rng, ~allowed)[0]) == 1
    nothing = np.zeros_like(allowed)  # an empty mask falls back to every character
    assert {int(shipped._draw(logits, SampleOptions(), rng, nothing)[0]) for _ in range(500)} == {
        0,
        1,
        2,
        3,
    }


def test_grammar_sampling_is_reproducible_and_follows_the_grammar(shipped: Sampler) -> None:
    opts = SampleOptions(seed=11, max_chars=1500, grammar=True)
    batch = shipped.generate_batch(4, opts)
    assert batch == shipped.generate_batch(4, opts)
    assert batch[0] == shipped.generate(opts)  # stream 0 uses seed + 0, like a single stream
    assert len(set(batch)) == 4
    for text in batch:
        assert shipped.grammar.accepts(text, prompt=opts.prompt)
        assert text.endswith("\n\n")
    cold = shipped.generate_batch(
        4, SampleOptions(seed=11, temperature=0.5, max_chars=1500, grammar=True)
    )
    assert cold != batch


def test_a_forced_character_is_taken_without_a_draw(
    shipped: Sampler, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the grammar leaves one stream one character, the sampler takes it without the copy
    model and the draw: the tunes are those of the full draw, character for character, at
    temperature 1, 0 (greedy), hot and with top-k, and the shortcut is taken often."""
    taken = []
    forced = Sampler._forced

    def counted(*args: Any) -> np.ndarray | None:
        ids = forced(*args)
        taken.append(ids is not None)
        return ids

    cases = [
        opts
        for seed in (21, 22)
        for opts in (
            SampleOptions(seed=seed, grammar=True),
            SampleOptions(seed=seed, grammar=True, temperature=0.0),
            SampleOptions(seed=seed, grammar=True, temperature=1.4),
            SampleOptions(seed=seed, grammar=True, top_k=5),
        )
    ]
    batch = SampleOptions(seed=23, grammar=True, max_chars=700)  # the last stream left draws
    monkeypatch.setattr(Sampler, "_forced", staticmethod(counted))
    quick_one = [shipped.generate(opts) for opts in cases]
    one_taken, taken[:] = taken[:], []
    quick = quick_one, shipped.generate_batch(3, batch)
    monkeypatch.setattr(Sampler, "_forced", staticmethod(lambda *args: None))
    slow = [shipped.generate(opts) for opts in cases], shipped.generate_batch(3, batch)
    assert slow == quick
    assert sum(one_taken) > 0.05 * len(one_taken), (sum(one_taken), len(one_taken))
    # The batch's streams end at different lengths: the one left last takes the shortcut too.
    lengths = sorted(map(len, quick[1]))
    assert lengths[-1] > lengths[-2] and sum(taken) > 0.05 * (lengths[-1] - lengths[-2]), taken


def _valid_counts(sampler: Sampler, n: int) -> dict[bool, int]:
    valid = {}
    for grammar in (False, True):
        texts = sampler.generate_batch(n, SampleOptions(seed=0, max_chars=1500, grammar=grammar))
        valid[grammar] = sum(check_tune("X:" + t).valid for t in texts)
    return valid


def test_grammar_sampling_gives_valid_tunes(shipped: Sampler, tiny_checkpoint: Path) -> None:
    """30 tunes at temperature 1.0, seed 0. The shipped model (trained with transposition) gives
    27 valid without the grammar and 30 with it; a weak model trained for 250 steps gives 8 and
    30: the grammar matters most where the model is least sure."""
    n = 30
    assert _valid_counts(shipped, n)[True] >= 0.9 * n
    ckpt = load_checkpoint(tiny_checkpoint)
    valid = _valid_counts(Sampler(ckpt.build_model(), ckpt.vocab), n)
    assert valid[True] >= 0.9 * n
    assert valid[True] - valid[False] >= 0.3 * n, valid


# --- music: metre, form, tonic, keys (core/music_analysis.py's definitions) -----------------------


def allowed(g: AbcGrammar, text: str, chars: str) -> set[str]:
    """Which of `chars` may come after `text` (which the grammar follows: no free state)."""
    state = g.start(text)
    assert not g.is_free(state), text
    return {c for c in chars if g.allows(state, c)}


def part(bars: list[str], close: str = ":|") -> str:
    return "|".join(bars) + close + "!\n"


PART_A = part([BAR] * 8)
CADENCE = "GAB g3"  # a last bar ending on the tonic, held
PART_B = part([BAR] * 7 + [CADENCE])


def test_a_bar_line_comes_only_when_the_bar_is_full(music: AbcGrammar) -> None:
    assert allowed(music, HEADER + BAR + "|GAB", "|:") == set()  # 3/8 of the second bar
    assert "|" in allowed(music, HEADER + BAR + "|" + BAR, "|")
    # The first bar of a part is a pickup of any length (so after "|:GAB" a bar line may come).
    assert allowed(music, HEADER + "GAB", "|") == {"|"}
    assert allowed(music, HEADER + "|:GAB", "|") == {"|"}


def test_no_length_tuplet_or_broken_rhythm_overflows_the_bar(music: AbcGrammar) -> None:
    after_d = HEADER + BAR + "|GAB cd"  # d starts at 4/8: its length is next
    assert allowed(music, after_d, "234/") == {"2", "3", "/"}  # d2, d3/2, d/: not d3 or d4
    assert allowed(music, after_d, ">") == {">"}  # d> e/ ends the bar exactly
    assert allowed(music, after_d + "e", ">(A") == set()  # the bar is full
    assert allowed(music, HEADER + BAR + "|GAB c", "(") == {"("}  # (3 of quavers: 2/8
    assert allowed(music, HEADER + BAR + "|GAB c(", "3") == {"3"}


def test_a_tuplets_notes_are_alike_and_last_as_abc2midi_plays_them(music: AbcGrammar) -> None:
    """abc2midi warns of a tuplet of unequal notes ("(3de2 f", which the model wrote) and plays
    `(5` in 3/4 as five notes in the time of three (ABC 2.1 would say two): the corpus writes
    a tuplet's notes alike, and the grammar keeps time as abc2midi plays it."""
    assert check_tune(HEADER + "(3de2f3 g|\n").warnings  # the warning the rule avoids
    assert allowed(music, HEADER + "(3A2B", "2/3 ") == {"2"}  # as long as the first
    assert allowed(music, HEADER + "(3AB", "2/ c") == {" ", "c"}
    assert allowed(music, HEADER + "(3A>B", "c") == {"c"}  # broken rhythm: written alike
    waltz = "X:1\nT:t\nM:3/4\nL:1/8\nK:G\nG6|"  # a full first bar: no pickup
    assert allowed(music, waltz + "(5ABcde (5ABcd", "e") == {"e"}
    assert allowed(music, waltz + "(5ABcde (5ABcde", "|") == {"|"}  # three quavers each
    assert check_tune(waltz + "(5ABcde (5ABcde|G6|\n").clean


def test_the_header_gives_one_metre_before_the_key(music: AbcGrammar) -> None:
    assert allowed(music, "X:1\nT:t\n", "KM") == {"M"}
    assert allowed(music, "X:1\nT:t\nM:6/8\n", "KML") == {"K", "L"}
    assert not music.allows(music.start("X:1\nT:t\nL:1/4\nM:3/1"), "6")  # 3/16 of a 1/4 unit


def test_a_part_closes_after_eight_bars_with_a_repeat(music: AbcGrammar) -> None:
    assert allowed(music, HEADER + "|".join([BAR] * 4), "|:") == {"|"}  # plain only
    # The eighth bar must close the part; the first two parts close with :|, not || |] |:.
    assert allowed(music, HEADER + "|".join([BAR] * 8), "|:") == {":"}
    assert allowed(music, HEADER + PART_A + "|".join([BAR] * 7 + [CADENCE]), "|:") == {":"}


def test_the_last_bar_of_a_part_completes_its_pickup(music: AbcGrammar) -> None:
    """abc2midi plays a repeat's pickup again after the :| (it warns "Bar 0 has 1 time units
    ... in repeat" where the bar before is full), so a part with a pickup closes on the bar that
    its pickup completes, never on a full one; a part without one closes on a full bar."""
    tune = HEADER + "D|" + "|".join([BAR] * 7) + "|GAB c"  # a pickup of 1/8
    assert allowed(music, tune, ":") == set()  # 4/8
    assert allowed(music, tune + "d", ":e") == {":"}  # 5/8, which the pickup completes: no more
    assert allowed(music, tune + "d", "2/") == {"/"}  # d2 would fill the bar; d/ goes on
    assert allowed(music, HEADER + "|".join([BAR] * 7) + "|GAB c", "d") == {"d"}
    assert allowed(music, HEADER + "|".join([BAR] * 7) + "|GAB cd", ":e") == {"e"}


def test_the_next_part_starts_with_what_completes_the_last_bar(music: AbcGrammar) -> None:
    """abc2midi counts a short bar before :| || |: :: together with the next part's first bar,
    and checks a part's first bar after a full one: the next part's first bar is what completes
    a short closing bar, and full after a full one."""
    closed_short = HEADER + "D|" + "|".join([BAR] * 7) + "|GAB cd:|"  # 5/8: a pickup of 1/8
    assert allowed(music, closed_short + "A", "|B") == {"|"}  # 1/8, and only that
    assert allowed(music, closed_short + "A", "2") == set()
    assert allowed(music, closed_short + "\n|", "A:") == {":"}  # |: but no plain | between
    closed_full = HEADER + PART_A  # no pickup: the next part's first bar is a full bar
    assert allowed(music, closed_full + "GAB", "|") == set()
    assert allowed(music, closed_full + BAR, "|") == {"|"}


def test_a_second_ending_closes_without_a_repeat(music: AbcGrammar) -> None:
    """After a second ending's :| abc2midi plays the part a third time: it closes with || |]
    or |: (as the first ending's :| the pickup completes)."""
    first = HEADER + "D|" + "|".join([BAR] * 6) + "|1 " + BAR + "|GAB c"
    assert allowed(music, first + "d", ":|") == {":"}
    second = first + "d:|2 " + BAR + "|GAB cd"
    assert allowed(music, second, ":|") == {"|"}
    assert allowed(music, second + "|", "|]:") == {":"}  # the next part must repeat (see below)
    later = HEADER + PART_A + "|:" + "|".join([BAR] * 6) + "|1 " + BAR + "|" + BAR + ":|2 " + BAR
    assert allowed(music, later + "|" + CADENCE + "|", "|]:") == {"|", "]", ":"}


def test_after_endings_a_repeat_needs_its_own_start(music: AbcGrammar) -> None:
    """Once a tune has had endings, abc2midi neither adds the |: a later :| lacks nor ends its
    passes: it plays from the tune's start again. So a part that must repeat after endings
    opens with |:, and one that a prompt left without closes with || (counted as repeated)."""
    endings = "|".join([BAR] * 6) + "|1 " + BAR + "|" + BAR + ":|2 " + BAR + "|" + BAR
    assert allowed(music, HEADER + endings + "|", "|]:") == {":"}
    second = "|".join([BAR] * 7 + [CADENCE])
    assert allowed(music, HEADER + endings + "|:" + second, ":|") == {":"}
    assert allowed(music, HEADER + endings + "||\n" + second, ":|") == {"|"}
    assert allowed(music, HEADER + endings + "||\n" + second + "|", "|]") == {"|", "]"}


def test_a_part_starts_with_no_bar_line_but_a_repeat(music: AbcGrammar) -> None:
    """abc2midi checks at once the bar a | or || at a part's start closes: what a short close
    left, and on the repeat what its :| left (\"Bar 0 has 3 time units ... in repeat\")."""
    assert allowed(music, HEADER, "|:") == {"|"}
    assert allowed(music, HEADER + "|", "|]:A") == {":"}  # not || |], nor | and a note
    assert allowed(music, HEADER + PART_A + "|", "|]:A") == {":"}


def test_a_prompts_bare_bar_line_as_a_part_starts_is_read_as_abc2midi_plays_it(
    music: AbcGrammar,
) -> None:
    """The grammar never writes a | as a part starts, but people's prompts do: the stream stays
    in the grammar (spaces after it and a || too), as a part with no pickup. abc2midi reads the
    | as closing an empty bar, and checks the bar it closes when a :| comes back to it, so the
    first bar and the last are full ones."""
    for start in ("|", "| ", "||", "|| ", "| | "):
        assert allowed(music, HEADER + start + "GAB", "c") == {"c"}
        assert allowed(music, HEADER + start + "GAB c", "|:") == set()  # no pickup here
        assert allowed(music, HEADER + start + BAR, "|") == {"|"}
    for start in ("||:", "| |:"):  # the repeat it opens, its pickup a free one
        assert allowed(music, HEADER + start + "GAB c", "|") == {"|"}
    assert allowed(music, HEADER + PART_A + "|\nGAB", "c") == {"c"}  # a line of a lone |
    last = HEADER + "|" + "|".join([BAR] * 7) + "|GAB c"
    assert allowed(music, last, ":") == set()  # the last bar, no shorter than the first
    assert allowed(music, last + "de", ":") == {":"}
    assert allowed(music, HEADER + PART_A + "|" + BAR, "|") == {"|"}  # the next part's too


def test_a_new_metre_comes_only_as_a_part_starts(music: AbcGrammar) -> None:
    """A part's pickup and the last bar that completes it are measured in one metre, and so is
    a short close and the next part's first bar that completes it."""
    assert allowed(music, HEADER + BAR + "|\n", "MLK") == {"K"}
    assert allowed(music, HEADER + PART_A, "MLK") == {"M", "L", "K"}
    closed_short = HEADER + "D|" + "|".join([BAR] * 7) + "|GAB cd:|\n"
    assert allowed(music, closed_short, "MLK") == {"K"}


def test_the_tune_ends_after_two_parts_on_the_tonic(music: AbcGrammar) -> None:
    assert allowed(music, HEADER + PART_A, "\n") == set()  # one part
    assert allowed(music, HEADER + PART_A + PART_B, "\n") == {"\n"}
    # The second part's last note, which ends the bar, is the tonic G, held a unit or more …
    last_bar = HEADER + PART_A + "|".join([BAR] * 7) + "|GAB c"
    assert allowed(music, last_bar, "deg") == {"d", "e", "g"}  # each may still go on
    assert allowed(music, last_bar + "d", "eg") == {"g"}  # this one ends the bar
    assert allowed(music, last_bar + "dg", "/") == set()  # not a half unit
    # … and a prompt that closes it elsewhere (prompts pass the form rules) cannot end there.
    assert allowed(music, HEADER + PART_A + part([BAR] * 8), "\n") == set()


def test_a_tune_holds_at_most_four_parts(music: AbcGrammar) -> None:
    three = HEADER + PART_A + PART_B + part([BAR] * 7 + [CADENCE], "|]")
    assert allowed(music, three, "\nGz|") == {"\n", "G", "z", "|"}
    four = three + part([BAR] * 7 + [CADENCE], "|]")
    assert allowed(music, four, "\nGz|") == {"\n"}


def test_a_tune_ends_after_the_parts_it_drew(music: AbcGrammar) -> None:
    """Each stream draws its tune's number of parts as the corpus has them; its end comes then."""
    two, three = HEADER + PART_A + PART_B, HEADER + PART_A + PART_B + PART_B
    assert allowed_in(music, music.start(two, parts=2), "\nGz|") == {"\n"}  # no third part
    assert allowed_in(music, music.start(two, parts=3), "\nGz|") == {"\n", "G", "z", "|"}
    assert allowed_in(music, music.start(three, parts=3), "\nGz|") == {"\n"}
    draws = Counter(draw_parts(np.random.default_rng(seed)) for seed in range(2000))
    assert set(draws) == set(PARTS_PRIOR)
    share = {k: v / sum(PARTS_PRIOR.values()) for k, v in PARTS_PRIOR.items()}
    assert all(abs(draws[k] / 2000 - share[k]) < 0.03 for k in PARTS_PRIOR), draws


def test_a_streams_parts_are_drawn_as_numpys_choice_draws_them() -> None:
    """draw_parts takes rng.choice's draw without its checks (a tune's start cost ~60 us less):
    the same number of parts for every seed, and the generator left as choice leaves it, so
    that a seed keeps its tune."""
    counts = np.array(list(PARTS_PRIOR.values()), dtype=np.float64)
    for seed in range(3000):
        ours, numpys = np.random.default_rng([seed, 1]), np.random.default_rng([seed, 1])
        chosen = int(numpys.choice(list(PARTS_PRIOR), p=counts / counts.sum()))
        assert draw_parts(ours) == chosen, seed
        assert ours.random() == numpys.random(), seed


def allowed_in(g: AbcGrammar, state: GrammarState, chars: str) -> set[str]:
    return {c for c in chars if g.allows(state, c)}


def test_spaces_and_line_starts_as_the_corpus_writes_them(
    vocab: Vocabulary, music: AbcGrammar, grammar: AbcGrammar
) -> None:
    for g, expected in ((music, set()), (grammar, {" "})):
        assert allowed(g, HEADER + "GAB ", " ") == expected  # no double space
        assert allowed(g, HEADER + BAR + "|\n", " ") == expected  # no line starting with one
    # "B :|" at a line's start reads as a field to abc2midi (as "g:|" to the analyser too)
    last_bar = HEADER + "D|" + "|".join([BAR] * 7) + "|GAB c\nd"  # d ends the part's last bar
    assert allowed(music, last_bar, ": ") == {" "}
    assert allowed(music, last_bar + " ", ":\n") == {"\n"}
    assert allowed(music, last_bar + " \n", ":") == {":"}
    tonic_only = AbcGrammar(vocab, metre=False, form=False)  # bar lines anywhere
    assert allowed(tonic_only, HEADER + BAR + "|\ng2", ":") == {":"}
    assert allowed(tonic_only, HEADER + BAR + "|\ng", ":") == set()  # "g:|" reads as a field


def test_keys_limit_what_k_names(vocab: Vocabulary) -> None:
    g = AbcGrammar(vocab, keys={"G major", "A Dorian"})
    assert allowed(g, "X:1\nT:t\nM:6/8\nK:", "ADEG") == {"A", "G"}
    assert allowed(g, "X:1\nT:t\nM:6/8\nK:A", "\n ") == {" "}  # A major is not among them
    assert allowed(g, "X:1\nT:t\nM:6/8\nK:A ", "DMm") == {"D"}
    assert allowed(g, "X:1\nT:t\nM:6/8\nK:G", "\n ") == {"\n", " "}
    with pytest.raises(ValueError):
        AbcGrammar(vocab, keys={"H minor"})


def test_values_a_vocabulary_cannot_write_out_are_not_begun(vocab: Vocabulary) -> None:
    """A corpus without an "i" writes no "dim" chord and no "Aeolian" key: begun, such a value
    had no way on, and the stream left the grammar there (a user's corpus gave abc2midi
    "Bdi" and "K:F Aeol"). Values it can write are as before."""
    no_i = Vocabulary.from_text("".join(c for c in vocab.chars if c != "i"))
    g = AbcGrammar(no_i, metre=False, form=False, tonic=False)
    head = "X:1\nT:t\nM:6/8\nK:G\n"
    assert allowed(g, head + '"B', "dm7#") == {"m", "7", "#"}  # not "d" (dim, dim7)
    assert allowed(g, head + '"Bm', '7"') == {"7", '"'}
    assert allowed(g, "X:1\nT:t\nM:6/8\nK:F ", "ADLMP") == {"M"}  # Major: the only mode
    full = AbcGrammar(vocab, metre=False, form=False, tonic=False)
    assert allowed(full, head + '"B', "dm7#") == set("dm7#")
    assert allowed(full, "X:1\nT:t\nM:6/8\nK:F ", "ADLMP") == set("ADLMP")


def test_a_title_may_hold_the_accented_letters_its_corpus_writes(vocab: Vocabulary) -> None:
    accented = Vocabulary.from_text("".join(vocab.chars) + "éí«")
    g = AbcGrammar(accented, metre=False, form=False, tonic=False)
    assert allowed(g, "X:1\nT:Caf", "é«e") == {"é", "e"}  # a letter, not any character
    assert allowed(g, "X:1\nT:R", "í") == {"í"}


def test_music_walks_never_stall_and_end_right(vocab: Vocabulary) -> None:
    """Random walks that favour notes and bar lines: every mask allows something, no gate shuts
    a state's last character (the gated mask is never the fallback), no allowed character
    leads out of the grammar, spaces never run on, and every tune that ends is right by the
    analyser's measures, whatever was drawn: bars, tonic, 2 to 4 parts of 8 bars."""
    g = AbcGrammar(vocab)
    rng = np.random.default_rng(1)
    favour = np.array([5.0 if c in "ABCDEFGabcdefg|:2/\n" else 1.0 for c in g.chars])
    tunes = []
    for _ in range(12):
        state, text, spaces, section = g.start("X:"), "X:", 0, "H"
        for _ in range(700):
            mask = g.mask(state)
            assert mask.any() and g.gate_fallbacks == 0
            p = favour * mask
            ch = g.chars[int(rng.choice(len(p), p=p / p.sum()))]
            g.advance(state, ch)
            text += ch
            assert not g.is_free(state)
            was, section = section, g._keys[state.sid].sec
            if was == "B" and section == "S":  # the blank line that ends a tune
                tunes.append(text)
                text = ""
            spaces = spaces + 1 if ch in " \n" and section == "B" else 0
            assert spaces <= 2
    assert len(tunes) >= 3
    for tune in tunes:
        check = check_tune(tune)  # and no bar is short or long as abc2midi plays repeats
        assert check.valid and not check.bar_warnings, (tune, check.bar_warnings)
        a = analyse_tune(tune)
        assert a.all_right and a.ends_on_tonic and not a.meter_mismatch, tune
        assert 2 <= a.parts <= 4 and set(a.bars_per_part) == {8}, tune


def test_sampled_tunes_are_musically_right(keyed: Sampler) -> None:
    """30 tunes at temperature 1.0: every one complete and abc2midi-clean with no warning (a
    pickup played again after a full bar at a repeat is one), bars right, ending on the tonic
    after two to four parts of 8 bars (the first two repeated), in the corpus's keys; as many
    parts as each stream drew (mostly two: AABB)."""
    opts = SampleOptions(seed=1000, max_chars=1500, grammar=True)
    tunes = [DEFAULT_PROMPT + t for t in keyed.generate_batch(30, opts)]
    assert all(t.endswith("\n\n") for t in tunes)
    analyses = [analyse_tune(t) for t in tunes]
    s = summarize(analyses, corpus_keys(load_corpus().tunes))
    assert s.bars_right_pct == 100 and s.all_right_pct == 100 and s.meter_mismatch_pct == 0
    assert s.tonic_ending_pct == 100 and s.one_part_pct == 0 and s.unknown_key_pct == 0
    for a in analyses:
        assert 2 <= a.parts <= 4 and set(a.bars_per_part) == {8} and a.form.startswith("AABB")
    checks = [check_tune(t) for t in tunes]
    assert all(c.clean for c in checks), [
        (t, c.warnings) for t, c in zip(tunes, checks, strict=True) if not c.clean
    ]


def test_tunes_sampled_after_a_bare_bar_line_play_without_a_warning(keyed: Sampler) -> None:
    """A prompt that starts its part with a | (no pickup, as abc2midi plays it) and one with a
    pickup after |: : tunes with no abc2midi warning. (With the | left to the free state, 6 of
    48 such tunes were; the first bar then read as a pickup that the repeat found short.)"""
    header = "X:1\nT:Prompt\nM:6/8\nL:1/8\nK:G\n"
    for prompt in (header + "|GAB c", header + "| GAB", header + "|:GA|B2d g2e|"):
        tunes = keyed.generate_batch(6, SampleOptions(seed=5, grammar=True, prompt=prompt))
        checks = [check_tune(prompt + t) for t in tunes]
        assert all(c.clean for c in checks), [
            (prompt + t, c.warnings) for t, c in zip(tunes, checks, strict=True) if not c.clean
        ]


def test_remembered_gated_masks_are_what_the_gates_give(shipped: Sampler) -> None:
    """A gated state's mask is remembered by only the counts its gates (and the effects before
    them) read, or taken as all shut mid-bar, when every pickup test fails, or mid-part, when
    every close's part-length test does: every such mask, met again by other tunes at other
    counts, equals the gates judged afresh for the stream at hand (issue 14). The corpus's own
    tunes, and two sampled ones, bring the second endings that sampled tunes seldom have."""
    tunes = shipped.generate_batch(12, SampleOptions(seed=5, grammar=True))
    tunes += [shipped.generate(SampleOptions(seed=seed, grammar=True)) for seed in (546, 691)]
    endings = [t.lstrip("\n") + "\n\n" for t in load_corpus().tunes if "|2" in t][:40]
    g = AbcGrammar(shipped.vocab)
    gated = hits = mid_part = 0
    for tune in [*tunes, *endings]:
        state = g.start(DEFAULT_PROMPT if tune in tunes else "")
        for ch in tune:
            known = len(g._by_counts)
            mask = g.mask(state)
            if g._gates[state.sid] is not None:
                gated += 1
                hits += len(g._by_counts) == known
                _, _, picks, parts, _ = g._reads[state.sid]
                picked = not picks or (state.pick or 0) in picks
                if picked and parts and state.bars not in parts:  # shut without judging
                    mid_part += 1
                    assert len(g._by_counts) == known, (tune, ch)
                assert np.array_equal(mask, g._judge_gates(state)[0]), (tune, ch)
            g.advance(state, ch)
    assert gated > 500 and hits > 50 and mid_part > 100, (gated, hits, mid_part)


def test_one_streams_mask_says_what_the_mask_does(shipped: Sampler) -> None:
    """mask_one, what one stream's draw reads (made once per mask and shared), agrees with the
    mask at every step of sampled tunes: the same row, a float row that adds -inf exactly where
    the mask forbids, and the one allowed character where there is one (and only there)."""
    tunes = shipped.generate_batch(8, SampleOptions(seed=11, grammar=True))
    g = AbcGrammar(shipped.vocab)
    forced = 0
    for tune in tunes:
        state = g.start(DEFAULT_PROMPT)
        for ch in tune:
            mask, row, neg, only, keep = g.mask_one(state)
            assert np.array_equal(mask, g.mask(state)) and np.array_equal(row, mask[None])
            assert neg.dtype == np.float64 and np.array_equal(np.isinf(neg[0]), ~mask)
            assert np.all(neg[0][mask] == 0.0)
            assert keep.dtype == np.float64 and np.array_equal(keep, mask[None].astype(float))
            allowed = np.flatnonzero(mask)
            assert only == (int(allowed[0]) if len(allowed) == 1 else -1), (tune, ch)
            forced += only >= 0
            g.advance(state, ch)
    assert forced > 100, forced


def test_a_header_without_a_metre_gets_the_bars_abc2midi_counts(shipped: Sampler) -> None:
    """A prompt whose header reaches K: with no M: (a person's; the app's Key picker wrote
    one): abc2midi then counts bars of 4/4, and the model and the grammar read it with M:4/4
    (the tune keeps the prompt as written). Before, the grammar kept no metre there, and every
    such tune had bars abc2midi found short or long."""
    for prompt in ("X:1\nL:1/8\nK:A Dorian\n", "X:1\nT:My tune\nK:D\n", "K:G\n"):
        for tune in shipped.generate_batch(4, SampleOptions(seed=1, prompt=prompt, grammar=True)):
            check = check_tune(prompt + tune)
            others = [str(w) for w in check.warnings if "No M:" not in str(w)]
            assert check.valid and others == [], (prompt + tune, others)
            assert "No M:" in str(check.warnings[0])  # the one warning: the header's, as it is


def test_an_empty_bar_line_only_starts_a_line(music: AbcGrammar) -> None:
    """With bars counted (the metre rule), a plain | after an empty bar is a no-op that starts
    a line ("...|" then "|..."), never one mid-line: a model of other tunes wrote "| | | ..."
    by the hundred, which abc2midi rejected ("Too many notes in chord")."""
    prompt = "X:1\nT:A\nM:4/4\nL:1/8\nK:G\n"
    assert music.accepts("GABc dBAG|\n|GABc dBAG|", prompt)
    text = "GABc dBAG| |"
    assert music.first_rejection(text, prompt) == len(text) - 1


def test_the_model_reads_a_header_without_m_as_abc2midi_does(shipped: Sampler) -> None:
    """model_prompt gives each tune's header that ends without M: abc2midi's M:4/4, before its
    first L: or K:, and no other (an M: after an L: is the header's); values lose the spaces
    around them, and a K: value its settings after the key (clef=, a clef's name)."""
    read = shipped.model_prompt
    assert read("X:1\nL:1/8\nM:6/8\nK:G\n") == "X:1\nL:1/8\nM:6/8\nK:G\n"
    assert read("X:1\nT:a\nL:1/8\nK:D\n") == "X:1\nT:a\nM:4/4\nL:1/8\nK:D\n"
    assert read("X:1\nM: 3/4 \nK:D\n") == "X:1\nM:3/4\nK:D\n"
    assert read("K:G\n") == "X:1\nM:4/4\nK:G\n"  # begun without X: (no bars were kept)
    assert read("X:1\nM:C\nK:G clef=bass\n") == "X:1\nM:C\nK:G\n"
    assert read("X:1\nM:C\nK:A Dor bass middle=d\nAB") == "X:1\nM:C\nK:A Dor\nAB"
    two = "X:1\nK:G\nAB|\nK:D\nM:3/4\n\nX:2\nK:E\n"  # body K: and M: are not the header's
    assert read(two) == "X:1\nM:4/4\nK:G\nAB|\nK:D\nM:3/4\n\nX:2\nM:4/4\nK:E\n"
    assert read("X:1\nL:1/8\n") == "X:1\nL:1/8\n" and read("X:") == "X:"  # no header's end


def test_a_prompt_the_grammar_cannot_follow_is_refused_by_name() -> None:
    """A K: line the grammar does not read as the header's end (a key the model's corpus lacks,
    a key with more on its line) left the stream in the header: the model then wrote header
    lines in the body, which abc2midi rejects, in another key. A last line the grammar cannot
    follow (a bar longer than its metre) left the model unchecked to the line's end: bars off, a
    tie to another note. Refused, saying why and where, for the prompt's tunes (a first one
    lost, the grammar was lost in the next); a long bar in an earlier line (the grammar takes
    up the next), and the keys it does read, in
    any spelling and with spaces about them, or with settings after them (`clef=bass`: the
    model and the grammar read the key alone, the tune keeps them), and no grammar at all,
    sample as before. (The
    shipped model as the CLI and the app load it: held to its corpus's keys.)"""
    from core.generation import load_generator

    path = shipped_model_path()
    assert path is not None
    shipped = load_generator(path).sampler
    for prompt, why in (
        ("X:1\nT:Reel\nK:Bb\n", "K:Bb is not a key the grammar can write for this model; its"),
        ("X:1\nK:G minor please\n", "reads a key alone on the K: line .K:G minor, say."),
        ("X:1\nK:Bb clef=bass\n", "K:Bb is not a key"),  # the key, whatever its settings
        ("X:1\nM:6/8\nL:1/8\nK:D\nABcd efga|", "from column 8 .'g' in 'ABcd efga\\|'.: a bar"),
        ("X:1\nM:6/8\nL:1/8\nK:D\n|ABc def ga|", "from column 10 .'g' in '\\|ABc def ga"),  # bare |
        ("X:1\nM:6/8\nK:G clef=bass", "ends in its K: line .'K:G clef=bass'. before the grammar"),
        ("X:1\nK:D =c\n", "reads a key alone on the K: line .K:D, say."),  # =c: no setting
        ("X:1\nM:6/8\nK:G\nGAB|\n\nX:2\nM:C\nK:Bb\n", "K:Bb is not a key"),
        ("X:1\nM:6/8\nK:Bb\nGAB|\n\nX:2\nM:C\nK:D\n", "K:Bb is not a key"),  # tune 2 lost too
    ):
        with pytest.raises(ValueError, match=why):
            shipped.generate(SampleOptions(seed=1, prompt=prompt, grammar=True))
        assert shipped.generate(SampleOptions(seed=1, prompt=prompt, max_chars=50))  # no grammar
    # Left for the form rules alone (an ending where the grammar puts none), as it was.
    ending = "X:1\nT:T\nM:6/8\nL:1/8\nK:D Major\n|:d2dc d2:|!\n[2 ("
    assert shipped.grammar.left_at(ending) is not None and shipped.prompt_problem(ending) is None
    for prompt in (
        "X:1\nM:6/8\nK:Ador\n", "X:1\nT:a\nM:C\nK:D Major \n|:A", "X:1\nM: 3/4\nK:D\n", "X:",
        "X:1\nM:6/8\nK:G\nGAB|\n\nX:2\nM:C\nK:D\n", "X:1\nM:6/8\nK:G clef=bass\n",
        "X:1\nM:C\nK:Ador bass transpose=-12\n", "X:1\nM:6/8\nL:1/8\nK:D\nABcd efga|\nABc def|",
    ):  # fmt: skip
        tune = prompt + shipped.generate(SampleOptions(seed=1, prompt=prompt, grammar=True))
        check = check_tune(tune[tune.rfind("X:"):])
        bars_of_the_prompt = [w for w in check.warnings if "Bar 0 has 8" in str(w)]
        assert check.valid and check.warnings == bars_of_the_prompt, (tune, check.warnings)


def test_a_prompt_into_a_later_part_gets_the_parts_it_has_begun(shipped: Sampler) -> None:
    """A stream draws how many parts its tune has (2 mostly): a prompt already in its third
    part left the grammar for a stream of 2, and abc2midi rejected the tune (a bar short, a
    missing :|). It gets the parts the prompt has begun."""
    from core.sample import stream_parts

    part_a = "GAB cBA|dBA G3|GAB cBA|dBA G3|GAB cBA|dBA G3|GAB cBA|dBA G3:|\n"
    part_b = "|:dBd gdB|cAF G3|dBd gdB|cAF G3|dBd gdB|cAF G3|dBd gdB|cAF G3:|\n"
    prompt = "X:1\nT:T\nM:6/8\nL:1/8\nK:G Major\n|:" + part_a + part_b + "|:GAB cBA|"
    assert shipped.grammar.is_free(shipped.grammar.start(prompt, 2))
    seed = next(s for s in range(50) if stream_parts(s) == 2)
    tune = prompt + shipped.generate(SampleOptions(seed=seed, prompt=prompt, grammar=True))
    check = check_tune(tune)
    assert check.valid and check.clean, (tune, check.warnings)


def test_the_keys_a_refusal_lists_are_keys_the_grammar_writes() -> None:
    """A corpus's K: values may name no key the grammar writes ("HP", "C ^f^c^a"): the refusal
    listed them beside the ones it does, and refused them in turn."""
    path = shipped_model_path()
    assert path is not None
    ckpt = load_checkpoint(path)
    spellings = {"G major": "G Major", "D major": "D Major", "HP": "HP", "C ^f^c^a": "C ^f^c^a"}
    sampler = Sampler(ckpt.build_model(), ckpt.vocab, "fp32", key_spellings=spellings)
    why = sampler.prompt_problem("X:1\nM:C\nK:Bb\n")
    assert why is not None and why.endswith("its corpus's keys: D major, G major"), why


def test_a_masked_draw_never_takes_a_forbidden_character_whatever_its_logit(
    shipped: Sampler,
) -> None:
    """One stream's draw (the grammar's float row of -inf) takes what the bool mask takes,
    even where a forbidden character's logit is NaN or +inf (a damaged model): the mask's
    values replace the logits there, they are not added to them. Logits that come masked from
    the step (NaN there) draw the same: greedy, sampled, hot, with top-k of 1 to 5 (which ranks
    NaNs last and once kept nothing of such a row), with and without the copy model's mix."""
    g = shipped.grammar
    mask, row, forbid, _, keep = g.mask_one(g.start(DEFAULT_PROMPT + "1\nT:A\nM:6/8\nL:1/8\nK:G Major\n"))
    assert 1 < row.sum() < row.size
    banned = np.flatnonzero(~mask)
    rng = np.random.default_rng(3)
    for trial in range(360):
        logits = rng.normal(size=(1, len(mask))).astype(np.float32)
        logits[0, banned[trial % len(banned)]] = (np.nan, np.inf)[trial % 2]
        opts = SampleOptions(
            temperature=(1.0, 0.0, 0.7)[(trial // 8) % 3], top_k=(0, 5, 1, 2)[(trial // 2) % 4]
        )
        p_copy = rng.dirichlet(np.ones(len(mask)))[None]
        copy = (np.array([0.4]), p_copy) if (trial // 24) % 2 else None
        a = shipped._draw(logits, opts, [np.random.default_rng(trial)], row, copy,
                          never_empty=True)  # fmt: skip
        b = shipped._draw(logits, opts, [np.random.default_rng(trial)], row, copy,
                          forbid=forbid, keep=keep, never_empty=True)  # fmt: skip
        assert a.tolist() == b.tolist() and mask[b[0]], (trial, a, b)
        # Logits that come masked from the step (-inf added: NaN where a logit was NaN or inf),
        # and the copy's distribution masked by the cache.
        with np.errstate(invalid="ignore"):
            added = logits + forbid.astype(np.float32)
        masked_copy = None if copy is None else (copy[0], copy[1] * row)
        c = shipped._draw(added, opts, [np.random.default_rng(trial)], None, masked_copy,
                          masked=(row, forbid))  # fmt: skip
        assert c.tolist() == a.tolist(), (trial, opts, a, c)


def test_one_streams_logits_come_masked_from_the_step(
    shipped: Sampler, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One stream's step adds the output layer's bias with the grammar's mask in it
    (Sampler._masked_bias), so that its draw need not mask the logits (issue 14): the tunes are
    those of masking them in the draw, character for character, at temperature 1, 0, hot, with
    top-k and without the copy model, and for a batch's stream left last; most draws take
    their logits masked so. The same tunes with one stream's draw in C (where the kernels are
    built), which masks the logits it is given as numpy's draw of masked logits does."""
    cases = [
        SampleOptions(seed=31, grammar=True),
        SampleOptions(seed=32, grammar=True, temperature=0.0),
        SampleOptions(seed=33, grammar=True, temperature=1.4),
        SampleOptions(seed=34, grammar=True, top_k=5),
        SampleOptions(seed=35, grammar=True, copy=0),
    ]
    batch = SampleOptions(seed=23, grammar=True, max_chars=700)
    in_c = [shipped.generate(opts) for opts in cases], shipped.generate_batch(3, batch)
    monkeypatch.setattr(Sampler, "_native_draw", lambda *args: None)  # numpy's draws, counted
    premasked = []
    draw = Sampler._draw

    def counted(self: Sampler, *args: Any, **kwargs: Any) -> np.ndarray:
        premasked.append(kwargs.get("masked") is not None)
        return draw(self, *args, **kwargs)

    monkeypatch.setattr(Sampler, "_draw", counted)
    quick = [shipped.generate(opts) for opts in cases], shipped.generate_batch(3, batch)
    assert sum(premasked) > 0.8 * len(premasked), (sum(premasked), len(premasked))
    monkeypatch.setattr(Sampler, "_masked_bias", lambda self, forbid: None)
    premasked.clear()
    slow = [shipped.generate(opts) for opts in cases], shipped.generate_batch(3, batch)
    assert not any(premasked)
    assert slow == quick == in_c


class _Stepwise(AbcGrammar):
    """The grammar without its build shortcuts: every character of a row stepped in full, and
    what follows a note computed afresh each time."""

    def _after_note_entry(self, key: Any, ch: str) -> Any:
        events, gates = self._events, self._gates_now
        self._events, self._gates_now = [], []
        target = self._neutral(key, ch, "note")
        step = (target, tuple(self._events), tuple(self._gates_now))
        self._events, self._gates_now = events, gates
        return step

    def row(self, key: Any) -> list[tuple[Any, tuple[Any, ...], tuple[Any, ...]]]:
        out = []
        for ch in self.chars:
            self._timed.clear()
            self._events, self._gates_now = [], []
            target = self._step(key, ch)
            done = target is not None
            out.append(
                (
                    target,
                    tuple(self._events) if done else (),
                    tuple(self._gates_now) if done else (),
                )
            )
        return out


def test_rows_built_with_shared_steps_are_the_rows_stepped_in_full(vocab: Vocabulary) -> None:
    """A state's row skips characters no body state takes and takes what follows a note from
    the steps of other notes that end at the same time (issue 14): every row that walks visit,
    all note states among them, equals its characters stepped one by one without either."""
    g, full = AbcGrammar(vocab), _Stepwise(vocab)
    rng = np.random.default_rng(3)
    favour = np.array([5.0 if c in "ABCDEFGabcdefg|:2/\n" else 1.0 for c in g.chars])
    seen: set[int] = set()
    for _ in range(6):
        state = g.start("X:")
        for _ in range(500):
            p = favour * g.mask(state)
            seen.add(state.sid)
            g.advance(state, g.chars[int(rng.choice(len(p), p=p / p.sum()))])
    kinds = Counter(g._keys[sid].lex[0] for sid in seen)
    assert kinds["P"] > 100 and kinds["L"] > 50 and kinds["N"] > 20, kinds
    for sid in seen:
        key, fx, gates = g._keys[sid], g._fx[sid] or {}, dict(g._gates[sid] or ())
        built = [
            (None if n == UNBUILT else g._keys[n], fx.get(i, ()), gates.get(i, ()))
            for i, n in enumerate(g._next[sid] or ())
        ]
        assert built == full.row(key), key
