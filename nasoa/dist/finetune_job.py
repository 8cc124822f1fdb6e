"""Fine-tuning jobs on Ray Train workers: one long-lived pool serves a single run or a whole stream of tasks."""

from __future__ import annotations

import functools
import traceback
from dataclasses import dataclass, field
from typing import Any

from nasoa.dist.pool import KeyedSink, TrainPool


@dataclass(frozen=True)
class FinetuneSettings:
    """Where the zoo is and how runs are executed."""

    zoo_root: str
    device: str = "cpu"
    seed: int = 0


@dataclass(frozen=True)
class FinetuneJob:
    """One fine-tuning run: a task spec, a regime (as a dict) and a deadline."""

    key: str
    task: Any  # a spec accepted by nasoa.data.make_task
    regime: dict
    deadline_s: float


@dataclass(frozen=True)
class FinetuneOutcome:
    """The result of a job (``result`` is a FinetuneResult dict), or its error."""

    key: str
    task_meta: dict = field(default_factory=dict)
    result: dict = field(default_factory=dict)
    error: str = ""


@functools.lru_cache(maxsize=16)
def _task(spec: str):  # noqa: ANN202
    from nasoa.data import make_task

    return make_task(spec)


@functools.lru_cache(maxsize=2)
def _zoo(root: str):  # noqa: ANN202
    from nasoa.zoo import Zoo

    return Zoo(root)


def run_job(job: FinetuneJob, settings: FinetuneSettings, worker: str = "") -> FinetuneOutcome:
    """Run one job in this process; any failure becomes an outcome with ``error`` set."""
    from nasoa.online.regime import Regime
    from nasoa.train.finetune import finetune

    try:
        task = _task(job.task if isinstance(job.task, str) else repr(job.task))
        result = finetune(_zoo(settings.zoo_root), Regime.from_dict(job.regime), task, job.deadline_s,
                          device=settings.device, seed=settings.seed)
        return FinetuneOutcome(job.key, task.meta.to_dict(), result.to_dict())
    except Exception as err:  # noqa: BLE001 - reported to the caller
        return FinetuneOutcome(job.key, error=f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=-3)}")


def worker_died(job: FinetuneJob, attempts: int, reason: str) -> FinetuneOutcome:
    """The outcome of a job whose workers died on every attempt."""
    return FinetuneOutcome(job.key, error=f"worker died {attempts} times while running this job (last: {reason})")


def warm_up(settings: FinetuneSettings) -> None:
    """A fresh worker's first optimizer step costs seconds: pay it before any deadline starts."""
    from nasoa.train import warm_up as train_warm_up

    train_warm_up()
    _zoo(settings.zoo_root)


def finetune_pool(settings: FinetuneSettings, num_workers: int = 1, use_gpu: bool = False, cpus_per_worker: float = 1.0,
                  threads: int = 1, storage_path: str | None = None) -> TrainPool:
    """A Ray Train pool whose workers run :class:`FinetuneJob` items."""
    resources: dict[str, Any] = {"CPU": cpus_per_worker} | ({"GPU": 1} if use_gpu else {})
    return TrainPool(run_job, settings, KeyedSink.remote(), num_workers=num_workers, use_gpu=use_gpu,
                     resources_per_worker=resources, threads=threads, storage_path=storage_path,
                     name="finetune", warm_up=warm_up, on_give_up=worker_died)
