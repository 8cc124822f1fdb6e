"""Zoo efficiency: training step time of the zoo's ET-NAS entries against reference models at matched accuracy.

Every model is profiled in this run, on the same device, interleaved over ``repeat`` rounds (the median kept),
at the zoo's source resolution; accuracy is each entry's top-1 on the source task, from the zoo build. For every
reference model, the fastest ET-NAS entry at least as accurate (within ``tolerance``) gives the speed-up.
Written to ``zoo_efficiency.json``.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nasoa.cluster.runtime import RuntimeSettings
from nasoa.common.io import write_json_atomic
from nasoa.common.pareto import dominates
from nasoa.train.device import device_name
from nasoa.train.profile import profile_step
from nasoa.zoo.store import Zoo

log = logging.getLogger(__name__)
RESULT_FILE = "zoo_efficiency.json"


def matched_speedups(models: list[dict[str, Any]], tolerance: float) -> list[dict[str, Any]]:
    """For each reference: the fastest ET-NAS model with top-1 >= the reference's minus ``tolerance``."""
    zoo = [m for m in models if m["kind"] == "etnas"]
    out = []
    for ref in (m for m in models if m["kind"] != "etnas"):
        matches = [m for m in zoo if m["top1"] >= ref["top1"] - tolerance]
        best = min(matches, key=lambda m: m["train_step_ms"], default=None)
        out.append(
            {
                "reference": ref["name"],
                "reference_top1": ref["top1"],
                "reference_step_ms": ref["train_step_ms"],
                "zoo_model": best["name"] if best else None,
                "zoo_top1": best["top1"] if best else None,
                "zoo_step_ms": best["train_step_ms"] if best else None,
                "speedup": ref["train_step_ms"] / best["train_step_ms"] if best else None,
            }
        )
    return out


def front(models: list[dict[str, Any]]) -> list[str]:
    """Names of the ET-NAS models no other ET-NAS model beats on both top-1 and step time."""
    points = {m["name"]: (-m["top1"], m["train_step_ms"]) for m in models if m["kind"] == "etnas"}
    return [name for name, p in points.items() if not any(dominates(q, p) for q in points.values())]


def run_zoo_efficiency(cfg: Mapping[str, Any], runtime: RuntimeSettings, zoo_root: str, out: Path) -> dict[str, Any]:
    """Profile every zoo model in this run (on the runtime's device) at matched accuracy; returns what it writes."""
    t0 = time.time()
    out.mkdir(parents=True, exist_ok=True)
    zoo = Zoo(zoo_root)
    entries = zoo.entries()
    if cfg.get("models"):
        wanted = set(cfg["models"])
        entries = [e for e in entries if e.name in wanted or e.key in wanted]
    if not entries:
        raise ValueError(f"no zoo entries to profile in {zoo_root}")
    device = runtime.device
    resolution = int(cfg.get("resolution") or entries[0].resolution)
    steps = _interleaved_steps(zoo, entries, cfg, device, resolution)
    models = [
        {
            "name": e.name,
            "key": e.key,
            "kind": e.kind,
            "arch": e.arch,
            "top1": e.top1,
            "params": e.params,
            "macs": e.macs,
            "train_step_ms": statistics.median(steps[e.key]),
            "train_step_ms_all": steps[e.key],
        }
        for e in entries
    ]
    tolerance = float(cfg["tolerance"])
    report = {
        "benchmark": "zoo_efficiency",
        "seconds": time.time() - t0,
        "device": device_name(device),
        "batch_size": int(cfg["batch_size"]),
        "resolution": resolution,
        "threads": int(cfg["threads"]),
        "source": entries[0].source,
        "tolerance": tolerance,
        "models": models,
        "front": front(models),
        "matched": matched_speedups(models, tolerance),
    }
    _log_matched(report["matched"], tolerance)
    write_json_atomic(report, out / RESULT_FILE)
    return report


def _interleaved_steps(zoo: Zoo, entries: list, cfg: Mapping[str, Any], device: str, resolution: int) -> dict:
    """Each entry's step times, one per round, the rounds interleaved over the entries (step time drifts)."""
    nets = {e.key: zoo.load(e.key, device=device) for e in entries}
    steps: dict[str, list[float]] = {e.key: [] for e in entries}
    for rep in range(int(cfg["repeat"])):
        for e in entries:
            p = profile_step(
                nets[e.key],
                batch_size=int(cfg["batch_size"]),
                resolution=resolution,
                device=device,
                warmup=int(cfg["warmup"]),
                steps=int(cfg["steps"]),
                threads=int(cfg["threads"]),
            )
            steps[e.key].append(p.train_step_ms)
        log.info("zoo efficiency: round %d/%d profiled %d models", rep + 1, int(cfg["repeat"]), len(entries))
    return steps


def _log_matched(matched: list[dict[str, Any]], tolerance: float) -> None:
    for m in matched:
        if m["speedup"] is None:
            log.info("  %-20s top-1 %.3f: no zoo model within %.3f", m["reference"], m["reference_top1"], tolerance)
        else:
            log.info(
                "  %-20s top-1 %.3f, %.1f ms/step vs %s top-1 %.3f, %.1f ms/step: %.2fx",
                m["reference"],
                m["reference_top1"],
                m["reference_step_ms"],
                m["zoo_model"],
                m["zoo_top1"],
                m["zoo_step_ms"],
                m["speedup"],
            )
