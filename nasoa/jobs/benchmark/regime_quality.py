"""Regime quality: every method on the same stream of new tasks and budgets; top-1, regret, compute to choose.

The stream's tasks must not be among those the experience was built from. For each task, every budget is a
:class:`~nasoa.bench.methods.Cell`; the methods choose in the configured order (the oracle first, so its grid
fills the run cache and every other method's pick is measured by the same fine-tune), each pick is fine-tuned
under the budget, and nasoa's generator then learns from its own finished runs of that task, as the service
would from a user's feedback. Written to ``regime_quality.json``.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasoa.bench.methods import Cell, Choice, MethodContext, NasoaOneShot, create_methods
from nasoa.cluster.runtime import RuntimeSettings
from nasoa.cluster.session import ray_session
from nasoa.common.io import write_json_atomic
from nasoa.jobs.benchmark import bohb  # noqa: F401 - registers the "bohb" method
from nasoa.jobs.benchmark.runs import FinetuneRuns
from nasoa.jobs.collect import pick_profile_device
from nasoa.jobs.finetune import cached_task
from nasoa.online.experience import ExperienceStore, experience_row
from nasoa.online.generator import RegimeGenerator
from nasoa.online.predictor import create_predictor
from nasoa.online.regime import CostModel, RegimeSpace, feasible_regimes
from nasoa.online.selection import leave_one_task_out, task_key
from nasoa.zoo.store import Zoo

log = logging.getLogger(__name__)
RESULT_FILE = "regime_quality.json"


def budget_label(budget: float) -> str:
    """The key of a budget in per-budget tables: ``2`` and ``2.0`` both give ``"2"``."""
    return f"{float(budget):g}"


def select_entries(entries: list, models: list[str] | None) -> list:
    """Zoo entries named (by name or key) in ``models``, in that order; all of them for None."""
    if not models:
        return list(entries)
    by = {e.key: e for e in entries} | {e.name: e for e in entries}
    missing = [m for m in models if m not in by]
    if missing:
        raise ValueError(f"models {missing} are not in the zoo; it has: {sorted(e.name for e in entries)}")
    return [by[m] for m in models]


def compute_to_match(choice: Choice, target: float, accuracy_of: Mapping[str, float]) -> float | None:
    """Compute seconds after which ``choice``'s best-so-far first reached ``target`` top-1 (None: never)."""
    for seconds, regime in choice.trace:
        if accuracy_of[regime.regime_id] >= target - 1e-9:
            return seconds
    return None


@dataclass
class _Setup:
    """What the regime-quality benchmark runs on: the zoo, its entries, the generator, the stream."""

    zoo: Any
    entries: list
    device: str
    space: RegimeSpace
    generator: Any
    stream: list
    fitted: int
    predictor: dict
    selection: list


def run_regime_quality(
    cfg: Mapping[str, Any], runtime: RuntimeSettings, zoo_root: str, state_dir: str | None, out: Path
) -> dict[str, Any]:
    """Run the regime-quality benchmark into ``out``; returns what it writes to ``regime_quality.json``."""
    t_start = time.time()
    out.mkdir(parents=True, exist_ok=True)
    setup = _setup(cfg, zoo_root, state_dir)
    names = {e.name: e.key for e in setup.entries} | {e.key: e.key for e in setup.entries}
    with ray_session(runtime):
        runs = FinetuneRuns(out / "runs.jsonl", zoo_root, runtime, int(cfg["seed"]), float(cfg["cpus_per_run"]))
        methods = create_methods(MethodContext(cfg, names, setup.generator, zoo_root, out, runtime))
        results = [row for ti in range(len(setup.stream)) for row in _one_task(cfg, setup, methods, runs, ti)]
    report = {
        "benchmark": "regime_quality",
        "seconds": time.time() - t_start,
        "profile_device": setup.device,
        "device": runtime.device,
        "past_runs": setup.fitted,
        "predictor": setup.predictor,
        "predictor_selection": setup.selection,
        "fine_tunes_run": runs.ran,
        "fine_tunes_reused": len(runs) - runs.ran,
        "regime_space": setup.space.to_dict(),
        "models": [e.key for e in setup.entries],
        "tasks": list(cfg["tasks"]),
        "budgets": [float(b) for b in cfg["budgets"]],
        "rows": results,
        "summary": summarize(results, cfg),
    }
    write_json_atomic(report, out / RESULT_FILE)
    return report


