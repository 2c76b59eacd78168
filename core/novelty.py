"""Near-copy detection: is a generated tune (almost) a tune of the training corpus?

Measure: the Dice coefficient of the two tunes' sets of character 6-grams, taken over the tune
body (the lines after K:) with spaces and line-end marks removed, so that header differences
and layout do not count. 1.0 is the same music; a tune is a near-copy at 0.80 or more.

A large corpus (more than EXACT_LIMIT characters of music: IrishMAN, a 100 MB collection) is
indexed by hashed 6-grams in numpy arrays, keeping the grams whose hash falls in one of K
buckets (the same grams of every tune, so two copies keep the same ones): about SAMPLED_GRAMS
in all. The kept grams' Dice coefficient, an estimate, picks the RESCORED closest tunes; their
exact coefficients decide.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.corpus import header_field

if TYPE_CHECKING:  # only a large corpus's index imports it: the app's process opens its
    import numpy as np  # tunebook and judges tunes of the default corpus without numpy

NGRAM = 6
NEAR_COPY = 0.80
EXACT_LIMIT = 5_000_000  # characters of music indexed gram by gram (25x the default corpus)
SAMPLED_GRAMS = 8_000_000  # grams kept above it at most: 12 bytes each (hash, tune)
RESCORED = 8  # candidates from a sampled index whose exact similarity is computed
GIVE_WAY_EVERY = 16  # tunes indexed between pauses that let another thread run (below)
_CHUNK = 2_000_000  # characters hashed at a time (eight 8-byte arrays of this size at most)


def tune_body(tune: str) -> str:
    """The music of a tune: lines after the K: header, without spaces and '!' line-ends."""
    lines = tune.strip("\n").splitlines()
    start = next((i + 1 for i, line in enumerate(lines) if line.startswith("K:")), 0)
    body = "".join(lines[start:])
    return body.replace(" ", "").replace("!", "")


def ngrams(text: str, n: int = NGRAM) -> set[str]:
    return {text[i : i + n] for i in range(len(text) - n + 1)}


@dataclass(frozen=True)
class Match:
    index: int  # of the corpus tune
    title: str
    similarity: float  # Dice coefficient of 6-gram sets, 0..1

    @property
    def is_near_copy(self) -> bool:
        return self.similarity >= NEAR_COPY

    def describe(self) -> str:
        return f"close to {self.title} ({self.similarity:.0%})"


class NoveltyIndex:
    """An inverted index of the corpus tunes' 6-grams; `closest` answers in milliseconds."""

    def __init__(self, tunes: Sequence[str]):
        self.titles = [header_field(t, "T") or f"tune {i + 1}" for i, t in enumerate(tunes)]
        bodies = [tune_body(t) for t in tunes]
        self.bodies: list[str] = []  # a sampled index's, for the exact similarity of candidates
        self.sampled: _SampledGrams | None = None
        self.sizes: list[int] = []
        self.postings: dict[str, list[int]] = defaultdict(list)
        if sum(len(b) for b in bodies) > EXACT_LIMIT:
            self.sampled, self.bodies = _SampledGrams(bodies), bodies
            return
        for i, body in enumerate(bodies):
            if i % GIVE_WAY_EVERY == 0:
                # The app builds this (~40 ms) on a worker thread as its first model arrives:
                # letting go of the interpreter now and then hands it to the UI thread at once,
                # not after CPython's 5 ms switch interval (keys then took twice their time).
                time.sleep(0)
            grams = ngrams(body)
            self.sizes.append(len(grams))
            for g in grams:
                self.postings[g].append(i)

    def closest(self, tune: str) -> Match | None:
        grams = ngrams(tune_body(tune))
        if not grams:
            return None
        if self.sampled is not None:
            scored = []
            for i in self.sampled.candidates(tune_body(tune), RESCORED):
                theirs = ngrams(self.bodies[i])
                scored.append((i, 2 * len(grams & theirs) / (len(grams) + len(theirs))))
            if not scored:
                return None
            best, score = max(scored, key=lambda item: item[1])
            return Match(best, self.titles[best], score)
        shared: Counter[int] = Counter()
        for g in grams:
            shared.update(self.postings.get(g, ()))
        if not shared:
            return None
        best, score = max(
            ((i, 2 * n / (len(grams) + self.sizes[i])) for i, n in shared.items()),
            key=lambda item: item[1],
        )
        return Match(best, self.titles[best], score)


def _codes(text: str) -> np.ndarray:
    """Code points of `text` as uint64, from its bytes when it is ASCII."""
    import numpy as np  # only a large corpus's index uses numpy (see _SampledGrams)

    if text.isascii():
        return np.frombuffer(text.encode("ascii"), dtype=np.uint8).astype(np.uint64)
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)


