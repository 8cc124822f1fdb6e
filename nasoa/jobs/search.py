"""The search job: the archive actor, the Ray Train evaluator, the two-level search, results on disk.

``launch/search.py`` composes the Hydra config and calls :func:`run_search_job`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import ray

from nasoa.analysis.pareto import plot_search
from nasoa.cluster.archive_actor import RemoteArchiveStore, start_archive_actor
from nasoa.cluster.runtime import RuntimeSettings
from nasoa.cluster.session import ray_session
from nasoa.cluster.train_evaluator import RayTrainEvaluator
from nasoa.common.io import write_json_atomic
from nasoa.search.archive import ARCHIVE_FILE, FRONT_FILE, ParetoArchive
from nasoa.search.evaluator import EvaluatorStats
from nasoa.search.loop import SearchResult, level_spaces, run_search
from nasoa.train.recipe import Recipe

log = logging.getLogger("nasoa.search")

SUMMARY_FILE = "summary.json"
PLOT_FILE = "pareto.png"


def run_search_job(cfg: Mapping[str, Any], run_dir: str | os.PathLike) -> dict[str, Any]:
    """Run (or resume) the two-level search in ``run_dir``; returns the summary written to ``summary.json``."""
    runtime: RuntimeSettings = cfg["runtime"]
    proxy: Recipe = replace(cfg["proxy"], device=runtime.device)
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    previous = len(ParetoArchive.load(run_dir))
    if previous:
        log.info("resuming: %d candidates already archived in %s", previous, run_dir / ARCHIVE_FILE)
    t0 = time.time()
    with ray_session(runtime) as address:
        result, archive, stats, duplicates = _search_on_ray(cfg, proxy, runtime, run_dir)
    summary = _summary(result, archive, stats, duplicates, previous, time.time() - t0, proxy, runtime)
    summary |= {"plot": plot_search(archive.records, run_dir / PLOT_FILE), "ray_address": address}
    summary["joined_cluster"] = runtime.address is not None
    write_json_atomic(summary, run_dir / SUMMARY_FILE)
    _log_done(summary, run_dir)
    return summary


def _search_on_ray(
    cfg: Mapping[str, Any], proxy: Recipe, runtime: RuntimeSettings, run_dir: Path
) -> tuple[SearchResult, ParetoArchive, EvaluatorStats, int]:
    """Both levels on Ray Train workers; returns the result, the final archive, worker stats and duplicate results."""
    block, macro = level_spaces(cfg["space"], cfg["search"], proxy.resolution)
    actor = start_archive_actor(str(run_dir))
    store = RemoteArchiveStore(actor)
    storage = runtime.storage(run_dir, "ray_train")
    evaluator = RayTrainEvaluator(actor, proxy, runtime, storage, f"search-{run_dir.name}")
    log.info(
        "search: %d Ray Train workers (%s each), proxy %s at %dpx, %s train steps per candidate",
        runtime.num_workers,
        runtime.worker_resources(),
        proxy.source,
        proxy.resolution,
        proxy.max_steps,
    )
    try:
        result = run_search(block, macro, cfg["search"], evaluator, store, lambda r: log.info(r.line()))
    finally:
        evaluator.close()
        ray.get(actor.compact.remote())  # archive.parquet and front.parquet complete, the journal emptied
    return result, store.snapshot(), evaluator.stats(), ray.get(actor.duplicates.remote())


def _summary(result, archive, stats, duplicates, resumed_from, seconds, proxy, runtime) -> dict[str, Any]:  # noqa: ANN001
    front = archive.front()
    return {
        "seconds": seconds,
        "archive_size": len(archive),
        "front_size": len(front),
        "failed": sum(not r.ok for r in archive.records),
        "resumed_from": resumed_from,
        "evaluated_this_run": len(result.evaluated),
        "evaluated_archids": result.evaluated,
        "proposals": result.proposals,
        "duplicate_results": duplicates,
        "workers": stats.workers,
        "worker_wall_s": stats.wall_s,
        "worker_busy_s": stats.busy_s,
        "per_worker_busy_s": list(stats.per_worker_busy_s),
        "startup_s": stats.startup_s,
        "worker_efficiency": stats.efficiency,
        "hypervolume": result.reports[-1].hypervolume if result.reports else 0.0,
        "ref_step_ms": result.ref_step_ms,
        "generations": [asdict(r) for r in result.reports],
        "front": [{"encoding": r.encoding, "accuracy": r.accuracy, "train_step_ms": r.train_step_ms} for r in front],
        "proxy": proxy.to_dict(),
        "runtime": asdict(runtime),
    }


def _log_done(summary: Mapping[str, Any], run_dir: Path) -> None:
    log.info(
        "done in %.0fs: %d candidates (%d new, %d failed), front %d; worker time evaluating %.1f%% "
        "(start-up %.1fs); wrote %s, %s, %s",
        summary["seconds"],
        summary["archive_size"],
        summary["evaluated_this_run"],
        summary["failed"],
        summary["front_size"],
        100 * summary["worker_efficiency"],
        summary["startup_s"],
        run_dir / ARCHIVE_FILE,
        run_dir / FRONT_FILE,
        summary["plot"],
    )
