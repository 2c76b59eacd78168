"""A copy (cache) model of the tune so far, mixed with the LSTM's next-character distribution.

Folk tunes repeat bars, phrases and whole parts; an LSTM at temperature 1 rarely does. A cache
language model (Kuhn & De Mori 1990; Grave et al. 2016 "neural cache", with the sentinel gate of
Merity et al. 2016) mixes the network's distribution with one built from the tune so far:

    p(c) = (1 - lam) * p_model(c) + lam * p_copy(c)

The pointer: every earlier place i of the tune holding the character just written is a
candidate, proposing the character that followed it, with the score

    s_i = MATCH[L_i] + BARS[D_i] + ALIGNED * [the match reaches back to this bar's bar line]
          + IN_PART[bar of the part] * [i lies in the same bar of its part as now]

L_i: how many characters up to i equal those up to now (the "match model" of text compressors;
capped at 8). D_i: how many bars back i lies; folk tunes repeat a bar 4, 8-9 or 17 bars later
(the next phrase, the next part), seldom the bar just played. Bars of a part count from its
start (after `:|` `|:` `|]` `||` `::`); a part's closing bars (the 6th on) strongly prefer the
same bars of an earlier part, as B parts end the way A parts do. p_copy is the softmax of the
scores over the candidates, summed per proposed character; the gate weighs their total mass
against a sentinel that depends on what was just written:

    lam = weight * sum_i exp(s_i) / (sum_i exp(s_i) + exp(SENTINEL[last characters]))

The sentinel is higher after a bar line, higher still after a line break (the next line seldom
starts as the line after the matched one did) and after the line a part closed, and so high
right after a part's closing bar line that the copy is off there: what follows a part, another
part or the tune's end, is nothing the tune has shown yet.

All tables were fitted (L-BFGS) to the bits per character of the default corpus's 90 validation
tunes under the shipped model, then frozen here: fitted on either half of them, the other half
measured 1.168 and 1.169 against 1.469 and 1.418 for the model alone. Through
`Sampler.bits_per_char` (all 90 tunes): 1.438 alone, 1.156 at the fitted weight 0.915, 1.159 at
0.98 and 1.161 at the default 0.995; the optimum is flat there, and the default sits above it
because sampled repetition rises with the weight: with the grammar drawing each tune's number
of parts as the corpus has them (mostly two), repeated bars at temperature 1 were 13.9 % at
0.95 and 16.2-17.1 % at 0.98 (three seeds of 200 tunes; bench/music_quality.py).

Two rules on top of the fitted tables, for the tunes sampled rather than the bits: LOOP, a
penalty on copying a bar a third time in a row (the pointer's match runs long through two
equal bars: 4.5 % of sampled tunes had such a run at temperature 1, 9.0 % at 0.8, the corpus
0.9 %; core/music_analysis.py's bar run), and a lower sentinel after a bar line (AFTER_BAR),
so that a bar begun as an earlier bar was goes on as it did. With
both, at 0.995: 1.165 bits per character, repeated bars 16.1-18.6 % at temperature 1 (six seeds
of 200 tunes, mean 17.2; the grammar's pickups count a part's first full bar too), bar runs
in 1.5 % of tunes (1.0 % at 0.8).
`weight` is the caller's knob (`SampleOptions.copy`); 0 turns the copy off. The caches here
are numpy and plain Python; `NativeCopy` runs the same push and predict in C
(core/copy_kernel.c, built by core/native.py), with the same floats.
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from core import native
from core.corpus import Vocabulary

NO_CHAR = -1  # history cells of a finished tune: they never match a drawn character
FAR = 1 << 30  # "no bar line yet": no match reaches back to it
PART_ENDS = (":|", "|]", "||", "::")
PART_STARTS = (*PART_ENDS, "|:")  # a part's bars count from after these

# Score by match length 1..8 (8: that or longer); index 0, no match, is no candidate.
MATCH = (-math.inf, -7.8, -3.97, -2.15, -1.4, -0.35, -0.34, -0.16, -0.23)
# Score by bars back 0..18 (18: that or more).
BARS = (
    -3.7, 0.19, 0.87, -0.61, 2.2, -0.03, -1.77, -1.52, 0.95, 1.14,
    -0.98, -1.23, -1.68, 0.01, -0.26, 0.05, -0.34, 1.05, -0.64,
)  # fmt: skip
ALIGNED = 1.29
# Score of the same bar of an earlier part, by this bar of the part: 0-3, 4-5, 6 and on (a
# part's closing bars are the ones that repeat an earlier part's: B parts end as A parts do).
IN_PART = (0.35, 0.35, 0.35, 0.35, 0.32, 0.32, 3.19)
# Added to a candidate one or two bars back once the last two bars were the same: a run of
# three equal bars is rare in the corpus (0.9 % of tunes), and without this the pointer, whose
# match runs long through two equal bars, made one in 4.5 % of sampled tunes (9.0 % at T=0.8).
LOOP = -3.0
# The sentinel after a bar line: fitted 1.71; lower, the pointer copies more whole bars (a bar
# begun as an earlier one was goes on as it did), at 0.003 bits per character (see above).
AFTER_BAR = 0.6
# Characters that do not tell two bars apart: spaces, line ends, the ":" of a repeat.
LOOP_IGNORED = " !\n:"
WEIGHT = 0.995  # the largest share of the copy (fitted: 0.915, 1.156 bpc; 0.995: 1.161 bpc and
# more repetition; with LOOP and AFTER_BAR 1.165 bpc and 16-19 % of bars repeated; see above)


@dataclass(frozen=True)
class CopyRule:
    """The pointer's score tables and gate (see the module docstring); `weight` scales lam."""

    weight: float = WEIGHT
    match: tuple[float, ...] = MATCH
    bars: tuple[float, ...] = BARS
    aligned: float = ALIGNED
    in_part: tuple[float, ...] = IN_PART
    loop: float = LOOP
    # Sentinels by what was just written: any other character, "|", a newline, the close of
    # a part, a newline ending the line a part closed.
    sentinel: float = 0.0
    after_bar: float = AFTER_BAR
    after_line: float = 2.61
    after_part: float = 14.12
    after_part_line: float = 5.43

    @property
    def cap(self) -> int:
        return len(self.match) - 1

    def sentinel_table(self, vocab: Vocabulary) -> np.ndarray:
        """exp(sentinel) by (previous, last) character, (V + 1, V): row V is "no previous"."""
        index = vocab.char2idx
        table = np.full((len(vocab) + 1, len(vocab)), self.sentinel)
        for ch, value in (("|", self.after_bar), ("\n", self.after_line)):
            if ch in index:
                table[:, index[ch]] = value
        for i, j in _pairs(vocab, PART_ENDS):
            table[i, j] = self.after_part
        weights: np.ndarray = np.exp(table)
        return weights


