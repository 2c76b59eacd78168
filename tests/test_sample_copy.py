"""The copy model mixed into sampling (core/copy_model.py, core/sample.py): its arithmetic on toy
cases, the vectorised cache against a plain reference, that copy 0 draws exactly as the sampler
did before it, that the mixture models held-out tunes better than the shipped model alone, and
that sampled tunes repeat bars as folk tunes do."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core import native
from core.checkpoint import load_checkpoint
from core.copy_model import (
    LOOP_IGNORED,
    PART_ENDS,
    CopyCache,
    CopyRule,
    NativeCopy,
    NativeDraw,
    OneStreamCopy,
    _tables,
    copy_cache,
    mix_weights,
)
from core.corpus import Vocabulary, load_corpus
from core.model import CharLSTM
from core.music_analysis import analyse_tune, summarize
from core.paths import shipped_model_path
from core.presets import ModelConfig
from core.sample import DEFAULT_PROMPT, SampleOptions, Sampler, StreamState, _Taken


@pytest.fixture(scope="module")
def tiny(tiny_checkpoint: Path) -> Sampler:
    ckpt = load_checkpoint(tiny_checkpoint)
    return Sampler(ckpt.build_model(), ckpt.vocab, "fp32")


@pytest.fixture(scope="module")
def shipped() -> Sampler:
    path = shipped_model_path()
    assert path is not None
    ckpt = load_checkpoint(path)
    return Sampler(ckpt.build_model(), ckpt.vocab)


# --- the arithmetic ---------------------------------------------------------------------------


def test_mixture_of_a_toy_case() -> None:
    """(1 - lam) p_model + lam p_copy, renormalised over the allowed characters; lam 0 leaves
    the model's weights untouched, bit for bit."""
    w = np.array([[1.0, 2.0, 3.0], [1.0, 0.0, 3.0], [0.5, 0.25, 0.25]])  # unnormalised model
    p_copy = np.array([[0.0, 1.0, 0.0], [0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    lam = np.array([0.25, 0.5, 0.0])
    allowed = np.array([[True, True, True], [True, False, True], [True, True, True]])
    mixed = mix_weights(w, lam, p_copy, allowed)
    p = mixed / mixed.sum(axis=1, keepdims=True)
    assert np.allclose(p[0], [0.75 / 6, 0.75 * 2 / 6 + 0.25, 0.75 * 3 / 6], atol=1e-15)
    # Row 1: the model's 1/4 and 3/4 halved, the copy's allowed half (on "a"), renormalised.
    assert np.allclose(p[1], np.array([0.125 + 0.25, 0.0, 0.375]) / 0.75, atol=1e-15)
    assert np.array_equal(mixed[2], w[2])


@pytest.mark.parametrize("kind", [CopyCache, OneStreamCopy])
def test_gate_and_pointer_of_a_toy_case(kind: type[CopyCache | OneStreamCopy]) -> None:
    """After "abcab" the only candidate is the "b" at 1 (two characters match), proposing "c";
    no bar line, so no alignment, and the same bar (0) of the same part."""
    vocab = Vocabulary.from_text("abc|:\n")
    rule = CopyRule()
    cache = CopyCache(1, vocab, rule) if kind is CopyCache else OneStreamCopy(vocab, rule)
    cache.push_text(vocab.encode("abcab"))
    lam, p_copy = cache.predict()
    s = rule.match[2] + rule.bars[0] + rule.in_part[0]
    assert lam[0] == pytest.approx(rule.weight * math.exp(s) / (math.exp(s) + 1.0), rel=1e-12)
    assert p_copy[0].tolist() == [1.0 if ch == "c" else 0.0 for ch in vocab.chars]
    cache.push(vocab.encode("|"))  # the "|" never came before: no candidate, no copy
    lam, p_copy = cache.predict()
    assert lam[0] == 0 and not p_copy.any()


def loop_run(text: str) -> bool:
    """Whether the last two bars of `text` (in its part, bar lines as the pointer counts them)
    hold the same music: spaces, line ends and the ":" of a repeat aside."""
    lines: list[int] = []
    run = False
    for k, ch in enumerate(text):
        if k and text[k - 1 : k + 1] in (*PART_ENDS, "|:"):  # a part starts: afresh
            lines, run = [k], False
        elif ch == "|" and (k == 0 or text[k - 1] != "|"):
            bars = [[c for c in text[a + 1 : b] if c not in LOOP_IGNORED] for a, b in
                    zip(lines[-2:], [*lines[-1:], k], strict=False)]  # fmt: skip
            run = len(bars) == 2 and bool(bars[1]) and bars[0] == bars[1]
            lines = [*lines[-1:], k]
    return run


def test_a_third_equal_bar_in_a_row_is_seldom_copied() -> None:
    """After two equal bars the pointer would copy the same bar again (its match runs long
    through both): candidates one and two bars back lose LOOP, in both caches, as the
    reference has it; a bar repeated in another part is no run."""
    vocab = Vocabulary.from_text("ABcd |:\n")
    rule, off = CopyRule(), CopyRule(loop=0.0)
    for text, runs in (("|AB cd|AB cd|AB c", True), ("|AB cd|AB dc|AB c", False),
                       ("|AB cd:|AB cd|AB c", False), ("|AB cd|\nAB cd:|AB c", False)):  # fmt: skip
        assert loop_run(text) == runs, text
        lams = []
        for r in (rule, off):
            for cache in (CopyCache(1, vocab, r), OneStreamCopy(vocab, r)):
                cache.push_text(vocab.encode(text))
                lam, p_copy = cache.predict()
                ref_lam, ref_p = reference(text, r)
                assert lam[0] == pytest.approx(ref_lam, rel=1e-9), (text, r.loop)
                assert p_copy[0][vocab.char2idx["d"]] == pytest.approx(ref_p["d"], rel=1e-9)
                lams.append(lam[0])
        assert lams[0] == lams[1] and lams[2] == lams[3]
        assert (lams[0] < lams[2] - 0.2) if runs else lams[0] == lams[2], (text, lams)


def reference(text: str, rule: CopyRule) -> tuple[float, dict[str, float]]:
    """The copy model's (lam, p_copy) after `text`, straight from the module docstring."""
    t = len(text) - 1

    def bars(i: int) -> int:  # bar lines up to i, `||` counting once
        return sum(text[k] == "|" and (k == 0 or text[k - 1] != "|") for k in range(i + 1))

    def part_bar(i: int) -> int:  # bars since the last part start up to i
        starts = [k for k in range(1, i + 1) if text[k - 1 : k + 1] in (*PART_ENDS, "|:")]
        return bars(i) - (bars(starts[-1]) if starts else 0)

    last_bar = text.rfind("|")
    run = loop_run(text)
    mass: dict[str, float] = {}
    for i in range(t):
        n = 0
        while n < rule.cap and i - n >= 0 and text[i - n] == text[t - n]:
            n += 1
        if n == 0:
            continue
        back = min(bars(t) - bars(i), len(rule.bars) - 1)
        s = rule.match[n] + rule.bars[back]
        s += rule.aligned * (last_bar >= 0 and n > t - last_bar)
        if part_bar(i) == part_bar(t):
            s += rule.in_part[min(part_bar(t), len(rule.in_part) - 1)]
        s += rule.loop * (run and back in (1, 2))
        mass[text[i + 1]] = mass.get(text[i + 1], 0.0) + math.exp(s)
    total = sum(mass.values())
    if re.search(r"(:\||\|\]|\|\||::)[!\n]*\n$", text):
        sentinel = rule.after_part_line
    elif text[-2:] in PART_ENDS:
        sentinel = rule.after_part
    else:
        sentinel = {"|": rule.after_bar, "\n": rule.after_line}.get(text[-1], rule.sentinel)
    lam = rule.weight * total / (total + math.exp(sentinel))
    return lam, {ch: m / total for ch, m in mass.items()}


def test_cache_matches_the_reference_stream_by_stream() -> None:
    """Three streams of real tunes stepped together, one of them dropped half-way (as a finished
    stream is): every step's gate and pointer equal the plain reference."""
    corpus = load_corpus()
    texts = [t[:170] for t in corpus.split().val_tunes[:3]]
    n = min(map(len, texts))
    texts = [t[:n] for t in texts]
    vocab, rule = corpus.vocab, CopyRule()
    cache = CopyCache(3, vocab, rule)
    rows = [0, 1, 2]
    for t in range(n):
        if t == n // 2:
            cache.select(np.array([True, False, True]))
            rows = [0, 2]
        cache.push(np.array([vocab.char2idx[texts[b][t]] for b in rows]))
        lam, p_copy = cache.predict()
        for j, b in enumerate(rows):
            ref_lam, ref_p = reference(texts[b][: t + 1], rule)
            assert lam[j] == pytest.approx(ref_lam, rel=1e-9, abs=1e-15), (b, t)
            got = {ch: p for ch, p in zip(vocab.chars, p_copy[j], strict=True) if p}
            assert got.keys() == ref_p.keys(), (b, t)
            assert all(got[ch] == pytest.approx(p, rel=1e-9) for ch, p in ref_p.items())


def test_a_finished_tune_is_not_copied_and_the_window_slides() -> None:
    vocab = Vocabulary.from_text("ABcd|:\n")
    cache = CopyCache(2, vocab, CopyRule(), window=32)
    for ch in "|ABcd|ABcd|ABcd|ABcd|ABcd|ABcd|ABcd|ABc":  # longer than the window
        cache.push(vocab.encode(ch * 2))
    lam, p_copy = cache.predict()
    assert (lam > 0.5).all() and (p_copy[:, vocab.char2idx["d"]] == 1).all()
    cache.reset([1])  # stream 1 ended its tune: it starts afresh
    cache.push(vocab.encode("dd"))
    lam, _ = cache.predict()
    assert lam[0] > 0.5 and lam[1] == 0


def test_the_one_stream_cache_predicts_as_the_batch_cache_bit_for_bit() -> None:
    """The sampler's cache for one stream (the app's and the CLI's tunes) walks its candidates
    in Python: over tunes one after another, in a window small enough to slide many times with
    each tune ended as the sampler ends one (nothing copied across), then in the default
    window with none ended (over a hundred candidates), every step's lam and p_copy equal the
    vectorised cache's exactly (which the test above holds to the plain reference)."""
    corpus = load_corpus()
    # The validation tunes write no `||`, `::` or `|:`: a tune that does comes first.
    forms = "T:x\nM:4/4\nK:D\n|:AB cd|ef g2||ab c'2::AB cd|ef g2|]!\nAB cd|AB cd|AB cd|ef g2:|\n"
    text = "\n\n".join([forms, *corpus.split().val_tunes[:6]]) + "\n\n"
    vocab, rule = corpus.vocab, CopyRule()
    if native.library() is None:
        assert isinstance(copy_cache(1, vocab, rule), OneStreamCopy)
    assert isinstance(copy_cache(2, vocab, rule), CopyCache)
    rng = np.random.default_rng(0)
    for window, end_tunes in ((96, True), (17, True), (4096, False)):
        one, batch = OneStreamCopy(vocab, rule, window), CopyCache(1, vocab, rule, window)
        one.push_text(vocab.encode("X:"))
        batch.push_text(vocab.encode("X:"))
        slid = ended = copied = most = 0
        for t, ch in enumerate(text):
            a, b = one.predict(), batch.predict()
            assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]), (window, t)
            copied += bool(a[0][0] > 0)
            most = max(most, len(one.cands))
            slid += batch.t == batch.window
            one.push(np.array([vocab.char2idx[ch]]))
            batch.push(np.array([vocab.char2idx[ch]]))
            if end_tunes and (text[t - 1 : t + 1] == "\n\n" or rng.random() < 0.005):
                rows = [0] if rng.random() < 0.5 else np.array([True])
                one.reset(rows)
                batch.reset(rows)
                ended += 1
                assert one.predict()[0][0] == 0
            elif rng.random() < 0.01:  # a mask that ends no tune
                one.reset(np.array([False]))
                batch.reset(np.array([False]))
        assert copied > len(text) // 3, (window, copied)
        if end_tunes:
            assert slid > 10 and ended > 7, (slid, ended)
        else:
            assert most > 100, most
    with pytest.raises(ValueError, match="one-stream"):
        one.select(np.array([False]))
    with pytest.raises(ValueError, match="one-stream"):
        one.push(np.array([1, 2]))


@pytest.mark.skipif(native.library() is None, reason="the C kernels are not built")
def test_the_c_cache_predicts_as_the_numpy_cache_bit_for_bit() -> None:
    """The copy model in C (what the sampler uses where the kernels are built): batches of real
    tunes one after another, in windows that slide, with streams ending tunes (reset) and
    dropped (select) at random, every step's lam and p_copy equal the vectorised cache's."""
    corpus = load_corpus()
    forms = "T:x\nM:4/4\nK:D\n|:AB cd|ef g2||ab c'2::AB cd|ef g2|]!\nAB cd|AB cd|AB cd|ef g2:|\n"
    tunes = [forms, *corpus.split().val_tunes[:8]]
    vocab, rule = corpus.vocab, CopyRule()
    assert isinstance(copy_cache(1, vocab, rule), NativeCopy)
    assert isinstance(copy_cache(16, vocab, rule), NativeCopy)
    rng = np.random.default_rng(0)
    for batch, window in ((1, 96), (1, 4096), (5, 17), (16, 4096)):
        texts = ["\n\n".join(rng.permutation(tunes)) for _ in range(batch)]
        ref, c = CopyCache(batch, vocab, rule, window), NativeCopy(batch, vocab, rule, window)
        ref.push_text(vocab.encode("X:"))
        c.push_text(vocab.encode("X:"))
        copied = looped = 0
        for t in range(min(1500, *map(len, texts))):
            a, b = ref.predict(), c.predict()
            assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]), (batch, t)
            copied += int((a[0] > 0).sum())
            looped += int(ref.run.sum())
            ids = np.array([vocab.char2idx[x[t]] for x in texts])
            ref.push(ids)
            c.push(ids)
            if rng.random() < 0.01:
                rows = rng.random(len(texts)) < 0.5
                ref.reset(rows)
                c.reset(rows)
            if len(texts) > 1 and rng.random() < 0.004:
                keep = np.arange(len(texts)) != rng.integers(len(texts))
                ref.select(keep)
                c.select(keep)
                texts = [x for k, x in zip(keep, texts, strict=True) if k]
        assert copied > 500 and (looped > 0 or window < 100), (batch, copied, looped)
    with pytest.raises(IndexError):
        c.push(np.full(len(texts), len(vocab)))


