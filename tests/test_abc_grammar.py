"""Grammar-aware sampling (core/abc_grammar.py) against the real abc2midi: the grammar's rules
agree with abc2midi, it accepts the corpus tunes abc2midi accepts, its masks never empty, and
sampling with it is reproducible and gives valid tunes far more often than without it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.abc import check_tune
from core.abc_grammar import AbcGrammar
from core.checkpoint import load_checkpoint
from core.corpus import Vocabulary, load_corpus
from core.paths import shipped_model_path
from core.sample import SampleOptions, Sampler

HEADER = "X:1\nT:Test\nM:6/8\nL:1/8\nK:G Major\n"


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return load_corpus().vocab


@pytest.fixture(scope="module")
def grammar(vocab: Vocabulary) -> AbcGrammar:
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
    ("A>B c>d|", True),
    ("A>B2 c|", False),  # broken rhythm between notes of unequal length
    ("A>B>c d|", False),  # chained
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
    g = AbcGrammar(vocab, **features)
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
    assert not AbcGrammar(vocab).accepts(tune)
    assert AbcGrammar(vocab, chords=True).accepts(tune)
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