def _pairs(vocab: Vocabulary, pairs: tuple[str, ...]) -> list[tuple[int, int]]:
    """Vocabulary indices of two-character sequences (those the vocabulary can write)."""
    index = vocab.char2idx
    return [(index[p[0]], index[p[1]]) for p in pairs if p[0] in index and p[1] in index]


def pair_table(vocab: Vocabulary, pairs: tuple[str, ...]) -> np.ndarray:
    """Bool (V + 1, V) by (previous, last) character: whether they write one of `pairs`; row
    V (index -1, NO_CHAR) is "no previous character"."""
    table = np.zeros((len(vocab) + 1, len(vocab)), dtype=bool)
    for i, j in _pairs(vocab, pairs):
        table[i, j] = True
    return table


def mix_weights(
    w_model: np.ndarray, lam: np.ndarray, p_copy: np.ndarray, allowed: np.ndarray | None = None
) -> np.ndarray:
    """Unnormalised mixture (1 - lam) * w_model / sum(w_model) + lam * p_copy, scaled by
    sum(w_model) / (1 - lam) so that a row with lam = 0 is `w_model` bit for bit (and draws
    exactly as without the cache). Where `allowed` is given the copy keeps only allowed
    characters (w_model is already zero elsewhere): the mixture conditioned on the grammar."""
    scale = lam / (1.0 - lam) * w_model.sum(axis=1)
    if allowed is not None:
        p_copy = p_copy * allowed
    mixed: np.ndarray = w_model + scale[:, None] * p_copy
    return mixed


