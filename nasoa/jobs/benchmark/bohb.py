"""BOHB through Ray Tune (``TuneBOHB`` with ``HyperBandForBOHB``) over a regime grid, given a compute budget.

Each trial fine-tunes one regime of the grid (model, lr, frozen fraction, batch size), sized to the cell's budget,
and reports its validation top-1 after every epoch (the fidelity HyperBand allocates). A combination that does not
fit the budget reports 0.0 at once and costs nothing. A trial's compute is its fine-tune's own seconds (loading,
training, per-epoch evaluations), as for every other method; Tune's actor start-up is not counted. The search
stops once its trials have spent ``compute_multiple`` times nasoa's compute on the same cell (the paper's claim is
that nasoa's one shot matches BOHB at 40x the compute). BOHB's pick is its best fully trained regime (validation
top-1); it is scored on test like every other method. It runs on a configured subset of cells only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ConfigSpace as CS
from ray import tune
from ray.tune.schedulers import HyperBandForBOHB
from ray.tune.search.bohb import TuneBOHB

from nasoa.bench.methods import METHODS, Cell, Choice, Evaluate, Grid, MethodContext, grid_of
from nasoa.cluster.device import assigned_device
from nasoa.cluster.runtime import RuntimeSettings
from nasoa.common.io import JsonlJournal, read_jsonl
from nasoa.jobs.finetune import FinetuneJob, FinetuneSettings, cached_task, cached_zoo, run_finetune
from nasoa.online.regime import Regime

log = logging.getLogger(__name__)
JOURNAL = "bohb_choices.jsonl"
DIMS = ("model", "lr", "frozen_fraction", "batch_size")


def combo_key(config: Mapping[str, Any]) -> str:
    """The grid point a trial's config names."""
    return "|".join(str(config[d]) for d in DIMS)


def bohb_trial(config: dict[str, Any], static: dict[str, Any]) -> None:
    """Tune function trainable: fine-tune the configured regime, reporting top-1 after every epoch."""
    regime_dict = static["sized"].get(combo_key(config))
    if regime_dict is None:
        tune.report({"top1": 0.0, "final": False, "feasible": False, "regime_id": "", "spent_s": 0.0})
        return
    regime = Regime.from_dict(regime_dict)
    cached_zoo(static["zoo_root"]), cached_task(static["spec"])  # before the clock: not the trial's work
    t0 = time.perf_counter()

    def report(top1: float, final: bool) -> None:
        spent = time.perf_counter() - t0  # the fine-tune's own seconds, as for every other method (no actor start-up)
        tune.report({"top1": top1, "final": final, "feasible": True, "regime_id": regime.regime_id, "spent_s": spent})

    job = FinetuneJob(regime.regime_id, static["spec"], regime.to_dict(), static["budget_s"], static["seed"])
    settings = FinetuneSettings(static["zoo_root"], assigned_device(static["device"]), static["threads"])
    outcome = run_finetune(job, settings, on_epoch=lambda epoch, top1: report(top1, False))
    if outcome.error:
        raise RuntimeError(outcome.error)
    report(float(outcome.result["accuracy"]), True)  # the run ended (its plan done or re-planned): fully trained


class ComputeStopper(tune.Stopper):
    """Stops the whole search once its trials' reported compute reaches ``budget_s``."""

    def __init__(self, budget_s: float) -> None:
        self.budget_s, self.spent = budget_s, {}

    def __call__(self, trial_id: str, result: dict) -> bool:
        self.spent[trial_id] = float(result.get("spent_s", 0.0))
        return False

    def stop_all(self) -> bool:
        return sum(self.spent.values()) >= self.budget_s


