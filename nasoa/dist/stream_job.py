"""Online adaptation end to end: ask the regime service, fine-tune on Ray Train under the budget, report back.

:func:`run_finetune_job` does it for one task (``launch/finetune.py``); :func:`run_stream_job` plays a stream of
tasks through the service (``launch/stream.py``). Both talk to the service over HTTP, like any user would.
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import ray

from nasoa.dist.finetune_job import FinetuneJob, FinetuneSettings, finetune_pool

log = logging.getLogger("nasoa.online")
logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request drowns the per-task lines
REGIME_FIELDS = ("model", "lr", "frozen_stages", "batch_size", "epochs", "schedule")


class ServiceClient:
    """A small HTTP client of the regime service."""

    def __init__(self, url: str, token: str | None = None, timeout_s: float = 60.0) -> None:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=url, timeout=timeout_s, headers=headers)

    def regime(self, task: Mapping[str, Any], budget_s: float) -> dict[str, Any]:
        r = self.http.post("/v1/regime", json={"task": dict(task), "budget_s": budget_s})
        if r.status_code != 200:
            raise ValueError(f"/v1/regime answered {r.status_code}: {r.json().get('detail', r.text)}")
        return r.json()

    def feedback(self, task: Mapping[str, Any], regime: Mapping[str, Any], result: Mapping[str, Any], **kw: Any) -> dict:
        body = {"task": dict(task), "regime": {k: regime[k] for k in REGIME_FIELDS if k in regime}}
        body |= {"result": {k: result[k] for k in ("accuracy", "time_s", "finished", "stopped_by")}} | kw
        r = self.http.post("/v1/feedback", json=body)
        if r.status_code != 200:
            raise ValueError(f"/v1/feedback answered {r.status_code}: {r.json().get('detail', r.text)}")
        return r.json()


def task_meta(spec: Any) -> dict[str, Any]:
    """The meta-features the service needs, measured from the task itself."""
    from nasoa.dist.finetune_job import _task

    meta = _task(spec if isinstance(spec, str) else repr(spec)).meta.to_dict()
    return {k: meta[k] for k in ("num_classes", "num_train", "resolution", "channels")} | {"name": str(spec)[:200]}


def _start_local_service(service_cfg: Mapping[str, Any], zoo_root: str, state_dir: str) -> tuple[str, Any]:
    from nasoa.dist.service_app import start_service
    from nasoa.online.service import ServiceSettings

    from nasoa.config import typed_settings

    settings = typed_settings(ServiceSettings, {**service_cfg, "zoo_root": zoo_root, "state_dir": state_dir}, "service")
    return start_service(settings), settings


def run_stream_job(cfg: Mapping[str, Any], run_dir: str | Path) -> dict[str, Any]:
    """Play ``cfg['stream']['tasks']`` through the service, one after another, learning from each."""
    from nasoa.config import typed_settings
    from nasoa.dist.search_job import TrainerSettings, init_ray
    from nasoa.dist.service_app import stop_service

    s = cfg["stream"]
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    zoo_root = str(Path(s["zoo_root"]).resolve())
    state_dir = str(Path(s.get("state_dir") or run_dir / "state").resolve())
    trainer = typed_settings(TrainerSettings, cfg["trainer"], "trainer")
    owns_ray = not ray.is_initialized()
    init_ray(trainer, None)
    started_service = False
    pool = None
    rows: list[dict[str, Any]] = []
    t0 = time.time()
    try:
        url = s.get("service_url")
        if not url:
            url, _ = _start_local_service(cfg.get("service", {}), zoo_root, state_dir)
            started_service = True
        client = ServiceClient(url, cfg.get("service", {}).get("auth_token"))
        pool = finetune_pool(FinetuneSettings(zoo_root, s.get("device", "cpu"), int(s.get("seed", 0))), num_workers=1,
                             threads=trainer.threads, storage_path=str(run_dir / "ray_train"))
        budgets = s["budgets"] if isinstance(s["budgets"], list) else [s["budgets"]]
        for i, spec in enumerate(s["tasks"]):
            budget = float(budgets[i % len(budgets)])
            rows.append(_one_task(client, pool, spec, budget, i, len(s["tasks"])))
    finally:
        if pool is not None:
            pool.close()
        if started_service:
            stop_service()
        if owns_ray:
            ray.shutdown()
    done = [r for r in rows if "accuracy" in r]
    summary = {
        "tasks": rows,
        "seconds": time.time() - t0,
        "mean_accuracy": sum(r["accuracy"] for r in done) / len(done) if done else math.nan,
        "mean_abs_error": sum(abs(r["accuracy"] - r["predicted_accuracy"]) for r in done) / len(done) if done else None,
        "over_budget": sum(r["time_s"] > r["budget_s"] for r in done),
        "state_dir": state_dir,
    }
    (run_dir / "stream.json").write_text(json.dumps(summary, indent=2, default=str))
    log.info("stream done: %d tasks, mean top-1 %.3f, |predicted - achieved| %.3f, %d over budget; %s",
             len(done), summary["mean_accuracy"], summary["mean_abs_error"] or math.nan, summary["over_budget"],
             run_dir / "stream.json")
    return summary


def _one_task(client: ServiceClient, pool, spec: Any, budget: float, i: int, n: int) -> dict[str, Any]:  # noqa: ANN001
    meta = task_meta(spec)
    try:
        regime = client.regime(meta, budget)
    except ValueError as err:
        log.warning("[task %d/%d] %s: %s", i + 1, n, spec, err)
        return {"task": str(spec), "budget_s": budget, "error": str(err)}
    job = FinetuneJob(uuid.uuid4().hex, spec, {k: regime[k] for k in REGIME_FIELDS}, budget)
    outcome = pool.run([job], [job.key])[job.key]
    if outcome.error:
        log.error("[task %d/%d] %s failed: %s", i + 1, n, spec, outcome.error)
        return {"task": str(spec), "budget_s": budget, "error": outcome.error}
    result = outcome.result
    ack = client.feedback(meta, regime, result, budget_s=budget, feedback_id=job.key)
    row = {"task": str(spec), "budget_s": budget, **{k: regime[k] for k in REGIME_FIELDS}}
    row |= {"predicted_accuracy": regime["predicted_accuracy"], "predicted_time_s": regime["predicted_time_s"]}
    row |= {k: result[k] for k in ("accuracy", "time_s", "finished", "stopped_by", "steps", "epochs_done")}
    row |= {"update_s": ack.get("update_s"), "experience_size": ack.get("experience_size")}
    log.info(
        "[task %d/%d] %-40s %s lr=%g frozen=%d batch=%d epochs=%d | predicted %.3f achieved %.3f | %.1fs of %.0fs%s",
        i + 1, n, str(spec)[:40], regime["model"], regime["lr"], regime["frozen_stages"], regime["batch_size"],
        regime["epochs"], regime["predicted_accuracy"], result["accuracy"], result["time_s"], budget,
        "" if result["finished"] else " (cut at the deadline)",
    )
    return row


def run_finetune_job(cfg: Mapping[str, Any], run_dir: str | Path) -> dict[str, Any]:
    """Fine-tune one task: with the given regime, or the one the service at ``service_url`` proposes."""
    from nasoa.config import typed_settings
    from nasoa.dist.search_job import TrainerSettings, init_ray

    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    budget = float(cfg["budget_s"])
    if not (math.isfinite(budget) and budget > 0):
        raise ValueError(f"budget_s must be a positive number of seconds, got {cfg['budget_s']!r}")
    trainer = typed_settings(TrainerSettings, cfg["trainer"], "trainer")
    client = ServiceClient(cfg["service_url"], cfg.get("auth_token")) if cfg.get("service_url") else None
    meta = task_meta(cfg["task"])
    regime = dict(cfg.get("regime") or {})
    if not regime.get("model"):
        if client is None:
            raise ValueError("give regime.model=<zoo key> (and lr, frozen_stages, ...) or service_url=<regime service>")
        regime = client.regime(meta, budget)
        log.info("the service proposes %s (predicted top-1 %.3f in %.1fs)", {k: regime[k] for k in REGIME_FIELDS},
                 regime["predicted_accuracy"], regime["predicted_time_s"])
    owns_ray = not ray.is_initialized()
    init_ray(trainer, None)
    try:
        pool = finetune_pool(FinetuneSettings(str(Path(cfg["zoo_root"]).resolve()), cfg.get("device", "cpu"),
                                              int(cfg.get("seed", 0))), threads=trainer.threads,
                             storage_path=str(run_dir / "ray_train"), use_gpu=trainer.use_gpu)
        try:
            job = FinetuneJob(uuid.uuid4().hex, cfg["task"], {k: regime[k] for k in REGIME_FIELDS if k in regime},
                              budget)
            outcome = pool.run([job], [job.key])[job.key]
        finally:
            pool.close()
    finally:
        if owns_ray:
            ray.shutdown()
    if outcome.error:
        raise RuntimeError(f"fine-tuning failed: {outcome.error}")
    out = {"task": meta, "regime": regime, "result": outcome.result, "budget_s": budget}
    if client is not None and cfg.get("report", True):
        out["feedback"] = client.feedback(meta, regime, outcome.result, budget_s=budget, feedback_id=job.key)
    (run_dir / "finetune.json").write_text(json.dumps(out, indent=2, default=str))
    r = outcome.result
    log.info("top-1 %.3f in %.1fs of %.0fs (%s, %d steps, %.2f epochs)%s", r["accuracy"], r["time_s"], budget,
             "finished" if r["finished"] else f"stopped by {r['stopped_by']}", r["steps"], r["epochs_done"],
             "; reported to the service" if "feedback" in out else "")
    return out