@dataclass(frozen=True)
class _Tables:
    """What a cache reads of its vocabulary and rule: the scores as factors (exp(s_i) is a
    product of table entries) and the characters' roles. Read only, shared by every cache."""

    bar_line: int
    line_break: int
    match_w: np.ndarray
    bar_w: np.ndarray
    in_part_w: np.ndarray
    aligned_w: float
    loop_w: float
    ignored: frozenset[int]  # characters that do not tell two bars apart
    after_part_line_w: float
    part_start: np.ndarray
    part_end: np.ndarray
    events: np.ndarray
    sentinel_w: np.ndarray
    # The same as plain values, for OneStreamCopy's scalar reads (a numpy scalar read costs
    # several times a tuple's, and converting per cache cost ~0.1 ms a tune).
    match_s: tuple[float, ...]
    bar_s: tuple[float, ...]
    in_part_s: tuple[float, ...]
    events_s: tuple[tuple[int, ...], ...]
    sentinel_s: tuple[tuple[float, ...], ...]


@lru_cache(maxsize=16)
def _tables(vocab: Vocabulary, rule: CopyRule) -> _Tables:
    """Made once per vocabulary and rule: ~0.1 ms, which a sampler paid for every tune."""
    index = vocab.char2idx
    bar = index.get("|", NO_CHAR)
    part_start, part_end = pair_table(vocab, PART_STARTS), pair_table(vocab, PART_ENDS)
    # What a character does after the previous one, in one lookup per step: bit 0 a new bar
    # line (`||` is one), 1 a part starts, 2 a part ends, 3 a line ends (newline or "!").
    bar_line = np.zeros((len(vocab) + 1, len(vocab)), np.uint8)
    if bar != NO_CHAR:
        bar_line[:, bar] = 1
        bar_line[bar, bar] = 0
    line_end = np.zeros(len(vocab), np.uint8)
    for ch in ("!", "\n"):
        if ch in index:
            line_end[index[ch]] = 8
    events = bar_line | part_start * np.uint8(2) | part_end * np.uint8(4) | line_end
    match_w, bar_w = np.exp(np.asarray(rule.match)), np.exp(np.asarray(rule.bars))
    in_part_w, sentinel_w = np.exp(np.asarray(rule.in_part)), rule.sentinel_table(vocab)
    t = _Tables(
        bar_line=bar,
        line_break=index.get("\n", NO_CHAR),
        match_w=match_w,
        bar_w=bar_w,
        in_part_w=in_part_w,
        aligned_w=float(np.exp(rule.aligned)),
        loop_w=float(np.exp(rule.loop)),
        ignored=frozenset(i for i, c in enumerate(vocab.chars) if c in LOOP_IGNORED),
        after_part_line_w=float(np.exp(rule.after_part_line)),
        part_start=part_start,
        part_end=part_end,
        events=events,
        sentinel_w=sentinel_w,
        match_s=tuple(match_w.tolist()),
        bar_s=tuple(bar_w.tolist()),
        in_part_s=tuple(in_part_w.tolist()),
        events_s=tuple(map(tuple, events.tolist())),
        sentinel_s=tuple(map(tuple, sentinel_w.tolist())),
    )
    for value in vars(t).values():
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
    return t


def _same_bars(
    hist: Sequence[int] | np.ndarray, lines: list[int], t: int, ignored: frozenset[int]
) -> bool:
    """Whether the bar that a bar line at `t` closes holds what the bar before it held (bar
    lines at `lines`, the last two before `t`), characters in `ignored` aside."""
    if len(lines) < 2:
        return False
    if isinstance(hist, np.ndarray):  # a batch's row: plain ints read faster
        earlier, latest = hist[lines[0] + 1 : lines[1]].tolist(), hist[lines[1] + 1 : t].tolist()
    else:
        earlier, latest = hist[lines[0] + 1 : lines[1]], hist[lines[1] + 1 : t]
    kept = [c for c in latest if c not in ignored]
    return bool(kept) and [c for c in earlier if c not in ignored] == kept


def _bar_lines_after(lines: list[int], t: int, ev: int) -> list[int]:
    """The bar lines a loop test reads after a character at `t` with events `ev`: the last two;
    a part's start begins afresh (a bar repeated across parts is no loop)."""
    if ev & 2:
        return [t]
    return [*lines[-1:], t] if ev & 1 else lines


