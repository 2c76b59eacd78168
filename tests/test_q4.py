"""The int4 sampler (core/q4.py, core/q4_kernel.c): its numbers against the float arithmetic
they stand for, every kernel this CPU runs giving the same bits, and the pool's threads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from bench.machine import cpu_flags
from core import q4
from core.corpus import Vocabulary, load_corpus
from core.model import CharLSTM
from core.presets import ModelConfig
from core.sample import SampleOptions, Sampler

pytestmark = pytest.mark.skipif(not q4.available(), reason="the int4 kernel is not built")


def best_kernel() -> str:
    return q4.configure()


def kernels_here() -> list[str]:
    """Every kernel this CPU runs (configure takes the best for one it lacks)."""
    here = q4.supported()
    assert here[0] == "plain" and here[-1] == best_kernel()
    return here


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return load_corpus().vocab


def fresh_model(vocab: Vocabulary, hidden: int, layers: int = 1) -> CharLSTM:
    torch.manual_seed(hidden)
    return CharLSTM(ModelConfig(len(vocab), 32, hidden, num_layers=layers)).eval()


def test_quantised_weights_unpack_to_what_they_stand_for() -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(37, 100)).astype(np.float32)  # neither a whole tile nor a whole group
    packed, scales = q4.quantise(w)
    back = q4.dequantised(packed, scales, 37, 100)
    assert back.shape == w.shape
    # Each group's best clipping beats plain rounding to its largest weight.
    g = np.zeros((37, 128), np.float32)
    g[:, :100] = w
    groups = g.reshape(37, 2, 64)
    s = np.abs(groups).max(axis=2, keepdims=True) / 7
    plain = (np.clip(np.rint(groups / s), -8, 7) * s).reshape(37, 128)[:, :100]
    assert np.square(back - w).sum() < np.square(plain - w).sum()


@pytest.mark.parametrize(("hidden", "batch"), [(96, 1), (96, 5), (256, 16), (256, 21)])
def test_a_step_is_the_float_arithmetic_of_its_int4_weights(vocab: Vocabulary, hidden: int, batch: int) -> None:
    """The kernel's logits and state against numpy doing the same sums in float64: the
    dequantised weights (W_hh int4, the head int8) times h rounded to int8 as the kernel
    rounds it, one step at a time
    from the kernel's state. The two cells' h differ in the last bits, so now and then one
    activation rounds the other way (an error of one step of h's int8 scale times a weight)."""
    model = fresh_model(vocab, hidden)
    s4, ref = Sampler(model, vocab, "int4"), Sampler(model, vocab, "fp32")
    assert s4.q4 is not None
    w_hh = q4.dequantised(s4.q4.w, s4.q4.scale, 4 * hidden, hidden)
    head = s4.q4.head[:, :hidden] * s4.q4.head_scale[:, None]
    w = np.concatenate([w_hh, head]).astype(np.float64)

    def fused(x: np.ndarray) -> np.ndarray:
        scale = np.abs(x).max(axis=1, keepdims=True) / np.float32(127)
        v = x * (np.float32(1) / scale)
        xq = np.trunc(v + np.where(v >= 0, np.float32(0.5), np.float32(-0.5)))
        return (xq @ w.T * scale).astype(np.float32)

    ref.fused = fused  # type: ignore[assignment]  # a stand-in with the same call
    ids = vocab.encode("X:1\nT:Test\nM:6/8\nK:G\n|:GAB c2d|ABc d2e:|\n")
    st4 = s4.zero_state(batch)
    rng = np.random.default_rng(1)
    errors = []
    for i in ids:
        step = np.where(rng.random(batch) < 0.5, i, rng.integers(0, len(vocab), batch))
        stf = ref.zero_state(batch)
        stf.h[:], stf.c[:], stf.rec[:] = st4.h, st4.c, st4.rec  # type: ignore[index]
        a, b = s4.step(step, st4), ref.step(step, stf)
        spread = (b.max(axis=1) - b.min(axis=1))[:, None]
        errors.append(np.abs(a - b) / spread)
        assert np.abs(st4.h - stf.h).max() < 1e-5
        assert np.abs(st4.c - stf.c).max() < 1e-5 * max(1.0, float(np.abs(stf.c).max()))
    err = np.concatenate(errors)
    assert err.max() < 2e-3 and np.median(err) < 1e-6
    assert np.abs(a).max() > 0.05  # not all zeros


def test_the_kernels_this_cpu_runs_are_those_its_flags_name() -> None:
    """Each kernel where the CPU has its instructions (AVX-VNNI without AVX-512 on laptops, and
    AVX-512 without AVX-VNNI on Ice Lake servers: no kernel implies another), AMX where the OS
    grants it too; a kernel asked for that the CPU lacks gives the best it has."""
    flags = cpu_flags()
    avx2 = {"avx2", "fma"} <= flags
    expected = ["plain"] + ["avx2"] * avx2 + ["avx-vnni"] * (avx2 and "avx_vnni" in flags)
    expected += ["avx512-vnni"] * ({"avx512f", "avx512bw", "avx512vl", "avx512_vnni"} <= flags)
    here = q4.supported()
    assert [k for k in here if k != "amx"] == expected
    assert "amx" not in here or ("avx512-vnni" in here and {"amx_tile", "amx_int8"} <= flags)
    best = best_kernel()
    assert best == here[-1]
    for kernel in q4.KERNELS:
        assert q4.configure(kernel=kernel) == (kernel if kernel in here else best)
    q4.configure(kernel=best)


def test_every_kernel_gives_the_same_bits(vocab: Vocabulary) -> None:
    """Exact integer sums and the same float steps: the plain C, AVX2, AVX-VNNI, AVX-512 VNNI and
    AMX kernels (those this CPU runs) agree bit for bit, so a seed draws the same tune anywhere."""
    model = fresh_model(vocab, 192)
    seen = {}
    for kernel in kernels_here():
        assert q4.configure(kernel=kernel) == kernel
        s = Sampler(model, vocab, "int4")
        assert q4.kernel() == kernel  # a new sampler keeps the kernel asked for
        rng = np.random.default_rng(0)
        out = []
        for batch in (1, 3, 16, 21):  # AMX from 4 streams, in blocks of 16
            st = s.zero_state(batch)
            for _ in range(12):
                out.append(s.step(rng.integers(0, len(vocab), batch), st))
            out += [st.h.copy(), st.c.copy()]
        seen[kernel] = np.concatenate([o.ravel() for o in out])
    q4.configure(kernel=best_kernel())
    first = seen[q4.KERNELS[0]]
    for kernel, values in seen.items():
        assert np.array_equal(values, first), kernel


def test_the_sampler_picks_int4_for_large_one_layer_models(vocab: Vocabulary) -> None:
    assert Sampler(fresh_model(vocab, 512), vocab).precision == "int4"
    assert Sampler(fresh_model(vocab, 256), vocab).precision == "fp32"
    assert Sampler(fresh_model(vocab, 512, layers=2), vocab).precision != "int4"
    with pytest.raises(ValueError, match="one-layer"):
        Sampler(fresh_model(vocab, 96, layers=2), vocab, "int4")


def test_steps_taken_ahead_give_the_same_numbers(vocab: Vocabulary) -> None:
    """Steps whose product goes on while the caller draws (`ahead`): the same logits, h, c and,
    once settled, rec as steps that wait for it, for one stream and for a batch."""
    best_kernel()  # (the pool starts with the first configure)
    if q4.threads() < 2:
        pytest.skip("one CPU: no thread to leave the product to")
    model = fresh_model(vocab, 256)
    for batch in (1, 16):
        runs = []
        for ahead in (False, True):
            s = Sampler(model, vocab, "int4")
            st, rng, out = s.zero_state(batch), np.random.default_rng(batch), []
            for _ in range(20):
                out.append(s.step(rng.integers(0, len(vocab), batch), st, ahead=ahead))
            s.settle()
            assert st.rec is not None
            runs.append([np.concatenate([o.ravel() for o in out]), st.h, st.c, st.rec])
        for got, want in zip(*runs, strict=True):
            assert np.array_equal(got, want)


AHEAD_THEN_GONE = textwrap.dedent(
    """
    import gc, threading, numpy as np
    from core import q4
    rng = np.random.default_rng(0)
    H, V, B = 512, 90, 64
    def model():
        return q4.Q4Step(rng.standard_normal((V, 4 * H), np.float32),
                         rng.standard_normal((4 * H, H), np.float32) * 0.05,
                         rng.standard_normal((V, H), np.float32), np.zeros(V, np.float32))
    def state():
        return (np.zeros((B, H), np.float32), np.zeros((B, H), np.float32),
                np.zeros((B, 4 * H), np.float32))
    ids = np.arange(B) % V
    m = model()
    for _ in range(40):  # the arrays bound before, freed once others are bound
        m.step(ids, *state(), ahead=True)
    for _ in range(8):  # the model dropped while its product runs
        m = model()
        m.step(ids, *state(), ahead=True)
        del m
        gc.collect()
    m = model()
    def steps():  # two threads stepping one model, each on arrays of its own
        for _ in range(150):
            m.step(ids, *state(), ahead=True)
    both = [threading.Thread(target=steps) for _ in range(2)]
    for t in both:
        t.start()
    for t in both:
        t.join()
    print("ok")
    """
)


def test_what_a_product_left_running_uses_outlives_it() -> None:
    """Arrays a product running ahead writes or reads are not freed under it: new state arrays
    bound (by one thread or two), or the model dropped, wait for it (else the workers write into
    unmapped memory)."""
    best_kernel()
    if q4.threads() < 2:
        pytest.skip("one CPU: no thread to leave the product to")
    # Every array of 64 KB or more its own mapping, unmapped when freed (glibc's threshold
    # otherwise rises to the largest freed, and a write into freed memory may pass unseen).
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    proc = subprocess.run([sys.executable, "-c", AHEAD_THEN_GONE], capture_output=True,
                          text=True, timeout=120, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[-1] == "ok", proc.stdout


def test_a_character_outside_the_vocabulary_is_refused(vocab: Vocabulary) -> None:
    s = Sampler(fresh_model(vocab, 96), vocab, "int4")
    st = s.zero_state(2)
    with pytest.raises(IndexError):
        s.step(np.array([0, len(vocab)]), st)
    with pytest.raises(ValueError, match="contiguous"):
        s.step(np.array([0, 1]), s.zero_state(3))
    st = s.zero_state(2)
    s.step(np.array([0, 1]), st)
    with pytest.raises(ValueError, match="contiguous"):  # the same arrays, more streams
        s.step(np.arange(40), st)


CHILD = textwrap.dedent(
    """
    import hashlib, json, os, sys
    from core import q4
    from core.corpus import Vocabulary, load_corpus
    from core.sample import SampleOptions, Sampler
    from tests.test_q4 import fresh_model
    vocab = load_corpus().vocab
    s = Sampler(fresh_model(vocab, 128), vocab, "int4")
    def tunes():
        text = "".join(s.generate_batch(6, SampleOptions(seed=5, max_chars=60)))
        return hashlib.sha1(text.encode()).hexdigest()
    out = {"kernel": q4.configure(), "tunes": tunes()}
    pid = os.fork()  # a forked child has no workers: it must step alone, not wait for them
    if pid == 0:
        os._exit(0 if tunes() == out["tunes"] else 3)
    out["child"] = os.waitpid(pid, 0)[1]
    print(json.dumps(out))
    """
)


def test_threads_and_forks_change_nothing(vocab: Vocabulary) -> None:
    """One thread or two, and in a child forked after the workers started: the same tunes."""
    runs = []
    for threads in ("1", "2"):
        env = {**os.environ, "FOLKGEN_SAMPLER_THREADS": threads}
        proc = subprocess.run(
            [sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=120,
            check=True,
        )  # fmt: skip
        runs.append(json.loads(proc.stdout.splitlines()[-1]))
    assert runs[0]["tunes"] == runs[1]["tunes"]
    assert [r["child"] for r in runs] == [0, 0]
    here = Sampler(fresh_model(vocab, 128), vocab, "int4")
    assert here.generate_batch(6, SampleOptions(seed=5, max_chars=60))  # and in this process


AMX_AFTER_TORCH = textwrap.dedent(
    """
    import numpy as np, torch
    from core import q4
    from core.corpus import Vocabulary, load_corpus
    from core.sample import Sampler
    from tests.test_q4 import fresh_model
    vocab = load_corpus().vocab
    s = Sampler(fresh_model(vocab, 128), vocab, "int4")
    def run(torch_between):
        st, out = s.zero_state(16), []
        for i in range(12):
            out.append(s.step((np.arange(16) + i) % len(vocab), st))
            if torch_between:  # oneDNN's AMX kernels load and release tile configurations
                a = torch.randn(64, 256, dtype=torch.bfloat16)
                (a @ torch.randn(256, 64, dtype=torch.bfloat16)).sum()
        return np.concatenate([o.ravel() for o in out])
    print(q4.kernel(), np.array_equal(run(False), run(True)))
    """
)


def test_torch_between_steps_changes_nothing() -> None:
    """torch's own AMX kernels between steps (the app's engine trains and samples in one
    process kind): the same logits, no stale tile configuration (it was SIGILL)."""
    proc = subprocess.run([sys.executable, "-c", AMX_AFTER_TORCH], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[-1] == "True", proc.stdout


FORK_WHILE_STEPPING = textwrap.dedent(
    """
    import os, signal, threading, time
    import numpy as np
    from core.corpus import Vocabulary, load_corpus
    from core.sample import Sampler
    from tests.test_q4 import fresh_model
    vocab = load_corpus().vocab
    s = Sampler(fresh_model(vocab, 512), vocab, "int4")
    stop = False
    def loop():
        st = s.zero_state(16)
        while not stop:
            s.step(np.arange(16), st)
    threading.Thread(target=loop, daemon=True).start()
    time.sleep(0.2)
    hung = 0
    for _ in range(10):
        pid = os.fork()
        if pid == 0:
            signal.alarm(5)  # a child stuck in its first step dies of SIGALRM
            s.step(np.array([1]), s.zero_state(1))
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        hung += os.WIFSIGNALED(status)
    stop = True
    print(hung)
    """
)


def test_a_fork_while_another_thread_steps_leaves_the_child_able_to_step() -> None:
    proc = subprocess.run([sys.executable, "-c", FORK_WHILE_STEPPING], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[-1] == "0", proc.stdout


def test_without_the_kernels_a_large_model_says_it_samples_otherwise(
    vocab: Vocabulary, monkeypatch: pytest.MonkeyPatch
) -> None:
    import core.sample

    monkeypatch.setattr(core.sample, "int4_supported", lambda: False)
    monkeypatch.setattr(core.sample, "native_problem", lambda: "no compiler")
    s = Sampler(fresh_model(vocab, 512), vocab)
    assert s.precision in ("int8", "fp32") and "not int4" in s.note and "no compiler" in s.note
    assert Sampler(fresh_model(vocab, 96), vocab).note == ""  # small models: fp32 anyway