def test_a_cache_masks_its_prediction_as_the_draw_would() -> None:
    """predict(allowed), the grammar's mask taken by the cache (one stream's draw then need not
    mask the copy: issue 14), gives lam as without it and p_copy times the mask, bit for bit:
    the one-stream, numpy and C caches, one stream and a batch, along real tunes, with a few
    masks met again and again (the C cache finds each one's address once)."""
    corpus = load_corpus()
    vocab, rule = corpus.vocab, CopyRule()
    text = "\n\n".join(corpus.split().val_tunes[:4]) + "\n\n"
    rng = np.random.default_rng(1)
    masks = [rng.random(len(vocab)) < share for share in (0.2, 0.5, 0.9) for _ in range(3)]
    kinds: list[type[CopyCache | OneStreamCopy]] = [OneStreamCopy, CopyCache]
    if native.library() is not None:
        kinds.append(NativeCopy)
    for kind in kinds:
        for batch in (1, 3) if kind is not OneStreamCopy else (1,):
            cache = kind(vocab, rule) if kind is OneStreamCopy else kind(batch, vocab, rule)
            cache.push_text(vocab.encode("X:"))
            masked = 0
            for t, ch in enumerate(text[:1200]):
                rows = [masks[(t + b) % len(masks)] for b in range(batch)]
                allowed = rows[0][None] if batch == 1 else np.array(rows)
                lam, p_copy = cache.predict()
                lam_m, p_m = cache.predict(allowed)
                assert np.array_equal(lam, lam_m), (kind, batch, t)
                assert np.array_equal(p_copy * allowed, p_m), (kind, batch, t)
                masked += int((p_copy[~allowed] > 0).any())
                cache.push(np.full(batch, vocab.char2idx[ch]))
            assert masked > 100, (kind, batch, masked)


