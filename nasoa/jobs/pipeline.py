"""The main job: search -> zoo -> past-task experience -> service + a stream of tasks, chained through one folder.

Each stage composes its own Hydra config (``conf/<stage>.yaml``) with the main job's experiment, so ``python
launch/main.py`` runs exactly what ``launch/search.py``, ``launch/build_zoo.py``, ``launch/collect.py`` and
``launch/stream.py`` run on their defaults. The stages are composed inside the running Hydra app (the launch
script's config search path): the library never looks for ``conf/`` itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from nasoa.common.io import write_json_atomic
from nasoa.jobs.collect import run_collect_job
from nasoa.jobs.config import compose_job
from nasoa.jobs.search import run_search_job
from nasoa.jobs.stream import run_stream_job
from nasoa.jobs.zoo import run_zoo_job

log = logging.getLogger("nasoa")
STAGES = ("search", "zoo", "collect", "stream")
RUNNERS: dict[str, Callable[[Mapping[str, Any], Path], Any]] = {
    "search": run_search_job,
    "zoo": run_zoo_job,
    "collect": run_collect_job,
    "stream": run_stream_job,
}


def stage_overrides(out: Path, experiment: str, extra: Mapping[str, Sequence[str]] | None = None) -> dict:
    """Every stage's Hydra overrides, wired to ``out`` (the search feeds the zoo, and so on)."""
    wiring = {
        "search": [],
        "zoo": [f"search_dir={out / 'search'}", f"zoo_root={out / 'zoo'}"],
        "collect": [f"zoo_root={out / 'zoo'}", f"state_dir={out / 'state'}"],
        "stream": [f"zoo_root={out / 'zoo'}", f"state_dir={out / 'state'}"],
    }
    extra = extra or {}
    return {s: [f"experiment={experiment}", *wiring[s], *extra.get(s, [])] for s in STAGES}


def run_pipeline(
    out: str | Path, overrides: Mapping[str, Sequence[str]] | None = None, experiment: str = "full"
) -> dict[str, Any]:
    """Run the four stages into ``out``; returns where each result went (also written to ``pipeline.json``)."""
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    per_stage = stage_overrides(out, experiment, overrides)
    seconds = {}
    for stage in STAGES:
        log.info("=== %s ===", stage)
        t0 = time.time()
        RUNNERS[stage](compose_job(stage, per_stage[stage]), out / stage)
        seconds[stage] = time.time() - t0
    results = _results(out) | {"seconds": seconds, "experiment": experiment}
    write_json_atomic(results, out / "pipeline.json")
    _log_done(results, out)
    return results


def run_main_job(cfg: Mapping[str, Any], out: str | Path) -> dict[str, Any] | None:
    """``launch/main.py``: the pipeline into ``out`` with the config's experiment and per-stage overrides.

    With ``dry_run``, prints every stage's composed config instead and runs nothing.
    """
    experiment = cfg.get("experiment_name", "full")
    overrides = {stage: list(cfg["overrides"].get(stage) or []) for stage in STAGES}
    if not cfg.get("dry_run"):
        return run_pipeline(out, overrides, experiment)
    for stage, extra in stage_overrides(Path(out).resolve(), experiment, overrides).items():
        print(f"# --- {stage} ---\n{OmegaConf.to_yaml(compose_job(stage, extra))}")
    return None


def _results(out: Path) -> dict[str, Any]:
    return {
        "search": {
            "archive": out / "search" / "archive.parquet",
            "front": out / "search" / "front.parquet",
            "plot": out / "search" / "pareto.png",
            "summary": out / "search" / "summary.json",
        },
        "zoo": {"manifest": out / "zoo" / "manifest.parquet", "plot": out / "zoo" / "zoo.png"},
        "experience": {"store": out / "state" / "experience"},
        "stream": {"results": out / "stream" / "stream.json"},
    }


def _log_done(results: Mapping[str, Any], out: Path) -> None:
    log.info("=== done in %.0fs ===", sum(results["seconds"].values()))
    for stage, where in results.items():
        if isinstance(where, Mapping) and stage != "seconds":
            for what, path in where.items():
                log.info("  %-10s %-9s %s", stage, what, path)
    log.info(
        "serve this zoo and experience: python launch/serve.py zoo_root=%s state_dir=%s", out / "zoo", out / "state"
    )
