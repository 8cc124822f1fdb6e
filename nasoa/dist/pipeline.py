"""The whole loop on the embedded defaults: search -> zoo -> past-task experience -> service + a stream of tasks.

Each stage composes its own Hydra config (``conf/<stage>.yaml``), so ``python launch/main.py`` runs exactly what
``launch/search.py``, ``launch/build_zoo.py``, ``launch/collect.py`` and ``launch/stream.py`` run on their
defaults, chained through one output folder.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

log = logging.getLogger("nasoa")
CONF = Path(__file__).resolve().parents[2] / "conf"
STAGES = ("search", "zoo", "collect", "stream")


def stage_configs(out: Path, overrides: Mapping[str, Sequence[str]] | None = None) -> dict[str, dict[str, Any]]:
    """The composed config of every stage, wired to ``out`` (the search feeds the zoo, and so on)."""
    overrides = overrides or {}
    wiring = {
        "search": [],
        "zoo": [f"zoo.search_dir={out / 'search'}", f"zoo.root={out / 'zoo'}"],
        "collect": [f"collect.zoo_root={out / 'zoo'}", f"collect.experience_dir={out / 'state'}"],
        "stream": [f"stream.zoo_root={out / 'zoo'}", f"stream.state_dir={out / 'state'}"],
    }
    return {stage: compose_plain(stage, [*wiring[stage], *overrides.get(stage, [])]) for stage in STAGES}


def compose_plain(name: str, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """``conf/<name>.yaml`` composed with ``overrides`` as a plain dict; works inside a running Hydra app too."""
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():  # e.g. called from launch/benchmark.py: reuse its config search path
        return OmegaConf.to_container(compose(config_name=name, overrides=list(overrides)), resolve=False)
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return OmegaConf.to_container(compose(config_name=name, overrides=list(overrides)), resolve=False)


def run_pipeline(out: str | Path, overrides: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any]:
    """Run the four stages into ``out``; returns where each result went."""
    from nasoa.dist.collect_job import run_collect_job
    from nasoa.dist.search_job import run_search_job
    from nasoa.dist.stream_job import run_stream_job
    from nasoa.dist.zoo_job import run_zoo_job

    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    cfgs = stage_configs(out, overrides)
    runners = {"search": run_search_job, "zoo": run_zoo_job, "collect": run_collect_job, "stream": run_stream_job}
    seconds = {}
    for stage in STAGES:
        log.info("=== %s ===", stage)
        t0 = time.time()
        runners[stage](cfgs[stage], out / stage)
        seconds[stage] = time.time() - t0
    results = {
        "search": {"archive": out / "search" / "archive.parquet", "front": out / "search" / "front.parquet",
                   "plot": out / "search" / "pareto.png", "summary": out / "search" / "summary.json"},
        "zoo": {"manifest": out / "zoo" / "manifest.parquet", "plot": out / "zoo" / "zoo.png"},
        "experience": {"store": out / "state" / "experience"},
        "stream": {"results": out / "stream" / "stream.json"},
        "seconds": seconds,
    }
    (out / "pipeline.json").write_text(json.dumps(results, indent=2, default=str))
    log.info("=== done in %.0fs ===", sum(seconds.values()))
    for stage, where in results.items():
        if stage != "seconds":
            for what, path in where.items():
                log.info("  %-10s %-9s %s", stage, what, path)
    log.info("serve this zoo and experience: python launch/serve.py zoo_root=%s state_dir=%s", out / "zoo", out / "state")
    return results
