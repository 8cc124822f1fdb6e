"""Feature rows of (task, zoo model, hyperparameters, training amount) for the regime predictor, and its target.

A row has a *static* part, fixed once the task, model and hyperparameters are (task sizes, task probes, model
descriptors and identity, model-task probe affinity, lr / frozen stages / batch size), and a *run* part that
depends on how long the run trains: piecewise-linear ramps of log epochs (images seen per training image) between
fixed knots, log steps, their interactions with a few static columns (how fast a regime learns), and the learning
rate left at the end (0 for an annealed run; a curve point measured mid-schedule has more). Every column is a fixed
transform of its inputs, centred and scaled by constants (no data-dependent standardization), so a predictor fitted
in one go and one updated row by row see the same numbers.

The target is ``logit`` of the top-1 above chance, ``a = (acc - 1/C) / (1 - 1/C)``: tasks with different ceilings
then differ by an offset (the predictor's per-task offset), and its noise (from a base noise and the binomial noise
of the images scored) is known per sample. No Ray, no torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from nasoa.data.meta import TaskMeta
    from nasoa.zoo.manifest import ZooEntry

__all__ = [
    "EPOCH_KNOTS",
    "KINDS",
    "MODEL_FEATURE_NAMES",
    "Featurizer",
    "from_target",
    "model_matrix",
    "probe_logit",
    "target_noise",
    "to_target",
]

#: Model kinds with a one-hot column; other kinds get zeros.
KINDS = ("etnas", "reference")

#: Columns of :func:`model_matrix`.
MODEL_FEATURE_NAMES = (
    "zoo_top1",
    "log_params",
    "log_macs",
    *(f"kind_{k}" for k in KINDS),
    "num_stages",
    "log_pretrain_resolution",
)

#: Knots of the training-amount ramps, in epochs (passes over the training images): below the first, more
#: training is worth nothing to the model; past the last, nothing more.
EPOCH_KNOTS = (1 / 16, 1 / 4, 1.0, 4.0, 16.0, 64.0)
_LOG_KNOTS = np.log(np.asarray(EPOCH_KNOTS))
_SPAN = float(_LOG_KNOTS[-1] - _LOG_KNOTS[0])

#: Clip of the above-chance top-1 before the logit (logit 0.98 = 3.9).
A_CLIP = 0.02

TASK_NAMES = (
    "bias",
    "log_classes",
    "log_train",
    "log_per_class",
    "log_resolution",
    "gray",
    "probe_best",
    "probe_task_missing",
)
MODEL_NAMES = (
    "zoo_top1",
    "log_params",
    "log_macs",
    *(f"kind_{k}" for k in KINDS),
    "num_stages",
    "log_resolution_ratio",
)
PAIR_NAMES = ("probe", "probe_rel", "probe_missing")
HP_NAMES = ("log_lr", "log_lr_sq", "frozen", "frozen_sq", "head_only", "log_batch", "lr_x_frozen", "lr_x_batch")
#: Static columns whose product with the total amount ramp is a run column (how fast a regime learns).
INTERACT = ("log_lr", "frozen", "log_params", "log_per_class", "probe_rel")
RUN_NAMES = (
    "end_lr",
    "log_steps",
    *(f"amount_{k}" for k in range(len(EPOCH_KNOTS) - 1)),
    *(f"amount_x_{z}" for z in INTERACT),
)

#: Prior (mean, std) of each named column's weight in logit units; any other column: ``(0, 0.5)``.
PRIORS: dict[str, tuple[float, float]] = {
    "bias": (1.0, 1.5),
    "zoo_top1": (0.0, 1.0),
    "probe_best": (0.5, 0.5),
    "probe": (0.3, 0.5),
    "probe_rel": (0.3, 0.5),
    "log_lr_sq": (-0.3, 0.3),
    "end_lr": (-0.5, 0.5),
    "log_steps": (0.2, 0.3),
    "amount_0": (0.5, 0.3),
    "amount_1": (0.4, 0.3),
    "amount_2": (0.3, 0.3),
    "amount_3": (0.2, 0.3),
    "amount_4": (0.1, 0.3),
    **{f"amount_x_{z}": (0.0, 0.3) for z in INTERACT},
}
DEFAULT_PRIOR = (0.0, 0.5)


def model_matrix(entries: Sequence[ZooEntry]) -> np.ndarray:
    """One row of model descriptors per zoo entry (columns :data:`MODEL_FEATURE_NAMES`), centred and scaled."""
    rows = []
    for e in entries:
        top1 = float(e.top1) - 0.8 if math.isfinite(e.top1) else 0.0
        kind = [1.0 if e.kind == k else 0.0 for k in KINDS]
        size = [math.log(max(e.params, 1) / 1e6), math.log(max(e.macs, 1) / 1e8)]
        rows.append([top1, *size, *kind, (e.num_stages - 4) / 2.0, math.log(e.resolution)])
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(MODEL_FEATURE_NAMES))


def _chance(num_classes: np.ndarray | int) -> np.ndarray:
    """Top-1 of guessing: 1/C (a one-class task counts as two: its top-1 says nothing)."""
    return 1.0 / np.maximum(np.asarray(num_classes, dtype=np.float64), 2.0)


def to_target(accuracy: np.ndarray | float, num_classes: np.ndarray | int) -> np.ndarray:
    """``logit`` of the top-1 above chance (clipped to [A_CLIP, 1 - A_CLIP] first)."""
    chance = _chance(num_classes)
    a = np.clip((np.asarray(accuracy, dtype=np.float64) - chance) / (1.0 - chance), A_CLIP, 1.0 - A_CLIP)
    return np.log(a / (1.0 - a))


def from_target(y: np.ndarray | float, num_classes: np.ndarray | int) -> np.ndarray:
    """The top-1 of a target value (the inverse of :func:`to_target` inside the clip)."""
    chance = _chance(num_classes)
    return chance + (1.0 - chance) / (1.0 + np.exp(-np.asarray(y, dtype=np.float64)))


def target_noise(accuracy: float, num_classes: int, scored: int, base: float) -> float:
    """Std of a target value: ``base`` (run-to-run) and binomial noise of ``scored`` images, through the logit."""
    chance = float(_chance(num_classes))
    a = min(max((accuracy - chance) / (1.0 - chance), 0.05), 0.95)
    acc_var = base**2 + max(accuracy * (1.0 - accuracy), 0.01) / max(scored, 1)
    return math.sqrt(acc_var) / (1.0 - chance) / (a * (1.0 - a))


def probe_logit(score: float, num_classes: int) -> float:
    """A probe's top-1 as a logit above chance (like the target)."""
    return float(to_target(score, num_classes))


