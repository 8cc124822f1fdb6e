"""The regime-quality protocol's arithmetic: budgets sized to each task, paired bootstrap intervals, the summary.

Plain numpy over result rows (one per method, task, budget and seed; each with its validation top-1, what the
method chose by, and its test top-1, what it is scored by). No Ray, no torch.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from nasoa.online.regime import CostModel, Regime


def base_budget_s(meta, entries: Sequence, device: str, cost: CostModel, floor_s: float) -> float:  # noqa: ANN001
    """The task's cheapest sensible full fine-tune: one epoch of the fastest zoo model, nothing frozen, batch 32."""
    times = []
    for e in entries:
        try:
            times.append(cost.time_s(e, Regime(e.key, 0.01, 0, 32, 1), meta, device))
        except KeyError:  # no profile on this device
            continue
    if not times:
        raise ValueError(f"no zoo entry is profiled on {device!r}: cannot size budgets")
    return max(floor_s, min(times))


def bootstrap_ci(
    units: Mapping[tuple[str, int], float], n: int = 4000, level: float = 0.95, seed: int = 0
) -> dict[str, float]:
    """Mean of per-(task, seed) values and its bootstrap interval, resampling tasks, then seeds within each task."""
    tasks = sorted({t for t, _ in units})
    if not tasks:
        return {"mean": math.nan, "lo": math.nan, "hi": math.nan, "n": 0}
    by_task = {t: np.array([v for (u, _), v in sorted(units.items()) if u == t]) for t in tasks}
    rng = np.random.default_rng(seed)
    means = np.empty(n)
    for i in range(n):
        picked = rng.choice(len(tasks), len(tasks))
        means[i] = np.mean([rng.choice(by_task[tasks[j]], len(by_task[tasks[j]])).mean() for j in picked])
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return {"mean": float(np.mean(list(units.values()))), "lo": float(lo), "hi": float(hi), "n": len(units)}


def _mean(values: Iterable[Any]) -> float | None:
    kept = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return statistics.fmean(kept) if kept else None


def per_unit(rows: Sequence[Mapping[str, Any]], method: str, value: Callable[[Mapping[str, Any]], float | None]):
    """``{(task, seed): mean over budgets of value(row)}`` for one method's rows."""
    cells: dict[tuple[str, int], list[float]] = {}
    for r in rows:
        if r["method"] == method and value(r) is not None:
            cells.setdefault((r["task"], r["seed"]), []).append(value(r))
    return {k: statistics.fmean(v) for k, v in cells.items()}


def paired(rows: Sequence[Mapping[str, Any]], method: str, rival: str, seed: int = 0) -> dict[str, float]:
    """``method`` minus ``rival`` in test top-1, per (task, seed) averaged over budgets, with a 95% interval."""
    a = per_unit(rows, method, lambda r: r["test_accuracy"])
    b = per_unit(rows, rival, lambda r: r["test_accuracy"])
    return bootstrap_ci({k: a[k] - b[k] for k in a.keys() & b.keys()}, seed=seed)