def test_caches_share_their_vocabulary_tables_read_only() -> None:
    """A sampler makes a cache per tune: the tables read from the vocabulary and rule are made
    once and shared, so no cache may change them, and a later cache predicts as the first."""
    corpus = load_corpus()
    tune = corpus.split().val_tunes[0][:120]
    vocab, rule = corpus.vocab, CopyRule()

    def run() -> tuple[CopyCache, list[np.ndarray]]:
        cache = CopyCache(1, vocab, rule)
        out = []
        for ch in tune:
            cache.push(np.array([vocab.char2idx[ch]]))
            out.append(np.concatenate(cache.predict(), axis=None))
        return cache, out

    (first, a), (second, b) = run(), run()
    assert first.events is second.events and first.sentinel_w is second.sentinel_w
    one, other = OneStreamCopy(vocab, rule), OneStreamCopy(vocab, rule)
    assert one.tables is other.tables is _tables(vocab, rule)
    assert isinstance(one.tables.events_s[0], tuple)  # its plain fields: immutable too
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    for table in (first.events, first.part_start, first.match_w, first.sentinel_w):
        with pytest.raises(ValueError, match="read-only"):
            table[0] = 0


# --- the sampler ------------------------------------------------------------------------------


def draws_before_copy(sampler: Sampler, opts: SampleOptions, n: int, steps: int) -> list[list[int]]:
    """The sampler's draws as they were before the copy model (its loop, no grammar, no stop)."""
    rngs = [np.random.default_rng(opts.seed + b) for b in range(n)]  # type: ignore[operator]
    st = sampler.zero_state(n)
    for i in sampler.vocab.encode(opts.prompt):
        logits = sampler.step(np.full(n, i), st)
    out: list[list[int]] = [[] for _ in range(n)]
    for _ in range(steps):
        z = logits.astype(np.float64)
        if opts.temperature == 0:
            ids = z.argmax(axis=1)
        else:
            z /= opts.temperature
            if opts.top_k:
                kth = np.partition(z, -opts.top_k, axis=1)[:, -opts.top_k][:, None]
                z = np.where(z >= kth, z, -np.inf)
            cdf = np.exp(z - z.max(axis=1, keepdims=True)).cumsum(axis=1)
            u = np.array([r.random() for r in rngs]) * cdf[:, -1]
            ids = np.minimum((cdf <= u[:, None]).sum(axis=1), z.shape[1] - 1)
        for b in range(n):
            out[b].append(int(ids[b]))
        logits = sampler.step(ids, st)
    return out