class BOHBSearch:
    """Regime choice by BOHB on Ray Tune, on the configured cells, with a compute budget relative to nasoa's.

    Args:
        zoo_root: The zoo.
        storage: Folder for Tune's experiment state.
        grid: The regimes BOHB searches (sized to each cell's budget).
        cells: ``{"tasks": first N stream tasks, "multiples": [...], "seeds": [...]}``: where BOHB runs.
        compute_multiple: BOHB's compute per cell, in multiples of nasoa's compute on it.
        reduction_factor: HyperBand's eta.
        concurrency: Trials at once.
        cpus_per_trial: Ray CPUs per trial (and torch threads).
        runtime: Where trials run: a GPU per trial (and the cuda device) on a GPU runtime.
        seed: BOHB's seed.
    """

    name = "bohb"

    def __init__(
        self,
        zoo_root: str,
        storage: str | Path,
        grid: Grid,
        cells: Mapping[str, Any],
        compute_multiple: float = 40.0,
        reduction_factor: int = 2,
        concurrency: int = 2,
        cpus_per_trial: float = 1.0,
        runtime: RuntimeSettings | None = None,
        seed: int = 0,
    ) -> None:
        self.zoo_root, self.storage, self.grid = str(zoo_root), Path(storage).resolve(), grid
        self.cells, self.compute_multiple = dict(cells), float(compute_multiple)
        self.reduction_factor, self.concurrency = int(reduction_factor), int(concurrency)
        self.cpus_per_trial, self.seed = float(cpus_per_trial), int(seed)
        runtime = runtime or RuntimeSettings()
        self.device = runtime.device
        self.resources = {k.lower(): v for k, v in runtime.worker_resources(cpus=self.cpus_per_trial).items()}
        self.reference: dict[tuple[str, int, float], float] = {}  # nasoa's compute per cell, set by the benchmark
        self.task_order: list[str] = []  # the stream's tasks in config order, set by the benchmark
        self.searched = 0

    def runs_on(self, cell: Cell) -> bool:
        """Whether this cell is one of BOHB's."""
        tasks = self.task_order[: int(self.cells["tasks"])]
        return cell.task in tasks and cell.multiple in self.cells["multiples"] and cell.seed in self.cells["seeds"]

    def choose(self, cell: Cell, evaluate: Evaluate) -> Choice:
        if not self.runs_on(cell):
            return Choice(self.name, None, 0, 0.0, note="not one of BOHB's cells")
        budget = self.compute_multiple * self.reference.get((cell.task, cell.seed, cell.multiple), cell.budget_s)
        sized = self._sized(cell)
        if not sized:
            return Choice(self.name, None, 0, 0.0, note="no regime fits the budget")
        key = self._cell_key(cell, budget)
        done = self._journal().get(key)
        if done is not None:
            log.info("  bohb: reusing this cell's search from %s", self.storage / JOURNAL)
            return done
        choice = self._search(cell, sized, budget)
        self._record(key, choice)
        return choice

    def _sized(self, cell: Cell) -> dict[str, dict]:
        """Every grid point (by its config key) sized to the cell's budget; points that do not fit are left out."""
        out = {}
        for regime in self.grid.regimes(cell):
            sized = cell.sized(regime)
            if sized is not None:
                fraction = regime.frozen_stages / max(1, cell.entry(regime.model).num_stages)
                point = {"model": regime.model, "lr": regime.lr, "batch_size": regime.batch_size}
                out[combo_key(point | {"frozen_fraction": round(fraction, 3)})] = sized.to_dict()
        return out

    def config_space(self, sized: Mapping[str, dict]) -> Any:
        """Categorical dimensions over the values the sized grid points take."""
        cs = CS.ConfigurationSpace(seed=self.seed)
        points = [dict(zip(DIMS, k.split("|"), strict=True)) for k in sized]
        for name in DIMS:
            cs.add(CS.CategoricalHyperparameter(name, sorted({p[name] for p in points})))
        return cs

    def _cell_key(self, cell: Cell, budget: float) -> str:
        text = json.dumps([cell.task, cell.budget_s, cell.seed, self.grid.__repr__(), round(budget, 3), self.seed])
        return hashlib.sha1(text.encode()).hexdigest()[:16]

    def _journal(self) -> dict[str, Choice]:
        """Choices of cells searched before in this storage folder (a resumed benchmark does not search again)."""
        out = {}
        for d in read_jsonl(self.storage / JOURNAL):  # a torn line from a crash is skipped: searched again
            try:
                regime = Regime.from_dict(d["regime"]) if d["regime"] else None
                trace = tuple((float(t), Regime.from_dict(r)) for t, r in d["trace"])
                out[d["key"]] = Choice(self.name, regime, d["fine_tunes"], d["compute_s"], trace, d["note"])
            except (ValueError, KeyError, TypeError):
                continue
        return out

    def _record(self, key: str, choice: Choice) -> None:
        row = {"key": key, "regime": choice.regime.to_dict() if choice.regime else None}
        row |= {"fine_tunes": choice.fine_tunes, "compute_s": choice.compute_s, "note": choice.note}
        row["trace"] = [[t, r.to_dict()] for t, r in choice.trace]
        with JsonlJournal(self.storage / JOURNAL) as journal:
            journal.append([row])

    def _search(self, cell: Cell, sized: dict[str, dict], budget: float) -> Choice:
        """Run BOHB on the cell with Ray Tune until its compute budget is spent."""
        self.searched += 1
        t0 = time.perf_counter()
        grid = self._tuner(cell, sized, budget).fit()
        wall = time.perf_counter() - t0
        trials = sorted(
            (float(m.get("timestamp", 0)), float(m.get("spent_s", 0.0)), m)
            for m in (result.metrics or {} for result in grid)
            if "top1" in m
        )
        return self._pick(trials, sized, wall, budget)

    def _tuner(self, cell: Cell, sized: dict[str, dict], budget: float) -> tune.Tuner:
        static = {"spec": cell.spec, "budget_s": cell.budget_s, "zoo_root": self.zoo_root, "device": self.device}
        static |= {"seed": cell.seed, "threads": max(1, int(self.cpus_per_trial)), "sized": sized}
        max_t = max(Regime.from_dict(r).epochs for r in sized.values()) + 2  # epoch reports, the last, the final
        eta = self.reduction_factor
        scheduler = HyperBandForBOHB(
            time_attr="training_iteration", max_t=max_t, reduction_factor=eta, metric="top1", mode="max"
        )
        return tune.Tuner(
            tune.with_resources(tune.with_parameters(bohb_trial, static=static), self.resources),
            tune_config=tune.TuneConfig(
                search_alg=TuneBOHB(space=self.config_space(sized), metric="top1", mode="max", seed=self.seed),
                scheduler=scheduler,
                num_samples=10_000,  # the compute budget stops the search
                max_concurrent_trials=self.concurrency,
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                storage_path=str(self.storage),
                name=f"bohb-{self.searched:03d}",
                verbose=0,
                stop=ComputeStopper(budget),
            ),
        )

    def _pick(self, trials: Sequence[tuple], sized: Mapping[str, dict], wall: float, budget: float) -> Choice:
        """The best fully trained regime (validation top-1), and the compute trace, from the finished trials."""
        spent, best_acc, best, trace, full = 0.0, -1.0, None, [], 0
        by_id = {Regime.from_dict(r).regime_id: Regime.from_dict(r) for r in sized.values()}
        for _, seconds, m in trials:
            spent += seconds
            if m.get("final") and m.get("feasible"):
                full += 1
                if m["top1"] > best_acc:
                    best_acc, best = float(m["top1"]), by_id[m["regime_id"]]
                    trace.append((spent, best))
        log.info(
            "  bohb: %d trials (%d trained fully) in %.0fs wall, %.0fs of trial compute (budget %.0fs)",
            len(trials),
            full,
            wall,
            spent,
            budget,
        )
        note = f"{full} of {len(trials)} trials trained fully; compute budget {budget:.0f}s"
        return Choice(self.name, best, len(trials), spent, tuple(trace), note if best else "no trial trained fully")


@METHODS.register("bohb")
def _bohb(name: str, ctx: MethodContext) -> BOHBSearch:
    b, cfg = ctx.cfg["bohb"], ctx.cfg
    cells = {k: b[k] for k in ("tasks", "multiples", "seeds")}
    search = BOHBSearch(
        ctx.zoo_root,
        ctx.out / "tune",
        grid_of(cfg["oracle_grid"]),
        cells,
        compute_multiple=float(b["compute_multiple"]),
        reduction_factor=int(b["reduction_factor"]),
        concurrency=int(cfg["concurrency"]),
        cpus_per_trial=float(cfg["cpus_per_run"]),
        runtime=ctx.runtime,
        seed=int(cfg["seed"]),
    )
    search.task_order = [t["name"] if isinstance(t, Mapping) else str(t) for t in cfg["tasks"]]
    return search