def method_table(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per method: mean test and validation top-1, per budget multiple and per domain, compute and fine-tunes."""
    out: dict[str, dict[str, Any]] = {}
    for m in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == m]
        out[m] = {
            "cells": len(mine),
            "mean_test": _mean(r["test_accuracy"] for r in mine),
            "mean_val": _mean(r["val_accuracy"] for r in mine),
            "mean_compute_s": _mean(r["compute_s"] for r in mine),
            "mean_fine_tunes": _mean(r["fine_tunes"] for r in mine),
            "by_budget": {
                f"{x:g}": _mean(r["test_accuracy"] for r in mine if r["multiple"] == x)
                for x in sorted({r["multiple"] for r in mine})
            },
            "by_domain": {
                d: _mean(r["test_accuracy"] for r in mine if r["domain"] == d)
                for d in sorted({r["domain"] for r in mine})
            },
        }
    return out


def regret(rows: Sequence[Mapping[str, Any]], method: str, oracle: str = "oracle") -> dict[str, float]:
    """Oracle minus ``method`` in test top-1, per (task, seed) averaged over budgets, with a 95% interval."""
    return paired(rows, oracle, method)


def budget_monotone(rows: Sequence[Mapping[str, Any]], method: str) -> dict[str, Any]:
    """Share of tasks whose mean (over seeds) test top-1 at the largest budget is at least that at the smallest."""
    mine = [r for r in rows if r["method"] == method and r["test_accuracy"] is not None]
    lo, hi = min(r["multiple"] for r in mine), max(r["multiple"] for r in mine)
    tasks = sorted({r["task"] for r in mine})
    at = {
        (t, x): _mean(r["test_accuracy"] for r in mine if r["task"] == t and r["multiple"] == x)
        for t in tasks
        for x in (lo, hi)
    }
    grows = [t for t in tasks if at[(t, hi)] >= at[(t, lo)] - 1e-12]
    return {"share": len(grows) / len(tasks), "tasks": len(tasks), "not_growing": sorted(set(tasks) - set(grows))}


def stream_thirds(rows: Sequence[Mapping[str, Any]], method: str, oracle: str = "oracle") -> dict[str, float | None]:
    """Mean regret of ``method`` over the first and the last third (rounded up) of each seed's stream order."""
    oracle_at = {(r["task"], r["seed"], r["multiple"]): r["test_accuracy"] for r in rows if r["method"] == oracle}
    by_third: dict[str, list[float]] = {"first": [], "last": []}
    for r in rows:
        key = (r["task"], r["seed"], r["multiple"])
        if r["method"] != method or oracle_at.get(key) is None or r["test_accuracy"] is None:
            continue
        n, third = r["stream_length"], math.ceil(r["stream_length"] / 3)
        if r["position"] < third:
            by_third["first"].append(oracle_at[key] - r["test_accuracy"])
        elif r["position"] >= n - third:
            by_third["last"].append(oracle_at[key] - r["test_accuracy"])
    return {k: _mean(v) for k, v in by_third.items()}


def over_budget(rows: Sequence[Mapping[str, Any]], tolerance: float = 0.05) -> dict[str, Any]:
    """Runs whose wall time exceeded their budget by more than ``tolerance``, and the worst ratio."""
    runs = [r for r in rows if r.get("time_s") is not None]
    worst = max((r["time_s"] / r["budget_s"] for r in runs), default=math.nan)
    over = [r for r in runs if r["time_s"] > (1 + tolerance) * r["budget_s"]]
    return {"runs": len(runs), "over": len(over), "worst_ratio": worst}


def prediction_error(rows: Sequence[Mapping[str, Any]], method: str = "nasoa") -> dict[str, float | None]:
    """Mean |predicted - achieved| top-1 of a method that predicts (against validation and test top-1)."""
    mine = [r for r in rows if r["method"] == method and r.get("predicted_accuracy") is not None]
    return {
        "val": _mean(abs(r["predicted_accuracy"] - r["val_accuracy"]) for r in mine if r["val_accuracy"] is not None),
        "test": _mean(
            abs(r["predicted_accuracy"] - r["test_accuracy"]) for r in mine if r["test_accuracy"] is not None
        ),
        "runs": len(mine),
    }


def budget_curve(rows: Sequence[Mapping[str, Any]], method: str) -> dict[str, dict[str, float]]:
    """Mean test top-1 of ``method`` at each budget multiple, with a 95% interval over tasks and seeds."""
    out = {}
    for x in sorted({r["multiple"] for r in rows if r["method"] == method}):
        units = per_unit([r for r in rows if r["multiple"] == x], method, lambda r: r["test_accuracy"])
        out[f"{x:g}"] = bootstrap_ci(units, n=1000)
    return out
