"""Online adaptation end to end: ask the regime service, fine-tune on Ray Train under the budget, report back.

:func:`run_stream_job` (``launch/stream.py``) plays the ``tasks`` config's stream through the service, one task
after another, like any user would over HTTP; the service learns from each. With ``stream.probes`` the worker first
probes the zoo on the task (``nasoa.train.probe``, as a client would with the shipped command) and sends the scores
with the query; their seconds count against the budget (the run's deadline is what is left).
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasoa.cluster.pool import TrainPool
from nasoa.cluster.serve_app import start_service, stop_service
from nasoa.cluster.session import StopRequest, ray_session, stop_signals
from nasoa.common.io import write_json_atomic
from nasoa.jobs.finetune import FinetuneJob, ProbeJob, finetune_pool, task_meta, task_name
from nasoa.jobs.serve import service_config
from nasoa.online.client import REGIME_FIELDS, ServiceClient

log = logging.getLogger("nasoa.online")


@dataclass(frozen=True)
class StreamSettings:
    """The ``stream`` config: a running service to use (None: start one on this machine), the runs' seed, probes."""

    service_url: str | None = None
    seed: int = 0
    probes: bool = False
    probe_sample: int = 128
    probe_val_sample: int = 64
    probe_fraction: float = 0.2

    def __post_init__(self) -> None:
        if not 0 <= self.probe_fraction < 1:
            raise ValueError(f"stream.probe_fraction must be in [0, 1), got {self.probe_fraction!r}")


def run_stream_job(cfg: Mapping[str, Any], run_dir: str | Path) -> dict[str, Any]:
    """Play ``tasks.stream`` through the service, one after another, learning from each; returns the summary.

    SIGTERM or SIGINT stops it cleanly after the task in flight (its result reported): the summary lists the tasks
    played, the local service and Ray shut down, and the job returns normally.
    """
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    service = service_config(cfg, run_dir)
    stream: StreamSettings = cfg["stream"]
    t0 = time.time()
    with ray_session(cfg["runtime"]), stop_signals() as stop:
        url = stream.service_url or start_service(service)
        try:
            rows = _play(cfg, url, service.zoo_root, run_dir, stop)
        finally:
            if not stream.service_url:
                stop_service()
    summary = _summary(rows, time.time() - t0, service.state_dir) | {"stopped_by_signal": stop.signal}
    write_json_atomic(summary, run_dir / "stream.json")
    log.info(
        "stream done: %d tasks, mean top-1 %.3f, |predicted - achieved| %.3f, %d over budget; %s",
        summary["done"],
        summary["mean_accuracy"],
        summary["mean_abs_error"] or math.nan,
        summary["over_budget"],
        run_dir / "stream.json",
    )
    return summary


def _play(cfg: Mapping[str, Any], url: str, zoo_root: str, run_dir: Path, stop: StopRequest) -> list[dict[str, Any]]:
    """Every stream task through the service and a fine-tuning pool; a stop request ends it after the current task."""
    client = ServiceClient(url, cfg["service"].auth_token)
    tasks, budgets = cfg["tasks"]["stream"], cfg["tasks"]["stream_budgets"]
    pool = finetune_pool(zoo_root, cfg["runtime"], cfg["runtime"].storage(run_dir, "ray_train"))
    rows: list[dict[str, Any]] = []
    try:
        for i, spec in enumerate(tasks):
            if stop.requested:
                log.warning("stopping (%s): %d of %d stream tasks played", stop.signal, i, len(tasks))
                break
            rows.append(_one_task(client, pool, spec, float(budgets[i % len(budgets)]), cfg["stream"], (i, len(tasks))))
        return rows
    finally:
        pool.close()