@pytest.mark.parametrize("temperature, top_k", [(1.0, None), (0.7, None), (1.3, 12), (0.0, None)])
def test_copy_zero_draws_exactly_as_before(
    tiny: Sampler, temperature: float, top_k: int | None
) -> None:
    opts = SampleOptions(
        temperature=temperature, top_k=top_k, seed=11, max_chars=300, stop_at_tune_end=False,
        copy=0.0,
    )  # fmt: skip
    expected = draws_before_copy(tiny, opts, 3, 300)
    got: list[list[int]] = [[], [], []]
    for b, ch in tiny.stream_batch(3, opts):
        got[b].append(tiny.vocab.char2idx[ch])
    assert got == expected
    single = [tiny.vocab.char2idx[ch] for ch in tiny.stream(opts)]
    assert single == expected[0]


def test_copy_is_on_by_default_reproducible_and_checked(tiny: Sampler) -> None:
    assert SampleOptions().copy == CopyRule().weight > 0
    opts = SampleOptions(seed=5, max_chars=400)
    assert tiny.generate(opts) == tiny.generate(opts)
    assert tiny.generate_batch(4, opts) == tiny.generate_batch(4, opts)
    assert tiny.generate(opts) != tiny.generate(SampleOptions(seed=5, max_chars=400, copy=0.0))
    greedy = tiny.generate(SampleOptions(temperature=0, max_chars=200))
    assert greedy == tiny.generate(SampleOptions(top_k=1, seed=3, max_chars=200))
    for bad in (-0.1, 1.0, float("nan")):
        with pytest.raises(ValueError, match="copy"):
            tiny.generate(SampleOptions(copy=bad))