def _setup(cfg: Mapping[str, Any], zoo_root: str, state_dir: str | None) -> _Setup:
    """Open the zoo and the experience, fit the predictor on the past runs, check the stream is new."""
    zoo = Zoo(zoo_root)
    entries = select_entries(zoo.entries(), cfg.get("models"))
    device = pick_profile_device(entries, cfg.get("profile_device"))
    space = cfg["regime_space"]
    rows = []
    store_path = Path(state_dir) / "experience" if state_dir else None
    if store_path is not None and store_path.exists():
        with ExperienceStore(store_path, readonly=True) as store:
            rows = store.rows()
    name, kwargs, selection = cfg["predictor"], dict(cfg.get("predictor_kw") or {}), []
    if name == "auto":
        name, kwargs, selection = _select_predictor(zoo.entries(), rows, device)
    predictor = create_predictor(name, **kwargs)
    # The predictor learns from the past runs of every zoo model (as the service does), then chooses among `models`.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zoo entries not profiled on the device: their rows are skipped
        fitted = RegimeGenerator(zoo.entries(), predictor, device=device).fit(rows) if rows else 0
    generator = RegimeGenerator(entries, predictor, space=space, device=device, cost_model=CostModel())
    stream = [cached_task(spec) for spec in cfg["tasks"]]
    _check_new(cfg["tasks"], stream, {task_key(r) for r in rows})
    log.info(
        "regime quality: %d tasks x %d budgets, %d models, predictor fitted on %d past runs, profile device %s",
        len(stream),
        len(cfg["budgets"]),
        len(entries),
        fitted,
        device,
    )
    predictor_info = {"name": name, "kwargs": kwargs}
    return _Setup(zoo, entries, device, space, generator, stream, fitted, predictor_info, selection)


def _check_new(specs: list, stream: list, seen: set) -> None:
    """Refuse stream tasks that look like past tasks (the experience must not contain the stream)."""
    reused = [spec for spec, t in zip(specs, stream, strict=True) if task_key(t.meta.to_dict()) in seen]
    if reused:
        raise ValueError(
            f"stream tasks {reused} look like tasks the experience was built from (same name, classes, images, "
            "resolution and channels): the stream must be new tasks"
        )


def _one_task(cfg: Mapping[str, Any], setup: _Setup, methods: list, runs: FinetuneRuns, ti: int) -> list[dict]:
    """Every method at every budget on stream task ``ti``; nasoa then learns from its own runs of it."""
    spec, task = cfg["tasks"][ti], setup.stream[ti]
    rows, learned = [], []
    for budget in (float(b) for b in cfg["budgets"]):
        feasible, predicted = feasible_regimes(setup.entries, setup.space, task.meta, budget, setup.device, CostModel())
        cell = Cell(spec, task.meta, budget, feasible, predicted, setup.space)
        log.info(
            "task %d/%d %s, budget %gs: %d feasible regimes", ti + 1, len(setup.stream), spec, budget, len(feasible)
        )
        choices = {}
        for method in methods:
            t0 = time.time()
            choice = method.choose(cell, lambda regimes, c=cell: runs.evaluate(c.spec, c.budget_s, regimes))
            choices[method.name] = choice
            result = runs.evaluate(spec, budget, [choice.regime])[0] if choice.regime else None
            rows.append(_row(ti, spec, budget, len(feasible), choice, result, predicted, time.time() - t0))
            log.info("  %-20s %s", method.name, _brief(choice, result))
            if method.name == "nasoa" and choice.regime is not None:
                learned.append(_learned_row(setup, task, spec, budget, choice, result))
        _match_columns(rows, choices, runs, spec, budget)
    for method in methods:
        if isinstance(method, NasoaOneShot):
            method.learn(learned)
    return rows


def _learned_row(setup: _Setup, task: Any, spec: str, budget: float, choice: Choice, result: Any) -> dict:
    return experience_row(
        task.meta,
        choice.regime,
        setup.zoo.get(choice.regime.model),
        accuracy=result.accuracy,
        time_s=result.time_s,
        budget_s=budget,
        finished=result.finished,
        stopped_by=result.stopped_by,
        source="stream",
        feedback_id=f"bench-{spec}-{budget}",
        device=setup.device,
    )


