"""The one worker-side fine-tune (a task spec, a regime and a deadline in; the result or its error out).

Every job that fine-tunes (collect's Tune trials, the stream's and ``launch/finetune.py``'s Ray Train pool, the
benchmark's runs and BOHB's trials) calls :func:`run_finetune` in its worker. Tasks and zoos are opened once per
worker process (Ray reuses worker processes) in small LRU caches keyed by the spec's canonical JSON, so a task
given as a dict works everywhere a string does. :func:`run_finetune_job` is ``launch/finetune.py``.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nasoa.cluster.pool import KeyedSink, TrainPool
from nasoa.cluster.runtime import RuntimeSettings
from nasoa.cluster.session import on_driver_node, ray_session
from nasoa.common.io import write_json_atomic
from nasoa.data import make_task
from nasoa.online.client import REGIME_FIELDS, ServiceClient
from nasoa.online.regime import Regime
from nasoa.train import warm_up as train_warm_up
from nasoa.train.finetune import finetune
from nasoa.train.loop import set_threads
from nasoa.train.probe import probe_zoo
from nasoa.zoo.store import Zoo

log = logging.getLogger("nasoa.online")


def spec_key(spec: Any) -> str:
    """A task spec as a stable string (dict specs as sorted JSON); also the experience rows' ``task_name``."""
    return spec if isinstance(spec, str) else json.dumps(spec, sort_keys=True, separators=(",", ":"))


def suite_entry(spec: Any) -> bool:
    """Whether ``spec`` is a task-suite entry (``{name, spec, domain, subdomain}``) rather than a task spec."""
    return isinstance(spec, Mapping) and "spec" in spec and "kind" not in spec


def task_name(spec: Any) -> str:
    """A task's name in the experience: a suite entry's ``name``, else the spec as a stable string."""
    return str(spec["name"]) if suite_entry(spec) else spec_key(spec)


@functools.lru_cache(maxsize=16)
def _task_by_key(key: str):  # noqa: ANN202 - a nasoa.data.Task
    spec = key if not key.startswith("{") else json.loads(key)
    if not suite_entry(spec):
        return make_task(spec)
    task = make_task(spec["spec"])
    return replace(task, name=str(spec["name"]), meta=replace(task.meta, name=str(spec["name"])))


def cached_task(spec: Any):  # noqa: ANN201 - a nasoa.data.Task
    """``make_task(spec)``, made once per process."""
    return _task_by_key(spec_key(spec))


@functools.lru_cache(maxsize=4)
def cached_zoo(root: str):  # noqa: ANN201 - a nasoa.zoo.Zoo
    """``Zoo(root)``, opened once per process."""
    return Zoo(root)


@dataclass(frozen=True)
class FinetuneJob:
    """One fine-tuning run: a task spec (a string or a dict), a regime (as a dict), a deadline and a seed.

    ``test``: also score the task's test split, after the clock stops (the benchmark's measurement).
    """

    key: str
    task: Any
    regime: dict
    deadline_s: float
    seed: int = 0
    test: bool = False


@dataclass(frozen=True)
class ProbeJob:
    """Probe every zoo model (or ``models``) on a task (``nasoa.train.probe.probe_zoo``).

    ``cache_dir``: the score cache (None: none); ``max_s``: the seconds allowed (None: no limit).
    """

    key: str
    task: Any
    sample: int = 128
    val_sample: int = 64
    seed: int = 0
    method: str = "ncm"
    cache_dir: str | None = None
    models: tuple[str, ...] | None = None
    max_s: float | None = None


@dataclass(frozen=True)
class FinetuneOutcome:
    """The result of a job (``result`` is a FinetuneResult dict) and the task's meta-features, or its error."""

    key: str
    task_meta: dict = field(default_factory=dict)
    result: dict = field(default_factory=dict)
    error: str = ""


@dataclass(frozen=True)
class FinetuneSettings:
    """Where the zoo is and the torch device the runs use (set from the GPU Ray assigned, on a GPU runtime)."""

    zoo_root: str
    device: str = "cpu"
    threads: int | None = None


def run_finetune(
    job: FinetuneJob | ProbeJob, settings: FinetuneSettings, on_epoch: Callable[[int, float], Any] | None = None
) -> FinetuneOutcome:
    """Fine-tune (or probe, for a :class:`ProbeJob`) in this process; any failure becomes an outcome with ``error``.

    The task and the zoo are opened before the deadline's clock starts (a worker's cache, not the run's work).
    """
    try:
        if settings.threads:
            set_threads(settings.threads)  # Ray reuses worker processes with their old thread count
        task, zoo = cached_task(job.task), cached_zoo(settings.zoo_root)
        if isinstance(job, ProbeJob):
            return FinetuneOutcome(job.key, task.meta.to_dict(), _probe(job, zoo, task, settings.device))
        regime = Regime.from_dict(job.regime)
        result = finetune(
            zoo, regime, task, job.deadline_s, device=settings.device, seed=job.seed, on_epoch=on_epoch, test=job.test
        )
        return FinetuneOutcome(job.key, task.meta.to_dict(), result.to_dict())
    except Exception as err:  # noqa: BLE001 - reported to the caller
        return FinetuneOutcome(job.key, error=f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=-3)}")


