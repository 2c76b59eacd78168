"""Near-copy detection: is a generated tune (almost) a tune of the training corpus?

Measure: the Dice coefficient of the two tunes' sets of character 6-grams, taken over the tune
body (the lines after K:) with spaces and line-end marks removed, so that header differences
and layout do not count. 1.0 is the same music; a tune is a near-copy at 0.80 or more.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from core.corpus import header_field

NGRAM = 6
NEAR_COPY = 0.80


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
        self.sizes: list[int] = []
        self.postings: dict[str, list[int]] = defaultdict(list)
        for i, tune in enumerate(tunes):
            grams = ngrams(tune_body(tune))
            self.sizes.append(len(grams))
            for g in grams:
                self.postings[g].append(i)

    def closest(self, tune: str) -> Match | None:
        grams = ngrams(tune_body(tune))
        if not grams:
            return None
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
