"""Regime quality: every method on the stream of new tasks, at budgets sized to each task, over several seeds.

The protocol (``conf/bench/regime_quality.yaml``): the stream is the ``tasks`` config's stream (whole domains held
out of the experience, and a guard that refuses any stream task the experience contains); each task's budgets are
multiples (1x, 4x, 16x by default) of its cheapest sensible full fine-tune; every method chooses using the training
and validation splits only and is scored on the test split; each seed replays the stream in its own order from the
initial experience, and nasoa learns from its own finished runs of every task, as the service does from a user's
feedback. nasoa is the service's generator with the service's predictor, regime space and cost settings. The best
single regime in hindsight is the oracle grid's regime with the best mean validation top-1 over every cell.
Differences are paired by (task, seed) and bootstrapped over tasks and seeds. Written to ``regime_quality.json``.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nasoa.bench import protocol
from nasoa.bench.methods import Cell, Choice, MethodContext, NasoaOneShot, create_methods, grid_of
from nasoa.cluster.runtime import RuntimeSettings
from nasoa.cluster.session import ray_session
from nasoa.common.io import write_json_atomic
from nasoa.jobs.benchmark import bohb  # noqa: F401 - registers the "bohb" method
from nasoa.jobs.benchmark.runs import FinetuneRuns, ProbeRuns
from nasoa.jobs.collect import pick_profile_device
from nasoa.jobs.finetune import cached_task
from nasoa.online.experience import ExperienceStore, experience_row
from nasoa.online.regime import CostModel
from nasoa.online.service import ServiceConfig, make_generator
from nasoa.zoo.store import Zoo

log = logging.getLogger(__name__)
RESULT_FILE = "regime_quality.json"


@dataclass(frozen=True)
class StreamTask:
    """One stream task: its name, spec (for ``make_task``), domain and sub-domain."""

    name: str
    spec: Any
    domain: str
    subdomain: str


def stream_tasks(entries: list[Any]) -> list[StreamTask]:
    """Stream tasks from the ``tasks`` config (suite records, or plain specs named after themselves, domain = kind)."""
    out = []
    for item in entries:
        if isinstance(item, Mapping) and "spec" in item:
            out.append(StreamTask(item["name"], dict(item), item.get("domain", ""), item.get("subdomain", "")))
        else:
            name = item if isinstance(item, str) else json.dumps(item, sort_keys=True)
            kind = item.split(":", 1)[0] if isinstance(item, str) else str(item.get("kind", ""))
            out.append(StreamTask(name, item, kind, ""))
    return out


def row_task_name(row: Mapping[str, Any]) -> str:
    """The task an experience row came from (a suite record's name when the row names a record)."""
    name = str(row.get("task_name") or "")
    if name.startswith("{"):
        try:
            return str(json.loads(name).get("name") or name)
        except ValueError:
            return name
    return name


def initial_experience(stream: list[StreamTask], rows: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The experience the benchmark starts from: without the service's feedback on stream tasks.

    A main job's own stream plays the same tasks and stores their feedback (``source`` ``feedback`` or ``stream``);
    those rows are left out (and logged), so that every method meets the stream as new. A *collected* row of a
    stream task is a suite mistake that :func:`check_stream_is_new` refuses.
    """
    names = {t.name for t in stream} | {json.dumps(t.spec, sort_keys=True) for t in stream}
    played = lambda r: row_task_name(r) in names or str(r.get("task_name")) in names  # noqa: E731
    out = [r for r in rows if not (r.get("source") in ("feedback", "stream") and played(r))]
    if len(out) < len(rows):
        log.info("left out %d feedback rows of stream tasks (an earlier play of this stream)", len(rows) - len(out))
    return out


def check_stream_is_new(stream: list[StreamTask], rows: list[Mapping[str, Any]]) -> None:
    """Refuse a stream task the experience already holds (by name or spec): the stream must be new to nasoa."""
    seen = {row_task_name(r) for r in rows} | {str(r.get("task_name")) for r in rows}
    reused = [t.name for t in stream if t.name in seen or json.dumps(t.spec, sort_keys=True) in seen]
    if reused:
        raise ValueError(f"stream tasks {reused} are in the experience: the stream must be tasks new to the predictor")


@dataclass
class _Setup:
    """What the benchmark runs on."""

    zoo: Zoo
    device: str
    rows: list
    stream: list[StreamTask]
    config: ServiceConfig

    @property
    def cost(self) -> CostModel:
        """The service's time model."""
        return CostModel(overhead_s=self.config.service.overhead_s)


def _setup(cfg: Mapping[str, Any], zoo_root: str, state_dir: str | None) -> _Setup:
    zoo = Zoo(zoo_root)
    device = pick_profile_device(zoo.entries(), cfg.get("profile_device"))
    rows: list = []
    store_path = Path(state_dir) / "experience" if state_dir else None
    if store_path is not None and store_path.exists():
        with ExperienceStore(store_path, readonly=True) as store:
            rows = store.rows()
    stream = stream_tasks(list(cfg["tasks"]))
    rows = initial_experience(stream, rows)
    check_stream_is_new(stream, rows)
    service = cfg["service"]
    config = ServiceConfig(str(zoo.root), "", service, cfg["predictor"], cfg["regime_space"])
    log.info(
        "regime quality: %d stream tasks, %d past runs, predictor %s, profile device %s",
        len(stream),
        len(rows),
        config.predictor.name,
        device,
    )
    return _Setup(zoo, device, rows, stream, config)


def fresh_generator(setup: _Setup, use_probes: bool = True) -> Any:
    """The service's generator over the zoo, fitted on the initial experience (a new one per seed and method).

    ``use_probes=False`` is the ablation: the same generator reading no probe scores (of queries or stored rows).
    """
    config = setup.config
    if not use_probes:
        predictor = replace(config.predictor, generator={**config.predictor.generator, "use_probes": False})
        config = replace(config, predictor=predictor)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # entries not profiled on the device are left out, as by the service
        generator = make_generator(config, setup.zoo.entries(), setup.device, config.predictor.create(), quiet=True)
    if setup.rows:
        generator.fit(setup.rows)
    return generator


def run_regime_quality(
    cfg: Mapping[str, Any], runtime: RuntimeSettings, zoo_root: str, state_dir: str | None, out: Path
) -> dict[str, Any]:
    """Run the regime-quality benchmark into ``out``; returns what it writes to ``regime_quality.json``."""
    t0 = time.time()
    out.mkdir(parents=True, exist_ok=True)
    setup = _setup(cfg, zoo_root, state_dir)
    with ray_session(runtime):
        runs = FinetuneRuns(out / "runs.jsonl", zoo_root, runtime, float(cfg["cpus_per_run"]))
        sizes = int(cfg["probe_sample"]), int(cfg["probe_val_sample"])
        probes = ProbeRuns(out / "probes.jsonl", runs, *sizes, fraction=float(cfg["probe_fraction"]))
        rows = [row for seed in cfg["seeds"] for row in _one_seed(cfg, setup, runs, probes, int(seed), out, runtime)]
        rows += _fixed_best(cfg, setup, runs, rows)
    report = {
        "benchmark": "regime_quality",
        "seconds": time.time() - t0,
        "profile_device": setup.device,
        "device": runtime.device,
        "past_runs": len(setup.rows),
        "predictor": {"name": setup.config.predictor.name, "kwargs": dict(setup.config.predictor.kwargs)},
        "fine_tunes_run": runs.ran,
        "fine_tunes_reused": len(runs) - runs.ran,
        "tasks": [t.name for t in setup.stream],
        "multiples": [float(x) for x in cfg.get("budgets_s") or cfg["multiples"]],
        "budget_unit": "s" if cfg.get("budgets_s") else "x",
        "seeds": [int(s) for s in cfg["seeds"]],
        "rows": rows,
        "summary": summarize(rows, cfg),
    }
    write_json_atomic(report, out / RESULT_FILE)
    return report


def _one_seed(
    cfg: Mapping[str, Any],
    setup: _Setup,
    runs: FinetuneRuns,
    probes: ProbeRuns,
    seed: int,
    out: Path,
    runtime: RuntimeSettings,
) -> list[dict]:
    """The whole stream in this seed's order, from the initial experience; nasoa learns as it goes."""
    probe = lambda cell: probes(cell.task, cell.spec, cell.seed, cell.budget_s)  # noqa: E731
    context = MethodContext(cfg, lambda use: fresh_generator(setup, use), str(setup.zoo.root), out, runtime, probe)
    methods = create_methods(context)
    order = list(setup.stream)
    random.Random(f"stream-order:{seed}").shuffle(order)
    rows = []
    for position, task in enumerate(order):
        rows += _one_task(cfg, setup, methods, runs, task, seed, (position, len(order)))
    return rows


def cells_of(cfg: Mapping[str, Any], setup: _Setup, task: StreamTask, seed: int) -> list[Cell]:
    """The task's cells: one per budget multiple of its cheapest sensible full fine-tune (or per ``budgets_s``)."""
    meta = cached_task(task.spec).meta
    entries = tuple(e for e in setup.zoo.entries() if setup.device in e.devices())
    cost = setup.cost
    base = protocol.base_budget_s(meta, entries, setup.device, cost, float(cfg["min_base_s"]))
    if cfg.get("budgets_s"):  # fixed budgets in seconds, which then stand for the multiples in the tables
        budgets = [(float(b), float(b)) for b in cfg["budgets_s"]]
    else:
        budgets = [(float(x), float(x) * base) for x in cfg["multiples"]]
    return [Cell(task.name, task.spec, meta, b, x, seed, entries, setup.device, cost) for x, b in budgets]


def _one_task(cfg, setup, methods, runs, task: StreamTask, seed: int, at: tuple[int, int]) -> list[dict]:  # noqa: ANN001
    """Every method at every budget of one task; nasoa then learns from its own runs of it."""
    rows, learned = [], []
    for cell in cells_of(cfg, setup, task, seed):
        log.info(
            "seed %d, task %d/%d %s (%s), budget %.1fs (%gx)",
            seed,
            at[0] + 1,
            at[1],
            task.name,
            task.domain,
            cell.budget_s,
            cell.multiple,
        )
        planned = [r for m in methods if hasattr(m, "plan") for r in m.plan(cell)]
        if planned:  # the methods' independent fine-tunes of this cell, in parallel; each choice then reads them
            runs.evaluate(cell.task, cell.spec, cell.budget_s, cell.seed, planned)
        for method in methods:
            choice = method.choose(
                cell, lambda regimes, c=cell: runs.evaluate(c.task, c.spec, c.budget_s, c.seed, regimes)
            )
            result = (
                runs.evaluate(cell.task, cell.spec, cell.budget_s, seed, [choice.regime])[0] if choice.regime else None
            )
            rows.append(result_row(task, cell, choice, result, at))
            log.info("  %-22s %s", method.name, brief(choice, result))
            if method.name == "nasoa":  # BOHB's compute budget is a multiple of nasoa's on the same cell
                for other in methods:
                    getattr(other, "reference", {})[(cell.task, cell.seed, cell.multiple)] = choice.compute_s
            if isinstance(method, NasoaOneShot) and result is not None:
                learned.append((method, _learned_row(setup, cell, choice, result, method.last_probes)))
    for method, row in learned:
        method.learn([row])
    return rows


def result_row(task: StreamTask, cell: Cell, choice: Choice, result: Any, at: tuple[int, int]) -> dict[str, Any]:
    """One result row: what was chosen, what it cost, its validation and test top-1."""
    regime = choice.regime
    predicted = choice.predicted or {}
    return {
        "method": choice.method,
        "task": task.name,
        "domain": task.domain,
        "subdomain": task.subdomain,
        "seed": cell.seed,
        "multiple": cell.multiple,
        "budget_s": cell.budget_s,
        "position": at[0],
        "stream_length": at[1],
        "regime": regime.to_dict() if regime else None,
        "val_accuracy": result.accuracy if result else None,
        "test_accuracy": result.test_accuracy if result else None,
        "time_s": result.time_s if result else None,
        "steps": result.steps if result else None,
        "finished": result.finished if result else None,
        "fine_tunes": choice.fine_tunes,
        "compute_s": choice.compute_s,
        "probe_s": choice.probe_s,
        "predicted_accuracy": predicted.get("accuracy"),
        "predicted_std": predicted.get("std"),
        "predicted_time_s": predicted.get("time_s"),
        "fallback": predicted.get("fallback"),
        "note": choice.note,
    }


def _learned_row(setup: _Setup, cell: Cell, choice: Choice, result: Any, probes: Mapping[str, float]) -> dict:
    """The experience row the service would store from this run's feedback (what ran, its curve, the probes)."""
    return experience_row(
        cell.meta,
        choice.regime,
        setup.zoo.get(choice.regime.model),
        accuracy=result.accuracy,
        time_s=result.time_s,
        budget_s=cell.budget_s,
        finished=result.finished,
        stopped_by=result.stopped_by,
        source="stream",
        feedback_id=f"bench-{cell.seed}-{cell.task}-{cell.multiple:g}-{choice.method}",
        device=setup.device,
        steps=result.steps,
        epochs_done=result.epochs_done,
        step_ms=result.step_wall_ms if math.isfinite(result.step_wall_ms) else None,  # a step's wall time
        curve=result.curve,
        probes=probes,
        probe_s=choice.probe_s,
    )


def _fixed_best(cfg: Mapping[str, Any], setup: _Setup, runs: FinetuneRuns, rows: list[dict]) -> list[dict]:
    """The oracle grid's single regime with the best mean validation top-1 over every cell, scored on test."""
    grid, results = grid_of(cfg["oracle_grid"]), {}
    for r in (r for r in rows if r["method"] == "oracle"):
        task = next(t for t in setup.stream if t.name == r["task"])
        cell = next(c for c in cells_of(cfg, setup, task, r["seed"]) if c.multiple == r["multiple"])
        sized = [(g, cell.sized(g)) for g in grid.regimes(cell)]
        got = runs.evaluate(cell.task, cell.spec, cell.budget_s, cell.seed, [s for _, s in sized if s is not None])
        fits = [g for g, s in sized if s is not None]
        results[(r["task"], r["seed"], r["multiple"])] = (r, {g.regime_id: (g, x) for g, x in zip(fits, got)})
    if not results:
        return []
    ids = set.intersection(*(set(v) for _, v in results.values()))
    mean_val = {i: sum(v[i][1].accuracy for _, v in results.values()) / len(results) for i in ids}
    best = max(sorted(mean_val), key=mean_val.get) if mean_val else None
    return [_fixed_row(r, v.get(best)) for r, v in results.values()]


def _fixed_row(oracle_row: Mapping[str, Any], pick: tuple | None) -> dict[str, Any]:
    row = dict(oracle_row) | {"method": "fixed_best", "fine_tunes": 1}
    if pick is None:
        return row | {"regime": None, "val_accuracy": None, "test_accuracy": None, "time_s": None, "compute_s": 0.0}
    regime, result = pick
    row |= {"regime": regime.to_dict(), "val_accuracy": result.accuracy, "test_accuracy": result.test_accuracy}
    return row | {"time_s": result.time_s, "compute_s": result.time_s}


def brief(choice: Choice, result: Any) -> str:
    if choice.regime is None or result is None:
        return f"no regime ({choice.note})"
    r = choice.regime
    test = "-" if result.test_accuracy is None else f"{result.test_accuracy:.3f}"
    return (
        f"val {result.accuracy:.3f} test {test} in {result.time_s:.1f}s | {r.model} lr {r.lr:g} "
        f"frozen {r.frozen_stages} batch {r.batch_size} {r.steps} steps | {choice.fine_tunes} fine-tune(s), "
        f"{choice.compute_s:.1f}s"
    )


def summarize(rows: list[dict[str, Any]], cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Per-method tables and the issue's targets, each with its figure."""
    methods = protocol.method_table(rows)
    have = set(methods)
    out: dict[str, Any] = {"methods": methods, "paired": {}, "targets": {}}
    for rival in (m for m in ("default", "fixed_best", *cfg.get("series", {})) if m in have):
        if "nasoa" in have:
            out["paired"][f"nasoa-{rival}"] = protocol.paired(rows, "nasoa", rival)
    if "nasoa_noprobe" in have and "nasoa" in have:
        out["paired"]["nasoa-nasoa_noprobe"] = protocol.paired(rows, "nasoa", "nasoa_noprobe")
    out["curves"] = {m: protocol.budget_curve(rows, m) for m in methods if methods[m]["mean_test"] is not None}
    out["targets"] = targets(rows, out["paired"], have)
    return out


def targets(rows: list[dict], paired: Mapping[str, dict], have: set[str]) -> dict[str, dict[str, Any]]:
    """The regime issue's targets, met or not, with their figures (those whose methods ran)."""
    t: dict[str, dict[str, Any]] = {}
    if "nasoa-default" in paired:
        d = paired["nasoa-default"]
        t["beats_default_by_5_points"] = d | {"met": d["mean"] >= 0.05 and d["lo"] > 0}
    if "nasoa-fixed_best" in paired:
        d = paired["nasoa-fixed_best"]
        t["beats_best_fixed_by_1_point"] = d | {"met": d["mean"] >= 0.01 and d["lo"] > 0}
    if {"nasoa", "oracle"} <= have:
        r = protocol.regret(rows, "nasoa")
        t["regret_at_most_2_points"] = r | {"met": r["mean"] <= 0.02}
        thirds = protocol.stream_thirds(rows, "nasoa")
        ok = thirds["first"] is not None and thirds["last"] is not None and thirds["last"] <= 0.5 * thirds["first"]
        t["learns_from_the_stream"] = thirds | {"met": ok}
    if "nasoa" in have:
        mono = protocol.budget_monotone(rows, "nasoa")
        t["accuracy_grows_with_budget"] = mono | {"met": mono["share"] >= 0.9}
        err = protocol.prediction_error(rows, "nasoa")
        t["prediction_error_at_most_0.05"] = err | {"met": err["val"] is not None and err["val"] <= 0.05}
    over = protocol.over_budget(rows)
    t["no_run_over_budget_by_5pct"] = over | {"met": over["over"] == 0}
    return t