def _summary(rows: list[dict[str, Any]], seconds: float, state_dir: str) -> dict[str, Any]:
    done = [r for r in rows if "accuracy" in r]
    return {
        "tasks": rows,
        "seconds": seconds,
        "done": len(done),
        "mean_accuracy": sum(r["accuracy"] for r in done) / len(done) if done else math.nan,
        "mean_abs_error": sum(abs(r["accuracy"] - r["predicted_accuracy"]) for r in done) / len(done) if done else None,
        "over_budget": sum(r["time_s"] + r["probe_s"] > r["budget_s"] for r in done),
        "over_budget_5pct": sum(r["time_s"] + r["probe_s"] > 1.05 * r["budget_s"] for r in done),
        "mean_budget_used": sum((r["time_s"] + r["probe_s"]) / r["budget_s"] for r in done) / len(done)
        if done
        else None,
        "fallbacks": sum(bool(r.get("fallback")) for r in done),
        "state_dir": state_dir,
    }


def _one_task(client: ServiceClient, pool: TrainPool, spec: Any, budget: float, s: StreamSettings, at: tuple) -> dict:
    """Probe (if asked), ask, fine-tune, report one task; a refused query or a failed run is a row with ``error``."""
    meta = task_meta(spec)
    where = f"[task {at[0] + 1}/{at[1]}] {task_name(spec)[:40]}"
    probes, probe_s = _probes(pool, spec, s, budget) if s.probes else ({}, 0.0)
    try:
        regime = client.regime(meta, budget, probes or None, probe_s)
    except ValueError as err:
        log.warning("%s: %s", where, err)
        return {"task": task_name(spec), "budget_s": budget, "error": str(err)}
    fields = {k: regime[k] for k in REGIME_FIELDS if regime.get(k) is not None}
    job = FinetuneJob(uuid.uuid4().hex, spec, fields, budget - probe_s, s.seed)
    outcome = pool.run([job], [job.key])[job.key]
    if outcome.error:
        log.error("%s failed: %s", where, outcome.error)
        return {"task": task_name(spec), "budget_s": budget, "error": outcome.error}
    result = outcome.result
    ack = client.feedback(meta, regime, result, budget_s=budget, feedback_id=job.key)
    row = {"task": task_name(spec), "budget_s": budget, "probe_s": probe_s, **fields}
    row |= {k: regime[k] for k in ("predicted_accuracy", "predicted_std", "predicted_time_s", "fallback")}
    row |= {k: result[k] for k in ("accuracy", "time_s", "finished", "stopped_by", "steps", "epochs_done")}
    row |= {"update_s": ack.get("update_s"), "experience_size": ack.get("experience_size")}
    _log_task(where, regime, result, probe_s, budget)
    return row


def _log_task(where: str, regime: dict, result: dict, probe_s: float, budget: float) -> None:
    log.info(
        "%-50s %s lr=%g frozen=%d batch=%d steps=%d%s | predicted %.3f+-%.3f achieved %.3f | %.1fs (+%.1fs probes) "
        "of %.0fs%s",
        where,
        regime["model"],
        regime["lr"],
        regime["frozen_stages"],
        regime["batch_size"],
        regime["steps"],
        " (fallback)" if regime["fallback"] else "",
        regime["predicted_accuracy"],
        regime["predicted_std"],
        result["accuracy"],
        result["time_s"],
        probe_s,
        budget,
        "" if result["finished"] else f" ({result['stopped_by']})",
    )


def _probes(pool: TrainPool, spec: Any, s: StreamSettings, budget: float) -> tuple[dict[str, float], float]:
    """The zoo's probe scores on the task and their seconds (the client's side, in the pool's worker).

    The probe may spend ``probe_fraction`` of the budget; models it had no time for are left out.
    """
    job = ProbeJob(uuid.uuid4().hex, spec, s.probe_sample, s.probe_val_sample, s.seed, max_s=s.probe_fraction * budget)
    outcome = pool.run([job], [job.key])[job.key]
    if outcome.error:
        log.warning("probing %s failed (asking without probes): %s", task_name(spec), outcome.error)
        return {}, 0.0
    return outcome.result["scores"], float(outcome.result["seconds"])
