"""How many results per second one archive actor takes: many concurrent clients, optionally the actor killed mid-load.

``--clients`` coroutines spread over ``--procs`` client processes (Ray actors) add search results back to back,
each waiting for its acknowledgement (the result is durable by then); the bench prints results/s and the p50 / p99
latency of an acknowledged add, then checks the files: every acknowledged archid is in ``archive.parquet``
exactly once after the final compaction. Each client process sends its clients' concurrent results together
(``add_many``, through a :class:`~nasoa.common.batching.GroupCommit`), as the work queue does for its workers;
``--per-result-calls`` makes one Ray call per result instead (bounded by Ray's per-call cost, not the archive's).
``--kill-at S`` kills the archive actor ``S`` seconds in
(``ray.kill(no_restart=False)``: Ray restarts it, it replays its files, and the calls in flight are retried).

Run: ``python -m nasoa.cluster.archive_bench --clients 32 --seconds 10 [--kill-at 5] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import ray

from nasoa.cluster.archive_actor import start_archive_actor
from nasoa.cluster.runtime import RuntimeSettings
from nasoa.cluster.session import ray_session
from nasoa.common.batching import GroupCommit
from nasoa.search.archive import ARCHIVE_FILE, Record


def bench_record(archid: str, i: int) -> Record:
    """A result as a Train worker sends it (every field filled)."""
    return Record(archid, "031-_64_1-1-221-11121", "block", i % 7, "ok", 0.5 + (i % 97) / 200, 10.0 + i % 89)


@ray.remote(num_cpus=0)
class ArchiveClients:
    """``n`` concurrent clients in one process, each adding results back to back until ``seconds`` pass."""

    async def ready(self) -> bool:
        return True

    async def run(
        self, archive: ray.actor.ActorHandle, prefix: str, n: int, seconds: float, per_call: bool = False
    ) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        acked: list[str] = []
        latencies: list[float] = []
        batched = GroupCommit(lambda records: archive.add_many.remote(records))
        add = (lambda r: archive.add.remote(r)) if per_call else batched.submit

        async def client(c: int) -> None:
            i = 0
            while time.monotonic() < deadline:
                record = bench_record(f"{prefix}-{c}-{i}", i)
                i += 1
                t0 = time.perf_counter()
                await add(record)
                latencies.append(time.perf_counter() - t0)
                acked.append(record.archid)

        await asyncio.gather(*(client(c) for c in range(n)))
        return {"acked": acked, "latencies": latencies}


def run_bench(
    clients: int, procs: int, seconds: float, run_dir: Path, kill_at: float | None = None, per_call: bool = False
) -> dict:
    """Drive one archive actor in ``run_dir``; returns the figures and the file check (see the module doc)."""
    actor = start_archive_actor(str(run_dir))
    hosts = [ArchiveClients.remote() for _ in range(procs)]
    pid = ray.get([actor.stats.remote(), *(h.ready.remote() for h in hosts)])[0]["pid"]  # all up before the clock
    shares = [clients // procs + (k < clients % procs) for k in range(procs)]
    t0 = time.monotonic()
    runs = [h.run.remote(actor, f"p{k}", n, seconds, per_call) for k, (h, n) in enumerate(zip(hosts, shares)) if n]
    if kill_at is not None:
        time.sleep(kill_at)
        ray.kill(actor, no_restart=False)
    out = ray.get(runs)
    wall = time.monotonic() - t0
    stats = ray.get(actor.stats.remote())
    ray.get(actor.compact.remote())
    acked = [a for o in out for a in o["acked"]]
    latencies = np.array([s for o in out for s in o["latencies"]]) * 1000
    figures = {"clients": clients, "procs": procs, "per_result_calls": per_call, "seconds": seconds, "wall_s": wall}
    figures["acked"] = len(acked)
    figures |= {"results_per_s": len(acked) / seconds, "p50_ms": float(np.percentile(latencies, 50))}
    figures |= {"p99_ms": float(np.percentile(latencies, 99)), "max_ms": float(latencies.max()), "killed_at": kill_at}
    figures |= {"actor": stats, "results_per_fsync": stats["added"] / max(stats["batches"], 1)}
    figures["actor_restarted"] = stats["pid"] != pid
    return figures | check_files(run_dir, acked)


def check_files(run_dir: Path, acked: list[str]) -> dict[str, Any]:
    """Every acknowledged archid in the compacted ``archive.parquet`` exactly once."""
    counts = Counter(pq.read_table(run_dir / ARCHIVE_FILE, columns=["archid"]).column("archid").to_pylist())
    missing = [a for a in acked if counts[a] == 0]
    twice = [a for a, n in counts.items() if n > 1]
    return {"stored": sum(counts.values()), "acked_missing": len(missing), "stored_twice": len(twice)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients in all")
    parser.add_argument("--procs", type=int, default=4, help="client processes the clients are spread over")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--kill-at", type=float, default=None, help="kill the archive actor this many seconds in")
    parser.add_argument("--per-result-calls", action="store_true", help="one Ray call per result (no batching)")
    parser.add_argument("--run-dir", default=None, help="where the archive files go (default: a temporary folder)")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    run_dir = Path(args.run_dir or tempfile.mkdtemp(prefix="nasoa-archive-bench-"))
    temp_dir = tempfile.mkdtemp(prefix="nasoa-ab-", dir="/tmp")  # Ray's socket paths must stay under 107 bytes
    try:
        with ray_session(RuntimeSettings(temp_dir=temp_dir)):
            figures = run_bench(args.clients, args.procs, args.seconds, run_dir, args.kill_at, args.per_result_calls)
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
        if not args.run_dir:
            shutil.rmtree(run_dir, ignore_errors=True)
    print(
        f"{figures['results_per_s']:.0f} results/s from {args.clients} clients; acknowledged add p50 "
        f"{figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms, max {figures['max_ms']:.0f} ms; "
        f"{figures['results_per_fsync']:.1f} results per fsync, {figures['actor']['compactions']} compactions; "
        f"{figures['acked']} acknowledged, {figures['acked_missing']} missing, {figures['stored_twice']} stored twice"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return 0 if figures["acked_missing"] == 0 and figures["stored_twice"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
