"""A simulated large search: how many workers one work queue and one archive actor keep busy, and where they saturate.

Fake workers (coroutines, spread over a few Ray actor processes) run the Train pool's worker loop against the real
:class:`~nasoa.cluster.work_queue.WorkQueue` and :class:`~nasoa.cluster.archive_actor.ArchiveActor`: register, take
a candidate, "evaluate" it by sleeping a uniform 0..``eval_ms`` (no training), report it done and take the next
(``done_and_get``: the queue forwards the result to the archive, which acknowledges once it is durable), until
``seconds`` pass. A worker's *busy fraction* is its evaluating time over the wall time; the rest is what the queue
and the archive cost per candidate (one queue call, the archive's fsync). Each worker count runs on a fresh queue
and archive.

Run: ``python -m nasoa.cluster.sim_search --workers 1,4,16,64,128,256 --eval-ms 50 --seconds 6 [--json out.json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import ray

from nasoa.cluster.archive_actor import start_archive_actor
from nasoa.cluster.runtime import RuntimeSettings
from nasoa.cluster.session import ray_session
from nasoa.cluster.work_queue import WorkQueue
from nasoa.search.archive import Record
from nasoa.search.evaluator import Candidate


def fake_result(candidate: Candidate, worker: str, spent: float) -> Record:
    c = candidate
    return Record(c.archid, c.encoding, c.level, c.generation, "ok", 0.5, 10.0, eval_s=spent, worker=worker)


@ray.remote(num_cpus=0)
class FakeWorkers:
    """``n`` fake workers in one process."""

    async def ready(self) -> bool:
        return True

    async def run(self, queue: ray.actor.ActorHandle, prefix: str, n: int, eval_ms: float, seconds: float) -> dict:
        rng = random.Random(prefix)
        deadline = time.monotonic() + seconds
        busy, overhead = [0.0] * n, []

        async def worker(w: int) -> None:
            wid = f"{prefix}-{w}"
            await queue.register.remote(wid, wid)
            candidate, t1 = await queue.get.remote(wid), time.perf_counter()
            while candidate is not None:
                await asyncio.sleep(rng.uniform(0.0, eval_ms) / 1000)
                t2 = time.perf_counter()
                busy[w] += t2 - t1
                result = fake_result(candidate, wid, t2 - t1)
                if time.monotonic() >= deadline:  # the last result, without taking another candidate
                    await queue.done.remote(wid, candidate.archid, result, t2 - t1)
                    return
                candidate = await queue.done_and_get.remote(wid, candidate.archid, result, t2 - t1)
                t1 = time.perf_counter()
                overhead.append(t1 - t2)

        await asyncio.gather(*(worker(w) for w in range(n)))
        return {"busy": busy, "overhead": overhead}


def simulate(workers: int, eval_ms: float, seconds: float, procs: int = 4) -> dict[str, Any]:
    """One point: ``workers`` fake workers on a fresh queue and archive for ``seconds``; the figures."""
    run_dir = tempfile.mkdtemp(prefix="nasoa-sim-")
    archive = start_archive_actor(run_dir)
    queue = WorkQueue.remote(archive)
    mean_s = max(eval_ms / 2000, 0.0005)
    n_items = min(int(workers * seconds / mean_s * 1.5) + 4 * workers, 200_000)
    ray.get(queue.put.remote([Candidate(f"c{i:07d}", "0-_8_1", "block", 0) for i in range(n_items)]))
    hosts = [FakeWorkers.remote() for _ in range(min(procs, workers))]
    ray.get([h.ready.remote() for h in hosts])
    shares = [workers // len(hosts) + (k < workers % len(hosts)) for k in range(len(hosts))]
    t0 = time.monotonic()
    out = ray.get([h.run.remote(queue, f"w{k}", n, eval_ms, seconds) for k, (h, n) in enumerate(zip(hosts, shares))])
    wall = time.monotonic() - t0
    stats = ray.get(archive.stats.remote())
    for actor in (*hosts, queue, archive):
        ray.kill(actor)
    shutil.rmtree(run_dir, ignore_errors=True)
    overhead = np.array([o for part in out for o in part["overhead"]]) * 1000
    busy = sum(b for part in out for b in part["busy"])
    point = {"workers": workers, "eval_ms_max": eval_ms, "seconds": wall, "candidates": stats["added"]}
    point |= {"candidates_per_s": stats["added"] / wall, "busy_fraction": busy / (workers * wall)}
    p50, p99 = float(np.median(overhead)), float(np.quantile(overhead, 0.99))
    return point | {"overhead_p50_ms": p50, "overhead_p99_ms": p99}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,4,16,64,128,256", help="comma-separated worker counts")
    parser.add_argument("--eval-ms", default="50", help="comma-separated maxima of the uniform evaluation time")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--procs", type=int, default=4, help="processes the fake workers are spread over")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    points, temp_dir = [], tempfile.mkdtemp(prefix="nasoa-sim-", dir="/tmp")
    try:
        with ray_session(RuntimeSettings(temp_dir=temp_dir)):
            for eval_ms in (float(e) for e in args.eval_ms.split(",")):
                for workers in (int(w) for w in args.workers.split(",")):
                    points.append(simulate(workers, eval_ms, args.seconds, args.procs))
                    print(_line(points[-1]), flush=True)
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(points, indent=1))
    return 0


def _line(p: dict[str, Any]) -> str:
    return (
        f"{p['workers']:4d} workers, eval 0-{p['eval_ms_max']:g} ms: {p['candidates_per_s']:7.0f} candidates/s, "
        f"busy {100 * p['busy_fraction']:5.1f}%, queue+archive per candidate p50 {p['overhead_p50_ms']:.1f} ms "
        f"p99 {p['overhead_p99_ms']:.1f} ms"
    )


if __name__ == "__main__":
    sys.exit(main())