def _select_predictor(entries: list, rows: list, device: str) -> tuple[str, dict, list[dict]]:
    """The predictor with the lowest leave-one-past-task-out regret on the experience (bayes_linear without any)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        featurizer = RegimeGenerator(entries, create_predictor("mean"), device=device)
    try:
        scores = leave_one_task_out(featurizer, rows)
    except ValueError as err:
        log.info("predictor: bayes_linear (%s)", err)
        return "bayes_linear", {}, []
    for s in scores:
        log.info(
            "  predictor %-12s %-10s leave-one-past-task-out regret %.3f, mean abs error %.3f (%d tasks)",
            s.name,
            s.kwargs or "",
            s.mean_regret,
            s.mean_abs_error,
            s.tasks,
        )
    best = scores[0]
    log.info("predictor: %s %s (lowest regret on past tasks)", best.name, best.kwargs or "")
    return best.name, dict(best.kwargs), [s.to_dict() for s in scores]


def _row(ti, spec, budget, n_feasible, choice: Choice, result, predicted, wall) -> dict[str, Any]:  # noqa: ANN001
    regime = choice.regime
    return {
        "task_index": ti,
        "task": spec,
        "budget_s": budget,
        "feasible": n_feasible,
        "method": choice.method,
        "model": regime.model if regime else None,
        "regime": regime.to_dict() if regime else None,
        "predicted_s": predicted.get(regime.regime_id) if regime else None,
        "accuracy": result.accuracy if result else None,
        "time_s": result.time_s if result else None,
        "finished": result.finished if result else None,
        "fine_tunes": choice.fine_tunes,
        "choose_s": choice.choose_s,
        "wall_s": wall,
        "note": choice.note,
    }


def _match_columns(rows: list[dict], choices: Mapping[str, Choice], runs: FinetuneRuns, spec: str, budget: float):
    """Regret against the oracle, and the compute each method needed to reach nasoa's top-1, for one cell."""
    cell_rows = [r for r in rows if r["task"] == spec and r["budget_s"] == budget]
    by_method = {r["method"]: r for r in cell_rows}
    oracle = by_method.get("oracle", {}).get("accuracy")
    nasoa = by_method.get("nasoa", {}).get("accuracy")
    for r in cell_rows:
        r["regret"] = None if oracle is None or r["accuracy"] is None else oracle - r["accuracy"]
        choice = choices[r["method"]]
        if nasoa is None or not choice.trace:
            r["compute_to_match_nasoa_s"] = None
            continue
        accuracy = dict(
            zip(
                [reg.regime_id for _, reg in choice.trace],
                [x.accuracy for x in runs.evaluate(spec, budget, [reg for _, reg in choice.trace])],
                strict=True,
            )
        )
        r["compute_to_match_nasoa_s"] = compute_to_match(choice, nasoa, accuracy)


def _brief(choice: Choice, result) -> str:  # noqa: ANN001
    if choice.regime is None:
        return f"no regime ({choice.note})"
    r = choice.regime
    return (
        f"top-1 {result.accuracy:.3f} in {result.time_s:.1f}s | {r.model} lr {r.lr:g} frozen {r.frozen_stages} "
        f"batch {r.batch_size} x{r.epochs} | {choice.fine_tunes} fine-tune(s), {choice.choose_s:.1f}s to choose"
    )


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return statistics.fmean(values) if values else None


def summarize(rows: list[dict[str, Any]], cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Per-method means over the stream and budgets, and the issue's targets checked against them."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    per: dict[str, dict[str, Any]] = {}
    for m in methods:
        mr = [r for r in rows if r["method"] == m]
        per[m] = {
            "cells": len(mr),
            "mean_accuracy": _mean([r["accuracy"] for r in mr]),
            "mean_regret": _mean([r.get("regret") for r in mr]),
            "max_regret": max((r["regret"] for r in mr if r.get("regret") is not None), default=None),
            "mean_fine_tunes": _mean([r["fine_tunes"] for r in mr]),
            "mean_choose_s": _mean([r["choose_s"] for r in mr]),
            "total_choose_s": sum(r["choose_s"] for r in mr),
            "by_budget": {
                budget_label(b): _mean([r["accuracy"] for r in mr if r["budget_s"] == float(b)]) for b in cfg["budgets"]
            },
        }
    targets: dict[str, Any] = {}
    n = per.get("nasoa")
    if n is not None:
        for rival in ("default", *cfg["series"]):
            if rival in per and per[rival]["mean_accuracy"] is not None:
                diff = n["mean_accuracy"] - per[rival]["mean_accuracy"]
                targets[f"beats_{rival}"] = {"margin": diff, "met": diff > 0}
        if "oracle" in per:
            targets["within_1pct_of_oracle"] = {"mean_regret": n["mean_regret"], "met": n["mean_regret"] <= 0.01}
        if "bohb" in per:
            bohb_rows = [r for r in rows if r["method"] == "bohb"]
            nasoa_rows = {(r["task"], r["budget_s"]): r for r in rows if r["method"] == "nasoa"}
            ratios, never = [], 0
            for r in bohb_rows:
                match = r.get("compute_to_match_nasoa_s")
                base = nasoa_rows[(r["task"], r["budget_s"])]["choose_s"]
                if match is None:
                    never += 1
                    ratios.append(r["choose_s"] / base if base else None)  # at least all it spent
                else:
                    ratios.append(match / base if base else None)
            ratios = [x for x in ratios if x is not None]
            total_ratio = per["bohb"]["total_choose_s"] / n["total_choose_s"] if n["total_choose_s"] else None
            parity = n["mean_accuracy"] - per["bohb"]["mean_accuracy"]
            targets["bohb_accuracy_at_40x_less_compute"] = {
                "accuracy_gap_vs_bohb": parity,
                "compute_ratio_total": total_ratio,
                "median_compute_ratio_to_match_nasoa": statistics.median(ratios) if ratios else None,
                "cells_bohb_never_matched_nasoa": never,
                "met": parity >= -0.005 and total_ratio is not None and total_ratio >= 40,
            }
    return {"methods": per, "targets": targets}
