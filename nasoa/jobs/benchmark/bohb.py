"""BOHB through Ray Tune (``TuneBOHB`` with ``HyperBandForBOHB``) over the regime space, as a regime chooser.

Each trial fine-tunes one regime (model, lr, frozen stages, batch size, epochs) on the task under the cell's
budget and reports the validation top-1 after every epoch (the fidelity HyperBand allocates). Combinations
predicted not to fit the budget report 0.0 at once and cost nothing. A trial's compute is its fine-tune's own
seconds (loading, training, per-epoch evaluations), as for every other method; Tune's actor start-up is not
counted. Trials HyperBand pauses carry no checkpoint, so a resumed trial starts over (its last run is counted).
BOHB's pick is its best fully trained regime.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ConfigSpace as CS
from ray import tune
from ray.tune.schedulers import HyperBandForBOHB
from ray.tune.search.bohb import TuneBOHB

from nasoa.bench.methods import METHODS, Cell, Choice, Evaluate, MethodContext
from nasoa.cluster.device import assigned_device
from nasoa.cluster.runtime import RuntimeSettings
from nasoa.common.io import JsonlJournal, read_jsonl
from nasoa.jobs.finetune import FinetuneJob, FinetuneSettings, cached_task, cached_zoo, run_finetune
from nasoa.online.regime import Regime

log = logging.getLogger(__name__)
JOURNAL = "bohb_choices.jsonl"


def bohb_trial(config: dict[str, Any], static: dict[str, Any]) -> None:
    """Tune function trainable: fine-tune the configured regime, reporting top-1 after every epoch."""
    regime = Regime(
        config["model"],
        float(config["lr"]),
        int(config["frozen_stages"]),
        int(config["batch_size"]),
        int(config["epochs"]),
        static["schedule"],
    )
    if regime.regime_id not in static["feasible"]:
        tune.report({"top1": 0.0, "final": False, "feasible": False, "regime_id": regime.regime_id, "spent_s": 0.0})
        return
    cached_zoo(static["zoo_root"]), cached_task(static["spec"])  # before the clock: not the trial's work
    epochs = regime.epochs
    t0 = time.perf_counter()

    def report(epoch: int, top1: float) -> None:
        spent = time.perf_counter() - t0  # the fine-tune's own seconds, as for every other method (no actor start-up)
        tune.report(
            {"top1": top1, "final": epoch >= epochs, "feasible": True, "regime_id": regime.regime_id, "spent_s": spent}
        )

    job = FinetuneJob(regime.regime_id, static["spec"], regime.to_dict(), static["budget_s"], static["seed"])
    settings = FinetuneSettings(static["zoo_root"], assigned_device(static["device"]), static["threads"])
    outcome = run_finetune(job, settings, on_epoch=report)
    if outcome.error:
        raise RuntimeError(outcome.error)


class BOHBSearch:
    """Regime choice by BOHB on Ray Tune.

    Args:
        zoo_root: The zoo.
        storage: Folder for Tune's experiment state.
        num_samples: Trials per cell.
        reduction_factor: HyperBand's eta.
        concurrency: Trials at once.
        cpus_per_trial: Ray CPUs per trial (and torch threads).
        runtime: Where trials run: a GPU per trial (and the cuda device) on a GPU runtime.
        seed: BOHB's and the fine-tunes' seed.
    """

    name = "bohb"

    def __init__(
        self,
        zoo_root: str,
        storage: str | Path,
        num_samples: int = 24,
        reduction_factor: int = 3,
        concurrency: int = 2,
        cpus_per_trial: float = 1.0,
        runtime: RuntimeSettings | None = None,
        seed: int = 0,
    ) -> None:
        if num_samples < 1:
            raise ValueError(f"num_samples must be at least 1, got {num_samples}")
        self.zoo_root, self.storage = str(zoo_root), Path(storage).resolve()
        self.num_samples, self.reduction_factor = int(num_samples), int(reduction_factor)
        self.concurrency, self.cpus_per_trial = int(concurrency), float(cpus_per_trial)
        runtime = runtime or RuntimeSettings()
        self.device, self.seed = runtime.device, int(seed)
        self.resources = {k.lower(): v for k, v in runtime.worker_resources(cpus=self.cpus_per_trial).items()}
        self.cells = 0

    def config_space(self, feasible: Sequence[Regime]) -> Any:
        """Categorical dimensions over the values the feasible regimes take."""
        cs = CS.ConfigurationSpace(seed=self.seed)
        for name in ("model", "lr", "frozen_stages", "batch_size", "epochs"):
            values = sorted({getattr(r, name) for r in feasible}, key=lambda v: (str(type(v)), v))
            cs.add(CS.CategoricalHyperparameter(name, values))
        return cs

    def choose(self, cell: Cell, evaluate: Evaluate) -> Choice:
        if not cell.feasible:
            return Choice(self.name, None, 0, 0.0, note="no regime fits the budget")
        self.cells += 1
        key = self._cell_key(cell)
        done = self._journal().get(key)
        if done is not None:
            log.info("  bohb: reusing this cell's search from %s", self.storage / JOURNAL)
            return done
        choice = self._search(cell)
        self._record(key, choice)
        return choice

    def _cell_key(self, cell: Cell) -> str:
        ids = sorted(r.regime_id for r in cell.feasible)
        text = json.dumps([cell.spec, cell.budget_s, ids, self.num_samples, self.reduction_factor, self.seed])
        return hashlib.sha1(text.encode()).hexdigest()[:16]

    def _journal(self) -> dict[str, Choice]:
        """Choices of cells searched before in this storage folder (a resumed benchmark does not search again)."""
        out = {}
        for d in read_jsonl(self.storage / JOURNAL):  # a torn line from a crash is skipped: searched again
            try:
                regime = Regime.from_dict(d["regime"]) if d["regime"] else None
                trace = tuple((float(t), Regime.from_dict(r)) for t, r in d["trace"])
                out[d["key"]] = Choice(self.name, regime, d["fine_tunes"], d["choose_s"], trace, d["note"])
            except (ValueError, KeyError, TypeError):
                continue
        return out

    def _record(self, key: str, choice: Choice) -> None:
        self.storage.mkdir(parents=True, exist_ok=True)
        row = {
            "key": key,
            "regime": choice.regime.to_dict() if choice.regime else None,
            "fine_tunes": choice.fine_tunes,
            "choose_s": choice.choose_s,
            "trace": [[t, r.to_dict()] for t, r in choice.trace],
            "note": choice.note,
        }
        with JsonlJournal(self.storage / JOURNAL) as journal:
            journal.append([row])

    def _search(self, cell: Cell) -> Choice:
        """Run BOHB on the cell with Ray Tune; its pick is the best fully trained regime."""
        t0 = time.perf_counter()
        grid = self._tuner(cell).fit()
        wall = time.perf_counter() - t0
        trials = sorted(
            (float(m.get("timestamp", 0)), float(m.get("spent_s", 0.0)), m)
            for m in (result.metrics or {} for result in grid)
            if "top1" in m
        )
        return self._pick(cell, trials, wall)

    def _tuner(self, cell: Cell) -> tune.Tuner:
        static = {
            "spec": cell.spec,
            "budget_s": cell.budget_s,
            "zoo_root": self.zoo_root,
            "device": self.device,
            "seed": self.seed,
            "threads": max(1, int(self.cpus_per_trial)),
            "schedule": cell.feasible[0].schedule,
            "feasible": {r.regime_id for r in cell.feasible},
        }
        searcher = TuneBOHB(space=self.config_space(cell.feasible), metric="top1", mode="max", seed=self.seed)
        scheduler = HyperBandForBOHB(
            time_attr="training_iteration",
            max_t=max(r.epochs for r in cell.feasible),
            reduction_factor=self.reduction_factor,
            metric="top1",
            mode="max",
        )
        return tune.Tuner(
            tune.with_resources(tune.with_parameters(bohb_trial, static=static), self.resources),
            tune_config=tune.TuneConfig(
                search_alg=searcher,
                scheduler=scheduler,
                num_samples=self.num_samples,
                max_concurrent_trials=self.concurrency,
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(storage_path=str(self.storage), name=f"bohb-{self.cells:03d}", verbose=0),
        )

    def _pick(self, cell: Cell, trials: list[tuple[float, float, dict]], wall: float) -> Choice:
        """The best fully trained regime, and the compute trace, from the trials in the order they finished."""
        by_id = {r.regime_id: r for r in cell.feasible}
        spent, best_acc, best, trace, full = 0.0, -1.0, None, [], 0
        for _, seconds, m in trials:
            spent += seconds
            if m.get("final") and m.get("feasible"):
                full += 1
                if m["top1"] > best_acc:
                    best_acc, best = float(m["top1"]), by_id[m["regime_id"]]
                    trace.append((spent, best))
        log.info(
            "  bohb: %d trials (%d trained fully) in %.0fs wall, %.0fs of trial compute", len(trials), full, wall, spent
        )
        if best is None:
            return Choice(self.name, None, len(trials), spent, note="no trial was trained fully")
        return Choice(
            self.name, best, len(trials), spent, tuple(trace), f"{full} of {len(trials)} trials trained fully"
        )


@METHODS.register("bohb")
def _bohb(name: str, ctx: MethodContext) -> BOHBSearch:
    b, cfg = ctx.cfg["bohb"], ctx.cfg
    return BOHBSearch(
        ctx.zoo_root,
        ctx.out / "tune",
        num_samples=int(b["num_samples"]),
        reduction_factor=int(b["reduction_factor"]),
        concurrency=int(cfg["concurrency"]),
        cpus_per_trial=float(cfg["cpus_per_run"]),
        runtime=ctx.runtime,
        seed=int(cfg["seed"]),
    )
