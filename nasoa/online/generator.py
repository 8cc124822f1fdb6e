"""The regime generator: for a task and a time budget, the zoo model and fine-tuning regime predicted best.

Every regime of every zoo model (the :class:`RegimeSpace` grid, restricted to the frozen-stage counts profiled on
the device) is costed and featurized with numpy in one pass per task (cached per task meta); the predictor scores
them all; the best whose predicted time fits the budget is returned with the next alternatives. ``learn`` feeds a
finished run back into the predictor online. A service actor can own one generator (it holds no locks: call it
from one thread). No Ray, no torch.
"""

from __future__ import annotations

import math
import numbers
import time
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nasoa.data.meta import TaskMeta
from nasoa.online.features import feature_matrix, model_matrix, regime_features
from nasoa.online.predictor import Predictor
from nasoa.online.regime import CostModel, DeviceCost, Footprint, Regime, RegimeSpace, num_steps

if TYPE_CHECKING:
    from nasoa.zoo.manifest import ZooEntry

__all__ = ["LearnReport", "NoFeasibleRegime", "RegimeAnswer", "RegimeGenerator", "RegimeOption", "as_task_meta"]


class NoFeasibleRegime(ValueError):
    """No regime is predicted to fit the budget.

    Attributes:
        budget_s: The budget asked for.
        cheapest_time_s: Predicted time of the cheapest regime.
        cheapest: That regime.
    """

    def __init__(self, budget_s: float, cheapest_time_s: float, cheapest: Regime) -> None:
        self.budget_s, self.cheapest_time_s, self.cheapest = budget_s, cheapest_time_s, cheapest
        super().__init__(
            f"no regime fits a budget of {budget_s:.4g} s: the cheapest ({cheapest.model}, batch "
            f"{cheapest.batch_size}, {cheapest.epochs} epoch(s), {cheapest.frozen_stages} frozen stage(s)) "
            f"is predicted to take {cheapest_time_s:.4g} s"
        )


@dataclass(frozen=True)
class RegimeOption:
    """One scored regime.

    Attributes:
        regime: The regime.
        predicted_accuracy: Predicted top-1, in [0, 1].
        predicted_std: Predictive standard deviation of the top-1.
        predicted_time_s: Predicted wall time, overhead and evaluation included.
        footprint: Predicted device time, energy, cost and emissions.
    """

    regime: Regime
    predicted_accuracy: float
    predicted_std: float
    predicted_time_s: float
    footprint: Footprint

    def to_dict(self) -> dict[str, Any]:
        """The regime fields, its ``regime_id`` and the predictions, as a flat JSON-friendly dict."""
        return {
            **self.regime.to_dict(),
            "regime_id": self.regime.regime_id,
            "predicted_accuracy": self.predicted_accuracy,
            "predicted_std": self.predicted_std,
            "predicted_time_s": self.predicted_time_s,
            "footprint": self.footprint.to_dict(),
        }


@dataclass(frozen=True)
class RegimeAnswer:
    """The generator's answer: the best option, the next alternatives, and how many regimes were considered.

    Attributes:
        best: The chosen regime and its predictions.
        alternatives: The next best feasible options, best first.
        budget_s: The budget asked for.
        num_candidates: Regimes considered.
        num_feasible: Regimes predicted to fit the budget.
    """

    best: RegimeOption
    alternatives: tuple[RegimeOption, ...]
    budget_s: float
    num_candidates: int
    num_feasible: int

    @property
    def regime(self) -> Regime:
        return self.best.regime

    @property
    def predicted_accuracy(self) -> float:
        return self.best.predicted_accuracy

    @property
    def predicted_std(self) -> float:
        return self.best.predicted_std

    @property
    def predicted_time_s(self) -> float:
        return self.best.predicted_time_s

    @property
    def footprint(self) -> Footprint:
        return self.best.footprint

    def to_dict(self) -> dict[str, Any]:
        """The best option's fields at the top level, plus ``alternatives``, ``budget_s`` and counts."""
        return {
            **self.best.to_dict(),
            "budget_s": self.budget_s,
            "num_candidates": self.num_candidates,
            "num_feasible": self.num_feasible,
            "alternatives": [a.to_dict() for a in self.alternatives],
        }


@dataclass(frozen=True)
class LearnReport:
    """What one online update did.

    Attributes:
        update_s: Seconds the predictor update took.
        predicted_before: Predicted top-1 of the run's regime before the update.
        predicted_after: Predicted top-1 after it.
        accuracy: The observed top-1.
        num_samples: Samples the predictor has seen since its last fit.
    """

    update_s: float
    predicted_before: float
    predicted_after: float
    accuracy: float
    num_samples: int


