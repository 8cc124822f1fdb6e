"""Search efficiency: candidates per hour, worker time spent evaluating, and the speed-up from 1 to 2 workers.

The same seeded search (``conf/search.yaml`` with the benchmark's overrides) runs once per worker count, each in
its own folder and its own private Ray instance. Written to ``search_efficiency.json``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
RESULT_FILE = "search_efficiency.json"


def run_search_efficiency(cfg: Mapping[str, Any], out: Path) -> dict[str, Any]:
    """Run the search once per worker count; returns what it writes."""
    from nasoa.dist.pipeline import compose_plain
    from nasoa.dist.search_job import run_search_job

    t0 = time.time()
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    for workers in cfg["workers"]:
        run_dir = out / f"search-{workers}w"
        overrides = [*cfg["overrides"], f"trainer.num_workers={workers}", f"trainer.ray_num_cpus={cfg['ray_num_cpus']}"]
        if cfg.get("ray_temp_dir"):
            overrides.append(f"trainer.ray_temp_dir={cfg['ray_temp_dir']}")
        log.info("search efficiency: %d worker(s) -> %s", workers, run_dir)
        s = run_search_job(compose_plain("search", overrides), run_dir)
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
    (out / RESULT_FILE).write_text(json.dumps(report, indent=2))
    return report
