"""The collect job: the initial experience (the paper's "past tasks") from a Ray Tune sweep of regimes on source tasks.

``launch/collect.py`` composes the Hydra config and calls :func:`run_collect_job`. Every source task gets a spread
of budgets (``budget_factors`` x one epoch of its cheapest full fine-tune, within ``[min_trial_s, max_trial_s]``),
so the experience covers short and long training; at each budget a seeded sample of (model, lr, frozen stages, batch
size), spread over the zoo's models, is sized to the budget (its steps fill it) and runs as a Ray Tune trial of one
function trainable with actors reused. Each row records what ran: budget, planned and done steps, measured step
time, the learning curve, and the task's probe scores (each trial probes its task first; the scores are cached per
task under the state folder). The driver is the only writer of the experience store: a Tune callback appends each
row as its trial completes, so a crash loses only the trials in flight. A row's ``feedback_id`` hashes (task spec,
regime with its steps, seed), and trials already stored are skipped before launch, so re-running is idempotent.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.tune import Callback

from nasoa.cluster.device import assigned_device
from nasoa.cluster.runtime import RuntimeSettings
from nasoa.cluster.session import ray_session
from nasoa.common.io import write_json_atomic
from nasoa.data.meta import TaskMeta
from nasoa.jobs.finetune import (
    FinetuneJob,
    FinetuneSettings,
    ProbeJob,
    cached_task,
    run_finetune,
    spec_key,
    task_name,
)
from nasoa.online.experience import ExperienceStore, experience_row
from nasoa.online.regime import CostModel, Regime, RegimeSpace, predict_time_s, sized_to_budget
from nasoa.zoo.manifest import MANIFEST_FILE, ZooEntry
from nasoa.zoo.store import Zoo

log = logging.getLogger("nasoa.collect")

SUMMARY_FILE = "collect_summary.json"
TUNE_DIR = "tune"
EXPERIMENT_NAME = "collect"

__all__ = ["CollectSettings", "PlannedTrial", "collect_trial", "feedback_id", "plan_trials", "run_collect_job"]


@dataclass(frozen=True)
class CollectSettings:
    """The ``collect`` config: regimes per past task over a spread of budgets, probes, and the Tune resources.

    Attributes:
        trials_per_task: Regimes run per task, split evenly over the budgets.
        budget_factors: The budgets, as multiples of the task's base budget: one epoch of full fine-tuning (batch 32)
            of the cheapest zoo model, evaluation and overhead included.
        min_trial_s: Smallest budget of a run.
        max_trial_s: Largest budget of a run.
        seed: Seed of the regime sample and of every fine-tuning run.
        profile_device: Zoo profile device for time predictions (None: the zoo's first profiled device).
        concurrency: Trials running at once.
        cpus_per_trial: CPUs Ray reserves per trial (also the torch threads of a trial, at least 1).
        probes: Probe every zoo model on each task (``nasoa.train.probe``; cached per task) and store the scores.
        probe_sample: Training images of a probe.
        probe_val_sample: Validation images of a probe.
    """

    trials_per_task: int = 12
    budget_factors: tuple[float, ...] = (1.0, 4.0, 16.0)
    min_trial_s: float = 3.0
    max_trial_s: float = 60.0
    seed: int = 0
    profile_device: str | None = None
    concurrency: int = 2
    cpus_per_trial: float = 1.0
    probes: bool = True
    probe_sample: int = 128
    probe_val_sample: int = 64

    def __post_init__(self) -> None:
        for name in ("trials_per_task", "concurrency", "probe_sample", "probe_val_sample"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"collect.{name} must be at least 1, got {getattr(self, name)!r}")
        for name in ("min_trial_s", "max_trial_s", "cpus_per_trial"):
            value = float(getattr(self, name))
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"collect.{name} must be a positive number, got {getattr(self, name)!r}")
        factors = tuple(float(f) for f in self.budget_factors)
        if not factors or not all(math.isfinite(f) and f > 0 for f in factors):
            raise ValueError(f"collect.budget_factors must be positive numbers, got {self.budget_factors!r}")
        object.__setattr__(self, "budget_factors", factors)
        if self.min_trial_s > self.max_trial_s:
            raise ValueError(f"collect.min_trial_s ({self.min_trial_s}) is over max_trial_s ({self.max_trial_s})")

    @property
    def threads(self) -> int:
        """Torch threads per trial."""
        return max(1, int(self.cpus_per_trial))


@dataclass(frozen=True)
class PlannedTrial:
    """One (task, regime) fine-tuning run to collect.

    Attributes:
        spec: The task spec as configured (a string or a dict for ``make_task``).
        task: The spec as a stable string (the rows' ``task_name``).
        regime: The regime to run, its ``steps`` sized to ``budget_s``.
        feedback_id: The row id (see :func:`feedback_id`).
        predicted_s: Predicted seconds of the run.
        budget_s: The run's budget (its deadline).
    """

    spec: Any
    task: str
    regime: Regime
    feedback_id: str
    predicted_s: float
    budget_s: float = math.nan


def feedback_id(spec: Any, regime_id: str, seed: int) -> str:
    """Deterministic row id of a collected run: the same task spec, regime and seed give the same id."""
    text = json.dumps([spec_key(spec), regime_id, int(seed)], separators=(",", ":"))
    return "collect-" + hashlib.sha1(text.encode()).hexdigest()[:16]


def pick_profile_device(entries: Sequence[ZooEntry], wanted: str | None = None) -> str:
    """``wanted`` if given, else the first profiled device of the first entry that has profiles."""
    if wanted:
        return wanted
    for entry in entries:
        if entry.devices():
            return entry.devices()[0]
    raise ValueError("no zoo entry has device profiles: rebuild the zoo with profiling on")


def task_budgets(meta: TaskMeta, entries: Sequence[ZooEntry], device: str, s: CollectSettings) -> list[float]:
    """The task's budgets: ``budget_factors`` x one epoch of full fine-tuning (batch 32) of the cheapest model."""
    cost, times = CostModel(), []
    for e in entries:
        try:
            times.append(cost.time_s(e, Regime(e.key, 0.01, 0, 32, 1), meta, device))
        except KeyError:
            continue
    if not times:
        raise ValueError(f"no zoo entry is profiled on {device!r}")
    base = min(times)
    return sorted({round(min(max(f * base, s.min_trial_s), s.max_trial_s), 3) for f in s.budget_factors})


def plan_trials(
    spec: Any,
    meta: TaskMeta,
    entries: Sequence[ZooEntry],
    space: RegimeSpace,
    device: str,
    budgets: Sequence[float],
    k: int,
    seed: int,
) -> list[PlannedTrial]:
    """A seeded sample of ``k`` regimes sized to the budgets (split evenly), spread evenly over the models.

    For each budget, models are visited round-robin in a seeded order (reshuffled each round); each visit draws one
    of that model's remaining (lr, frozen stages, batch size) uniformly and sizes it to the budget
    (:func:`~nasoa.online.regime.sized_to_budget`); a draw with not one step within the budget is dropped.
    """
    rng = random.Random(f"{seed}:{spec_key(spec)}")
    picked: list[PlannedTrial] = []
    for j, budget in enumerate(budgets):
        share = k // len(budgets) + (1 if j < k % len(budgets) else 0)
        picked += _sized_sample(spec, meta, entries, space, device, budget, share, seed, rng)
    return picked


def _sized_sample(
    spec: Any,
    meta: TaskMeta,
    entries: Sequence[ZooEntry],
    space: RegimeSpace,
    device: str,
    budget: float,
    k: int,
    seed: int,
    rng: random.Random,
) -> list[PlannedTrial]:
    by_model = {
        e.key: [(e, Regime(e.key, lr, f, b, 1, space.schedule)) for f in space.frozen_options(e, device)
                for b in space.batch_sizes for lr in space.lrs]
        for e in entries
        if space.frozen_options(e, device)
    }  # fmt: skip
    picked: list[PlannedTrial] = []
    while len(picked) < k and by_model:
        order = sorted(by_model)
        rng.shuffle(order)
        for key in order:
            if len(picked) == k or key not in by_model:
                break
            pool = by_model[key]
            entry, base = pool.pop(rng.randrange(len(pool)))
            if not pool:
                del by_model[key]
            regime = sized_to_budget(entry, base, meta, budget, device, max_epochs=space.max_epochs)
            if regime is None:
                continue
            predicted = predict_time_s(entry, regime, meta, device)
            fid = feedback_id(spec, regime.regime_id, seed)
            picked.append(PlannedTrial(spec, task_name(spec), regime, fid, predicted, budget))
    return picked


# -- the trial (runs in a Tune actor) ------------------------------------------------------------------------------


def collect_trial(config: Mapping[str, Any]) -> None:
    """Tune function trainable: probe the task's zoo (cached), fine-tune one regime under the deadline, report."""
    t0 = time.perf_counter()
    trial = config["trial"]
    settings = FinetuneSettings(**trial["settings"])
    settings = replace(settings, device=assigned_device(settings.device))
    probes = {}
    if trial.get("probe"):
        probed = run_finetune(ProbeJob(**trial["probe"]), settings)
        if probed.error:
            raise RuntimeError(probed.error)
        probes = probed.result["scores"]
    job = FinetuneJob(**trial["job"])
    outcome = run_finetune(job, settings)
    if outcome.error:
        raise RuntimeError(outcome.error)  # Tune records the trial as errored: counted, not stored
    report = {**outcome.result, "feedback_id": job.key, "trial_wall_s": time.perf_counter() - t0}
    tune.report(report | {"probes_json": json.dumps(probes)})  # JSON: Tune may flatten nested dicts


# -- the driver: the single writer ---------------------------------------------------------------------------------


class _Recorder:
    """Appends each completed trial to the experience store (driver side) and keeps the tallies."""

    def __init__(self, store: ExperienceStore, planned: Mapping[str, tuple[PlannedTrial, TaskMeta, ZooEntry]]) -> None:
        self.store = store
        self.probe_dir = str(store.path.parent / "probes")
        self.planned = planned
        self.stored = 0
        self.duplicates = 0
        self.finetune_s = 0.0
        self.failures: list[dict[str, str]] = []
        self.rows: list[dict[str, Any]] = []

    def _label(self, fid: str) -> str:
        plan = self.planned[fid][0]
        r = plan.regime
        return (
            f"{plan.task} {r.model} {r.regime_id} (lr={r.lr:g} frozen={r.frozen_stages} bs={r.batch_size} "
            f"steps={r.steps}, budget {plan.budget_s:g}s)"
        )

    def complete(self, fid: str, result: Mapping[str, Any]) -> None:
        """Store a completed trial's row; a result without metrics or an invalid row counts as a failure."""
        plan, meta, entry = self.planned[fid]
        done = len(self.rows) + len(self.failures) + 1
        try:
            row = experience_row(
                meta,
                plan.regime,
                entry,
                accuracy=result["accuracy"],
                time_s=result["time_s"],
                budget_s=plan.budget_s,
                finished=bool(result["finished"]),
                stopped_by=str(result["stopped_by"]),
                source="collect",
                feedback_id=fid,
                device=str(result.get("device", "")),
                steps=int(result["steps"]),
                epochs_done=float(result["epochs_done"]),
                step_ms=_finite_or_none(result.get("step_wall_ms")),
                curve=result.get("curve") or (),
                probes=json.loads(result.get("probes_json") or "{}"),
            )
            if self.store.append(row):
                self.stored += 1
            else:
                self.duplicates += 1
        except (KeyError, TypeError, ValueError) as err:
            self.fail(fid, f"bad result {dict(result)!r}: {err}")
            return
        self.finetune_s += float(result["time_s"])
        self.rows.append(row)
        log.info(
            "[%d/%d] %s: acc %.3f in %.1fs (predicted %.1fs, %s, %.1f epochs)",
            done,
            len(self.planned),
            self._label(fid),
            row["accuracy"],
            row["time_s"],
            plan.predicted_s,
            row["stopped_by"],
            float(result.get("epochs_done", math.nan)),
        )

    def fail(self, fid: str, error: str) -> None:
        """Count and log a failed trial; the sweep goes on."""
        plan = self.planned[fid][0]
        self.failures.append(
            {"feedback_id": fid, "task": plan.task, "regime_id": plan.regime.regime_id, "error": error[-4000:]}
        )
        done = len(self.rows) + len(self.failures)
        last = (error.strip().splitlines() or ["?"])[-1]  # a traceback's last line names the exception
        log.warning("[%d/%d] %s: FAILED: %s", done, len(self.planned), self._label(fid), last)


def _finite_or_none(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


class _StoreCallback(Callback):
    """Hands completed and errored trials to the recorder, in the driver, as they finish."""

    def __init__(self, recorder: _Recorder) -> None:
        self.recorder = recorder

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        fid = trial.config["trial"]["job"]["key"]
        try:
            self.recorder.complete(fid, trial.last_result or {})
        except Exception as err:  # noqa: BLE001 - a storage error is counted, the sweep goes on
            log.exception("storing %s failed", fid)
            self.recorder.fail(fid, f"storing failed: {type(err).__name__}: {err}")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        fid = trial.config["trial"]["job"]["key"]
        try:  # the trial's local error file is written before this call; storage gets a copy only later
            error = Path(trial.error_file).read_text() if trial.error_file else trial.get_error()
        except Exception as err:  # noqa: BLE001 - the error file may be unreadable
            error = f"(error text unavailable: {err})"
        self.recorder.fail(fid, str(error or "unknown error"))

    def __getstate__(self) -> dict:
        return {}  # Tune pickles its run config into tuner.pkl; the open store stays in the driver


def _run_sweep(
    trials: list[dict[str, Any]], s: CollectSettings, runtime: RuntimeSettings, storage: Path, recorder: _Recorder
) -> float:
    """Run the trials as one Tune experiment; returns its wall seconds."""
    cpus = ray.cluster_resources().get("CPU", 0)
    if s.cpus_per_trial > cpus:
        raise ValueError(f"collect.cpus_per_trial={s.cpus_per_trial} exceeds the {cpus:g} CPUs Ray has: it would wait")
    name = EXPERIMENT_NAME
    n = 1
    while (storage / name).exists():  # a re-run in the same run dir: a fresh experiment beside the old one
        n += 1
        name = f"{EXPERIMENT_NAME}-{n}"
    resources = {k.lower(): v for k, v in runtime.worker_resources(cpus=s.cpus_per_trial).items()}
    tuner = tune.Tuner(
        tune.with_resources(collect_trial, resources),
        param_space={"trial": tune.grid_search(trials)},
        tune_config=tune.TuneConfig(max_concurrent_trials=s.concurrency, reuse_actors=True),
        run_config=tune.RunConfig(
            storage_path=str(storage), name=name, verbose=0, callbacks=[_StoreCallback(recorder)]
        ),
    )
    t0 = time.perf_counter()
    tuner.fit()
    return time.perf_counter() - t0


def open_zoo(zoo_root: str | None) -> Zoo:
    """The zoo at ``zoo_root``; a missing one raises with the command that builds it."""
    if not zoo_root:
        raise ValueError("zoo_root is required: a zoo folder, e.g. zoo_root=outputs/zoo/<run>/zoo")
    root = Path(zoo_root).expanduser().resolve()
    if not (root / MANIFEST_FILE).is_file():
        raise FileNotFoundError(
            f"zoo_root={zoo_root}: no zoo there ({root / MANIFEST_FILE} is missing); "
            "build one with `python launch/build_zoo.py` and pass its <run dir>/zoo"
        )
    return Zoo(root)


def run_collect_job(cfg: Mapping[str, Any], run_dir: str | os.PathLike) -> dict[str, Any]:
    """Collect the initial experience into ``state_dir`` (default ``run_dir/state``); returns the summary.

    Raises:
        ValueError: If the settings are invalid.
        FileNotFoundError: If ``zoo_root`` holds no zoo.
        RuntimeError: If another writer (e.g. a running service) holds the experience store.
    """
    t0 = time.time()
    s: CollectSettings = cfg["collect"]
    tasks = list(cfg["tasks"]["past"])
    if not tasks:
        raise ValueError("tasks.past is empty: list task specs, e.g. ['digits:classes=0-4,num_train=300']")
    zoo = open_zoo(cfg.get("zoo_root"))
    run_dir = Path(run_dir).resolve()
    state_dir = Path(cfg.get("state_dir") or run_dir / "state").expanduser().resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    device = pick_profile_device(zoo.entries(), s.profile_device)
    with ExperienceStore(state_dir / "experience") as store:
        before = len(store)
        plan = _plan(tasks, zoo, cfg["regime_space"], device, s, store)
        recorder = _Recorder(store, plan.planned)
        sweep_s, ray_address = _sweep(plan, zoo, s, cfg["runtime"], run_dir, recorder) if plan.planned else (0.0, None)
        _finish(plan, store, recorder)
        total = len(store)
    summary = _summary(s, recorder, plan.planned, plan.per_task, plan.skipped, before, total, sweep_s, time.time() - t0)
    summary |= {
        "zoo_root": str(zoo.root),
        "state_dir": str(state_dir),
        "experience_path": str(state_dir / "experience"),
        "profile_device": device,
        "regime_space": cfg["regime_space"].to_dict(),
        "ray_address": ray_address,
    }
    write_json_atomic(summary, run_dir / SUMMARY_FILE)
    _log_done(summary, sweep_s, recorder.finetune_s, run_dir)
    return summary


@dataclass
class _Plan:
    """The trials a collect run has to run, and what it skips."""

    planned: dict[str, tuple[PlannedTrial, TaskMeta, ZooEntry]] = field(default_factory=dict)
    per_task: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: int = 0


def _plan(
    tasks: list[Any], zoo: Zoo, space: RegimeSpace, device: str, s: CollectSettings, store: ExperienceStore
) -> _Plan:
    """Sample each task's regimes; leave out those already stored."""
    plan = _Plan()
    entries = zoo.entries()
    for spec in tasks:
        meta = replace(cached_task(spec).meta, name=task_name(spec))
        budgets = task_budgets(meta, entries, device, s)
        sampled = plan_trials(spec, meta, entries, space, device, budgets, s.trials_per_task, s.seed)
        todo = [p for p in sampled if p.feedback_id not in store and p.feedback_id not in plan.planned]
        plan.skipped += len(sampled) - len(todo)
        plan.per_task[meta.name] = {"meta": meta.to_dict(), "budgets": budgets, "sampled": len(sampled)}
        plan.per_task[meta.name]["to_run"] = len(todo)
        if len(sampled) < s.trials_per_task:
            log.warning("%s: only %d regimes have a step within budgets %s", meta.name, len(sampled), budgets)
        for p in todo:
            plan.planned[p.feedback_id] = (p, meta, zoo.get(p.regime.model))
    log.info(
        "collect: %d tasks x %d regimes over budgets x%s (%.0f-%.0fs, on %s) -> %d trials to run, %d already stored",
        len(tasks),
        s.trials_per_task,
        "/".join(f"{f:g}" for f in s.budget_factors),
        s.min_trial_s,
        s.max_trial_s,
        device,
        len(plan.planned),
        plan.skipped,
    )
    return plan


def _sweep(
    plan: _Plan, zoo: Zoo, s: CollectSettings, runtime: RuntimeSettings, run_dir: Path, recorder: _Recorder
) -> tuple[float, str]:
    """Run every planned trial on Ray Tune; returns the sweep's seconds and the Ray address."""
    settings = asdict(FinetuneSettings(str(zoo.root), runtime.device, s.threads))
    trials = [
        {
            "job": asdict(FinetuneJob(fid, p.spec, p.regime.to_dict(), p.budget_s, s.seed)),
            "settings": settings,
            "probe": _probe_job(p, s, recorder.probe_dir),
        }
        for fid, (p, _, _) in plan.planned.items()
    ]
    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")  # relative paths in specs resolve as in the driver
    with ray_session(runtime) as address:
        return _run_sweep(trials, s, runtime, run_dir / TUNE_DIR, recorder), address


def _probe_job(p: PlannedTrial, s: CollectSettings, cache_dir: str | None) -> dict[str, Any] | None:
    """The trial's probe of its task (the same job, hence the same cached scores, for every trial of the task)."""
    if not s.probes:
        return None
    job = ProbeJob(f"probe-{p.task}", p.spec, s.probe_sample, s.probe_val_sample, s.seed, cache_dir=cache_dir)
    return asdict(job)


def _finish(plan: _Plan, store: ExperienceStore, recorder: _Recorder) -> None:
    """Count trials that never reported as failed; compact the store if anything was stored."""
    failed = {f["feedback_id"] for f in recorder.failures}
    for fid in plan.planned:
        if fid not in store and fid not in failed:  # e.g. the sweep stopped
            recorder.fail(fid, "trial did not report a result")
    if recorder.stored:
        store.compact()


def _log_done(summary: Mapping[str, Any], sweep_s: float, finetune_s: float, run_dir: Path) -> None:
    eff = summary["worker_efficiency"]
    log.info(
        "collect done in %.0fs: %d rows stored (%d in the store), %d skipped (already stored), %d failed; "
        "sweep %.0fs, fine-tuning %.0fs, Tune worker efficiency %s; wrote %s",
        summary["seconds"],
        summary["rows_stored"],
        summary["rows_total"],
        summary["skipped"],
        summary["failed"],
        sweep_s,
        finetune_s,
        "n/a" if eff is None else f"{100 * eff:.0f}%",
        run_dir / SUMMARY_FILE,
    )


def _summary(
    s: CollectSettings,
    recorder: _Recorder,
    planned: Mapping[str, Any],
    per_task: dict[str, dict[str, Any]],
    skipped: int,
    before: int,
    total: int,
    sweep_s: float,
    seconds: float,
) -> dict[str, Any]:
    accuracies = {}
    for row in recorder.rows:
        accuracies.setdefault(row["task_name"], []).append(row["accuracy"])
    for name, info in per_task.items():
        acc = accuracies.get(name, [])
        info |= {"stored": len(acc), "best_accuracy": max(acc) if acc else None}
    busy = s.concurrency * sweep_s
    return {
        "seconds": seconds,
        "rows_stored": recorder.stored,
        "rows_before": before,
        "rows_total": total,
        "trials_run": len(planned),
        "skipped": skipped,
        "failed": len(recorder.failures),
        "duplicates": recorder.duplicates,
        "sweep_wall_s": sweep_s,
        "finetune_s": recorder.finetune_s,
        "worker_efficiency": recorder.finetune_s / busy if busy > 0 else None,
        "tasks": per_task,
        "failures": recorder.failures,
        "rows": [
            {k: r[k] for k in ("task_name", "model", "regime_id", "lr", "frozen_stages", "batch_size", "epochs")}
            | {k: r[k] for k in ("planned_steps", "steps", "budget_s", "accuracy", "time_s", "stopped_by")}
            | {"feedback_id": r["feedback_id"]}
            for r in recorder.rows
        ],
        "settings": asdict(s),
    }