def test_the_mixture_predicts_held_out_tunes_better(shipped: Sampler) -> None:
    """Held-out bits per character of validation tunes: the shipped model alone against its
    mixture with the copy model (all 90 tunes: 1.438 -> 1.165)."""
    val = load_corpus().split(vocab=shipped.vocab).val_tunes[:12]
    alone, mixed = shipped.bits_per_char(val), shipped.bits_per_char(val, CopyRule())
    assert mixed < alone - 0.15, (alone, mixed)
    assert shipped.bits_per_char(val, CopyRule(weight=0.0)) == alone


def repeated_bars_pct(tunes: Sequence[str]) -> float:
    return summarize(
        [analyse_tune(DEFAULT_PROMPT + t) for t in tunes], frozenset()
    ).repeated_bars_pct


def test_sampled_tunes_repeat_bars(shipped: Sampler) -> None:
    """30 tunes at temperature 1.0: the shipped model alone repeats almost no bar; with the copy
    model, over the issue's 15 % by itself (the corpus: 32.8 %), and still well above with the
    grammar's rules of metre and form on top (600 tunes: 17.0 %)."""
    for grammar, floor in ((False, 15.0), (True, 10.0)):
        opts = SampleOptions(seed=1000, grammar=grammar)
        off = repeated_bars_pct(shipped.generate_batch(30, replace(opts, copy=0.0)))
        on = repeated_bars_pct(shipped.generate_batch(30, opts))
        assert off < 3.0 and on > floor, (grammar, off, on)


