"""Training loop, evaluation, BatchNorm re-estimation and the step-time profiler.

Names are imported lazily, so ``python -m nasoa.train.profile`` runs without importing its module twice.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nasoa.train.loop import EvalResult, TrainResult, evaluate, lr_at, recalibrate_bn, set_threads, train, warm_up
    from nasoa.train.profile import StepProfile, profile_step

_EXPORTS = {
    "EvalResult": "nasoa.train.loop",
    "TrainResult": "nasoa.train.loop",
    "evaluate": "nasoa.train.loop",
    "lr_at": "nasoa.train.loop",
    "recalibrate_bn": "nasoa.train.loop",
    "set_threads": "nasoa.train.loop",
    "train": "nasoa.train.loop",
    "train_and_evaluate": "nasoa.train.loop",
    "warm_up": "nasoa.train.loop",
    "StepProfile": "nasoa.train.profile",
    "profile_step": "nasoa.train.profile",
}

__all__ = [
    "EvalResult",
    "StepProfile",
    "TrainResult",
    "evaluate",
    "lr_at",
    "profile_step",
    "recalibrate_bn",
    "set_threads",
    "train",
    "train_and_evaluate",
    "warm_up",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nasoa.train' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
