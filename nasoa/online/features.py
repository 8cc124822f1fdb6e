"""Feature vectors of (task meta, zoo model, regime) for the regime predictor, vectorized over many regimes.

The order is fixed and named by :data:`FEATURE_NAMES`. Sizes and rates enter as logs. How much training a regime
buys (steps, images seen per training image, predicted training seconds) is the main signal: measured on small
image tasks under budgets of seconds, how many epochs fit decided more than anything else. No Ray, no torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from nasoa.data.meta import TaskMeta
    from nasoa.online.regime import Regime
    from nasoa.zoo.manifest import ZooEntry

__all__ = [
    "FEATURE_NAMES",
    "KINDS",
    "MODEL_FEATURE_NAMES",
    "feature_matrix",
    "model_matrix",
    "regime_features",
]

#: Model kinds with a one-hot column; other kinds get zeros.
KINDS = ("etnas", "reference")

#: Columns of :func:`model_matrix`.
MODEL_FEATURE_NAMES = (
    "log_params",
    "log_macs",
    "zoo_top1",
    "num_stages",
    "log_pretrain_resolution",
    *(f"kind_{k}" for k in KINDS),
)

#: Columns of :func:`feature_matrix`, in order.
FEATURE_NAMES = (
    # task
    "log_num_classes",
    "log_num_train",
    "log_images_per_class",
    "log_resolution",
    "channels",
    # model
    "log_params",
    "log_macs",
    "zoo_top1",
    "num_stages",
    "log_resolution_ratio",
    # regime
    "frozen_fraction",
    "log_lr",
    "log_batch_size",
    "epochs",
    "log_steps",
    "log_images_seen_per_image",
    "log_step_ms",
    "log_train_s",
    *(f"kind_{k}" for k in KINDS),
)


def model_matrix(entries: Sequence[ZooEntry]) -> np.ndarray:
    """One row of model features per zoo entry (columns :data:`MODEL_FEATURE_NAMES`)."""
    rows = []
    for e in entries:
        top1 = float(e.top1) if math.isfinite(e.top1) else 0.0
        kind = [1.0 if e.kind == k else 0.0 for k in KINDS]
        rows.append(
            [math.log(max(e.params, 1)), math.log(max(e.macs, 1)), top1, float(e.num_stages), math.log(e.resolution)]
            + kind
        )
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(MODEL_FEATURE_NAMES))


def feature_matrix(
    task: TaskMeta,
    models: np.ndarray,
    lr: np.ndarray,
    frozen_stages: np.ndarray,
    batch_size: np.ndarray,
    epochs: np.ndarray,
    step_ms: np.ndarray,
) -> np.ndarray:
    """Features of many regimes on one task.

    Args:
        task: The task's meta-features.
        models: Rows of :func:`model_matrix`, one per regime (n x len(MODEL_FEATURE_NAMES)).
        lr: Learning rates (n).
        frozen_stages: Frozen stage counts (n).
        batch_size: Batch sizes (n).
        epochs: Epochs (n).
        step_ms: Predicted training step times at the task's resolution, in milliseconds (n).

    Returns:
        An n x len(FEATURE_NAMES) float64 array.
    """
    models = np.atleast_2d(np.asarray(models, dtype=np.float64))
    n = models.shape[0]
    lr, frozen, batch, epochs, step_ms = (
        np.broadcast_to(np.asarray(a, dtype=np.float64), (n,)) for a in (lr, frozen_stages, batch_size, epochs, step_ms)
    )
    steps = epochs * np.ceil(task.num_train / batch)
    num_stages = models[:, 3]
    out = np.empty((n, len(FEATURE_NAMES)), dtype=np.float64)
    out[:, 0] = math.log(task.num_classes)
    out[:, 1] = math.log(task.num_train)
    out[:, 2] = math.log(task.num_train / task.num_classes)
    out[:, 3] = math.log(task.resolution)
    out[:, 4] = task.channels
    out[:, 5:9] = models[:, 0:4]
    out[:, 9] = math.log(task.resolution) - models[:, 4]
    out[:, 10] = frozen / np.maximum(num_stages, 1.0)
    out[:, 11] = np.log(lr)
    out[:, 12] = np.log(batch)
    out[:, 13] = epochs
    out[:, 14] = np.log(steps)
    out[:, 15] = np.log(steps * batch / task.num_train)
    out[:, 16] = np.log(np.maximum(step_ms, 1e-6))
    out[:, 17] = np.log(np.maximum(steps * step_ms / 1000.0, 1e-6))
    out[:, 18:] = models[:, 5:]
    return out


def regime_features(task: TaskMeta, entry: ZooEntry, regime: Regime, step_ms: float) -> np.ndarray:
    """Features of one regime (a vector of len(FEATURE_NAMES)); ``step_ms`` at the task's resolution."""
    return feature_matrix(
        task, model_matrix([entry]), regime.lr, regime.frozen_stages, regime.batch_size, regime.epochs, step_ms
    )[0]