NUMPY_TUNES = """
import json
from core.checkpoint import load_checkpoint
from core.paths import shipped_model_path
from core.sample import SampleOptions, Sampler
ckpt = load_checkpoint(shipped_model_path())
s = Sampler(ckpt.build_model(), ckpt.vocab)
opts = SampleOptions(seed=11, grammar=True)
print(json.dumps([s.generate(opts), *s.generate_batch(3, opts)]))
"""


@pytest.mark.skipif(native.library() is None, reason="the C kernels are not built")
def test_the_c_kernels_draw_the_tunes_numpy_draws(shipped: Sampler) -> None:
    """A seed's tunes, one stream and a batch, grammar and copy on, are the same with the C
    copy model as in a process without the C kernels (FOLKGEN_NO_NATIVE: numpy alone)."""
    env = {**os.environ, "FOLKGEN_NO_NATIVE": "1"}
    proc = subprocess.run([sys.executable, "-c", NUMPY_TUNES], capture_output=True, text=True,
                          env=env, check=True, timeout=120)  # fmt: skip
    opts = SampleOptions(seed=11, grammar=True)
    here = [shipped.generate(opts), *shipped.generate_batch(3, opts)]
    assert json.loads(proc.stdout.splitlines()[-1]) == here
    assert all(t.count("|") > 8 for t in here)


