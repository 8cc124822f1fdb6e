"""A small HTTP client of the regime service (``/v1/regime``, ``/v1/feedback``), as any user would use it."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import httpx

logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request drowns the per-task lines

#: The fields of a ``/v1/regime`` answer that say what to run (``steps``: the planned steps, sized to the budget).
REGIME_FIELDS = ("model", "lr", "frozen_stages", "batch_size", "epochs", "schedule", "steps")
#: The fields of a fine-tuning result that ``/v1/feedback`` takes.
RESULT_FIELDS = ("accuracy", "time_s", "finished", "stopped_by", "steps", "epochs_done", "step_ms", "curve")


class ServiceClient:
    """``regime(task, budget_s)`` and ``feedback(task, regime, result)``; a non-200 answer raises ``ValueError``."""

    def __init__(self, url: str, token: str | None = None, timeout_s: float = 60.0) -> None:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=url, timeout=timeout_s, headers=headers)

    def _post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        r = self.http.post(path, json=dict(body))
        if r.status_code != 200:
            raise ValueError(f"{path} answered {r.status_code}: {r.json().get('detail', r.text)}")
        return r.json()

    def regime(
        self, task: Mapping[str, Any], budget_s: float, probes: Mapping[str, float] | None = None, probe_s: float = 0.0
    ) -> dict[str, Any]:
        """The service's regime for ``task`` within ``budget_s``, given probe scores (and their seconds) if any."""
        body: dict[str, Any] = {"task": dict(task), "budget_s": budget_s}
        if probes:
            body["probes"] = {"scores": dict(probes), "seconds": probe_s}
        return self._post("/v1/regime", body)

    def feedback(
        self, task: Mapping[str, Any], regime: Mapping[str, Any], result: Mapping[str, Any], **kw: Any
    ) -> dict[str, Any]:
        """Report a finished run (the regime as answered, the fine-tuning result); the probes the answer used too."""
        body = {"task": dict(task), "regime": {k: regime[k] for k in REGIME_FIELDS if regime.get(k) is not None}}
        result = {**result, "step_ms": result.get("step_wall_ms", result.get("step_ms"))}  # a step's wall time
        body["result"] = {k: result[k] for k in RESULT_FIELDS if result.get(k) is not None and _finite(result[k])}
        if regime.get("probes"):
            body["probes"] = dict(regime["probes"])
        return self._post("/v1/feedback", body | kw)


def _finite(value: Any) -> bool:
    return not (isinstance(value, float) and not math.isfinite(value))
