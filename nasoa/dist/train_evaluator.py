"""The search's evaluator on Ray Train: candidates go through a :class:`~nasoa.dist.pool.TrainPool`."""

from __future__ import annotations

import time
from collections.abc import Sequence

import ray

from nasoa.dist.pool import TrainPool
from nasoa.search.archive import Record
from nasoa.search.evaluator import Candidate, EvaluatorStats
from nasoa.search.proxy import ProxySettings, evaluate_candidate
from nasoa.space import complexity


def warm_up(settings: ProxySettings) -> None:
    """Build the proxy task and run a few steps of a tiny net, so no candidate pays a cold start."""
    from nasoa.search.proxy import proxy_task
    from nasoa.space import build
    from nasoa.train import profile_step

    task = proxy_task(settings.task, settings.resolution, settings.seed)
    model = build("0-_8_1", task.num_classes)
    profile_step(model, batch_size=4, resolution=settings.resolution, device=settings.device, warmup=2, steps=1)


def worker_died(candidate: Candidate, attempts: int, reason: str) -> Record:
    """The failed record of a candidate whose Ray Train workers died on every attempt (it is not retried again)."""
    times = "twice" if attempts == 2 else f"{attempts} times"
    return Record(
        archid=candidate.archid,
        encoding=candidate.encoding,
        level=candidate.level,
        generation=candidate.generation,
        status="failed",
        error=f"worker died {times} while evaluating this candidate (last: {reason}); not retried",
        finished_at=time.time(),
    )


class RayTrainEvaluator:
    """The :class:`~nasoa.search.evaluator.Evaluator` interface: each result lands in the archive actor."""

    def __init__(self, archive: ray.actor.ActorHandle, proxy: ProxySettings, **pool_kw) -> None:  # noqa: ANN003
        self.pool = TrainPool(evaluate_candidate, proxy, archive, warm_up=warm_up, on_give_up=worker_died, **pool_kw)

    @property
    def closed_at(self) -> float | None:
        return self.pool.closed_at

    def evaluate(self, candidates: Sequence[Candidate]) -> list[Record]:
        """Costliest candidates first, so that no worker is left with a long tail at the generation's end."""
        order = sorted(candidates, key=lambda c: -complexity(c.encoding, 32, 10).macs)
        got = self.pool.run(order, [c.archid for c in candidates])
        return [got[c.archid] for c in candidates]

    def stats(self) -> EvaluatorStats:
        return self.pool.stats()

    def close(self) -> None:
        self.pool.close()
