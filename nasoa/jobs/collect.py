"""The collect job: the initial experience (the paper's "past tasks") from a Ray Tune sweep of regimes on source tasks.

``launch/collect.py`` composes the Hydra config and calls :func:`run_collect_job`. For every source task, a seeded
sample of regimes predicted to fit ``max_trial_s`` (spread over the zoo's models) runs as Ray Tune trials of one
function trainable with actors reused. The driver is the only writer of the experience store: a Tune callback
appends each row as its trial completes, so a crash loses only the trials in flight. A row's ``feedback_id`` hashes
(task spec, regime, seed), and trials already stored are skipped before launch, so re-running is idempotent.
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
from nasoa.jobs.finetune import FinetuneJob, FinetuneSettings, cached_task, run_finetune, spec_key
from nasoa.online.experience import ExperienceStore, experience_row
from nasoa.online.regime import Regime, RegimeSpace, feasible_regimes
from nasoa.zoo.manifest import MANIFEST_FILE, ZooEntry
from nasoa.zoo.store import Zoo

log = logging.getLogger("nasoa.collect")

SUMMARY_FILE = "collect_summary.json"
TUNE_DIR = "tune"
EXPERIMENT_NAME = "collect"

__all__ = ["CollectSettings", "PlannedTrial", "collect_trial", "feedback_id", "plan_trials", "run_collect_job"]


@dataclass(frozen=True)
class CollectSettings:
    """The ``collect`` config: how many regimes per past task, their deadline, and the Tune resources.

    Attributes:
        trials_per_task: Regimes sampled per task.
        max_trial_s: Deadline of each fine-tuning run; only regimes predicted to fit it are sampled.
        seed: Seed of the regime sample and of every fine-tuning run.
        profile_device: Zoo profile device for time predictions (None: the zoo's first profiled device).
        concurrency: Trials running at once.
        cpus_per_trial: CPUs Ray reserves per trial (also the torch threads of a trial, at least 1).
    """

    trials_per_task: int = 8
    max_trial_s: float = 20.0
    seed: int = 0
    profile_device: str | None = None
    concurrency: int = 2
    cpus_per_trial: float = 1.0

    def __post_init__(self) -> None:
        for name in ("trials_per_task", "concurrency"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"collect.{name} must be at least 1, got {getattr(self, name)!r}")
        for name in ("max_trial_s", "cpus_per_trial"):
            value = float(getattr(self, name))
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"collect.{name} must be a positive number, got {getattr(self, name)!r}")

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
        regime: The regime to run.
        feedback_id: The row id (see :func:`feedback_id`).
        predicted_s: Predicted seconds of the run.
    """

    spec: Any
    task: str
    regime: Regime
    feedback_id: str
    predicted_s: float


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


def plan_trials(
    spec: Any,
    meta: TaskMeta,
    entries: Sequence[ZooEntry],
    space: RegimeSpace,
    device: str,
    max_s: float,
    k: int,
    seed: int,
) -> list[PlannedTrial]:
    """A seeded sample of ``k`` regimes predicted to fit ``max_s`` on the task, spread evenly over the models.

    Models are visited round-robin in a seeded order (reshuffled each round); each visit draws one of that model's
    remaining regimes uniformly. Regimes without a profile on ``device`` are left out.
    """
    fits, predicted_s = feasible_regimes(entries, space, meta, max_s, device)
    by_model: dict[str, list[tuple[Regime, float]]] = {}
    for regime in fits:
        by_model.setdefault(regime.model, []).append((regime, predicted_s[regime.regime_id]))
    rng = random.Random(f"{seed}:{spec_key(spec)}")
    picked: list[PlannedTrial] = []
    while len(picked) < k and by_model:
        order = sorted(by_model)
        rng.shuffle(order)
        for key in order:
            if len(picked) == k:
                break
            pool = by_model[key]
            regime, predicted = pool.pop(rng.randrange(len(pool)))
            if not pool:
                del by_model[key]
            picked.append(
                PlannedTrial(spec, spec_key(spec), regime, feedback_id(spec, regime.regime_id, seed), predicted)
            )
    return picked


# -- the trial (runs in a Tune actor) ------------------------------------------------------------------------------


def collect_trial(config: Mapping[str, Any]) -> None:
    """Tune function trainable: fine-tune one regime on one task under the deadline and report the result."""
    t0 = time.perf_counter()
    trial = config["trial"]
    job = FinetuneJob(**trial["job"])
    settings = FinetuneSettings(**trial["settings"])
    outcome = run_finetune(job, replace(settings, device=assigned_device(settings.device)))
    if outcome.error:
        raise RuntimeError(outcome.error)  # Tune records the trial as errored: counted, not stored
    tune.report({**outcome.result, "feedback_id": job.key, "trial_wall_s": time.perf_counter() - t0})


# -- the driver: the single writer ---------------------------------------------------------------------------------


class _Recorder:
    """Appends each completed trial to the experience store (driver side) and keeps the tallies."""

    def __init__(
        self, store: ExperienceStore, planned: Mapping[str, tuple[PlannedTrial, TaskMeta, ZooEntry]], budget_s: float
    ) -> None:
        self.store = store
        self.planned = planned
        self.budget_s = budget_s
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
            f"ep={r.epochs})"
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
                budget_s=self.budget_s,
                finished=bool(result["finished"]),
                stopped_by=str(result["stopped_by"]),
                source="collect",
                feedback_id=fid,
                device=str(result.get("device", "")),
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
        recorder = _Recorder(store, plan.planned, s.max_trial_s)
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
        meta = replace(cached_task(spec).meta, name=spec_key(spec))
        sampled = plan_trials(spec, meta, entries, space, device, s.max_trial_s, s.trials_per_task, s.seed)
        todo = [p for p in sampled if p.feedback_id not in store and p.feedback_id not in plan.planned]
        plan.skipped += len(sampled) - len(todo)
        plan.per_task[meta.name] = {"meta": meta.to_dict(), "sampled": len(sampled), "to_run": len(todo)}
        if len(sampled) < s.trials_per_task:
            log.warning(
                "%s: only %d regimes predicted to fit %.0fs on %s (asked for %d)",
                meta.name,
                len(sampled),
                s.max_trial_s,
                device,
                s.trials_per_task,
            )
        for p in todo:
            plan.planned[p.feedback_id] = (p, meta, zoo.get(p.regime.model))
    log.info(
        "collect: %d tasks x %d regimes (predicted <= %.0fs on %s) -> %d trials to run, %d already stored in %s",
        len(tasks),
        s.trials_per_task,
        s.max_trial_s,
        device,
        len(plan.planned),
        plan.skipped,
        store.path,
    )
    return plan


def _sweep(
    plan: _Plan, zoo: Zoo, s: CollectSettings, runtime: RuntimeSettings, run_dir: Path, recorder: _Recorder
) -> tuple[float, str]:
    """Run every planned trial on Ray Tune; returns the sweep's seconds and the Ray address."""
    settings = asdict(FinetuneSettings(str(zoo.root), runtime.device, s.threads))
    trials = [
        {"job": asdict(FinetuneJob(fid, p.spec, p.regime.to_dict(), s.max_trial_s, s.seed)), "settings": settings}
        for fid, (p, _, _) in plan.planned.items()
    ]
    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")  # relative paths in specs resolve as in the driver
    with ray_session(runtime) as address:
        return _run_sweep(trials, s, runtime, run_dir / TUNE_DIR, recorder), address


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
            | {k: r[k] for k in ("accuracy", "time_s", "stopped_by", "feedback_id")}
            for r in recorder.rows
        ],
        "settings": asdict(s),
    }
