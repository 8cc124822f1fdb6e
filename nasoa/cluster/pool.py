"""A pool of long-lived Ray Train workers that pull work items from a queue: one ``fit()`` for many items.

Ray Train worker groups take ~20 s to start on a 2-core machine, so one trainer ``fit()`` serves
a whole search or zoo build: each worker pulls an item from a :class:`~nasoa.cluster.work_queue.WorkQueue`,
runs ``fn(item, settings, worker)`` on its own resources (CPUs here, a GPU per worker on a cluster) and
hands the result, through the queue, to a sink actor (the archive, the zoo manifest), which persists it at once.
``run`` only queues items and waits on the sink.

Worker deaths: the trainer restarts the whole worker group (``FailureConfig(max_failures)``) and the new workers
run :func:`pool_worker_loop` again. Each worker registers with the queue under its rank and a process-unique id,
so the queue requeues the items the previous workers held (at most ``max_attempts`` hand-outs per item; then the
pool's ``on_give_up`` result stands for it, see :class:`~nasoa.cluster.work_queue.WorkQueue`).

The workers never talk to each other, so the pool runs Ray Train's framework-agnostic ``DataParallelTrainer``,
not ``TorchTrainer``: no torch.distributed process group is set up. (With one, a worker group restarted after a
worker was killed could hang for good in the gloo rendezvous, "Setting up process group for: env://".)
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import ray
from ray.train import FailureConfig, RunConfig, ScalingConfig
from ray.train.v2.api.data_parallel_trainer import DataParallelTrainer

from nasoa.cluster.device import assigned_device
from nasoa.cluster.runtime import RuntimeSettings
from nasoa.cluster.session import on_driver_node
from nasoa.cluster.work_queue import WorkQueue, item_key
from nasoa.search.evaluator import EvaluatorStats
from nasoa.train import set_threads

log = logging.getLogger(__name__)


def pool_worker_loop(config: dict) -> None:
    """Ray Train's per-worker function: warm up, then pull, run, hand over, until the queue closes."""
    ctx = ray.train.get_context()
    slot = f"rank{ctx.get_world_rank()}"
    worker = f"{os.uname().nodename}:{os.getpid()}/{slot}"  # unique per process: a restarted worker is a new id
    settings = dataclasses.replace(config["settings"], device=assigned_device(config["settings"].device))
    set_threads(config.get("threads", 1))
    queue, fn = config["queue"], config["fn"]
    ray.get(queue.register.remote(worker, slot))  # requeues what this slot's dead predecessor held
    if config.get("warm_up") is not None:
        config["warm_up"](settings)  # a fresh process's first step costs 1-7 s: never inside a timed item
    item = ray.get(queue.get.remote(worker))
    while item is not None:
        t0 = time.perf_counter()
        result = fn(item, settings, worker)
        busy = time.perf_counter() - t0
        # One call: the queue hands the result to the sink (durable when it returns), then the next item.
        item = ray.get(queue.done_and_get.remote(worker, item_key(item), result, busy))


