"""Fast sampling: the trained LSTM stepped one character at a time in numpy, its distribution
mixed with a copy model of the tune so far, drawn under the ABC grammar's mask.

Calling `nn.LSTM` once per character spends almost all its time in per-call framework overhead
(about 140 characters per second for the seed-size model on 2 CPU cores). Here the embedding and
the first layer's input weights fold into one table lookup per character, and each step is one
matrix product per layer on pre-transposed float32 weights.

Each draw is an exact categorical draw (inverse CDF, one uniform per stream and step) from

    p(c) ∝ allowed(c) * [(1 - lam) * p_model(c) + lam * p_copy(c)]

where p_model is the tempered softmax, p_copy the copy model of core/copy_model.py (a pointer to
what followed earlier places of this tune that match its last characters, preferring the same
bar of an earlier phrase or part) and lam its gate, at most `SampleOptions.copy` (0: the model
alone, drawn exactly as before the copy existed). Temperature shapes the model's part only: the
copy is a memory of what this tune already played, not a guess to sharpen or flatten. Top-k
keeps the k most likely characters of the mixture, and temperature 0 takes the most likely
character of the untempered mixture (so top-k 1 at temperature 1 is greedy, as without copy);
greedy decoding with the copy on tends to loop on a bar, being the most likely thing to do.
With the shipped model the mixture lowers the held-out bits per character of the default
corpus's validation tunes from 1.438 to 1.165.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from core.abc_grammar import HEADER_LIMIT, AbcGrammar, draw_parts, key_values
from core.copy_model import (
    CopyCache,
    CopyRule,
    NativeCopy,
    NativeDraw,
    OneStreamCopy,
    copy_cache,
    mix_weights,
)
from core.corpus import Vocabulary, key_and_settings, read_key
from core.grammar_table import load as load_table
from core.model import CharLSTM
from core.music_analysis import NO_METER
from core.native import library as native_library
from core.native import problem as native_problem
from core.paths import shipped_grammar_table_path
from core.q4 import Q4Step
from core.q4 import available as int4_supported
from core.sample_options import DEFAULT_PROMPT as DEFAULT_PROMPT  # their home before core.engine
from core.sample_options import MAX_CHARS_LIMIT as MAX_CHARS_LIMIT
from core.sample_options import SampleOptions as SampleOptions
from core.sample_options import random_seed as random_seed

TUNE_END = "\n\n"
PROMPT_STATES = 8  # prompts whose model state is kept (Sampler._primed)


class Uniforms(Protocol):
    """What a draw reads of a stream's generator: one uniform in [0, 1) a call."""

    def random(self) -> float: ...


class _Taken:
    """A uniform already taken from a stream's generator, for a draw that reads one."""

    def __init__(self, u: float):
        self.u = u

    def random(self) -> float:
        return self.u


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def int8_supported() -> bool:
    return "fbgemm" in torch.backends.quantized.supported_engines or (
        "x86" in torch.backends.quantized.supported_engines
    )


class _Int8Linear:
    """x @ W.T with W quantised per output channel to int8 (fbgemm's dynamic quantised GEMM):
    a quarter of the memory traffic of float32, which is what bounds one stream's step.

    Activations are quantised to 7 bits (`reduce_range`): on x86 without VNNI (AVX2 only),
    fbgemm multiplies them with `vpmaddubsw`, whose int16 pair sums saturate with 8-bit
    activations (255 * 127 * 2 > 32767), and the logits were then off by up to a fifth of their
    range (pytorch#44939). With 7 bits every x86 kernel computes the same numbers, so a seed
    draws the same tune on any machine (tests/test_sample.py checks AVX2 and the native set)."""

    def __init__(self, weight: np.ndarray):  # weight: (out, in), torch layout
        w = torch.from_numpy(np.ascontiguousarray(weight))
        scales = (w.abs().amax(dim=1) / 127.0).clamp_min(1e-8).double()
        zeros = torch.zeros(w.shape[0], dtype=torch.long)
        with warnings.catch_warnings():  # torch marks the eager quantisation API deprecated
            warnings.simplefilter("ignore")
            q = torch.quantize_per_channel(w, scales, zeros, 0, torch.qint8)
            self.packed = torch.ops.quantized.linear_prepack(q, torch.zeros(w.shape[0]))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        # No grad-mode context needed (nothing here requires grad); entering one costs ~30 us.
        x_t = torch.from_numpy(x)
        y: np.ndarray = torch.ops.quantized.linear_dynamic(x_t, self.packed, True).numpy()
        return y


