"""A deterministic fake evaluator: objectives from analytic costs, no training."""

import math

from nasoa.search.archive import Record
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
