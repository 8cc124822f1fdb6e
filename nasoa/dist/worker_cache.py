"""Per-process caches for Ray workers, which Ray reuses: a task or a zoo is built once per process, not per run."""

from __future__ import annotations

import json
from typing import Any

_TASKS: dict[str, Any] = {}
_ZOOS: dict[str, Any] = {}


def spec_key(spec: Any) -> str:
    """A task spec as a stable string (dict specs as sorted JSON); also the rows' ``task_name``."""
    return spec if isinstance(spec, str) else json.dumps(spec, sort_keys=True, separators=(",", ":"))


def cached_task(spec: Any) -> Any:
    """``make_task(spec)``, made once per process."""
    key = spec_key(spec)
    if key not in _TASKS:
        from nasoa.data import make_task

        _TASKS[key] = make_task(spec)
    return _TASKS[key]


def cached_zoo(root: str) -> Any:
    """``Zoo(root)``, opened once per process."""
    if root not in _ZOOS:
        from nasoa.zoo.store import Zoo

        _ZOOS[root] = Zoo(root)
    return _ZOOS[root]