def amount_columns(epochs: np.ndarray) -> np.ndarray:
    """The ramps of log epochs between :data:`EPOCH_KNOTS` (n x len(EPOCH_KNOTS)-1)."""
    u = np.log(np.maximum(np.asarray(epochs, dtype=np.float64), 1e-9))[:, None]
    return np.clip(u - _LOG_KNOTS[:-1], 0.0, np.diff(_LOG_KNOTS))


@dataclass(frozen=True)
class _Index:
    """Column positions the featurizer writes to."""

    task: slice
    model: slice
    pair: slice
    hp: slice
    run: slice
    onehot: int
    interact: tuple[int, ...]


class Featurizer:
    """Feature rows over a fixed zoo: the column layout (:attr:`names`) and the weights' prior by column.

    The layout holds one identity column per zoo entry (``model=<key>``): a predictor fitted through one
    featurizer is used through a featurizer of the same zoo.
    """

    def __init__(self, entries: Sequence[ZooEntry]) -> None:
        self.keys = tuple(e.key for e in entries)
        self.position = {k: i for i, k in enumerate(self.keys)}
        self.models = model_matrix(entries)
        self.num_stages = np.asarray([e.num_stages for e in entries], dtype=np.float64)
        names = (*TASK_NAMES, *MODEL_NAMES, *PAIR_NAMES, *HP_NAMES, *RUN_NAMES)
        self.names: tuple[str, ...] = (*names, *(f"model={k}" for k in self.keys))
        ends = np.cumsum([len(TASK_NAMES), len(MODEL_NAMES), len(PAIR_NAMES), len(HP_NAMES), len(RUN_NAMES)])
        starts = np.concatenate([[0], ends[:-1]])
        slices = [slice(int(a), int(b)) for a, b in zip(starts, ends)]
        interact = tuple(self.names.index(z) for z in INTERACT)
        self.index = _Index(*slices, int(ends[-1]), interact)
        prior = [PRIORS.get(n, DEFAULT_PRIOR) for n in self.names]
        self.prior_mean = np.asarray([m for m, _ in prior])
        self.prior_std = np.asarray([s for _, s in prior])

    @property
    def dim(self) -> int:
        return len(self.names)

    def probe_columns(self, task: TaskMeta, probes: Mapping[str, float] | None) -> tuple[np.ndarray, float | None]:
        """Per zoo entry, the probe logit (NaN where not probed), and the task's best (None: no probe at all)."""
        z = np.full(len(self.keys), np.nan)
        for key, score in (probes or {}).items():
            if key in self.position:
                z[self.position[key]] = probe_logit(float(score), task.num_classes)
        return z, (float(np.nanmax(z)) if np.isfinite(z).any() else None)

    def static(
        self,
        task: TaskMeta,
        model: np.ndarray,
        lr: np.ndarray,
        frozen: np.ndarray,
        batch: np.ndarray,
        probes: Mapping[str, float] | None = None,
    ) -> np.ndarray:
        """Rows with the static columns filled and the run columns zero.

        Args:
            task: The task's meta-features.
            model: Zoo entry positions (in the featurizer's order), one per row.
            lr: Learning rates.
            frozen: Frozen stage counts.
            batch: Batch sizes.
            probes: Probe top-1 by zoo key on this task (None: not probed).
        """
        model = np.asarray(model, dtype=np.int64)
        n, ix = len(model), self.index
        lr, frozen, batch = (np.broadcast_to(np.asarray(a, dtype=np.float64), (n,)) for a in (lr, frozen, batch))
        out = np.zeros((n, self.dim))
        out[:, ix.task] = self._task_row(task, probes)
        out[:, ix.model] = self.models[model]
        out[:, ix.model.stop - 1] = math.log(task.resolution) - self.models[model, -1]
        out[:, ix.pair] = self._pair_columns(task, probes, model)
        out[:, ix.hp] = _hp_columns(lr, frozen / np.maximum(self.num_stages[model], 1.0), frozen, batch, model, self)
        out[np.arange(n), ix.onehot + model] = 1.0
        return out

    def _task_row(self, task: TaskMeta, probes: Mapping[str, float] | None) -> list[float]:
        _, best = self.probe_columns(task, probes)
        per_class = task.num_train / task.num_classes
        return [
            1.0,
            math.log(task.num_classes / 10),
            math.log(task.num_train / 1000),
            math.log(per_class / 100),
            math.log(task.resolution / 32),
            1.0 if task.channels == 1 else 0.0,
            0.0 if best is None else best - 1.5,
            1.0 if best is None else 0.0,
        ]

    def _pair_columns(self, task: TaskMeta, probes: Mapping[str, float] | None, model: np.ndarray) -> np.ndarray:
        z, best = self.probe_columns(task, probes)
        zm = z[model]
        seen = np.isfinite(zm)
        out = np.zeros((len(model), len(PAIR_NAMES)))
        out[:, 0] = np.where(seen, zm - 1.5, 0.0)
        out[:, 1] = np.where(seen, zm - (best if best is not None else 0.0), 0.0)
        out[:, 2] = np.where(seen, 0.0, 1.0)
        return out

    def run_columns(
        self, interact: np.ndarray, steps: np.ndarray, epochs: np.ndarray, end_lr: np.ndarray
    ) -> np.ndarray:
        """The run columns (n x len(RUN_NAMES)) after ``steps`` done (``epochs``).

        ``interact`` holds the rows' :data:`INTERACT` columns (``rows[:, index.interact]``).
        """
        ramps = amount_columns(epochs)
        run = np.empty((len(interact), len(RUN_NAMES)))
        run[:, 0] = end_lr
        run[:, 1] = np.log10(np.maximum(np.asarray(steps, dtype=np.float64), 1.0) / 100.0)
        run[:, 2 : 2 + ramps.shape[1]] = ramps
        total = ramps.sum(axis=1) / _SPAN
        run[:, 2 + ramps.shape[1] :] = total[:, None] * interact
        return run

    def run_at_knots(self, w_run: np.ndarray, interact: np.ndarray, per_epoch: np.ndarray) -> np.ndarray:
        """``run_columns(...) @ w_run`` at every :data:`EPOCH_KNOTS`, annealed (n x knots).

        For rows of ``per_epoch`` steps an epoch and :data:`INTERACT` columns ``interact``, without building the
        n x knots rows: at a knot the ramps are the same for every row.
        """
        knots = np.asarray(EPOCH_KNOTS)
        ramps = amount_columns(knots)  # knots x ramps
        r = ramps.shape[1]
        steps = np.maximum(knots[None, :] * per_epoch[:, None], 1.0)
        out = (ramps @ w_run[2 : 2 + r])[None, :] + w_run[1] * np.log10(steps / 100.0)
        return out + np.outer(interact @ w_run[2 + r :], ramps.sum(axis=1) / _SPAN)

    def fill_run(self, rows: np.ndarray, steps: np.ndarray, epochs: np.ndarray, end_lr: np.ndarray) -> np.ndarray:
        """Writes the run columns of ``rows`` in place (returns them): ``steps`` done, ``epochs`` they make."""
        rows[:, self.index.run] = self.run_columns(rows[:, list(self.index.interact)], steps, epochs, end_lr)
        return rows


def _hp_columns(
    lr: np.ndarray, frozen_fraction: np.ndarray, frozen: np.ndarray, batch: np.ndarray, model: np.ndarray, f: Featurizer
) -> np.ndarray:
    log_lr = np.clip(np.log10(lr / 0.01), -4.0, 3.0)  # lr from 1e-6 to 10
    log_batch = np.log2(batch / 32.0)
    head_only = (frozen >= f.num_stages[model]).astype(np.float64)
    return np.stack(
        [log_lr, log_lr**2, frozen_fraction, frozen_fraction**2, head_only, log_batch, log_lr * frozen_fraction,
         log_lr * log_batch],
        axis=1,
    )  # fmt: skip