def _probe(job: ProbeJob, zoo: Zoo, task: Any, device: str) -> dict[str, Any]:
    """The probe's result as a dict (``scores``, ``seconds``, ``fingerprint``, ...)."""
    kw = {"sample": job.sample, "val_sample": job.val_sample, "seed": job.seed, "method": job.method}
    kw["max_s"] = job.max_s
    result = probe_zoo(zoo, task, device=device, models=job.models, cache_dir=job.cache_dir, **kw)
    return result.to_dict()


def pool_finetune(job: FinetuneJob | ProbeJob, settings: FinetuneSettings, worker: str = "") -> FinetuneOutcome:
    """:func:`run_finetune` with the :class:`~nasoa.cluster.pool.TrainPool` item signature."""
    return run_finetune(job, settings)


def warm_up(settings: FinetuneSettings) -> None:
    """A fresh worker's first optimizer step costs seconds: pay it before any deadline starts."""
    train_warm_up()
    cached_zoo(settings.zoo_root)


def worker_died(job: FinetuneJob, attempts: int, reason: str) -> FinetuneOutcome:
    """The outcome of a job whose workers died on every attempt."""
    return FinetuneOutcome(job.key, error=f"worker died {attempts} times while running this job (last: {reason})")


def task_meta(spec: Any) -> dict[str, Any]:
    """The meta-features the service needs, measured from the task itself."""
    meta = cached_task(spec).meta.to_dict()
    return {k: meta[k] for k in ("num_classes", "num_train", "resolution", "channels")} | {
        "name": task_name(spec)[:200]
    }


def finetune_pool(zoo_root: str, runtime: RuntimeSettings, storage_path: str) -> TrainPool:
    """One Ray Train worker (with the runtime's resources, a GPU on a GPU runtime) that runs fine-tuning jobs."""
    return TrainPool(
        pool_finetune,
        FinetuneSettings(zoo_root, runtime.device),
        KeyedSink.options(**on_driver_node()).remote(),
        runtime,
        num_workers=1,
        storage_path=storage_path,
        name="finetune",
        warm_up=warm_up,
        on_give_up=worker_died,
    )


def run_finetune_job(cfg: Mapping[str, Any], run_dir: str | Path) -> dict[str, Any]:
    """``launch/finetune.py``: fine-tune one task with the given regime, or the one the service proposes."""
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    budget = _budget(cfg["budget_s"])
    client = ServiceClient(cfg["service_url"], cfg.get("auth_token")) if cfg.get("service_url") else None
    meta = task_meta(cfg["task"])
    regime = _regime(cfg, client, meta, budget)
    job = FinetuneJob(
        uuid.uuid4().hex,
        cfg["task"],
        {k: regime[k] for k in REGIME_FIELDS if regime.get(k) is not None},
        budget,
        int(cfg.get("seed", 0)),
    )
    with ray_session(cfg["runtime"]):
        pool = finetune_pool(str(Path(cfg["zoo_root"]).resolve()), cfg["runtime"], str(run_dir / "ray_train"))
        try:
            outcome = pool.run([job], [job.key])[job.key]
        finally:
            pool.close()
    if outcome.error:
        raise RuntimeError(f"fine-tuning failed: {outcome.error}")
    out = {"task": meta, "regime": regime, "result": outcome.result, "budget_s": budget}
    if client is not None and cfg.get("report", True):
        out["feedback"] = client.feedback(meta, regime, outcome.result, budget_s=budget, feedback_id=job.key)
    write_json_atomic(out, run_dir / "finetune.json")
    r = outcome.result
    log.info(
        "top-1 %.3f in %.1fs of %.0fs (%s, %d steps, %.2f epochs)%s",
        r["accuracy"],
        r["time_s"],
        budget,
        "finished" if r["finished"] else f"stopped by {r['stopped_by']}",
        r["steps"],
        r["epochs_done"],
        "; reported to the service" if "feedback" in out else "",
    )
    return out


def _budget(value: Any) -> float:
    budget = float(value)
    if not (math.isfinite(budget) and budget > 0):
        raise ValueError(f"budget_s must be a positive number of seconds, got {value!r}")
    return budget


def _regime(cfg: Mapping[str, Any], client: ServiceClient | None, meta: dict, budget: float) -> dict[str, Any]:
    """The configured regime, or the one the service proposes when ``regime.model`` is not given."""
    regime = dict(cfg.get("regime") or {})
    if regime.get("model"):
        return regime
    if client is None:
        raise ValueError("give regime.model=<zoo key> (and lr, frozen_stages, ...) or service_url=<regime service>")
    regime = client.regime(meta, budget)
    log.info(
        "the service proposes %s (predicted top-1 %.3f in %.1fs)",
        {k: regime.get(k) for k in REGIME_FIELDS},
        regime["predicted_accuracy"],
        regime["predicted_time_s"],
    )
    return regime
