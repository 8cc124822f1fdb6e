"""A small HTTP client of the regime service (``/v1/regime``, ``/v1/feedback``), as any user would use it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import httpx

logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request drowns the per-task lines

#: The fields of a ``/v1/regime`` answer that say what to run.
REGIME_FIELDS = ("model", "lr", "frozen_stages", "batch_size", "epochs", "schedule")


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

    def regime(self, task: Mapping[str, Any], budget_s: float) -> dict[str, Any]:
        return self._post("/v1/regime", {"task": dict(task), "budget_s": budget_s})

    def feedback(
        self, task: Mapping[str, Any], regime: Mapping[str, Any], result: Mapping[str, Any], **kw: Any
    ) -> dict[str, Any]:
        body = {"task": dict(task), "regime": {k: regime[k] for k in REGIME_FIELDS if k in regime}}
        body |= {"result": {k: result[k] for k in ("accuracy", "time_s", "finished", "stopped_by")}} | kw
        return self._post("/v1/feedback", body)