def copy_cache(
    batch: int, vocab: Vocabulary, rule: CopyRule, window: int = 4096
) -> CopyCache | OneStreamCopy:
    """The cache for `batch` streams: in C where the kernels are built (core/native.py), else
    one stream (the app's and the CLI's tunes) kept by its candidates in plain Python and a
    batch in vectorised passes; all three predict the same numbers, bit for bit."""
    if native.library() is not None:
        return NativeCopy(batch, vocab, rule, window)
    if batch == 1:
        return OneStreamCopy(vocab, rule, window)
    return CopyCache(batch, vocab, rule, window)


class CopyCache:
    """The history of a batch of streams and, per earlier position, its match length and bar
    number. One push or predict costs a few vectorised passes over the history (O(batch x
    length)); the window bounds that for very long runs."""

    def __init__(self, batch: int, vocab: Vocabulary, rule: CopyRule, window: int = 4096):
        self.rule = rule
        self.vocab_size = len(vocab)
        t = _tables(vocab, rule)
        self.bar_line, self.line_break = t.bar_line, t.line_break
        self.match_w, self.bar_w, self.in_part_w = t.match_w, t.bar_w, t.in_part_w
        self.aligned_w, self.after_part_line_w = t.aligned_w, t.after_part_line_w
        self.part_start, self.part_end = t.part_start, t.part_end
        self.events, self.sentinel_w = t.events, t.sentinel_w
        self.window = max(window, 16)
        self.hist = np.full((batch, self.window), NO_CHAR, np.int32)
        # match[b, i]: how many characters up to i equal those up to now (capped); the newest
        # character's own cell stays 0.
        self.match = np.zeros((batch, self.window), np.int16)
        self.bar_no = np.zeros((batch, self.window), np.int32)  # bar lines up to i
        self.part_bar = np.zeros((batch, self.window), np.int32)  # bars of its part up to i
        self.bars = np.zeros(batch, np.int32)
        self.part_from = np.zeros(batch, np.int32)  # bar count where the current part began
        self.closed = np.zeros(batch, dtype=bool)  # a part closed, then only "!" or newlines
        self.last_bar = np.full(batch, -FAR, np.int64)  # position of the latest bar line
        self.loop_w, self.ignored = t.loop_w, t.ignored
        self.lines: list[list[int]] = [[] for _ in range(batch)]  # last bar lines (_same_bars)
        self.run = np.zeros(batch, dtype=bool)  # the last two bars were the same
        self.t = 0

    def push(self, ids: np.ndarray) -> None:
        """Append one character per stream, extending or breaking every match."""
        if self.t == self.window:
            self._drop_older_half()
        t = self.t
        prev = self.hist[:, t - 1] if t else np.full(len(ids), NO_CHAR)
        if t:
            same = self.hist[:, :t] == ids[:, None]
            longer = np.minimum(self.match[:, : t - 1] + 1, self.rule.cap)
            np.multiply(longer, same[:, 1:], out=self.match[:, 1:t])
            self.match[:, 0] = same[:, 0]
        ev = self.events[prev, ids]
        self.bars += ev & 1
        self.part_from = np.where(ev & 2, self.bars, self.part_from)
        self.closed = (ev & 4).astype(bool) | (self.closed & (ev & 8).astype(bool))
        self.bar_no[:, t] = self.bars
        self.part_bar[:, t] = self.bars - self.part_from
        self.last_bar[ids == self.bar_line] = t
        for b in np.flatnonzero(ev & 3):  # bar lines and part starts: a few streams a step
            lines, e = self.lines[b], int(ev[b])
            self.run[b] = not e & 2 and _same_bars(self.hist[b], lines, t, self.ignored)
            self.lines[b] = _bar_lines_after(lines, t, e)
        self.hist[:, t] = ids
        self.t = t + 1

    def _drop_older_half(self) -> None:
        """Keep the newer half of the window; its match lengths and bar numbers stay valid."""
        keep, drop = self.window // 2, self.t - self.window // 2
        for a, fill in (
            (self.hist, NO_CHAR),
            (self.match, 0),
            (self.bar_no, 0),
            (self.part_bar, 0),
        ):
            a[:, :keep] = a[:, drop : self.t]
            a[:, keep:] = fill
        self.last_bar -= drop
        self.lines = [[] for _ in self.lines]  # seldom (a long run): the loop test starts over
        self.run[:] = False
        self.t = keep

    def push_text(self, ids: np.ndarray) -> None:
        """The same characters (a prompt) for every stream."""
        for i in ids:
            self.push(np.full(len(self.hist), i, np.int32))

    def reset(self, rows: np.ndarray | list[int]) -> None:
        """Streams that ended a tune: nothing before now is theirs to copy."""
        self.hist[rows, : self.t] = NO_CHAR
        self.match[rows] = 0
        for b in np.arange(len(self.hist))[rows]:
            self.lines[b] = []
        self.run[rows] = False

    def select(self, keep: np.ndarray) -> None:
        self.hist, self.match = self.hist[keep], self.match[keep]
        self.bar_no, self.part_bar = self.bar_no[keep], self.part_bar[keep]
        self.bars, self.part_from = self.bars[keep], self.part_from[keep]
        self.last_bar, self.closed = self.last_bar[keep], self.closed[keep]
        self.lines = [self.lines[b] for b in np.flatnonzero(keep)]  # keep: a bool mask
        self.run = self.run[keep]

    def predict(self, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(lam, p_copy): each stream's copy weight (B,) and copy distribution (B, V); a
        stream with no candidate has lam 0 and a zero row. With `allowed` (bool like p_copy:
        the grammar's), p_copy is 0 where it is False (lam as without): the draw's mask of the
        copy (mix_weights), taken here."""
        batch, t, size = len(self.hist), self.t, self.vocab_size
        if t < 2:
            return np.zeros(batch), np.zeros((batch, size))
        match = self.match[:, : t - 1]  # positions with a next character
        # Row-major like np.nonzero (so the sums below add in the same order), and far faster
        # on a batch's 2-D array.
        rows: np.ndarray | int
        if batch == 1:  # one stream: its row as a scalar, which broadcasts (no gathers)
            rows, cols = 0, np.flatnonzero(match[0])
        else:
            rows, cols = np.divmod(np.flatnonzero(match), t - 1)
        length = match[rows, cols]
        back = np.minimum(self.bars[rows] - self.bar_no[rows, cols], len(self.bar_w) - 1)
        # Scores are bounded (|s| < 10), so exp needs no max subtracted.
        e = self.match_w[length] * self.bar_w[back]
        e[length > (t - 1 - self.last_bar)[rows]] *= self.aligned_w
        bar_of_part = self.bars - self.part_from
        same_bar = self.part_bar[rows, cols] == bar_of_part[rows]
        in_part = self.in_part_w[np.minimum(bar_of_part, len(self.in_part_w) - 1)]
        e[same_bar] *= in_part[rows] if isinstance(rows, int) else in_part[rows[same_bar]]
        if self.run.any():  # seldom: after two equal bars
            e[self.run[rows] & ((back == 1) | (back == 2))] *= self.loop_w
        flat = np.bincount(rows * size + self.hist[rows, cols + 1], e, batch * size)
        p_copy = np.asarray(flat, np.float64).reshape(batch, size)
        mass = p_copy.sum(axis=1)
        p_copy /= np.maximum(mass, 1e-300)[:, None]
        if allowed is not None:
            p_copy *= allowed
        prev = self.hist[:, t - 2]  # NO_CHAR (-1) picks the table's last row, "no previous"
        last = self.hist[:, t - 1]
        sentinel = self.sentinel_w[prev, last]
        sentinel[self.closed & (last == self.line_break)] = self.after_part_line_w
        return self.rule.weight * mass / (mass + sentinel), p_copy


class OneStreamCopy:
    """CopyCache for one stream, kept by its candidates: the earlier places of the character
    just written, with their match lengths. A push or predict walks those (a few dozen in a
    tune) in plain Python, where the vectorised passes cost ~30 numpy calls a character
    (72 against ~20 us). Same arithmetic in the same order as CopyCache, so the same floats."""

    def __init__(self, vocab: Vocabulary, rule: CopyRule, window: int = 4096):
        self.rule = rule
        self.vocab_size = len(vocab)
        self.tables = _tables(vocab, rule)  # its plain fields (_s); row -1 is "no previous"
        self.window = max(window, 16)
        self.hist: list[int] = []
        self.bar_no: list[int] = []  # bar lines up to i
        self.part_bar: list[int] = []  # bars of its part up to i
        self.places: dict[int, list[int]] = {}  # character -> its places, oldest first
        self.cands: dict[int, int] = {}  # place of the newest character -> match length
        self.bars = self.part_from = 0
        self.closed = False
        self.last_bar = -FAR
        self.lines: list[int] = []  # the last bar lines (_same_bars)
        self.run = False  # the last two bars were the same

    def push(self, ids: np.ndarray) -> None:
        if len(ids) != 1:
            raise ValueError(f"a one-stream cache takes one character a step, not {len(ids)}")
        self.push_one(int(ids[0]))

    def push_one(self, ch: int) -> None:
        if len(self.hist) == self.window:
            self._drop_older_half()
        hist, t = self.hist, len(self.hist)
        prev = hist[-1] if t else NO_CHAR
        old, cap = self.cands, self.rule.cap
        places = self.places.setdefault(ch, [])
        self.cands = {i: min(old.get(i - 1, 0) + 1, cap) for i in places}
        ev = self.tables.events_s[prev][ch]
        self.bars += ev & 1
        if ev & 2:
            self.part_from = self.bars
        self.closed = bool(ev & 4) or (self.closed and bool(ev & 8))
        self.bar_no.append(self.bars)
        self.part_bar.append(self.bars - self.part_from)
        if ch == self.tables.bar_line:
            self.last_bar = t
        if ev & 3:
            self.run = not ev & 2 and _same_bars(hist, self.lines, t, self.tables.ignored)
            self.lines = _bar_lines_after(self.lines, t, ev)
        hist.append(ch)
        places.append(t)

    def _drop_older_half(self) -> None:
        drop = len(self.hist) - self.window // 2
        del self.hist[:drop], self.bar_no[:drop], self.part_bar[:drop]
        self.places = {ch: [i - drop for i in p if i >= drop] for ch, p in self.places.items()}
        self.cands = {i - drop: n for i, n in self.cands.items() if i >= drop}
        self.last_bar -= drop
        self.lines, self.run = [], False  # as CopyCache does

    def push_text(self, ids: np.ndarray) -> None:
        for i in ids:
            self.push_one(int(i))

    def reset(self, rows: np.ndarray | list[int]) -> None:
        if np.arange(1)[rows].size:  # rows as CopyCache reads them: positions or a bool mask
            self.hist[:] = [NO_CHAR] * len(self.hist)
            self.places, self.cands = {}, {}
            self.lines, self.run = [], False

    def select(self, keep: np.ndarray) -> None:
        if not keep.all():
            raise ValueError("a one-stream cache cannot drop its stream")

    def predict(self, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        hist, t, size = self.hist, len(self.hist), self.vocab_size
        if t < 2 or not self.cands:
            return np.zeros(1), np.zeros((1, size))
        tab, bar_no, part_bar = self.tables, self.bar_no, self.part_bar
        match_w, bar_w, aligned_w, far = tab.match_s, tab.bar_s, tab.aligned_w, len(tab.bar_s) - 1
        bars, since_bar = self.bars, t - 1 - self.last_bar
        bar_of_part = bars - self.part_from
        in_part = tab.in_part_s[min(bar_of_part, len(tab.in_part_s) - 1)]
        nexts, weights = [], []
        run, loop_w = self.run, tab.loop_w
        for i, n in self.cands.items():  # oldest first, as CopyCache adds them
            back = min(bars - bar_no[i], far)
            e = match_w[n] * bar_w[back]
            if n > since_bar:
                e *= aligned_w
            if part_bar[i] == bar_of_part:
                e *= in_part
            if run and back in (1, 2):
                e *= loop_w
            nexts.append(hist[i + 1])
            weights.append(e)
        p_copy = np.asarray(np.bincount(nexts, weights, size), np.float64).reshape(1, size)
        mass = p_copy.sum(axis=1)
        p_copy /= np.maximum(mass, 1e-300)[:, None]
        if allowed is not None:
            p_copy *= allowed
        last = hist[-1]
        sentinel = tab.sentinel_s[hist[-2]][last]
        if self.closed and last == tab.line_break:
            sentinel = tab.after_part_line_w
        return self.rule.weight * mass / (mass + sentinel), p_copy


class _CopyTables(ctypes.Structure):
    _fields_ = [
        ("vocab", ctypes.c_int32), ("cap", ctypes.c_int32), ("far", ctypes.c_int32),
        ("in_part_last", ctypes.c_int32), ("bar_line", ctypes.c_int32),
        ("line_break", ctypes.c_int32), ("events", ctypes.c_void_p),
        ("sentinel_w", ctypes.c_void_p), ("match_w", ctypes.c_void_p),
        ("bar_w", ctypes.c_void_p), ("in_part_w", ctypes.c_void_p), ("ignored", ctypes.c_void_p),
        ("aligned_w", ctypes.c_double), ("loop_w", ctypes.c_double),
        ("after_part_line_w", ctypes.c_double), ("weight", ctypes.c_double),
    ]  # fmt: skip


class _CopyState(ctypes.Structure):
    _fields_ = [
        ("batch", ctypes.c_int32), ("window", ctypes.c_int32), ("t", ctypes.c_int32),
        ("pad", ctypes.c_int32),
        *((name, ctypes.c_void_p) for name in (
            "hist", "match", "bar_no", "part_bar", "bars", "part_from", "closed", "run",
            "last_bar", "lines", "n_lines",
        )),
    ]  # fmt: skip


@lru_cache(maxsize=1)
def _copy_kernel() -> ctypes.CDLL:
    """The C kernels with the copy model's signatures set (once, not per tune)."""
    lib = native.library()
    assert lib is not None, "the C kernels are not built"
    lib.copy_push.restype = ctypes.c_int
    lib.copy_push.argtypes = [ctypes.c_void_p] * 3
    lib.copy_predict.restype = None
    lib.copy_predict.argtypes = [ctypes.c_void_p] * 5
    lib.draw_one.restype = ctypes.c_int64
    lib.draw_one.argtypes = [*[ctypes.c_void_p] * 4, ctypes.c_double]
    return lib


@lru_cache(maxsize=16)
def _native_tables(vocab: Vocabulary, rule: CopyRule) -> tuple[_CopyTables, tuple[np.ndarray, ...]]:
    """The C kernel's view of _tables (and the arrays it points into, kept alive with it)."""
    t = _tables(vocab, rule)
    ignored = np.array([i in t.ignored for i in range(len(vocab))], np.uint8)
    arrays = (t.events, t.sentinel_w, t.match_w, t.bar_w, t.in_part_w, ignored)
    assert all(a.flags.c_contiguous for a in arrays)
    c = _CopyTables(
        len(vocab), rule.cap, len(t.bar_w) - 1, len(t.in_part_w) - 1, t.bar_line,
        t.line_break, *(a.ctypes.data for a in arrays), t.aligned_w, t.loop_w,
        t.after_part_line_w, rule.weight,
    )  # fmt: skip
    return c, arrays


_ADDRESSES: dict[int, tuple[np.ndarray, int]] = {}


def _address(a: np.ndarray) -> int:
    """The address of a long-lived array's data (the grammar's masks), found once: numpy's
    `.ctypes.data` costs a microsecond a call. The array is kept with it, so that its id stays
    its own; at most a few thousand are kept."""
    found = _ADDRESSES.get(id(a))
    if found is None or found[0] is not a:
        if len(_ADDRESSES) >= 4096:
            _ADDRESSES.clear()
        assert a.dtype == np.bool_ and a.flags.c_contiguous
        found = _ADDRESSES[id(a)] = (a, a.ctypes.data)
    return found[1]


class NativeCopy(CopyCache):
    """CopyCache with its push and predict in C (core/copy_kernel.c), on the same arrays: the
    same numbers bit for bit, at a few microseconds a step where the vectorised passes took
    ~95 us for 16 streams and the one-stream walk ~20 us. The loop test's last bar lines are
    kept as arrays (`line_at`, `n_lines`) rather than lists."""

    def __init__(self, batch: int, vocab: Vocabulary, rule: CopyRule, window: int = 4096):
        super().__init__(batch, vocab, rule, window)
        self.lib = _copy_kernel()
        self.tables, self._keep = _native_tables(vocab, rule)
        self.tables_ref = ctypes.addressof(self.tables)
        self.line_at = np.zeros((batch, 2), np.int64)
        self.n_lines = np.zeros(batch, np.int32)
        self._bind()

    def _bind(self) -> None:
        """Points the kernel's state at this cache's arrays (again after `select`)."""
        arrays: tuple[np.ndarray, ...] = (
            self.hist, self.match, self.bar_no, self.part_bar, self.bars, self.part_from,
            self.closed, self.run, self.last_bar, self.line_at, self.n_lines,
        )  # fmt: skip
        dtypes = (np.int32, np.int16, np.int32, np.int32, np.int32, np.int32, np.bool_,
                  np.bool_, np.int64, np.int64, np.int32)  # fmt: skip
        for a, dtype in zip(arrays, dtypes, strict=True):
            assert a.dtype == dtype and a.flags.c_contiguous, (a.dtype, dtype)
        self.state = _CopyState(
            len(self.hist), self.window, self.t, 0, *(a.ctypes.data for a in arrays)
        )
        self.state_ref = ctypes.addressof(self.state)
        # A step's characters are copied here for the kernel: ~0.1 us, where finding the
        # address of the array given took ~0.9.
        self.ids = np.zeros(len(self.hist), np.int64)
        self.ids_at = self.ids.ctypes.data

    def push(self, ids: np.ndarray) -> None:
        if len(ids) != len(self.hist):
            raise ValueError(f"{len(self.hist)} streams, {len(ids)} characters")
        self.ids[:] = ids
        if self.lib.copy_push(self.tables_ref, self.state_ref, self.ids_at) != 0:
            raise IndexError("character id outside the vocabulary")
        self.t = self.state.t

    def reset(self, rows: np.ndarray | list[int]) -> None:
        self.hist[rows, : self.t] = NO_CHAR
        self.match[rows] = 0
        self.n_lines[rows] = 0
        self.run[rows] = False

    def select(self, keep: np.ndarray) -> None:
        super().select(keep)
        self.line_at, self.n_lines = self.line_at[keep], self.n_lines[keep]
        self._bind()

    def predict(self, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        batch = len(self.hist)
        lam, p_copy = np.empty(batch), np.empty((batch, self.vocab_size))
        mask = None if allowed is None else _address(allowed)
        self.lib.copy_predict(
            self.tables_ref, self.state_ref, lam.ctypes.data, p_copy.ctypes.data, mask
        )
        return lam, p_copy


class _DrawSpec(ctypes.Structure):
    _fields_ = [
        ("vocab", ctypes.c_int32), ("top_k", ctypes.c_int32), ("temperature", ctypes.c_double),
        ("tables", ctypes.c_void_p), ("z", ctypes.c_void_p), ("w", ctypes.c_void_p),
        ("p", ctypes.c_void_p),
    ]  # fmt: skip


class NativeDraw:
    """One stream's draw at a temperature above 0 (Sampler._draw's, its copy model's prediction
    included) in one C call (core/copy_kernel.c draw_one): the same draws (but where libm's
    exp and numpy's round a last bit apart at a boundary: ~1e-15 a draw), in ~3.7 us where
    numpy's draw and the copy's predict took ~19 (a tune of 700 characters in the copy).
    `draw` returns -1, without a draw, where a logit is NaN or the largest is not finite (a
    damaged model): numpy's draw handles those."""

    def __init__(self, vocab_size: int, temperature: float, top_k: int, cache: NativeCopy | None):
        if not temperature > 0:
            raise ValueError("greedy draws are numpy's")
        self.lib = _copy_kernel()
        self.vocab_size, self.cache = vocab_size, cache
        self.work = np.empty((3, vocab_size))
        z, w, p = (row.ctypes.data for row in self.work)
        tables = None if cache is None else cache.tables_ref
        top_k = min(top_k, vocab_size)  # V or more keep all (and a C int holds it)
        self.spec = _DrawSpec(vocab_size, top_k, temperature, tables, z, w, p)
        self.spec_ref = ctypes.addressof(self.spec)

    def draw(self, logits: np.ndarray, allowed: np.ndarray | None, u: float) -> int:
        """The character drawn at uniform `u` from one row of float32 `logits` (-1 for numpy's
        draw; also for logits of another type or shape), with `allowed` (bool, the grammar's)."""
        if (
            logits.dtype != np.float32
            or logits.size != self.vocab_size
            or not logits.flags.c_contiguous
        ):
            return -1
        state = None if self.cache is None else self.cache.state_ref
        mask = None if allowed is None else _address(allowed)
        drawn: int = self.lib.draw_one(self.spec_ref, state, logits.ctypes.data, mask, u)
        return drawn
