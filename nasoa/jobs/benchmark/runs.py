"""Fine-tuning runs for the benchmarks: keyed by (task, regime, budget, seed), run on Ray, kept in a journal.

A run's key is the SHA-1 of its canonical JSON, so the same regime on the same task under the same budget is
fine-tuned once per benchmark run, whichever method asked for it (the oracle's grid, a baseline's pick, BOHB's
incumbent). Each result is appended to ``runs.jsonl`` (flushed and fsynced) as it lands: a crashed or
interrupted benchmark resumes where it stopped when run again in the same folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import ray

from nasoa.cluster.device import assigned_device
from nasoa.cluster.runtime import RuntimeSettings
from nasoa.common.io import JsonlJournal, read_jsonl
from nasoa.jobs.finetune import FinetuneJob, FinetuneSettings, ProbeJob, run_finetune
from nasoa.online.regime import Regime
from nasoa.train.finetune import FinetuneResult

log = logging.getLogger(__name__)


def run_key(task: str, regime: Regime, budget_s: float, seed: int) -> str:
    """Deterministic id of one fine-tuning run (the regime's id covers its planned steps)."""
    text = json.dumps([task, regime.regime_id, round(float(budget_s), 6), int(seed)], separators=(",", ":"))
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def finetune_once(job: FinetuneJob | ProbeJob, settings: FinetuneSettings) -> dict[str, Any]:
    """Fine-tune one regime on one task under the budget, or probe the zoo on it (in a Ray worker); the result."""
    outcome = run_finetune(job, replace(settings, device=assigned_device(settings.device)))
    if outcome.error:
        raise RuntimeError(outcome.error)
    return outcome.result


class ProbeRuns:
    """Task probes for the benchmark, one per (task, seed, budget), journaled with the seconds they took when first run.

    A probe reused from the journal is charged its recorded seconds, so a resumed benchmark spends the budget as
    the first run did. Runs in a Ray worker with the fine-tunes' resources.

    Args:
        path: The journal (``probes.jsonl``).
        runs: The benchmark's fine-tuning runs (their settings and resources are used).
        sample: Training images per probe.
        val_sample: Validation images per probe.
        fraction: Share of the budget a probe may spend, as the service's clients probe (None: no limit).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        runs: FinetuneRuns,
        sample: int = 128,
        val_sample: int = 64,
        fraction: float | None = None,
    ) -> None:
        self.path, self.runs, self.sample, self.val_sample = Path(path), runs, int(sample), int(val_sample)
        self.fraction = None if fraction is None else float(fraction)
        self.known: dict[str, tuple[dict[str, float], float]] = {}
        for row in read_jsonl(self.path):
            try:
                self.known[row["key"]] = ({str(k): float(v) for k, v in row["scores"].items()}, float(row["seconds"]))
            except (KeyError, TypeError, ValueError, AttributeError):
                continue

    def __call__(
        self, task: str, spec: Any, seed: int, budget_s: float | None = None
    ) -> tuple[dict[str, float], float]:
        """Probe scores by zoo key and the probe's seconds (an empty dict when the probe failed)."""
        max_s = None if self.fraction is None or budget_s is None else round(self.fraction * float(budget_s), 3)
        what = [task, spec, int(seed), self.sample, self.val_sample] + ([] if max_s is None else [max_s])
        key = hashlib.sha1(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:16]
        if key not in self.known:
            cpus, gpus = self.runs.resources["CPU"], self.runs.resources.get("GPU", 0)
            job = ProbeJob(key, spec, self.sample, self.val_sample, int(seed), max_s=max_s)
            remote = ray.remote(finetune_once).options(num_cpus=cpus, num_gpus=gpus)
            try:
                got = ray.get(remote.remote(job, self.runs.settings))
            except Exception as err:  # noqa: BLE001 - nasoa then chooses from meta-features alone, as the service does
                log.warning("probing %s failed: %s", task, err)
                return {}, 0.0
            self.known[key] = (dict(got["scores"]), float(got["seconds"]))
            with JsonlJournal(self.path) as journal:
                journal.append([{"key": key, "task": task, "seed": int(seed)} | got])
        return self.known[key]


class FinetuneRuns:
    """Cached, parallel fine-tuning of regimes under a budget, each also scored on the task's test split.

    Args:
        path: The journal (``runs.jsonl``); existing results are reused.
        zoo_root: The zoo the regimes' models come from.
        runtime: Where runs go: the device, and a GPU per run on a GPU runtime.
        cpus_per_run: Ray CPUs reserved per run (runs at once = Ray's CPUs / this), also its torch threads.
    """

    def __init__(
        self, path: str | os.PathLike, zoo_root: str, runtime: RuntimeSettings | None = None, cpus_per_run: float = 1.0
    ) -> None:
        self.path = Path(path)
        runtime = runtime or RuntimeSettings()
        self.settings = FinetuneSettings(str(zoo_root), runtime.device, max(1, int(cpus_per_run)))
        self.resources = runtime.worker_resources(cpus=float(cpus_per_run))
        self.results: dict[str, FinetuneResult] = {}
        self.ran = 0
        for row in read_jsonl(self.path):  # a torn last line from a crash is skipped: that run is redone
            try:
                self.results[row["key"]] = FinetuneResult(**row["result"])
            except (KeyError, TypeError):
                continue
        if self.results:
            log.info("reusing %d fine-tuning runs from %s", len(self.results), self.path)

    def __len__(self) -> int:
        return len(self.results)

    def _append(self, key: str, task: str, regime: Regime, budget_s: float, seed: int, result: FinetuneResult) -> None:
        row = {"key": key, "task": task, "regime": regime.to_dict(), "budget_s": budget_s, "seed": seed}
        with JsonlJournal(self.path) as journal:
            journal.append([row | {"result": result.to_dict()}])

    def evaluate(self, task: str, spec: Any, budget_s: float, seed: int, regimes: Sequence[Regime]) -> list:
        """The result of every regime on ``spec`` (named ``task``) under ``budget_s`` with ``seed``.

        Regimes not run yet are fine-tuned in parallel on Ray (``cpus_per_run`` each), and journaled as they land.
        """
        keys = [run_key(task, r, budget_s, seed) for r in regimes]
        todo = {k: r for k, r in zip(keys, regimes, strict=True) if k not in self.results}
        if todo:
            self._run(task, spec, budget_s, seed, todo)
        return [self.results[k] for k in keys]

    def _run(self, task: str, spec: Any, budget_s: float, seed: int, todo: dict[str, Regime]) -> None:
        cpus, gpus = self.resources["CPU"], self.resources.get("GPU", 0)
        remote = ray.remote(finetune_once).options(num_cpus=cpus, num_gpus=gpus)
        pending = {
            remote.remote(FinetuneJob(k, spec, r.to_dict(), budget_s, seed, test=True), self.settings): (k, r)
            for k, r in todo.items()
        }
        t0, last = time.time(), time.time()
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            key, regime = pending.pop(done[0])
            result = FinetuneResult(**ray.get(done[0]))
            self.results[key] = result
            self.ran += 1
            self._append(key, task, regime, budget_s, seed, result)
            if len(todo) > 4 and (time.time() - last > 30 or not pending):
                last = time.time()
                log.info(
                    "  %s, %gs: %d/%d fine-tunes done (%.0fs)",
                    task,
                    budget_s,
                    len(todo) - len(pending),
                    len(todo),
                    time.time() - t0,
                )
