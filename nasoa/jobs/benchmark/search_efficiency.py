"""Search efficiency: candidates per hour, worker time spent evaluating, and the speed-up from 1 to 2 workers.

The same seeded search (``conf/search.yaml`` with the benchmark's overrides) runs once per worker count, each in
its own folder and its own private Ray instance. Written to ``search_efficiency.json``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nasoa.cluster.runtime import RuntimeSettings
from nasoa.common.io import write_json_atomic
from nasoa.jobs.config import compose_job
from nasoa.jobs.search import run_search_job

log = logging.getLogger(__name__)
RESULT_FILE = "search_efficiency.json"


def run_search_efficiency(cfg: Mapping[str, Any], runtime: RuntimeSettings, experiment: str, out: Path) -> dict:
    """Run the ``experiment``'s search once per worker count, each on a private Ray; returns what it writes."""
    t0 = time.time()
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    for workers in cfg["workers"]:
        run_dir = out / f"search-{workers}w"
        overrides = [f"experiment={experiment}", *cfg["overrides"], f"runtime.num_workers={workers}"]
        local = {"num_cpus": runtime.num_cpus, "temp_dir": runtime.temp_dir}
        overrides += [f"runtime.{k}={v}" for k, v in local.items() if v]
        log.info("search efficiency: %d worker(s) -> %s", workers, run_dir)
        s = run_search_job(compose_job("search", overrides), run_dir)
        evaluating_wall = max(s["worker_wall_s"] - s["startup_s"], 1e-9)
        runs.append(
            {
                "workers": workers,
                "candidates": s["evaluated_this_run"],
                "seconds": s["seconds"],
                "startup_s": s["startup_s"],
                "worker_busy_s": s["worker_busy_s"],
                "worker_wall_s": s["worker_wall_s"],
                "worker_efficiency": s["worker_efficiency"],
                "candidates_per_hour": 3600 * s["evaluated_this_run"] / s["seconds"],
                "candidates_per_hour_after_startup": 3600 * s["evaluated_this_run"] / evaluating_wall,
                "run_dir": str(run_dir),
            }
        )
        log.info(
            "  %d worker(s): %d candidates in %.0fs (start-up %.0fs), %.0f/h, worker time evaluating %.1f%%",
            workers,
            s["evaluated_this_run"],
            s["seconds"],
            s["startup_s"],
            runs[-1]["candidates_per_hour"],
            100 * s["worker_efficiency"],
        )
    one = next((r for r in runs if r["workers"] == 1), None)
    speedups = {}
    if one is not None:
        for r in runs:
            if r["workers"] != 1:
                speedups[str(r["workers"])] = {
                    "total": r["candidates_per_hour"] / one["candidates_per_hour"],
                    "after_startup": r["candidates_per_hour_after_startup"] / one["candidates_per_hour_after_startup"],
                }
    report = {
        "benchmark": "search_efficiency",
        "seconds": time.time() - t0,
        "overrides": list(cfg["overrides"]),
        "runs": runs,
        "speedup_vs_1_worker": speedups,
    }
    write_json_atomic(report, out / RESULT_FILE)
    return report