class TrainPool:
    """Runs items through ``fn`` on ``num_workers`` Ray Train workers; results go through ``sink``.

    Each worker gets the runtime's resources (a GPU per worker when ``runtime.gpus_per_worker`` is set); ``fn`` sees
    ``settings.device`` set from what Ray assigned the worker (:func:`~nasoa.cluster.device.assigned_device`).

    Args:
        on_give_up: ``(item, attempts, reason) -> result`` for an item whose workers died ``max_attempts`` times
            (None: ``run`` raises for it).
        max_attempts: Hand-outs per item before it is given up.
        max_failures: Worker-group restarts Ray Train may do before the fit (and ``run``) fails.
    """

    def __init__(
        self,
        fn: Callable[[Any, Any, str], Any],
        settings: Any,
        sink: ray.actor.ActorHandle,
        runtime: RuntimeSettings,
        num_workers: int | None = None,
        storage_path: str | None = None,
        name: str = "nasoa-pool",
        warm_up: Callable[[Any], None] | None = None,
        result_timeout_s: float = 3600.0,
        on_give_up: Callable[[Any, int, str], Any] | None = None,
        max_attempts: int = 2,
        max_failures: int = 4,
    ) -> None:

        self.sink = sink
        self.num_workers = num_workers or runtime.num_workers
        self.result_timeout_s = result_timeout_s
        self.queue = WorkQueue.options(**on_driver_node()).remote(sink, on_give_up, max_attempts)
        self.events_seen = 0
        self.started = time.time()
        self.closed_at: float | None = None
        config = {"fn": fn, "settings": settings, "queue": self.queue, "threads": runtime.threads}
        config["warm_up"] = warm_up
        scaling = ScalingConfig(
            num_workers=self.num_workers, use_gpu=runtime.use_gpu, resources_per_worker=runtime.worker_resources()
        )
        self.trainer = DataParallelTrainer(
            pool_worker_loop,
            train_loop_config=config,
            scaling_config=scaling,
            run_config=RunConfig(
                name=name, storage_path=storage_path, failure_config=FailureConfig(max_failures=max_failures)
            ),
        )
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._fit, name=f"{name}-fit", daemon=True)
        self.thread.start()

    def _fit(self) -> None:
        try:
            self.trainer.fit()
        except BaseException as err:  # noqa: BLE001 - surfaced to the caller by run()
            self.error = err

    def run(self, items: Sequence[Any], keys: Sequence[str]) -> dict[str, Any]:
        """Queue ``items`` (in this order) and wait until the sink holds a result for every key."""
        ray.get(self.queue.put.remote(list(items)))
        deadline = time.time() + self.result_timeout_s
        got: dict[str, Any] = {}
        while len(got) < len(keys):
            if self.error is not None or not self.thread.is_alive():
                raise RuntimeError(f"the Ray Train run stopped: {self.error!r}") from self.error
            if time.time() > deadline:
                raise TimeoutError(f"{len(keys) - len(got)} items not done in {self.result_timeout_s}s")
            got = ray.get(self.sink.wait_for.remote(list(keys), 5.0))
            self._check_queue(set(keys) - got.keys())
        return got

    def _check_queue(self, missing: set[str]) -> None:
        """Log the queue's new requeue events; raise for missing items given up with no result to stand for them."""
        s = ray.get(self.queue.stats.remote())
        for event in s["events"][self.events_seen :]:
            log.warning("%s", event)
        self.events_seen = len(s["events"])
        lost = missing & set(s["given_up"])
        if lost:
            ray.get(self.sink.wait_for.remote(list(lost), 2.0))  # a give-up result may still be on its way
            lost -= ray.get(self.sink.wait_for.remote(list(lost), 0.0)).keys()
        if lost:
            raise RuntimeError(f"gave up on {sorted(lost)} (their workers died) and no result stands for them")

    def stats(self) -> EvaluatorStats:
        """Worker time accounting, from the pool's start to its close."""
        s = ray.get(self.queue.stats.remote())
        wall = (self.closed_at or time.time()) - self.started
        busy = tuple(s["busy"].values())
        startup = min(s["ready"].values()) - self.started if s["ready"] else wall
        return EvaluatorStats(self.num_workers, wall, sum(busy), s["evaluated"], startup, busy)

    def close(self) -> None:
        """Close the queue and wait for the fit to end."""
        if self.closed_at is not None:
            return
        ray.get(self.queue.close.remote())
        self.closed_at = time.time()
        self.thread.join(timeout=120)
        if self.thread.is_alive():
            log.warning("the Ray Train run did not stop within 120 s")


class ResultSink:
    """Collects results by key (``key_of``); ``wait_for`` returns those present once all are in or time is up."""

    def __init__(self) -> None:

        self.results: dict[str, Any] = {}
        self.changed = asyncio.Condition()

    def key_of(self, result: Any) -> str:
        return result.key

    def store(self, result: Any) -> None:
        """Keep a result; subclasses persist it here."""
        self.results[self.key_of(result)] = result

    async def add(self, result: Any) -> bool:
        return (await self.add_many([result]))[0]

    async def add_many(self, results: Sequence[Any]) -> list[bool]:
        for result in results:
            self.store(result)
        async with self.changed:
            self.changed.notify_all()
        return [True] * len(results)

    async def wait_for(self, keys: Sequence[str], timeout_s: float) -> dict[str, Any]:

        async with self.changed:
            try:
                await asyncio.wait_for(self.changed.wait_for(lambda: all(k in self.results for k in keys)), timeout_s)
            except asyncio.TimeoutError:
                pass
        return {k: self.results[k] for k in keys if k in self.results}


KeyedSink = ray.remote(num_cpus=0)(ResultSink)
