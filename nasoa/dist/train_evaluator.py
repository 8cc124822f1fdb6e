"""Evaluate candidates on Ray Train: one long ``TorchTrainer.fit()`` for the whole search.

Ray Train worker groups take ~20 s to start here (STACK-NOTES.md), so the workers are started once;
each pulls candidates from a :class:`~nasoa.dist.queue_actor.CandidateQueue`, evaluates them with
:func:`nasoa.search.proxy.evaluate_candidate` on its own resources (CPUs here, a GPU per worker on a
cluster) and writes each result to the archive actor, which persists it at once. The driver's ask/tell
loop only puts a generation on the queue and waits on the archive actor.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict

import ray

from nasoa.dist.queue_actor import CandidateQueue
from nasoa.search.archive import Record
from nasoa.search.evaluator import Candidate, EvaluatorStats
from nasoa.search.proxy import ProxySettings, evaluate_candidate

log = logging.getLogger(__name__)


def _warm_up(settings: ProxySettings) -> None:
    """Pay a fresh process's first-step cost (1-7 s here) before any candidate is timed."""
    from nasoa.search.proxy import proxy_task
    from nasoa.space import build
    from nasoa.train import profile_step

    task = proxy_task(settings.task, settings.resolution, settings.seed)
    model = build("0-_8_1", task.num_classes)
    profile_step(model, batch_size=4, resolution=settings.resolution, device=settings.device, warmup=2, steps=1)


def worker_loop(config: dict) -> None:
    """Ray Train's per-worker function: pull, evaluate, archive, until the queue closes."""
    import torch

    from nasoa.train import set_threads

    ctx = ray.train.get_context()
    rank = ctx.get_world_rank()
    worker = f"{os.uname().nodename}/rank{rank}"
    settings = ProxySettings(**config["proxy"])
    if config.get("use_gpu") and torch.cuda.is_available():
        local = ctx.get_local_rank()
        torch.cuda.set_device(local)
        settings = ProxySettings(**{**config["proxy"], "device": f"cuda:{local}"})
    set_threads(config.get("threads", 1))
    queue, archive = config["queue"], config["archive"]
    _warm_up(settings)
    while True:
        candidate = ray.get(queue.get.remote(worker))
        if candidate is None:
            break
        t0 = time.perf_counter()
        record = evaluate_candidate(candidate, settings, worker)
        busy = time.perf_counter() - t0
        ray.get(archive.add.remote(record))
        ray.get(queue.done.remote(worker, busy))


class RayTrainEvaluator:
    """The :class:`~nasoa.search.evaluator.Evaluator` interface over a long-running Ray Train fit."""

    def __init__(
        self,
        archive: ray.actor.ActorHandle,
        proxy: ProxySettings,
        num_workers: int = 2,
        use_gpu: bool = False,
        resources_per_worker: dict | None = None,
        threads: int = 1,
        storage_path: str | None = None,
        name: str = "nasoa-search",
        result_timeout_s: float = 3600.0,
    ) -> None:
        from ray.train import RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer

        self.archive = archive
        self.num_workers = num_workers
        self.result_timeout_s = result_timeout_s
        self.queue = CandidateQueue.remote()
        self.started = time.time()
        config = {
            "proxy": asdict(proxy),
            "queue": self.queue,
            "archive": archive,
            "threads": threads,
            "use_gpu": use_gpu,
        }
        scaling = ScalingConfig(
            num_workers=num_workers, use_gpu=use_gpu, resources_per_worker=resources_per_worker or {"CPU": 1}
        )
        run_config = RunConfig(name=name, storage_path=storage_path)
        self.trainer = TorchTrainer(worker_loop, train_loop_config=config, scaling_config=scaling, run_config=run_config)
        self.error: BaseException | None = None
        self.closed_at: float | None = None
        self.thread = threading.Thread(target=self._fit, name="nasoa-train-fit", daemon=True)
        self.thread.start()

    def _fit(self) -> None:
        try:
            self.trainer.fit()
        except BaseException as err:  # noqa: BLE001 - surfaced to the driver by evaluate()
            self.error = err

    def evaluate(self, candidates: Sequence[Candidate]) -> list[Record]:
        """Queue candidates (costliest first, so no worker is left with a long tail) and wait for them all."""
        from nasoa.space import complexity

        order = sorted(candidates, key=lambda c: -complexity(c.encoding, 32, 10).macs)
        ray.get(self.queue.put.remote(order))
        wanted = [c.archid for c in candidates]
        deadline = time.time() + self.result_timeout_s
        got: dict[str, Record] = {}
        while len(got) < len(wanted):
            if self.error is not None or not self.thread.is_alive():
                raise RuntimeError(f"the Ray Train evaluation run stopped: {self.error!r}") from self.error
            if time.time() > deadline:
                raise TimeoutError(f"{len(wanted) - len(got)} candidates not evaluated in {self.result_timeout_s}s")
            got = ray.get(self.archive.wait_for.remote(wanted, 5.0))
        return [got[a] for a in wanted]

    def stats(self) -> EvaluatorStats:
        s = ray.get(self.queue.stats.remote())
        wall = (self.closed_at or time.time()) - self.started
        busy = tuple(s["busy"].values())
        startup = min(s["ready"].values()) - self.started if s["ready"] else wall
        return EvaluatorStats(self.num_workers, wall, sum(busy), s["evaluated"], startup, busy)

    def close(self) -> None:
        """Close the queue and wait for the fit to end."""
        ray.get(self.queue.close.remote())
        self.closed_at = time.time()
        self.thread.join(timeout=120)
        if self.thread.is_alive():
            log.warning("the Ray Train run did not stop within 120 s")
