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
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nasoa.bench.methods import Cell, Choice, Evaluate
from nasoa.online.regime import Regime

log = logging.getLogger(__name__)
JOURNAL = "bohb_choices.jsonl"


def bohb_trial(config: dict[str, Any], static: dict[str, Any]) -> None:
    """Tune function trainable: fine-tune the configured regime, reporting top-1 after every epoch."""
    import torch
    from ray import tune

    from nasoa.dist.worker_cache import cached_task, cached_zoo
    from nasoa.train.finetune import finetune

    torch.set_num_threads(static["threads"])
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
    zoo, task = cached_zoo(static["zoo_root"]), cached_task(static["spec"])  # before the clock: not the trial's work
    epochs = regime.epochs
    t0 = time.perf_counter()

    def report(epoch: int, top1: float) -> None:
        spent = time.perf_counter() - t0  # the fine-tune's own seconds, as for every other method (no actor start-up)
        tune.report(
            {"top1": top1, "final": epoch >= epochs, "feasible": True, "regime_id": regime.regime_id, "spent_s": spent}
        )

    finetune(
        zoo,
        regime,
        task,
        static["budget_s"],
        device=static["device"],
        seed=static["seed"],
        on_epoch=report,
    )


class BOHBSearch:
    """Regime choice by BOHB on Ray Tune.

    Args:
        zoo_root: The zoo.
        storage: Folder for Tune's experiment state.
        num_samples: Trials per cell.
        reduction_factor: HyperBand's eta.
        concurrency: Trials at once.
        cpus_per_trial: Ray CPUs per trial (and torch threads).
        device: Torch device of the trials.
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
        device: str = "cpu",
        seed: int = 0,
    ) -> None:
        if num_samples < 1:
            raise ValueError(f"num_samples must be at least 1, got {num_samples}")
        self.zoo_root, self.storage = str(zoo_root), Path(storage).resolve()
        self.num_samples, self.reduction_factor = int(num_samples), int(reduction_factor)
        self.concurrency, self.cpus_per_trial = int(concurrency), float(cpus_per_trial)
        self.device, self.seed = device, int(seed)
        self.cells = 0

    def config_space(self, feasible: Sequence[Regime]) -> Any:
        """Categorical dimensions over the values the feasible regimes take."""
        import ConfigSpace as CS

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
        path = self.storage / JOURNAL
        out = {}
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    d = json.loads(line)
                    regime = Regime.from_dict(d["regime"]) if d["regime"] else None
                    trace = tuple((float(t), Regime.from_dict(r)) for t, r in d["trace"])
                    out[d["key"]] = Choice(self.name, regime, d["fine_tunes"], d["choose_s"], trace, d["note"])
                except (ValueError, KeyError, TypeError):
                    continue  # a torn line from a crash: that cell is searched again
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
        with open(self.storage / JOURNAL, "a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def _search(self, cell: Cell) -> Choice:
        """Run BOHB on the cell with Ray Tune."""
        from ray import tune
        from ray.tune.schedulers import HyperBandForBOHB
        from ray.tune.search.bohb import TuneBOHB

        schedule = cell.feasible[0].schedule
        static = {
            "spec": cell.spec,
            "budget_s": cell.budget_s,
            "zoo_root": self.zoo_root,
            "device": self.device,
            "seed": self.seed,
            "threads": max(1, int(self.cpus_per_trial)),
            "schedule": schedule,
            "feasible": {r.regime_id for r in cell.feasible},
        }
        max_t = max(r.epochs for r in cell.feasible)
        searcher = TuneBOHB(space=self.config_space(cell.feasible), metric="top1", mode="max", seed=self.seed)
        scheduler = HyperBandForBOHB(
            time_attr="training_iteration",
            max_t=max_t,
            reduction_factor=self.reduction_factor,
            metric="top1",
            mode="max",
        )
        name = f"bohb-{self.cells:03d}"
        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(bohb_trial, static=static), {"cpu": self.cpus_per_trial}),
            tune_config=tune.TuneConfig(
                search_alg=searcher,
                scheduler=scheduler,
                num_samples=self.num_samples,
                max_concurrent_trials=self.concurrency,
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(storage_path=str(self.storage), name=name, verbose=0),
        )
        t0 = time.perf_counter()
        grid = tuner.fit()
        wall = time.perf_counter() - t0
        by_id = {r.regime_id: r for r in cell.feasible}
        trials = []
        for result in grid:
            m = result.metrics or {}
            if "top1" not in m:
                continue
            trials.append((float(m.get("timestamp", 0)), float(m.get("spent_s", 0.0)), m))
        trials.sort(key=lambda t: t[0])
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
