"""``launch/benchmark.py``: the benchmarks side by side on one zoo, then the plots and the Markdown report.

Sources: a main job's folder (``sources.main_dir``: its ``zoo/`` and ``state/``), or a zoo and an experience
folder, or none, and then the benchmark makes them: ``sources.build=pipeline`` runs the main job first (search,
zoo, experience) into ``<run>/main``; ``sources.build=tiny`` (the ``--quick`` mode) writes a tiny zoo of small real
models with made-up profiles and no past experience. A benchmark that fails is reported and the others still run;
the job then fails. ``benchmark.json`` lists every result file.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nasoa.analysis.bench_report import write_report
from nasoa.bench.tiny_zoo import make_tiny_zoo
from nasoa.common.io import write_json_atomic
from nasoa.jobs.benchmark.regime_quality import run_regime_quality
from nasoa.jobs.benchmark.search_efficiency import run_search_efficiency
from nasoa.jobs.benchmark.serving import run_serving
from nasoa.jobs.benchmark.zoo_efficiency import run_zoo_efficiency
from nasoa.jobs.pipeline import run_pipeline

log = logging.getLogger("nasoa.bench")
BENCHMARKS = ("zoo_efficiency", "regime_quality", "search_efficiency", "serving")

#: The quick mode's zoo: an ET-NAS net and one small member of each reference family (random weights).
QUICK_ZOO = (
    ("tiny", "etnas", "011-_16_1-2-2-2"),
    ("mnv3s", "reference", "mobilenet_v3_small"),
    ("regnet", "reference", "regnet_y_400mf"),
    ("effnet", "reference", "efficientnet_b0"),
)


def resolve_sources(sources: Mapping[str, Any], run_dir: Path, experiment: str = "full") -> tuple[str, str | None]:
    """The zoo folder and experience folder to benchmark, building them if asked."""
    if sources.get("main_dir"):
        main = Path(sources["main_dir"]).resolve()
        if not (main / "zoo" / "manifest.parquet").exists():
            raise FileNotFoundError(f"{main} has no zoo/manifest.parquet: is it a `python launch/main.py` folder?")
        return str(main / "zoo"), str(main / "state")
    if sources.get("zoo_root"):
        return str(Path(sources["zoo_root"]).resolve()), sources.get("state_dir")
    build = sources.get("build")
    if build == "tiny":
        zoo = run_dir / "zoo"
        if not (zoo / "manifest.parquet").exists():
            make_tiny_zoo(zoo, models=QUICK_ZOO)
        return str(zoo), None
    if build == "pipeline":
        main = run_dir / "main"
        if (main / "pipeline.json").exists():
            log.info("reusing the main job in %s", main)
        else:
            log.info("no sources given: running the main job first into %s", main)
            overrides = {k: list(v) for k, v in (sources.get("pipeline_overrides") or {}).items()}
            run_pipeline(main, overrides, experiment)
        return str(main / "zoo"), str(main / "state")
    raise ValueError("sources: give main_dir, or zoo_root (and state_dir), or build=pipeline|tiny")


def _with_service(section: Mapping[str, Any], cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The regime-quality section with the stream and the service's predictor, regime space and settings."""
    keys = ("predictor", "regime_space", "service")
    return dict(section) | {"tasks": list(cfg["tasks"]["stream"])} | {k: cfg[k] for k in keys}


def run_benchmark(cfg: Mapping[str, Any], run_dir: str | Path) -> dict[str, Any]:
    """Run the configured benchmarks into ``run_dir``, then the report; returns the index written."""
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    unknown = [b for b in cfg["benchmarks"] if b not in BENCHMARKS]
    if unknown:
        raise ValueError(f"unknown benchmarks {unknown}; known: {list(BENCHMARKS)}")
    t0 = time.time()
    experiment = cfg.get("experiment_name", "full")
    zoo_root, state_dir = resolve_sources(cfg["sources"], run_dir, experiment)
    log.info("benchmarks %s on zoo %s (experience: %s) -> %s", list(cfg["benchmarks"]), zoo_root, state_dir, run_dir)
    runners = {
        "zoo_efficiency": lambda c: run_zoo_efficiency(c, cfg["runtime"], zoo_root, run_dir),
        "regime_quality": lambda c: run_regime_quality(
            _with_service(c, cfg), cfg["runtime"], zoo_root, state_dir, run_dir
        ),
        "search_efficiency": lambda c: run_search_efficiency(c, cfg["runtime"], experiment, run_dir),
        "serving": lambda c: run_serving(c, zoo_root, run_dir),
    }
    index: dict[str, Any] = {"experiment": experiment, "zoo_root": zoo_root, "state_dir": state_dir}
    failed = []
    for name in cfg["benchmarks"]:
        log.info("=== %s ===", name)
        t = time.time()
        try:
            runners[name](cfg[name])
            index[name] = {"result": str(run_dir / f"{name}.json"), "seconds": time.time() - t}
        except Exception as err:  # noqa: BLE001 - one failing benchmark must not lose the others
            log.error("%s failed: %r\n%s", name, err, traceback.format_exc())
            index[name] = {"error": repr(err), "seconds": time.time() - t}
            failed.append(name)
    index["seconds"] = time.time() - t0
    index["report"] = str(run_dir / "report.md")
    write_json_atomic(index, run_dir / "benchmark.json")
    write_report(run_dir)
    log.info("=== done in %.0fs: report %s ===", index["seconds"], index["report"])
    if failed:
        raise RuntimeError(f"benchmarks failed: {failed} (the others' results are in {run_dir})")
    return index