def _gram_hashes(codes: np.ndarray) -> np.ndarray:
    """A 64-bit hash of the NGRAM characters from each place in `codes` (len - NGRAM + 1)."""
    import numpy as np

    n = len(codes) - NGRAM + 1
    if n <= 0:
        return np.zeros(0, dtype=np.uint64)
    h = codes[:n].copy()
    for j in range(1, NGRAM):  # a polynomial hash over contiguous slices, then a finaliser
        h *= np.uint64(1_000_003)
        h += codes[j : j + n]
    h ^= h >> np.uint64(31)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(29)
    return h


class _SampledGrams:
    """Kept gram hashes of every tune as sorted numpy arrays (hash, tune), built in chunks."""

    def __init__(self, bodies: Sequence[str]) -> None:
        import numpy as np

        total = sum(max(0, len(b) - NGRAM + 1) for b in bodies)
        self.keep_every = 1  # K, a power of two: SAMPLED_GRAMS/2 to SAMPLED_GRAMS grams stay
        while total // self.keep_every > SAMPLED_GRAMS:
            self.keep_every *= 2
        hashes: list[np.ndarray] = []
        owners: list[np.ndarray] = []
        first = 0
        while first < len(bodies):
            last, size = first, 0
            while last < len(bodies) and (size < _CHUNK or last == first):
                size += len(bodies[last])
                last += 1
            h, owner = self._chunk(bodies[first:last])
            hashes.append(h)
            owners.append(owner + first)
            first = last
        h = np.concatenate(hashes)
        owner = np.concatenate(owners).astype(np.int32)
        order = np.lexsort((owner, h))  # by hash, then tune: a tune's repeats sit together
        h, owner = h[order], owner[order]
        fresh = np.ones(len(h), dtype=bool)
        fresh[1:] = (h[1:] != h[:-1]) | (owner[1:] != owner[:-1])
        self.hashes, self.owners = h[fresh], owner[fresh]
        self.sizes = np.bincount(self.owners, minlength=len(bodies))

    def _kept(self, h: np.ndarray) -> np.ndarray:
        """Whether each hash is one of the kept ones (its low bits are 0)."""
        import numpy as np

        kept: np.ndarray = (h & np.uint64(self.keep_every - 1)) == 0
        return kept

    def _chunk(self, bodies: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Kept hashes of these tunes' grams, with the tune (0-based in `bodies`) of each."""
        import numpy as np

        ends = np.cumsum([len(b) for b in bodies], dtype=np.int64)
        starts = ends - [len(b) for b in bodies]
        h = _gram_hashes(_codes("".join(bodies)))
        keep = self._kept(h)
        # A gram that starts in the last NGRAM-1 places of a tune runs into the next one.
        crossing = ends[:, None] - np.arange(1, NGRAM)[None, :]
        crossing = crossing[(crossing >= starts[:, None]) & (crossing < len(h))]
        keep[crossing] = False
        places = np.flatnonzero(keep)
        return h[places], np.searchsorted(ends, places, side="right")

    def candidates(self, body: str, count: int) -> list[int]:
        """The `count` tunes of the highest estimated similarity to `body`, best first."""
        import numpy as np

        h = _gram_hashes(_codes(body))
        grams = np.unique(h[self._kept(h)])
        if not len(grams):
            return []
        lo = np.searchsorted(self.hashes, grams, side="left")
        hi = np.searchsorted(self.hashes, grams, side="right")
        found = [self.owners[a:b] for a, b in zip(lo, hi, strict=True) if b > a]
        if not found:
            return []
        tunes, shared = np.unique(np.concatenate(found), return_counts=True)
        scores = 2 * shared / (len(grams) + self.sizes[tunes])
        best = np.argsort(-scores, kind="stable")[:count]
        return [int(t) for t in tunes[best]]


class CorpusIndex:
    """A corpus's near-copy index, built at its first use (~70 ms for the default corpus) by
    whichever thread asks first; another asking meanwhile waits for that one. None when no
    corpus is known."""

    def __init__(self, tunes: Sequence[str] | None) -> None:
        self.tunes = tunes
        self._index: NoveltyIndex | None = None
        self._lock = threading.Lock()

    @property
    def built(self) -> bool:
        return self._index is not None

    def get(self) -> NoveltyIndex | None:
        with self._lock:
            if self._index is None and self.tunes is not None:
                self._index = NoveltyIndex(self.tunes)
            return self._index
