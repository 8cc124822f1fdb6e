"""The search job: Ray up, archive actor, Ray Train evaluator, two-level NSGA-II, results on disk.

``launch/search.py`` only composes the Hydra config and calls :func:`run_search_job`.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from nasoa.config import typed_settings
from nasoa.search.archive import ARCHIVE_FILE, FRONT_FILE, ParetoArchive
from nasoa.search.loop import LevelSettings, SearchResult, run_search
from nasoa.search.proxy import ProxySettings
from nasoa.search.space import SearchSpace
from nasoa.space.operators import SpaceLimits

log = logging.getLogger("nasoa.search")

SUMMARY_FILE = "summary.json"
PLOT_FILE = "pareto.png"


@dataclass(frozen=True)
class TrainerSettings:
    """Where candidates run: Ray Train workers and their resources."""

    num_workers: int = 2
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    use_gpu: bool = False
    threads: int = 1
    ray_num_cpus: int | None = None  # local Ray only; None = all cores
    health_check_interval_s: float = 0.2
    ray_temp_dir: str | None = None  # local Ray only: its session directory root (None: Ray's default)


@dataclass(frozen=True)
class ClusterSettings:
    """How to reach an existing Ray cluster (absent: a fresh local instance)."""

    address: str = "auto"
    storage_path: str | None = None
    name: str = "aws"




def settings_from_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Turn the composed Hydra config (a plain dict) into typed settings."""
    space, search, proxy, trainer, obj = cfg["space"], cfg["search"], cfg["proxy"], cfg["trainer"], cfg["objectives"]
    limits = typed_settings(SpaceLimits, space["limits"], "space.limits")
    proxy_settings = typed_settings(ProxySettings, {**proxy, **obj.get("profile", {})}, "proxy/objectives.profile")
    common = dict(
        limits=limits,
        max_params=obj.get("max_params"),
        max_macs=obj.get("max_macs"),
        resolution=proxy_settings.resolution,
        num_classes=int(obj.get("cost_num_classes", 10)),
    )
    block_space = SearchSpace("block", macro=space["skeleton"], stem_width=space.get("block_stem_width"), **common)
    macro_space = SearchSpace("macro", stem_width=space.get("macro_stem_width"), **common)
    cluster = cfg.get("cluster")
    return {
        "block_space": block_space,
        "macro_space": macro_space,
        "block": typed_settings(LevelSettings, search["block"], "search.block"),
        "macro": typed_settings(LevelSettings, search["macro"], "search.macro"),
        "seed": int(search["seed"]),
        "top_blocks": int(search.get("top_blocks", 3)),
        "proxy": proxy_settings,
        "trainer": typed_settings(TrainerSettings, trainer, "trainer"),
        "cluster": typed_settings(ClusterSettings, cluster, "cluster") if cluster else None,
    }


def init_ray(trainer: TrainerSettings, cluster: ClusterSettings | None, tmp_dir: str | None = None) -> None:
    """Join the configured cluster, or start a private local instance (never a stray one left running)."""
    import ray

    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", str(trainer.health_check_interval_s))
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if ray.is_initialized():
        return
    if cluster is not None:
        ray.init(address=cluster.address, log_to_driver=False)
        return
    ray.init(
        address="local",
        num_cpus=trainer.ray_num_cpus or os.cpu_count(),
        include_dashboard=False,
        log_to_driver=False,
        _temp_dir=tmp_dir or trainer.ray_temp_dir,
    )


def run_search_job(cfg: Mapping[str, Any], run_dir: str | os.PathLike) -> dict[str, Any]:
    """Run (or resume) the two-level search in ``run_dir``; returns the summary written to ``summary.json``."""
    import ray

    from nasoa.analysis.pareto import plot_search
    from nasoa.dist.archive_actor import RemoteArchiveStore, start_archive_actor
    from nasoa.dist.train_evaluator import RayTrainEvaluator

    s = settings_from_config(cfg)
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    previous = ParetoArchive.load(run_dir)
    if len(previous):
        log.info("resuming: %d candidates already archived in %s", len(previous), run_dir / ARCHIVE_FILE)
    t0 = time.time()
    owns_ray = not ray.is_initialized()
    init_ray(s["trainer"], s["cluster"])
    ray_address = ray.get_runtime_context().gcs_address
    log.info("Ray at %s (%s)", ray_address, "joined cluster" if s["cluster"] else "private local instance")
    evaluator = None
    try:
        actor = start_archive_actor(str(run_dir))
        store = RemoteArchiveStore(actor)
        trainer: TrainerSettings = s["trainer"]
        resources = {"CPU": trainer.cpus_per_worker}
        if trainer.gpus_per_worker:
            resources["GPU"] = trainer.gpus_per_worker
        storage = s["cluster"].storage_path if s["cluster"] else str(run_dir / "ray_train")
        evaluator = RayTrainEvaluator(
            actor,
            s["proxy"],
            num_workers=trainer.num_workers,
            use_gpu=trainer.use_gpu,
            resources_per_worker=resources,
            threads=trainer.threads,
            storage_path=storage,
            name=f"search-{run_dir.name}",
        )
        log.info(
            "search: %d Ray Train workers (%s each), proxy %s at %dpx, %d train steps per candidate",
            trainer.num_workers,
            resources,
            s["proxy"].task,
            s["proxy"].resolution,
            s["proxy"].train_steps,
        )
        result = run_search(
            s["block_space"],
            s["macro_space"],
            s["block"],
            s["macro"],
            evaluator,
            store,
            seed=s["seed"],
            top_blocks=s["top_blocks"],
            on_generation=lambda report: log.info(report.line()),
        )
        evaluator.close()
        stats = evaluator.stats()
        archive = store.snapshot()
        duplicates = ray.get(actor.duplicates.remote())
    finally:
        if evaluator is not None and evaluator.closed_at is None:
            evaluator.close()
        if owns_ray:
            ray.shutdown()
    plot = plot_search(archive.records, run_dir / PLOT_FILE)
    summary = _summary(result, archive, stats, duplicates, len(previous), time.time() - t0, s)
    summary |= {"plot": plot, "ray_address": ray_address, "joined_cluster": s["cluster"] is not None}
    (run_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
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
        plot,
    )
    return summary


def _summary(result: SearchResult, archive, stats, duplicates, resumed_from, seconds, s) -> dict[str, Any]:  # noqa: ANN001
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
        "proxy": s["proxy"].to_dict(),
        "trainer": asdict(s["trainer"]),
    }