def as_task_meta(task: TaskMeta | Mapping[str, Any]) -> TaskMeta:
    """A TaskMeta from itself or a mapping; every invalid input raises ``ValueError`` with a message."""
    if isinstance(task, TaskMeta):
        return task
    if not isinstance(task, Mapping):
        raise ValueError(f"task must be a TaskMeta or a mapping, got {type(task).__name__}")
    try:
        return TaskMeta.from_dict(task)
    except TypeError as err:
        raise ValueError(str(err)) from err


def _check_budget(budget_s: Any) -> float:
    if isinstance(budget_s, bool) or not isinstance(budget_s, numbers.Real):
        raise ValueError(f"budget_s must be a number of seconds, got {budget_s!r}")
    budget = float(budget_s)
    if not math.isfinite(budget) or budget <= 0:
        raise ValueError(f"budget_s must be finite and positive, got {budget_s!r}")
    return budget


class RegimeGenerator:
    """Proposes the regime with the best predicted top-1 among those predicted to fit a time budget.

    Args:
        zoo_entries: The zoo models; those without profiles on ``device`` are left out (with a warning).
        predictor: Scores feature rows (:data:`nasoa.online.features.FEATURE_NAMES`) with top-1 mean and variance.
        space: The regime grid.
        device: Profile device whose step times predict the cost.
        device_cost: Prices of the device, for the footprint; defaults to ``DeviceCost()``.
        cost_model: Validation fraction and fixed overhead of the time model.
        exploration: Score = mean + ``exploration`` x std (0 picks the best predicted mean).
        cache_size: Tasks whose candidate costs and features are cached.

    Raises:
        ValueError: If no zoo entry is profiled on ``device``, or keys repeat.
    """

    def __init__(
        self,
        zoo_entries: Sequence[ZooEntry],
        predictor: Predictor,
        space: RegimeSpace | None = None,
        device: str = "cpu",
        device_cost: DeviceCost | None = None,
        cost_model: CostModel | None = None,
        exploration: float = 0.0,
        cache_size: int = 64,
    ) -> None:
        if not math.isfinite(exploration) or exploration < 0:
            raise ValueError(f"exploration must be finite and non-negative, got {exploration!r}")
        keys = [e.key for e in zoo_entries]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"duplicate zoo keys: {dupes}")
        self.predictor = predictor
        self.space = space or RegimeSpace()
        self.device = device
        self.device_cost = device_cost or DeviceCost()
        self.cost_model = cost_model or CostModel()
        self.exploration = float(exploration)
        self.cache_size = int(cache_size)
        self.all_entries = {e.key: e for e in zoo_entries}
        self._cache: OrderedDict[tuple[int, int, int, int], tuple[np.ndarray, np.ndarray]] = OrderedDict()
        # Per cached task: the predictor's scores and the full ranking of the candidates, valid while the
        # predictor's cache_token and the exploration weight are unchanged (see _ranked).
        self._ranks: dict[tuple[int, int, int, int], tuple[Any, ...]] = {}
        self._steps: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # per resolution, see _step_times
        self._build_grid(list(zoo_entries))

    def _build_grid(self, entries: list[ZooEntry]) -> None:
        """The static part of the candidate grid: (entry, frozen, batch) combos expanded over epochs and lrs."""
        used, combos, skipped = [], [], []
        for entry in entries:
            frozen = self.space.frozen_options(entry, self.device)
            if not frozen or 0 not in {p.frozen_stages for p in entry.profiles if p.device == self.device}:
                skipped.append(entry.key)
                continue
            combos += [(len(used), k, b) for k in frozen for b in self.space.batch_sizes]
            used.append(entry)
        if skipped:
            warnings.warn(f"zoo entries without profiles on {self.device!r} are left out: {skipped}", stacklevel=3)
        if not used:
            raise ValueError(f"no zoo entry has profiles on device {self.device!r} (entries: {len(entries)})")
        self.entries = used
        self._combos = combos
        per_combo = len(self.space.epochs) * len(self.space.lrs)
        combo = np.repeat(np.arange(len(combos)), per_combo)
        c = np.asarray(combos, dtype=np.int64)
        self._combo_of = combo
        self._entry_of = c[combo, 0]
        self._frozen = c[combo, 1]
        self._batch = c[combo, 2]
        self._epochs = np.tile(np.repeat(np.asarray(self.space.epochs, dtype=np.int64), len(self.space.lrs)), len(c))
        self._lr = np.tile(np.asarray(self.space.lrs, dtype=np.float64), len(c) * len(self.space.epochs))
        self._models = model_matrix(used)
        self._top1 = np.nan_to_num(self._models[self._entry_of, 2])

    @property
    def num_candidates(self) -> int:
        """Regimes considered for every task."""
        return len(self._lr)

    def regime_at(self, i: int) -> Regime:
        """The ``i``-th regime of the candidate grid."""
        return Regime(
            self.entries[self._entry_of[i]].key,
            float(self._lr[i]),
            int(self._frozen[i]),
            int(self._batch[i]),
            int(self._epochs[i]),
            self.space.schedule,
        )

    def candidates(self, task: TaskMeta) -> tuple[np.ndarray, np.ndarray]:
        """Predicted times (seconds) and feature rows of every candidate regime on ``task`` (cached)."""
        key = self._task_key(task)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        step, inf = self._step_times(task.resolution)
        batch = self._batch.astype(np.float64)
        # Same operations, in the same order, as CostModel.time_s: the two agree to the last bit.
        steps = self._epochs * np.ceil(task.num_train / batch)
        eval_batches = np.ceil(self.cost_model.num_val(task.num_train) / batch)
        times = steps * step / 1000.0 + eval_batches * inf / 1000.0 + self.cost_model.overhead_s
        features = feature_matrix(task, self._models[self._entry_of], self._lr, self._frozen, batch, self._epochs, step)
        self._cache[key] = (times, features)
        while len(self._cache) > self.cache_size:
            self._ranks.pop(self._cache.popitem(last=False)[0], None)
        return times, features

    def _step_times(self, resolution: int) -> tuple[np.ndarray, np.ndarray]:
        """Profiled training step and inference times (ms) of every candidate at ``resolution`` (cached)."""
        if resolution in self._steps:
            return self._steps[resolution]
        step_ms = np.empty(len(self._combos))
        inf_ms = np.empty(len(self._combos))
        for j, (e, frozen, batch) in enumerate(self._combos):
            entry = self.entries[e]
            step_ms[j] = entry.step_ms(self.device, batch, frozen, resolution=resolution)
            inf_ms[j] = entry.inference_ms(self.device, batch, resolution=resolution)
        if len(self._steps) >= max(self.cache_size, 1):
            self._steps.pop(next(iter(self._steps)))
        self._steps[resolution] = (step_ms[self._combo_of], inf_ms[self._combo_of])
        return self._steps[resolution]

    @staticmethod
    def _task_key(task: TaskMeta) -> tuple[int, int, int, int]:
        return (task.num_classes, task.num_train, task.resolution, task.channels)

    def _ranked(
        self, task: TaskMeta, times: np.ndarray, features: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray]:
        """Predicted mean, std and score of every candidate, and all candidates in preference order (cached per task).

        The order is that of ``propose``: best score, then better zoo model, then longer predicted run, then grid
        order. Restricting it to the feasible candidates gives their order, so one ranking serves every budget.
        Without exploration the score is the mean and std is None: only the returned options need it (see
        :meth:`_stds`), and skipping it on every candidate makes a new task's first query about twice as fast.
        Cached while the predictor's :attr:`~nasoa.online.predictor.Predictor.cache_token` is unchanged (never
        when it is None).
        """
        key = self._task_key(task)
        token = self.predictor.cache_token
        stamp = (token, self.exploration)
        hit = self._ranks.get(key) if token is not None else None
        if hit is not None and hit[0] == stamp:
            return hit[1:]
        # Predict on every candidate (not only the feasible ones), so a candidate's score does not depend on the
        # budget: a tighter budget then never picks a costlier regime.
        if self.exploration:
            pred = self.predictor.predict(features)
            mean, std = pred.mean, np.sqrt(np.maximum(pred.var, 0.0))
            score = mean + self.exploration * std
        else:
            mean, std = self.predictor.predict_mean(features), None
            score = mean
        order = np.lexsort((np.arange(len(times)), -times, -self._top1, -score))
        out = (mean, std, score, order)
        if token is not None and key in self._cache:
            self._ranks[key] = (stamp, *out)
        return out

    def _option(self, i: int, times: np.ndarray, mean: np.ndarray, std: float) -> RegimeOption:
        t = float(times[i])
        return RegimeOption(self.regime_at(i), float(mean[i]), float(std), t, self.device_cost.footprint(t))

    def _stds(self, chosen: np.ndarray, features: np.ndarray, std: np.ndarray | None) -> np.ndarray:
        """Predicted std of the chosen candidates: from ``std`` if computed, else predicted on their rows alone."""
        if std is not None:
            return std[chosen]
        return np.sqrt(np.maximum(self.predictor.predict(features[chosen]).var, 0.0))

    def propose(self, task: TaskMeta | Mapping[str, Any], budget_s: float, top_k: int = 3) -> RegimeAnswer:
        """The regime with the best score among those whose predicted time is within ``budget_s``.

        Ties go to the better zoo model, then to the longer predicted run, then to the grid order.

        Args:
            task: The task's meta-features (a TaskMeta or a mapping of its fields).
            budget_s: Seconds available for the whole run.
            top_k: Alternatives returned besides the best.

        Returns:
            The answer; its predicted time never exceeds ``budget_s``.

        Raises:
            NoFeasibleRegime: If even the cheapest regime is predicted to exceed the budget.
            ValueError: If the task, the budget or ``top_k`` is invalid.
        """
        task = as_task_meta(task)
        budget = _check_budget(budget_s)
        if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 0:
            raise ValueError(f"top_k must be a non-negative integer, got {top_k!r}")
        times, features = self.candidates(task)
        feasible = times <= budget
        if not feasible.any():
            cheapest = int(np.argmin(times))
            raise NoFeasibleRegime(budget, float(times[cheapest]), self.regime_at(cheapest))
        mean, std, _, order = self._ranked(task, times, features)
        chosen = order[feasible[order]][: 1 + int(top_k)]
        stds = self._stds(chosen, features, std)
        options = [self._option(int(i), times, mean, s) for i, s in zip(chosen, stds)]
        return RegimeAnswer(options[0], tuple(options[1:]), budget, self.num_candidates, int(feasible.sum()))

    def score(self, task: TaskMeta | Mapping[str, Any], regime: Regime) -> RegimeOption:
        """Predictions for any regime of a known zoo model on ``task`` (whatever the budget)."""
        task = as_task_meta(task)
        entry = self._entry(regime.model)
        t = self.cost_model.time_s(entry, regime, task, self.device)
        x = regime_features(task, entry, regime, self._step_ms(task, entry, regime))
        pred = self.predictor.predict(x[None, :])
        std = math.sqrt(max(float(pred.var[0]), 0.0))
        return RegimeOption(regime, float(pred.mean[0]), std, t, self.device_cost.footprint(t))

    # -- learning ------------------------------------------------------------------------------------------------

    def _entry(self, key: str) -> ZooEntry:
        if key not in self.all_entries:
            raise ValueError(f"unknown zoo model {key!r}; known: {', '.join(sorted(self.all_entries))}")
        return self.all_entries[key]

    def _step_ms(self, task: TaskMeta, entry: ZooEntry, regime: Regime, time_s: float | None = None) -> float:
        """Profiled step time; for a regime not profiled on the device, the measured time per step."""
        try:
            return entry.step_ms(self.device, regime.batch_size, regime.frozen_stages, resolution=task.resolution)
        except KeyError:
            if time_s is None or not time_s > 0:
                raise ValueError(
                    f"{entry.key}: no profile on {self.device!r} with {regime.frozen_stages} frozen stages "
                    "and no measured time to stand in for it"
                ) from None
            return 1000.0 * time_s / num_steps(task.num_train, regime.batch_size, regime.epochs)

    def row_features(self, row: Mapping[str, Any]) -> tuple[np.ndarray, float]:
        """Feature vector and observed top-1 of an experience row (features recomputed from the zoo entry).

        Raises:
            ValueError: If the row's model is not in the zoo or its fields are invalid.
        """
        task = as_task_meta({k: row[k] for k in ("num_classes", "num_train", "resolution", "channels") if k in row})
        regime = Regime.from_dict(
            {k: row[k] for k in ("model", "lr", "frozen_stages", "batch_size", "epochs", "schedule") if k in row}
        )
        accuracy = row.get("accuracy")
        if isinstance(accuracy, bool) or not isinstance(accuracy, numbers.Real) or not 0.0 <= accuracy <= 1.0:
            raise ValueError(f"experience row: accuracy must be in [0, 1], got {accuracy!r}")
        entry = self._entry(regime.model)
        step = self._step_ms(task, entry, regime, row.get("time_s"))
        return regime_features(task, entry, regime, step), float(accuracy)

    def learn(self, row: Mapping[str, Any]) -> LearnReport:
        """Updates the predictor online with one finished run (an experience row)."""
        x, y = self.row_features(row)
        before = float(self.predictor.predict(x[None, :]).mean[0])
        start = time.perf_counter()
        self.predictor.update(x[None, :], np.array([y]))
        update_s = time.perf_counter() - start
        after = float(self.predictor.predict(x[None, :]).mean[0])
        return LearnReport(update_s, before, after, y, self.predictor.num_samples)

    def fit(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Fits the predictor from scratch on experience rows; rows it cannot use are skipped with a warning.

        Returns:
            The number of rows used (0 leaves the predictor untouched).
        """
        X, y, skipped = [], [], []
        for row in rows:
            try:
                x, acc = self.row_features(row)
            except (ValueError, KeyError) as err:
                skipped.append(str(err))
                continue
            X.append(x)
            y.append(acc)
        if skipped:
            warnings.warn(f"{len(skipped)} experience row(s) skipped; first: {skipped[0]}", stacklevel=2)
        if X:
            self.predictor.fit(np.vstack(X), np.asarray(y))
        return len(X)
