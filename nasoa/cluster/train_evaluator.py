"""The search's evaluator on Ray Train: candidates go through a :class:`~nasoa.cluster.pool.TrainPool`."""

from __future__ import annotations

import time
from collections.abc import Sequence

import ray

from nasoa.cluster.pool import TrainPool
from nasoa.cluster.runtime import RuntimeSettings
from nasoa.models import build
from nasoa.search.archive import Record
from nasoa.search.evaluator import Candidate, EvaluatorStats
from nasoa.search.proxy import evaluate_candidate
from nasoa.space import complexity
from nasoa.train import profile_step
from nasoa.train.recipe import Recipe, source_task


def warm_up(recipe: Recipe) -> None:
    """Build the proxy task and run a few steps of a tiny net, so no candidate pays a cold start."""
    task = source_task(recipe.source, recipe.resolution, recipe.seed)
    model = build("0-_8_1", task.num_classes)
    profile_step(model, batch_size=4, resolution=recipe.resolution, device=recipe.device, warmup=2, steps=1)


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

    def __init__(
        self, archive: ray.actor.ActorHandle, proxy: Recipe, runtime: RuntimeSettings, storage_path: str, name: str
    ) -> None:
        self.pool = TrainPool(
            evaluate_candidate,
            proxy,
            archive,
            runtime,
            storage_path=storage_path,
            name=name,
            warm_up=warm_up,
            on_give_up=worker_died,
        )

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
