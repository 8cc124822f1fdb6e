"""Fakes for the search loop: an evaluator from analytic costs, and a bit-string search space with its evaluator."""

import hashlib
import math

import numpy as np

from nasoa.search.archive import Record
from nasoa.search.evaluator import Candidate
from nasoa.space import complexity


def fake_evaluate(candidate, fail_every: int = 0):
    cx = complexity(candidate.encoding, 32, 10)
    if fail_every and int(candidate.archid, 16) % fail_every == 0:
        return Record(
            candidate.archid, candidate.encoding, candidate.level, candidate.generation, "failed", error="fake"
        )
    acc = 1 - 1 / (1 + math.log10(cx.params)) + (int(candidate.archid[:4], 16) % 97) / 5000
    return Record(
        candidate.archid,
        candidate.encoding,
        candidate.level,
        candidate.generation,
        "ok",
        acc,
        cx.macs / 1e6,
        cx.params,
        cx.macs,
    )


class BitSpace:
    """Candidates are bit strings; objectives (below) trade ones in the first half against ones in the second."""

    level = "bits"
    length = 12

    def sample(self, rng: np.random.Generator) -> str:
        return "".join(str(b) for b in rng.integers(0, 2, self.length))

    def mutate(self, rng: np.random.Generator, x: str) -> str:
        i = int(rng.integers(self.length))
        return x[:i] + ("1" if x[i] == "0" else "0") + x[i + 1 :]

    def crossover(self, rng: np.random.Generator, a: str, b: str) -> str:
        cut = int(rng.integers(1, self.length))
        return a[:cut] + b[cut:]

    def key(self, x: str) -> str:
        return hashlib.sha1(x.encode()).hexdigest()[:16]

    def canonical(self, x: str) -> str:
        return x


def fake_evaluate_bits(candidate: Candidate) -> Record:
    """Accuracy grows with ones in the first half, step time with ones in the second half minus the first."""
    half = BitSpace.length // 2
    head, tail = candidate.encoding[:half].count("1"), candidate.encoding[half:].count("1")
    accuracy = (head + tail) / BitSpace.length
    step_ms = 1.0 + head * 2 + max(0, half - tail)
    return Record(candidate.archid, candidate.encoding, "bits", candidate.generation, "ok", accuracy, step_ms)