def libm_exp(x: np.ndarray) -> np.ndarray:
    """exp as C's libm computes it (numpy's own SIMD exp, on AVX-512, may differ by an ulp)."""
    return np.array([math.exp(v) for v in x.ravel()]).reshape(x.shape)


@pytest.mark.skipif(native.library() is None, reason="the C kernels are not built")
def test_one_streams_draw_in_c_is_numpys(monkeypatch: pytest.MonkeyPatch) -> None:
    """One stream's draw in C (NativeDraw, the sampler's where the kernels are built) against
    numpy's (Sampler._draw), along real tunes in the copy model: random logit rows (ties, NaN,
    inf), grammar masks or none, logits masked before (the step's) or not, temperatures,
    top-k, copy weights. C draws what numpy draws, at random uniforms and, with numpy's exp
    made libm's, at uniforms on the edges of its CDF (where an ulp of difference shows); it
    leaves to numpy (-1) exactly the rows with a NaN or no finite largest logit allowed."""
    corpus = load_corpus()
    vocab, V = corpus.vocab, len(corpus.vocab)
    sampler = Sampler(CharLSTM(ModelConfig(V, 8, 16)).eval(), vocab, "fp32")
    text = vocab.encode("\n\n".join(corpus.split().val_tunes[:3]))
    rng = np.random.default_rng(2)
    counts = {"drawn": 0, "edges": 0, "numpy's": 0, "mixed": 0}

    def numpy_draw(logits: np.ndarray, opts: SampleOptions, u: float, allowed: np.ndarray | None,
                   cache: NativeCopy | None, masked: bool) -> int:  # fmt: skip
        rows = [_Taken(u)]
        if allowed is None:
            copy = cache.predict() if cache else None
            return int(sampler._draw(logits, opts, rows, None, copy)[0])
        forbid = np.where(allowed, 0.0, -np.inf)
        if masked:  # as stream_batch draws logits that come masked from the step
            copy = cache.predict(allowed) if cache else None
            return int(sampler._draw(logits, opts, rows, None, copy, masked=(allowed, forbid))[0])
        copy = cache.predict() if cache else None
        return int(sampler._draw(logits, opts, rows, allowed, copy, never_empty=True,
                                 forbid=forbid, keep=allowed.astype(np.float64))[0])  # fmt: skip

    for weight in (0.0, 0.5, 0.995):
        cache = NativeCopy(1, vocab, CopyRule(weight=weight)) if weight else None
        for t, ch in enumerate(text[:700]):
            if cache:
                cache.push(np.array([ch]))
            temperature = float(rng.choice([1.0, 1.0, 0.6, 1.7, 0.05]))
            top_k = int(rng.choice([0, 0, 1, 4, V - 1, V, 2**32 + 1]))
            opts = SampleOptions(temperature=temperature, top_k=top_k)
            logits = rng.normal(0, rng.choice([0.5, 3.0, 30.0]), (1, V)).astype(np.float32)
            if t % 7 == 0:  # ties
                logits = np.round(logits)
            if t % 5 == 0:  # a damaged model's
                logits[0, rng.integers(V, size=rng.integers(1, 3))] = rng.choice([np.nan, np.inf, -np.inf])  # fmt: skip
            allowed, masked = None, False
            if t % 3:  # a grammar's mask, never empty
                allowed = (rng.random((1, V)) < rng.choice([0.05, 0.3, 0.9])) | (np.arange(V) == ch)
                masked = t % 3 == 2
                if masked:
                    with np.errstate(invalid="ignore"):  # inf - inf: NaN, as the step gives
                        logits = (logits + np.where(allowed, 0.0, -np.inf)).astype(np.float32)
            z = np.where(allowed, logits, -np.inf) if allowed is not None else logits
            damaged = bool(np.isnan(z).any() or not np.isfinite(z.max()))
            in_c = NativeDraw(V, temperature, top_k, cache)
            for u in rng.random(3):
                drawn = in_c.draw(logits, allowed, float(u))
                assert (drawn < 0) == damaged, (weight, t)
                if drawn >= 0:
                    assert drawn == numpy_draw(logits, opts, float(u), allowed, cache, masked), (weight, t, u)  # fmt: skip
                    counts["drawn"] += 1
            counts["numpy's"] += damaged
            if damaged:
                continue
            counts["mixed"] += bool(cache and cache.predict()[0][0] > 0)
            cdf = in_c.work[1].copy()  # the last call's
            at = cdf[rng.integers(V, size=3)] / cdf[-1]
            edges = [*at, *np.nextafter(at, 0), *np.nextafter(at, 1)]
            with monkeypatch.context() as m:
                m.setattr(np, "exp", libm_exp)
                for u in (e for e in edges if e < 1):
                    assert in_c.draw(logits, allowed, u) == numpy_draw(logits, opts, u, allowed, cache, masked), (weight, t, u)  # fmt: skip
                    counts["edges"] += 1
    assert counts["drawn"] > 4000 and counts["edges"] > 5000, counts
    assert counts["numpy's"] > 150 and counts["mixed"] > 500, counts
    with pytest.raises(ValueError, match="greedy"):
        NativeDraw(V, 0.0, 0, None)