class _Float32Linear:
    def __init__(self, weight: np.ndarray):
        self.w_t = np.ascontiguousarray(weight.T)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y: np.ndarray = x @ self.w_t
        return y


@dataclass
class StreamState:
    """LSTM state of a batch of streams: h, c per layer, and for one-layer models the pending
    recurrent product W_hh @ h, computed in the same matrix product as the logits."""

    h: np.ndarray  # (layers, B, H)
    c: np.ndarray  # (layers, B, H)
    rec: np.ndarray | None = None  # (B, 4H)

    def select(self, keep: np.ndarray) -> StreamState:
        rec = self.rec[keep] if self.rec is not None else None
        return StreamState(self.h[:, keep], self.c[:, keep], rec)


class Sampler:
    """Holds numpy copies of a model's weights and steps any number of streams at once.

    precision "fp32" reproduces the model's arithmetic (to float rounding); "int8" quantises the
    weight matrices per output channel, about 1.5x as fast for one stream and 4x for a batch of
    16; "int4" (one-layer models, where the kernel of core/q4.py is built) quantises them in
    groups of 64 columns and runs the whole step in C, about 3x as fast as int8 for one stream
    of the seed-size model; "auto" picks int4, else int8 where fbgemm is available, for models
    of 512 hidden units or more, and float32 for smaller ones (they are fast enough)."""

    def __init__(
        self,
        model: CharLSTM,
        vocab: Vocabulary,
        precision: str = "auto",
        keys: frozenset[str] | None = None,
        key_spellings: Mapping[str, str] | None = None,
    ):
        cfg = model.config
        if cfg.vocab_size != len(vocab):
            raise ValueError("the vocabulary does not match the model")
        self.note = ""  # said to the user beside the precision (the CLI does)
        if precision == "auto":
            precision = "fp32"
            large, one_layer = cfg.hidden_size >= 512, cfg.num_layers == 1
            if large and one_layer and int4_supported():
                precision = "int4"
            elif large and int8_supported():
                precision = "int8"
            if large and one_layer and precision != "int4":
                self.note = (f"{precision}, not int4: the C kernels are not in use "
                             f"({native_problem()}); slower, and a seed draws other tunes")  # fmt: skip
        if precision not in ("fp32", "int8", "int4"):
            raise ValueError(f"precision must be auto, fp32, int8 or int4, not {precision!r}")
        if precision == "int4" and cfg.num_layers != 1:
            raise ValueError("int4 is for one-layer models")
        if precision == "int4" and not int4_supported():
            raise ValueError(f"int4 needs the C kernels: {native_problem()}")
        self.precision = precision
        linear: type[_Int8Linear | _Float32Linear] = (
            _Int8Linear if precision == "int8" else _Float32Linear
        )
        self.vocab = vocab
        H = self.hidden = cfg.hidden_size
        self.layers = cfg.num_layers
        sd = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}
        # Gate rows reordered from torch's (i, f, g, o) to (i, f, o, g): one sigmoid call, one tanh.
        perm = np.r_[0 : 2 * H, 3 * H : 4 * H, 2 * H : 3 * H]
        # Layer 0: embedding, input weights and both biases folded into a (V, 4H) table.
        self.in_table = (
            sd["embedding.weight"] @ sd["lstm.weight_ih_l0"][perm].T
            + sd["lstm.bias_ih_l0"][perm]
            + sd["lstm.bias_hh_l0"][perm]
        )
        w_hh0 = sd["lstm.weight_hh_l0"][perm]
        w_head = sd["head.weight"]
        self.b_out = sd["head.bias"]
        self.q4: Q4Step | None = None
        if precision == "int4":
            self.q4 = Q4Step(self.in_table, w_hh0, w_head, self.b_out)
        elif self.layers == 1:
            # The logits of step t and the recurrent input of step t+1 both read h_t: one product.
            self.fused = linear(np.concatenate([w_hh0, w_head]))
        else:
            self.rec0 = linear(w_hh0)
            # Upper layers: [input, hidden] @ [W_ih | W_hh].T as one product.
            self.rec_up = [
                linear(
                    np.concatenate([sd[f"lstm.weight_ih_l{i}"], sd[f"lstm.weight_hh_l{i}"]], 1)[
                        perm
                    ]
                )
                for i in range(1, self.layers)
            ]
            self.b_up = [
                (sd[f"lstm.bias_ih_l{i}"] + sd[f"lstm.bias_hh_l{i}"])[perm]
                for i in range(1, self.layers)
            ]
            self.head = linear(w_head)
        self.newline = vocab.char2idx.get("\n")
        # The keys (names) the grammar allows, its training corpus's; None: any. With
        # key_spellings, those keys as that corpus writes them (core.corpus.key_spellings).
        self.keys = frozenset(key_spellings) if key_spellings and keys is None else keys
        self.key_spellings = {  # only spellings the grammar writes: a prompt read so stays in it
            name: value for name, value in (key_spellings or {}).items()
            if value in key_values([name], vocab.char2idx)
        }  # fmt: skip
        self._grammar: AbcGrammar | None = None
        self._rules: tuple[AbcGrammar, AbcGrammar] | None = None  # see _rule_grammars
        self._biases: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # see _masked_bias
        self._prompt_states: dict[tuple[str, int], tuple[np.ndarray, StreamState]] = {}
        self._prompt_lock = threading.Lock()

    @property
    def grammar(self) -> AbcGrammar:
        """The ABC grammar for this vocabulary (and `keys`): its rows come from the shipped
        state table where that is this grammar's (core/grammar_table.py), else are built as
        streams visit states."""
        if self._grammar is None:
            grammar = AbcGrammar(self.vocab, keys=self.keys)
            # The shipped table where it is this grammar's: its rows are looked up, not built.
            load_table(grammar, shipped_grammar_table_path())
            self._grammar = grammar
        return self._grammar

    def zero_state(self, batch: int) -> StreamState:
        shape = (self.layers, batch, self.hidden)
        rec = np.zeros((batch, 4 * self.hidden), np.float32) if self.layers == 1 else None
        return StreamState(np.zeros(shape, np.float32), np.zeros(shape, np.float32), rec)

    def _cell(self, gates: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        H = self.hidden
        ifo = _sigmoid(gates[:, : 3 * H])
        c_new = ifo[:, H : 2 * H] * c + ifo[:, :H] * np.tanh(gates[:, 3 * H :])
        return ifo[:, 2 * H :] * np.tanh(c_new), c_new

    def step(
        self, ids: np.ndarray, st: StreamState, bias: np.ndarray | None = None, ahead: bool = False
    ) -> np.ndarray:
        """Advance every stream by its character `ids[b]`, updating `st`; returns the logits.
        `bias` (not for int4): the output layer's bias with a grammar's mask in it
        (_masked_bias), for logits that come masked. `ahead` (int4): the step may return before
        st.rec is made (Q4Step.step): the next step, or `settle`, finishes it."""
        h, c = st.h, st.c
        if self.q4 is not None and st.rec is not None:
            return self.q4.step(ids, h, c, st.rec, ahead)  # h, c: (1, B, H)
        if bias is None:
            bias = self.b_out
        if st.rec is not None:
            h[0], c[0] = self._cell(self.in_table[ids] + st.rec, c[0])
            out = self.fused(h[0])
            st.rec = out[:, : 4 * self.hidden]
            logits: np.ndarray = out[:, 4 * self.hidden :] + bias
            return logits
        h[0], c[0] = self._cell(self.in_table[ids] + self.rec0(h[0]), c[0])
        for layer in range(1, self.layers):
            x = np.concatenate([h[layer - 1], h[layer]], axis=1)
            gates = self.rec_up[layer - 1](x) + self.b_up[layer - 1]
            h[layer], c[layer] = self._cell(gates, c[layer])
        top: np.ndarray = self.head(h[-1]) + bias
        return top

    def settle(self) -> None:
        """Makes the state of a step taken `ahead` whole."""
        if self.q4 is not None:
            self.q4.settle()

    def _masked_bias(self, forbid: np.ndarray) -> np.ndarray | None:
        """The output layer's bias with -inf where `forbid` (one stream's mask as the grammar
        gives it: 0 or -inf, AbcGrammar.masked) has it, once per mask; None for int4 (its step
        adds the bias in C). The step's logits then come masked: the same floats as masking
        them after it (np.where in _draw), without that call at every character, which cost a
        character of the shipped model ~1 us of the grammar's ~12 (issue 14)."""
        if self.q4 is not None:
            return None
        found = self._biases.get(id(forbid))
        if found is None or found[0] is not forbid:  # (kept with it, so that its id stays its own)
            found = self._biases[id(forbid)] = (forbid, (self.b_out + forbid[0]).astype(np.float32))
        return found[1]

    def _draw(
        self,
        logits: np.ndarray,
        opts: SampleOptions,
        rngs: Sequence[Uniforms],
        allowed: np.ndarray | None = None,
        copy: tuple[np.ndarray, np.ndarray] | None = None,
        *,
        never_empty: bool = False,
        forbid: np.ndarray | None = None,
        keep: np.ndarray | None = None,
        masked: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> np.ndarray:
        """One exact categorical draw per row (inverse CDF) from the tempered softmax, mixed
        with `copy` = (lam, p_copy) where given, then top-k filtered; with `allowed` (bool,
        like logits), over the allowed characters only (renormalised). A row with lam 0 draws
        exactly as without `copy`. An empty row of `allowed` allows all; `never_empty` skips
        looking for one (the grammar's masks never are). `forbid`, float64 like logits with
        -inf where `allowed` is False (the grammar's, for one stream; with `allowed`, never
        empty), masks the logits in one call instead of two: the same floats. `keep`, float64
        like logits with 1 where `allowed` (the grammar's), masks the copy's distribution (the
        same floats as the bool mask, without numpy's cast). `masked` = (allowed, forbid), one
        stream's, says the logits come masked already (a step with _masked_bias): its rows mask
        them again where a logit is not finite (a damaged model's NaN or inf, which adding -inf
        leaves NaN), before any uniform is taken, as the logits unmasked would be (one stream
        only: the grammar masks a batch's logits here). One stream's draw, not greedy, is made in
        C where the kernels are built (NativeDraw: the same draws; stream_batch)."""
        if masked is not None and opts.temperature == 0:
            allowed, forbid, masked = *masked, None
        if forbid is not None and allowed is not None:
            z = np.where(allowed, logits, forbid)
        else:
            z = logits.astype(np.float64)
        if allowed is not None and forbid is None:
            if not never_empty and not allowed.any(axis=1).all():  # an empty row allows all
                allowed = allowed | ~allowed.any(axis=1, keepdims=True)
            z = np.where(allowed, z, -np.inf)
        if copy is not None and not copy[0].any():
            copy = None
        if opts.temperature == 0:
            return self._greedy(z, allowed, copy)
        if opts.temperature != 1:
            z /= opts.temperature
        w = np.exp(z - z.max(axis=1, keepdims=True))
        if copy is not None:
            w = mix_weights(w, *copy, keep if keep is not None else allowed)
        if opts.top_k and opts.top_k < z.shape[1]:
            # Rank by the mixture where a row mixes, by the logits (as without copy) elsewhere.
            rank = z if copy is None else np.where(copy[0][:, None] > 0, w, z)
            kth = np.partition(rank, -opts.top_k, axis=1)[:, -opts.top_k][:, None]
            w = np.where(rank >= kth, w, 0.0)
        cdf = w.cumsum(axis=1)
        if len(rngs) == 1:  # one stream: the same draw in a few scalar steps
            row = cdf[0]
            # Not a total a finite row gives (its largest weighs 1): NaN, or 0 where top-k
            # ranked NaNs and kept nothing.
            if masked is not None and not 0.0 < row[-1] < math.inf:
                return self._draw(logits, opts, rngs, masked[0], copy, never_empty=True,
                                  forbid=masked[1], keep=keep)  # fmt: skip
            return np.array([min(int(row.searchsorted(rngs[0].random() * row[-1], "right")),
                                 len(row) - 1)])  # fmt: skip
        u = np.array([r.random() for r in rngs]) * cdf[:, -1]
        drawn: np.ndarray = np.minimum((cdf <= u[:, None]).sum(axis=1), z.shape[1] - 1)
        return drawn

    @staticmethod
    def _greedy(
        z: np.ndarray, allowed: np.ndarray | None, copy: tuple[np.ndarray, np.ndarray] | None
    ) -> np.ndarray:
        """The most likely character: of the model's logits, or of the untempered mixture for
        rows that copy (the others keep the logits' argmax, ties and all)."""
        best: np.ndarray = z.argmax(axis=1)
        if copy is None:
            return best
        mixed = mix_weights(np.exp(z - z.max(axis=1, keepdims=True)), *copy, allowed)
        best = np.where(copy[0] > 0, mixed.argmax(axis=1), best)
        return best

    @staticmethod
    def _forced(only: int, rngs: Sequence[Uniforms], opts: SampleOptions) -> np.ndarray | None:
        """One stream's draw where the grammar leaves it one character, `only` (a bar line
        that must come, a header's next letter; 9 % of steps; -1: a choice): `_draw` could only
        give that, so the copy model and the draw are skipped, and the uniform the draw takes
        is taken (the later draws stay as they were). None where there is a choice."""
        if only < 0:
            return None
        if opts.temperature != 0:
            rngs[0].random()
        return np.array([only])

    def model_prompt(self, prompt: str) -> str:
        """The prompt as the model and the grammar read it. The tune keeps it as written.
        - The header's M:, L: and K: values without the spaces around them ("M: 3/4"), which
          the grammar, reading values as the corpus writes them, did not follow.
        - A K: naming a key of the corpus in another spelling ("K:G", "K:Ador") as the corpus
          writes it ("K:G Major", "K:A Dorian"): given "K:G" the default model wrote a header
          of its own after it, and the grammar did not follow "K:Ador".
        - A K: line's settings after its key (`clef=bass`, `transpose=-2`: how the tune is
          drawn or played) left out: the grammar writes keys alone, as the corpus does.
        - A header begun without its X: line with one, as every tune of a corpus begins (the
          grammar, reading "K:G" as the prompt's first line, kept no bars).
        - A header that ends (K:) without M: with abc2midi's metre then, M:4/4: the grammar
          keeps bars of that length, and the model reads a header like its corpus's (before,
          every bar of such a tune was free, and abc2midi found most of them short or long)."""
        lines = prompt.split("\n")
        inserts = []  # where a header without M: gets one: before its first L: or K: line
        in_header, has_m, first = True, False, None
        for i, line in enumerate(lines[:-1]):  # the last line is not complete
            if line.startswith("X:"):  # a tune's header starts
                in_header, has_m, first = True, False, None
            if line[:2] not in ("M:", "L:", "K:"):
                continue
            value = line[2:].split("%")[0].strip()
            if line.startswith("K:"):  # the key alone: the model and grammar read no settings
                value = key_and_settings(value)[0]
            key = read_key(value) if line.startswith("K:") and value else None
            spelled = self.key_spellings.get(key.name) if key is not None and key.exact else None
            lines[i] = line[:2] + (spelled or value)
            if in_header:
                has_m = has_m or line.startswith("M:")
                first = i if first is None else first
                if line.startswith("K:"):  # the header's end
                    if not has_m:
                        inserts.append(first)
                    in_header = False
        for at in reversed(inserts):
            lines.insert(at, "M:" + NO_METER)
        if lines[0][:1].isalpha() and lines[0][1:2] == ":" and not lines[0].startswith("X:"):
            lines.insert(0, "X:1")  # a header begun without X: (abc2midi adds one too)
        return "\n".join(lines)

    def prompt_problem(self, prompt: str) -> str | None:
        """Why the grammar cannot follow the prompt, where it cannot (else None), `prompt` as
        the model reads it (model_prompt):
        - a tune's K: line (tunes end at a blank line) names no key the grammar writes for this
          model (one its corpus lacks, or more words than a key): the stream stayed in the
          header (and in the next tune's), and the model wrote header lines in the tune's body,
          which abc2midi rejects, in another key;
        - it ends in a K: line the grammar does not read as a key yet (no line break after its
          settings): the model wrote header lines for the tune;
        - its last line has a bar longer than the metre allows, which the grammar leaves: the
          model went on unchecked to the line's end (bars off, a tie to another note). Where
          it leaves for another reason (the form rules, a sign or an ending written where the
          grammar puts none: 2.2 % of cuts of the corpus's own tunes; 0.4 % are refused), the
          stream goes its own way to the line's end, as it did."""
        problem = self._header_problem(prompt)
        if problem is not None:
            return problem
        gram = self.grammar
        state = gram.start(prompt)
        line = prompt[prompt.rfind("\n") + 1 :]
        if gram.is_free(state) and not gram.in_body(state) and line.startswith("K:"):
            return (
                f"the prompt ends in its K: line ({line!r}) before the grammar reads a key in it: "
                "end that line with a line break (\\n)"
            )
        if not (gram.is_free(state) and gram.in_body(state)):  # (left_at's own first look)
            return None
        bars, syntax = self._rule_grammars()
        at = bars.left_at(prompt)
        if at is None or syntax.left_at(prompt) is not None:
            return None  # not the bars that it leaves at
        column = at - (len(prompt) - len(line)) + 1
        return (
            f"the grammar cannot follow the prompt's last line from column {column} "
            f"({prompt[at]!r} in {line!r}): a bar longer than its metre allows"
        )

    def _rule_grammars(self) -> tuple[AbcGrammar, AbcGrammar]:
        """The grammar's syntax and bars alone (no form or tonic rules), and its syntax alone:
        what prompt_problem tells a long bar by."""
        if self._rules is None:
            self._rules = (
                AbcGrammar(self.vocab, form=False, tonic=False, keys=self.keys),
                AbcGrammar(self.vocab, metre=False, form=False, tonic=False, keys=self.keys),
            )
        return self._rules

    def _header_problem(self, prompt: str) -> str | None:
        gram = self.grammar
        for tune in prompt.split(TUNE_END):
            lines = tune.split("\n")
            at = next((i for i, line in enumerate(lines[:-1]) if line.startswith("K:")), None)
            if at is None or gram.in_body(gram.start("\n".join(lines[: at + 1]) + "\n")):
                continue  # no header's end yet (the model writes it), or one the grammar read
            value = lines[at][2:].split("%")[0].strip()
            key = read_key(value)
            if key is not None and not key.exact:
                plain = key.tonic + (f" {key.mode}" if key.mode else "")
                return f"K:{value}: the grammar reads a key alone on the K: line (K:{plain}, say)"
            if key is None or self.keys is None or key.name not in self.keys:
                # Those it writes: a corpus's K: values may name no key ("HP", "C ^f^c^a").
                keys = sorted(self.keys & gram.key_names) if self.keys else []
                known = f"; its corpus's keys: {', '.join(keys)}" if keys else ""
                return f"K:{value} is not a key the grammar can write for this model{known}"
        return None

    def _primed(self, prompt: str, batch: int) -> tuple[np.ndarray, StreamState]:
        """State after reading the prompt (an empty prompt reads a tune separator instead).
        The last few prompts' states are kept and copied: every tune read "X:" again, two
        steps of ~40 us each, where a tune of the shipped model takes ~20 ms."""
        found = self._prompt_states.get((prompt, batch))
        if found is None:
            text = prompt or (TUNE_END if self.newline is not None else self.vocab.chars[0])
            st = self.zero_state(batch)
            logits = np.zeros((batch, len(self.vocab)), np.float32)
            for i in self.vocab.encode(text):
                logits = self.step(np.full(batch, i), st)
            found = (logits, st)
            with self._prompt_lock:  # samplers may run in several threads
                while len(self._prompt_states) >= PROMPT_STATES:
                    del self._prompt_states[next(iter(self._prompt_states))]  # the oldest
                self._prompt_states[(prompt, batch)] = found
        logits, st = found
        rec = None if st.rec is None else st.rec.copy()
        return logits.copy(), StreamState(st.h.copy(), st.c.copy(), rec)

    def stream_batch(self, n: int, opts: SampleOptions) -> Iterator[tuple[int, str]]:
        """Sample `n` tunes at once, yielding (stream index, character) as they are drawn.
        Stream b draws from its own generator seeded with seed + b, so it is reproducible."""
        opts.validate(self.vocab)
        base = opts.seed if opts.seed is not None else random_seed()
        rngs = [np.random.default_rng(base + b) for b in range(n)]
        if n == 0 or opts.max_chars == 0:
            return
        prompt = self.model_prompt(opts.prompt)
        problem = self.prompt_problem(prompt) if opts.grammar else None
        if problem is not None:
            raise ValueError(problem)
        logits, st = self._primed(prompt, n)
        cache = self._copy_cache(n, opts, prompt)
        active = list(range(n))
        tails = [prompt[-1:]] * n  # last character so far, to spot the blank line
        has_body = [bool(prompt.strip())] * n
        chars = self.vocab.chars
        gram = self.grammar if opts.grammar else None
        # At least the parts the prompt has begun: with fewer, its own part left the grammar.
        begun = gram.start(prompt).parts + 1 if gram else 0
        states = [gram.start(prompt, max(stream_parts(base + b), begun)) for b in range(n)] if gram else []  # fmt: skip
        # One stream (or a batch's last) reads its masks as the grammar keeps them for it
        # (AbcGrammar.mask_one), with the one character a mask allows, if one (`only`).
        # Its logits then come masked from the step, where not int4 (`bias`: _masked_bias;
        # `masked`: the mask's rows, for its draw).
        allowed, forbid, only, ones, bias = None, None, -1, None, None
        masked: tuple[np.ndarray, np.ndarray] | None = None
        # Streams whose header has taken HEADER_LIMIT characters drawn: steered to its K:. Each
        # stream's header is looked at that many characters into its tune (`due`: by step).
        overdue: list[int] = []
        due: dict[int, list[int]] = {HEADER_LIMIT: list(range(n))}
        began = [0] * n  # the step each stream's tune began at
        # One stream's draw in C where it can be (it masks the logits it is given itself).
        in_c = self._native_draw(n, opts, cache)
        if gram and n == 1:
            _, allowed, forbid, only, ones = gram.mask_one(states[0])
        elif gram:
            allowed = gram.masks(states)
        for step_no in range(opts.max_chars):
            rows: Sequence[Uniforms] = [rngs[b] for b in active] if n > 1 else rngs
            ids = self._forced(only, rows, opts)
            if ids is None and in_c is not None:
                u = rows[0].random()
                drawn = in_c.draw(logits, allowed, u)
                if drawn >= 0:
                    ids = np.array([drawn])
                else:  # numpy's draw below decides, with the uniform taken
                    rows = [_Taken(u)]
            if ids is None:
                if masked is not None:  # the logits masked already, the copy masked as predicted
                    copy = cache.predict(masked[0]) if cache else None
                    ids = self._draw(logits, opts, rows, None, copy, masked=masked)
                else:
                    copy = cache.predict() if cache else None
                    ids = self._draw(logits, opts, rows, allowed, copy, never_empty=True,
                                     forbid=forbid, keep=ones)  # fmt: skip
            tune_ends = []
            for j, (b, i) in enumerate(zip(active, ids.tolist(), strict=True)):
                ch = chars[i]
                yield b, ch
                if gram:
                    gram.advance(states[b], ch)
                if ch == "\n" and tails[b] == "\n" and has_body[b]:
                    tune_ends.append(j)
                tails[b] = ch
                has_body[b] = has_body[b] or not ch.isspace()
            if gram and step_no + 1 < opts.max_chars:
                if tune_ends and not opts.stop_at_tune_end:  # the next tunes' headers
                    for j in tune_ends:
                        began[active[j]] = step_no + 1
                    due.setdefault(step_no + 1 + HEADER_LIMIT, []).extend(active[j] for j in tune_ends)
                looked_at = due.pop(step_no + 1, None)
                if looked_at:  # (not a stream whose tune began since it was due)
                    overdue += [b for b in looked_at if b in active and not gram.in_body(states[b])
                                and began[b] + HEADER_LIMIT == step_no + 1]  # fmt: skip
                if overdue:  # (none, but for a weak model's streams)
                    overdue = [b for b in overdue if b in active and not gram.in_body(states[b])]
                # The next step's masks now, while the grammar's code and tables are still in
                # the CPU's caches from the advances (after the model's step they are not: the
                # same lookups cost several times as much there).
                if len(active) == 1:
                    state = states[active[0]]
                    masks = gram.mask_one(state)
                    if overdue:
                        masks = gram.masked(gram.closing_header(state, masks[0]))
                    _, row, neg, only, ones = masks
                    # (The C draw masks the logits itself: they need not come masked.)
                    allowed, forbid = row, neg
                    bias = self._masked_bias(neg) if in_c is None else None
                    masked = None if bias is None else (row, neg)
                else:
                    allowed = gram.masks([states[b] for b in active])
                    if overdue:
                        allowed = allowed.copy()
                        for b in overdue:
                            j = active.index(b)
                            allowed[j] = gram.closing_header(states[b], allowed[j])
            if cache:
                cache.push(ids)
                if tune_ends and not opts.stop_at_tune_end:
                    cache.reset(tune_ends)  # the next tune copies nothing from this one
            if tune_ends and opts.stop_at_tune_end:
                keep = np.ones(len(active), dtype=bool)
                keep[tune_ends] = False
                active = [b for j, b in enumerate(active) if keep[j]]
                if not active:
                    return
                self.settle()
                ids, st = ids[keep], st.select(keep)
                if allowed is not None:
                    allowed = allowed[keep]
                if cache:
                    cache.select(keep)
            logits = self.step(ids, st, bias, ahead=True)

    def _native_draw(
        self, n: int, opts: SampleOptions, cache: CopyCache | OneStreamCopy | None
    ) -> NativeDraw | None:
        """One stream's draw in C (NativeDraw) where the kernels are built, but greedy: the
        same draws as `_draw`, whose numpy calls and the copy's predict took ~19 us of a
        character's ~75 (the seed-size model in int4 on AVX2; issue 14)."""
        if n != 1 or opts.temperature == 0 or native_library() is None:
            return None
        if cache is not None and not isinstance(cache, NativeCopy):
            return None
        return NativeDraw(len(self.vocab), opts.temperature, opts.top_k or 0, cache)

    def _copy_cache(
        self, n: int, opts: SampleOptions, prompt: str
    ) -> CopyCache | OneStreamCopy | None:
        """The copy model for `n` streams, holding the prompt (None when `opts.copy` is 0)."""
        if opts.copy == 0:
            return None
        cache = copy_cache(n, self.vocab, CopyRule(weight=opts.copy))
        cache.push_text(self.vocab.encode(prompt))
        return cache

    def bits_per_char(self, tunes: Sequence[str], rule: CopyRule | None = None) -> float:
        """Held-out bits per character of whole tunes, under the model alone or mixed with the
        copy model `rule`: each tune read from a zero state (as the sampler starts), every
        character after its first predicted, the blank line that ends it included. No grammar
        mask (it would help both alike). All tunes are stepped at once as one batch."""
        texts = [self.vocab.encode(t + TUNE_END) for t in tunes]
        lengths = np.array([len(t) for t in texts])
        ids = np.zeros((len(texts), lengths.max()), np.int64)
        for b, text in enumerate(texts):
            ids[b, : len(text)] = text
        st = self.zero_state(len(texts))
        cache = None
        if rule and rule.weight:
            cache = CopyCache(len(texts), self.vocab, rule)
        rows = np.arange(len(texts))
        nats = 0.0
        for t in range(ids.shape[1] - 1):
            z = self.step(ids[:, t], st).astype(np.float64)
            p = np.exp(z - z.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            if cache:
                cache.push(ids[:, t])
                p = mix_weights(p, *cache.predict())
                p /= p.sum(axis=1, keepdims=True)
            live = t + 1 < lengths
            nats -= np.log(p[rows, ids[:, t + 1]][live]).sum()
        return float(nats / (lengths - 1).sum() / np.log(2))

    def stream(self, opts: SampleOptions) -> Iterator[str]:
        """One tune, character by character."""
        for _, ch in self.stream_batch(1, opts):
            yield ch

    def generate(self, opts: SampleOptions) -> str:
        return "".join(self.stream(opts))

    def generate_batch(self, n: int, opts: SampleOptions) -> list[str]:
        out: list[list[str]] = [[] for _ in range(n)]
        for b, ch in self.stream_batch(n, opts):
            out[b].append(ch)
        return ["".join(parts) for parts in out]


def stream_parts(seed: int) -> int:
    """The parts (at most) of the tune of the stream seeded `seed`, drawn as the corpus has them
    (abc_grammar.draw_parts) from a generator of their own, so that the characters' draws stay as
    they were for a seed."""
    return draw_parts(np.random.default_rng([seed, 1]))


def seed_style_stream(
    model: CharLSTM, vocab: Vocabulary, prompt: str, length: int, seed: int = 0
) -> str:
    """The MIT lab's loop: `nn.LSTM` called once per character and `torch.multinomial`. Kept as
    the reference that `bench/` measures the fast sampler against."""
    torch.manual_seed(seed)
    model.eval()
    x = torch.as_tensor(vocab.encode(prompt), dtype=torch.long)[None, :]
    state = None
    out = []
    with torch.no_grad():
        for _ in range(length):
            logits, state = model(x, state)
            probs = torch.softmax(logits[0, -1], dim=-1)
            nxt = torch.multinomial(probs, 1)
            out.append(vocab.chars[int(nxt)])
            x = nxt[None, :]
    return "".join(out)