@pytest.mark.skipif(native.library() is None, reason="the C kernels are not built")
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # numpy's, on those rows
def test_rows_the_c_draw_leaves_are_drawn_by_numpy_with_the_uniform_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where one stream's C draw leaves a row to numpy (a logit NaN or inf: a damaged model),
    numpy's draw reads the uniform the C call was given: tunes whose logits are damaged every
    few steps, grammar and copy on and off, are those of numpy's draws alone."""
    vocab = load_corpus().vocab
    model = CharLSTM(ModelConfig(len(vocab), 8, 16)).eval()
    step, draw = Sampler.step, NativeDraw.draw
    left = []

    def tunes() -> list[str]:
        sampler = Sampler(model, vocab, "fp32")  # (one that kept no prompt's state)
        calls = [0]

        def damaged(self: Sampler, ids: np.ndarray, st: StreamState, bias: np.ndarray | None = None, ahead: bool = False) -> np.ndarray:  # fmt: skip
            logits = step(self, ids, st, bias, ahead)
            calls[0] += 1
            if calls[0] % 4 == 0:
                logits[0, calls[0] * 7 % len(vocab)] = (np.nan, np.inf)[calls[0] % 8 // 4]
            return logits

        with monkeypatch.context() as m:
            m.setattr(Sampler, "step", damaged)
            return [
                sampler.generate(SampleOptions(seed=seed, grammar=grammar, copy=copy, top_k=top_k,
                                               max_chars=300))  # fmt: skip
                for seed, grammar, copy, top_k in (
                    (1, False, 0.995, None), (2, True, 0.995, None), (3, True, 0.0, 5),
                    (4, False, 0.0, None), (5, True, 0.5, 3),
                )
            ]  # fmt: skip

    def counted(self: NativeDraw, *args: Any) -> int:
        drawn = draw(self, *args)
        left.append(drawn < 0)
        return drawn

    monkeypatch.setattr(NativeDraw, "draw", counted)
    in_c = tunes()
    assert 100 < sum(left) < len(left) - 500, (sum(left), len(left))
    monkeypatch.setattr(Sampler, "_native_draw", lambda *args: None)
    assert tunes() == in_c
