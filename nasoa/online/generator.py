"""The regime generator: for a task and a time budget, the zoo model and fine-tuning regime predicted best.

The candidates are every (zoo model, frozen stages, batch size, lr) of the :class:`RegimeSpace` grid whose model is
profiled on the device; each is *sized to the budget*: it plans the steps the cost model predicts to fit (the
budget less any probe time; :func:`~nasoa.online.regime.sized_to_budget`, vectorized), so a longer budget gives
every candidate at least as many steps. The predictor scores each at its steps, on the task's own offset once the
task has feedback. Three rules make the choice:

- *monotone in training*: a candidate's predicted accuracy is the running maximum of the predictor's curve over
  the training amounts up to its steps (its knots, then its own steps): more steps never predict worse;
- *lower confidence bound*: the score is that prediction less ``kappa`` standard deviations of its difference from
  the fallback regime on this task (the uncertainty that separates regimes, not the task's shared offset): the
  predictor's, plus an unknown model-task affinity (``affinity_std``, less where probes saw both models) when the
  model is not the fallback's: what a model's features do for a new task is what the experience knows least;
- *safe fallback*: candidates whose difference from the fallback is too uncertain (std over ``max_contrast_std``)
  are left out, and the fallback regime (``RegimeSpace.fallback``, sized like the others) is always in.

A candidate's score grows with the budget and the eligible set does not depend on it, so the chosen score never
drops as the budget grows. ``learn`` feeds a finished run, its learning curve included, back into the predictor
online. A service actor can own one generator (no locks: call it from one thread). No Ray, no torch.
"""

from __future__ import annotations

import json
import math
import numbers
import time
import warnings
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from nasoa.data.meta import TaskMeta
from nasoa.online.experience import row_regime
from nasoa.online.features import EPOCH_KNOTS, Featurizer, from_target, target_noise, to_target
from nasoa.online.predictor import Predictor
from nasoa.online.regime import CostModel, DeviceCost, Footprint, Regime, RegimeSpace, load_units

if TYPE_CHECKING:
    from nasoa.zoo.manifest import ZooEntry

__all__ = [
    "LearnReport",
    "NoFeasibleRegime",
    "RegimeAnswer",
    "RegimeGenerator",
    "RegimeOption",
    "as_task_meta",
    "lr_fraction",
    "task_group",
]

#: Training amount (epochs) at which a candidate's difference from the fallback is measured.
REFERENCE_EPOCHS = 2.0
#: Recent runs whose measured over profiled step time sets the cost model's time scale.
SPEED_WINDOW = 64
#: Bounds of the learned time scale.
TIME_SCALE_BOUNDS = (0.1, 20.0)
#: Most loading milliseconds per 32 x 32 training image the speed model believes.
MAX_LOAD_MS = 100.0


class NoFeasibleRegime(ValueError):
    """No regime is predicted to fit the budget.

    Attributes:
        budget_s: The budget asked for.
        cheapest_time_s: Predicted time of the cheapest regime (one step, probes included).
        cheapest: That regime.
    """

    def __init__(self, budget_s: float, cheapest_time_s: float, cheapest: Regime) -> None:
        self.budget_s, self.cheapest_time_s, self.cheapest = budget_s, cheapest_time_s, cheapest
        super().__init__(
            f"no regime fits a budget of {budget_s:.4g} s: the cheapest ({cheapest.model}, batch "
            f"{cheapest.batch_size}, one step, {cheapest.frozen_stages} frozen stage(s)) "
            f"is predicted to take {cheapest_time_s:.4g} s"
        )


@dataclass(frozen=True)
class RegimeOption:
    """One scored regime.

    Attributes:
        regime: The regime, its ``steps`` sized to the budget.
        predicted_accuracy: Predicted top-1 (the median), in [0, 1].
        predicted_std: Predictive standard deviation of the top-1 (task offset and run noise included).
        predicted_time_s: Predicted wall time of the run, overhead and evaluation included (probes not).
        footprint: Predicted device time, energy, cost and emissions of the run.
        predicted_lcb: The top-1 of the score it was ranked by (the lower confidence bound).
    """

    regime: Regime
    predicted_accuracy: float
    predicted_std: float
    predicted_time_s: float
    footprint: Footprint
    predicted_lcb: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        """The regime fields, its ``regime_id`` and the predictions, as a flat JSON-friendly dict."""
        return {
            **self.regime.to_dict(),
            "regime_id": self.regime.regime_id,
            "predicted_accuracy": self.predicted_accuracy,
            "predicted_std": self.predicted_std,
            "predicted_lcb": self.predicted_lcb,
            "predicted_time_s": self.predicted_time_s,
            "footprint": self.footprint.to_dict(),
        }


@dataclass(frozen=True)
class RegimeAnswer:
    """The generator's answer: the best option, the next alternatives, and how it was chosen.

    Attributes:
        best: The chosen regime and its predictions.
        alternatives: The next best options, best first.
        budget_s: The budget asked for (probes included).
        num_candidates: Regimes considered.
        num_feasible: Regimes with at least one step within the budget.
        fallback: Whether the answer is the fallback regime because no other was confidently better.
        probe_s: Seconds of probing counted against the budget.
        probes: The probe scores the prediction used (empty: none).
    """

    best: RegimeOption
    alternatives: tuple[RegimeOption, ...]
    budget_s: float
    num_candidates: int
    num_feasible: int
    fallback: bool = False
    probe_s: float = 0.0
    probes: Mapping[str, float] = field(default_factory=dict)

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
    def predicted_lcb(self) -> float:
        return self.best.predicted_lcb

    @property
    def predicted_time_s(self) -> float:
        return self.best.predicted_time_s

    @property
    def footprint(self) -> Footprint:
        return self.best.footprint

    def to_dict(self) -> dict[str, Any]:
        """The best option's fields at the top level, plus ``alternatives``, the budget, counts and probes."""
        return {
            **self.best.to_dict(),
            "budget_s": self.budget_s,
            "probe_s": self.probe_s,
            "fallback": self.fallback,
            "num_candidates": self.num_candidates,
            "num_feasible": self.num_feasible,
            "probes": dict(self.probes),
            "alternatives": [a.to_dict() for a in self.alternatives],
        }


@dataclass(frozen=True)
class LearnReport:
    """What one online update did.

    Attributes:
        update_s: Seconds the predictor update took.
        predicted_before: Predicted top-1 of the run's final point before the update.
        predicted_after: Predicted top-1 after it.
        accuracy: The observed top-1.
        num_samples: Samples the predictor has seen (a run gives one per learning-curve point).
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


def task_group(task: TaskMeta) -> str:
    """The predictor's group of a task: its name and sizes (rows of one task share it, and its offset)."""
    return json.dumps([task.name, task.num_classes, task.num_train, task.resolution, task.channels])


def lr_fraction(schedule: str, done: float, planned: float) -> float:
    """The learning rate after ``done`` of ``planned`` steps, as a fraction of the peak (as the training loop)."""
    t = min(max(done / planned, 0.0), 1.0) if planned > 0 else 1.0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t))
    if schedule == "step":
        return 0.1 ** ((t >= 0.5) + (t >= 0.75))
    return 1.0


def _check_budget(budget_s: Any) -> float:
    if isinstance(budget_s, bool) or not isinstance(budget_s, numbers.Real):
        raise ValueError(f"budget_s must be a number of seconds, got {budget_s!r}")
    budget = float(budget_s)
    if not math.isfinite(budget) or budget <= 0:
        raise ValueError(f"budget_s must be finite and positive, got {budget_s!r}")
    return budget


def _check_probes(probes: Any, probe_s: Any) -> tuple[dict[str, float], float]:
    if probes is None:
        probes = {}
    if not isinstance(probes, Mapping):
        raise ValueError(f"probes must map zoo keys to probe top-1, got {type(probes).__name__}")
    out = {}
    for key, score in probes.items():
        if isinstance(score, bool) or not isinstance(score, numbers.Real) or not 0.0 <= float(score) <= 1.0:
            raise ValueError(f"probes[{key!r}] must be a top-1 in [0, 1], got {score!r}")
        out[str(key)] = float(score)
    if isinstance(probe_s, bool) or not isinstance(probe_s, numbers.Real) or not 0 <= float(probe_s) < math.inf:
        raise ValueError(f"probe_s must be a finite non-negative number of seconds, got {probe_s!r}")
    return out, float(probe_s)


@dataclass
class _TaskCache:
    """What a task's queries share: per-candidate costs and static rows; predictions while the predictor holds."""

    per_epoch: np.ndarray
    step_ms: np.ndarray  # profiled (time_scale 1)
    eval_batches: np.ndarray
    inf_ms: np.ndarray  # profiled
    pixels: float  # (resolution / 32) ** 2: a training image's share of the loading cost
    static: np.ndarray
    probed: np.ndarray  # per candidate: its model has a probe score on this task
    group: str
    stamp: Any = None
    knot_max: np.ndarray | None = None  # running max of the predicted curve over the knots (n x knots)
    contrast_std: np.ndarray | None = None


class RegimeGenerator:
    """Proposes the regime, sized to the budget, with the best lower confidence bound of its predicted top-1.

    Args:
        zoo_entries: The zoo models. All are featurized (the predictor's layout); those profiled on ``device``
            (and in ``models``) are proposed.
        predictor: Predicts the target (:func:`~nasoa.online.features.to_target`) from feature rows.
        space: The regime grid (lrs, batch sizes, frozen fraction, schedule, most epochs, fallback).
        device: Profile device whose step times predict the cost.
        device_cost: Prices of the device, for the footprint; defaults to ``DeviceCost()``.
        cost_model: The time model's constants.
        kappa: Standard deviations of a regime's difference from the fallback taken off its score.
        max_contrast_std: Regimes whose difference from the fallback has a larger std (target units) are not
            proposed; ``inf`` keeps all.
        affinity_std: Std (target units) of a model's unknown affinity to a task, added to the difference of a
            regime of another model than the fallback's.
        probed_affinity_std: The same where probes scored both models on the task.
        models: Zoo keys or names to propose from (None: all profiled).
        use_probes: Use probe scores (of queries and of stored rows); False ignores them everywhere.
        noise_std: Run-to-run std of a top-1 (with the binomial noise of the images scored: each sample's noise).
        learn_time_scale: Learn the cost model's speed (``time_scale`` and ``load_ms_per_image``) from the wall
            time per step that runs report on ``device`` (the last :data:`SPEED_WINDOW`), so runs are sized to how
            fast the device runs now, data loading included.
        cache_size: Tasks whose candidate costs and rows are cached.

    Raises:
        ValueError: If no entry to propose from is profiled on ``device``, or keys repeat.
    """

    def __init__(
        self,
        zoo_entries: Sequence[ZooEntry],
        predictor: Predictor,
        space: RegimeSpace | None = None,
        device: str = "cpu",
        device_cost: DeviceCost | None = None,
        cost_model: CostModel | None = None,
        kappa: float = 1.0,
        max_contrast_std: float = 1.5,
        affinity_std: float = 0.5,
        probed_affinity_std: float = 0.3,
        models: Sequence[str] | None = None,
        use_probes: bool = True,
        noise_std: float = 0.03,
        learn_time_scale: bool = True,
        cache_size: int = 64,
    ) -> None:
        for name, value in (
            ("kappa", kappa),
            ("max_contrast_std", max_contrast_std),
            ("noise_std", noise_std),
            ("affinity_std", affinity_std),
            ("probed_affinity_std", probed_affinity_std),
        ):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value) or value < 0:
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")
        keys = [e.key for e in zoo_entries]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"duplicate zoo keys: {dupes}")
        self.space = space or RegimeSpace()
        self.device = device
        self.device_cost = device_cost or DeviceCost()
        self.cost_model = cost_model or CostModel()
        self.kappa, self.max_contrast_std = float(kappa), float(max_contrast_std)
        self.affinity_std, self.probed_affinity_std = float(affinity_std), float(probed_affinity_std)
        self.use_probes, self.noise_std, self.cache_size = bool(use_probes), float(noise_std), int(cache_size)
        self.learn_time_scale = bool(learn_time_scale)
        self._speed: deque[tuple[float, float, float]] = deque(maxlen=SPEED_WINDOW)
        self.all_entries = {e.key: e for e in sorted(zoo_entries, key=lambda e: e.key)}
        self.featurizer = Featurizer(list(self.all_entries.values()))
        self._predictor = predictor
        predictor.prepare(self.featurizer.names, self.featurizer.prior_mean, self.featurizer.prior_std)
        self._cache: OrderedDict[Any, _TaskCache] = OrderedDict()
        self._steps: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # per resolution, see _step_times
        self._build_grid(self._proposed(models))

    @property
    def predictor(self) -> Predictor:
        return self._predictor

    @predictor.setter
    def predictor(self, predictor: Predictor) -> None:
        """Replace the predictor (e.g. a fresh copy of the service's): it learns over this generator's columns."""
        predictor.prepare(self.featurizer.names, self.featurizer.prior_mean, self.featurizer.prior_std)
        self._predictor = predictor

    # -- the candidate grid ------------------------------------------------------------------------------------

    def _proposed(self, models: Sequence[str] | None) -> list[ZooEntry]:
        entries = list(self.all_entries.values())
        if models is not None:
            wanted = set(models)
            entries = [e for e in entries if {e.key, e.name, e.arch} & wanted]
            found = {n for e in entries for n in (e.key, e.name, e.arch)}
            if wanted - found:
                raise ValueError(f"models {sorted(wanted - found)} are not in the zoo")
        used, skipped = [], []
        for entry in entries:
            profiled = {p.frozen_stages for p in entry.profiles if p.device == self.device}
            (used if 0 in profiled else skipped).append(entry)
        if skipped:
            names = [e.key for e in skipped]
            warnings.warn(f"zoo entries without profiles on {self.device!r} are left out: {names}", stacklevel=3)
        if not used:
            raise ValueError(f"no zoo entry has profiles on device {self.device!r} (entries: {len(entries)})")
        return used

    def _build_grid(self, entries: list[ZooEntry]) -> None:
        """Every (model, frozen, batch, lr) combination, and the fallback regime (appended when off the grid)."""
        self.entries = entries
        combos = [
            (e.key, k, b, lr)
            for e in entries
            for k in self.space.frozen_options(e, self.device)
            for b in self.space.batch_sizes
            for lr in self.space.lrs
        ]
        fallback = self._fallback_combo(entries)
        if fallback not in combos:
            combos.append(fallback)
        self.fallback_index = combos.index(fallback)
        self._keys = np.asarray([c[0] for c in combos])
        self._model = np.asarray([self.featurizer.position[c[0]] for c in combos], dtype=np.int64)
        self._frozen = np.asarray([c[1] for c in combos], dtype=np.int64)
        self._batch = np.asarray([c[2] for c in combos], dtype=np.int64)
        self._lr = np.asarray([c[3] for c in combos], dtype=np.float64)
        self._top1 = np.nan_to_num(np.asarray([self.all_entries[c[0]].top1 for c in combos], dtype=np.float64))

    def _fallback_combo(self, entries: list[ZooEntry]) -> tuple[str, int, int, float]:
        """The fallback spec on this zoo: model, frozen stages, batch size and lr.

        The model by key, name or arch, else the best zoo top-1; frozen stages 0 where the spec's are not profiled.
        """
        spec = self.space.fallback
        match = [e for e in entries if spec["model"] in (e.key, e.name, e.arch)]
        entry = match[0] if match else max(entries, key=lambda e: (np.nan_to_num(e.top1), e.key))
        frozen = spec["frozen_stages"] if spec["frozen_stages"] in self.space.frozen_options(entry, self.device) else 0
        return entry.key, int(frozen), int(spec["batch_size"]), float(spec["lr"])

    @property
    def num_candidates(self) -> int:
        """Regimes considered for every task (the fallback included)."""
        return len(self._lr)

    def regime_at(self, i: int, steps: int, num_train: int) -> Regime:
        """The ``i``-th candidate planned for ``steps`` steps on ``num_train`` training images."""
        per_epoch = math.ceil(num_train / int(self._batch[i]))
        return Regime(
            str(self._keys[i]),
            float(self._lr[i]),
            int(self._frozen[i]),
            int(self._batch[i]),
            max(1, math.ceil(steps / per_epoch)),
            self.space.schedule,
            steps=max(1, int(steps)),
        )

    # -- per task ------------------------------------------------------------------------------------------------

    def _task(self, task: TaskMeta, probes: Mapping[str, float]) -> _TaskCache:
        """Costs and static rows of every candidate on ``task`` with ``probes`` (cached)."""
        used = probes if self.use_probes else {}
        key = (task_group(task), tuple(sorted(used.items())))
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        step_ms, inf_ms = self._step_times(task.resolution)
        sizes, which = np.unique(self._batch, return_inverse=True)
        batches = np.asarray([self.cost_model.eval_batches(task.num_train, int(b)) for b in sizes], dtype=float)[which]
        static = self.featurizer.static(task, self._model, self._lr, self._frozen, self._batch, used or None)
        per_epoch = np.ceil(task.num_train / self._batch.astype(np.float64))
        pixels = load_units(1, task.resolution)
        probed = np.asarray([k in used for k in self.featurizer.keys])[self._model]
        entry = _TaskCache(per_epoch, step_ms, batches, inf_ms, pixels, static, probed, task_group(task))
        self._cache[key] = entry
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return entry

    def _step_times(self, resolution: int) -> tuple[np.ndarray, np.ndarray]:
        """Profiled training step and inference times (ms) of every candidate at ``resolution`` (cached)."""
        if resolution in self._steps:
            return self._steps[resolution]
        combos = {}
        for key, frozen, batch in zip(self._keys.tolist(), self._frozen.tolist(), self._batch.tolist()):
            if (key, frozen, batch) not in combos:
                entry = self.all_entries[key]
                step = entry.step_ms(self.device, batch, frozen, resolution=resolution)
                combos[key, frozen, batch] = (step, entry.inference_ms(self.device, batch, resolution=resolution))
        times = np.asarray([combos[c] for c in zip(self._keys.tolist(), self._frozen.tolist(), self._batch.tolist())])
        if len(self._steps) >= max(self.cache_size, 1):
            self._steps.pop(next(iter(self._steps)))
        self._steps[resolution] = (times[:, 0].copy(), times[:, 1].copy())
        return self._steps[resolution]

    def sized(self, task: TaskMeta, budget_s: float) -> tuple[np.ndarray, np.ndarray]:
        """Steps of every candidate sized to ``budget_s`` (0: not one fits) and their predicted run seconds.

        The same arithmetic as :meth:`CostModel.steps_within` and :meth:`CostModel.time_s`, capped at
        ``space.max_epochs`` passes.
        """
        c = self._task(task, {})
        return self._sized(c, budget_s)

    def _costs(self, c: _TaskCache) -> tuple[np.ndarray, np.ndarray]:
        """Step milliseconds and evaluation seconds of every candidate (the cost model's arithmetic, vectorized)."""
        cm = self.cost_model
        step = c.step_ms * cm.time_scale + cm.load_ms_per_image * (self._batch.astype(np.float64) * c.pixels)
        return step, c.eval_batches * (c.inf_ms * cm.time_scale) / 1000.0

    def _sized(self, c: _TaskCache, budget_s: float) -> tuple[np.ndarray, np.ndarray]:
        step_ms, eval_s = self._costs(c)
        left = budget_s - eval_s - self.cost_model.overhead_s
        steps = np.maximum(0.0, np.floor(left * 1000.0 / step_ms + 1e-9))
        steps = np.minimum(steps, self.space.max_epochs * c.per_epoch)
        times = steps * step_ms / 1000.0 + eval_s + self.cost_model.overhead_s
        return steps, times

    def _rows(self, c: _TaskCache, steps: np.ndarray, sel: np.ndarray | slice = slice(None)) -> np.ndarray:
        """The candidates' rows (``sel``) at ``steps`` steps, ending annealed."""
        rows = c.static[sel].copy()
        epochs = steps / c.per_epoch[sel]
        return self.featurizer.fill_run(rows, steps, epochs, np.zeros(len(rows)))

    def _means(self, c: _TaskCache, steps: np.ndarray, epochs: np.ndarray, rep: int, sel: Any) -> np.ndarray:
        """Predicted targets of the ``sel`` candidates, each repeated ``rep`` times, at ``steps`` (``epochs``).

        A predictor linear in its inputs is evaluated on the run columns alone (the static part once).
        """
        static = c.static[sel]
        lin = self.predictor.linear(c.group)
        if lin is not None:
            w, b = lin
            base = np.repeat(static @ w + b, rep)
            interact = np.repeat(static[:, list(self.featurizer.index.interact)], rep, axis=0)
            run = self.featurizer.run_columns(interact, steps, epochs, np.zeros(len(steps)))
            return base + run @ w[self.featurizer.index.run]
        rows = np.repeat(static, rep, axis=0)
        self.featurizer.fill_run(rows, steps, epochs, np.zeros(len(steps)))
        return self.predictor.predict_mean(rows, c.group)

    def _predictions(self, c: _TaskCache) -> None:
        """The running max of each candidate's predicted curve over the knots, and its contrast std (cached)."""
        token = self.predictor.cache_token
        stamp = (token, id(self.predictor)) if token is not None else object()
        if c.stamp == stamp and c.knot_max is not None:
            return
        n, knots = self.num_candidates, np.asarray(EPOCH_KNOTS)
        lin = self.predictor.linear(c.group)
        if lin is not None:  # the static part once, the run part by knot
            f = self.featurizer
            interact = c.static[:, list(f.index.interact)]
            curve = (c.static @ lin[0] + lin[1])[:, None] + f.run_at_knots(lin[0][f.index.run], interact, c.per_epoch)
        else:
            steps = (knots[None, :] * c.per_epoch[:, None]).ravel()  # n x knots, epochs -> steps per candidate
            curve = self._means(c, steps, np.tile(knots, n), len(knots), slice(None)).reshape(n, len(knots))
        c.knot_max = np.maximum.accumulate(curve, axis=1)
        ref = self._rows(c, REFERENCE_EPOCHS * c.per_epoch)
        affinity = np.where(c.probed & c.probed[self.fallback_index], self.probed_affinity_std, self.affinity_std)
        other = self._model != self._model[self.fallback_index]
        var = self.predictor.contrast_var(ref, ref[self.fallback_index]) + np.where(other, affinity**2, 0.0)
        c.contrast_std = np.sqrt(var)
        c.stamp = stamp

    def _envelope(self, c: _TaskCache, steps: np.ndarray, sel: np.ndarray) -> np.ndarray:
        """Predicted target of the ``sel`` candidates at ``steps``: the running max of their curve up to there."""
        epochs = steps / c.per_epoch[sel]
        own = self._means(c, steps, epochs, 1, sel)
        passed = (np.asarray(EPOCH_KNOTS)[None, :] <= epochs[:, None] * (1 + 1e-12)).sum(axis=1)
        before = c.knot_max[sel, np.maximum(passed - 1, 0)]
        return np.where(passed > 0, np.maximum(own, before), own)

    # -- proposing -----------------------------------------------------------------------------------------------

    def propose(
        self,
        task: TaskMeta | Mapping[str, Any],
        budget_s: float,
        top_k: int = 3,
        probes: Mapping[str, float] | None = None,
        probe_s: float = 0.0,
    ) -> RegimeAnswer:
        """The regime with the best score among those with at least one step within ``budget_s - probe_s``.

        Ties go to the better zoo model, then to the longer predicted run, then to the grid order.

        Args:
            task: The task's meta-features (a TaskMeta or a mapping of its fields).
            budget_s: Seconds available for everything: probes (``probe_s``) and the run.
            top_k: Alternatives returned besides the best.
            probes: Probe top-1 of zoo models on this task (e.g. ``nasoa.train.probe.probe_zoo``); None: none.
            probe_s: Seconds the probes took (taken off the budget).

        Returns:
            The answer; its predicted time plus ``probe_s`` never exceeds ``budget_s``.

        Raises:
            NoFeasibleRegime: If not one step of any candidate is predicted to fit.
            ValueError: If the task, the budget, the probes or ``top_k`` is invalid.
        """
        task = as_task_meta(task)
        budget = _check_budget(budget_s)
        probes, probe_s = _check_probes(probes, probe_s)
        if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 0:
            raise ValueError(f"top_k must be a non-negative integer, got {top_k!r}")
        c = self._task(task, probes)
        steps, times = self._sized(c, max(budget - probe_s, 0.0))  # probes past the budget: nothing fits
        feasible = steps >= 1
        if not feasible.any():
            step_ms, eval_s = self._costs(c)
            one_step = step_ms / 1000.0 + eval_s + self.cost_model.overhead_s
            i = int(np.argmin(one_step))
            raise NoFeasibleRegime(budget, probe_s + float(one_step[i]), self.regime_at(i, 1, task.num_train))
        self._predictions(c)
        chosen, fallback, mean, score = self._choose(c, steps, times, feasible, int(top_k))
        options = self._options(c, task, chosen, steps, times, mean, score)
        used = probes if self.use_probes else {}
        return RegimeAnswer(
            options[0], tuple(options[1:]), budget, self.num_candidates, int(feasible.sum()), fallback, probe_s, used
        )

    def _choose(
        self, c: _TaskCache, steps: np.ndarray, times: np.ndarray, feasible: np.ndarray, top_k: int
    ) -> tuple[np.ndarray, bool, np.ndarray, np.ndarray]:
        """The chosen candidates (best first), whether the best is a fallback, and every candidate's mean and score."""
        idx = np.flatnonzero(feasible)
        mean = np.full(self.num_candidates, -np.inf)
        mean[idx] = self._envelope(c, steps[idx], idx)
        score = mean - self.kappa * c.contrast_std
        eligible = feasible & (c.contrast_std <= self.max_contrast_std)
        eligible[self.fallback_index] = feasible[self.fallback_index]
        pool = np.flatnonzero(eligible) if eligible.any() else idx
        order = pool[np.lexsort((pool, -times[pool], -self._top1[pool], -score[pool]))]
        chosen = order[: 1 + top_k]
        fb = self.fallback_index
        fallback = bool(chosen[0] == fb and mean[idx].max() > mean[fb]) or not eligible.any()
        return chosen, fallback, mean, score

    def _options(
        self,
        c: _TaskCache,
        task: TaskMeta,
        chosen: np.ndarray,
        steps: np.ndarray,
        times: np.ndarray,
        mean: np.ndarray,
        score: np.ndarray,
    ) -> list[RegimeOption]:
        var = self.predictor.predict(self._rows(c, steps[chosen], chosen), c.group).var
        options = []
        for j, i in enumerate(chosen):
            m, s = float(mean[i]), math.sqrt(max(float(var[j]), 0.0))
            hi, lo = from_target([m + s, m - s], task.num_classes)
            t = float(times[i])
            options.append(
                RegimeOption(
                    self.regime_at(int(i), int(steps[i]), task.num_train),
                    float(from_target(m, task.num_classes)),
                    float(hi - lo) / 2.0,
                    t,
                    self.device_cost.footprint(t),
                    float(from_target(score[i], task.num_classes)),
                )
            )
        return options

    def score(
        self, task: TaskMeta | Mapping[str, Any], regime: Regime, probes: Mapping[str, float] | None = None
    ) -> RegimeOption:
        """Predictions for any regime of a zoo model on ``task`` at its planned steps (whatever the budget).

        The accuracy is the predictor's at those steps (no running max: that is for the choice).
        """
        task = as_task_meta(task)
        probes, _ = _check_probes(probes, 0.0)
        entry = self._entry(regime.model)
        x = self._row(task, regime, probes, regime.planned_steps(task.num_train), 0.0)
        pred = self.predictor.predict(x[None, :], task_group(task))
        m, s = float(pred.mean[0]), math.sqrt(max(float(pred.var[0]), 0.0))
        hi, lo = from_target([m + s, m - s], task.num_classes)
        t = self.cost_model.time_s(entry, regime, task, self.device)
        acc = float(from_target(m, task.num_classes))
        return RegimeOption(regime, acc, float(hi - lo) / 2.0, t, self.device_cost.footprint(t), acc)

    # -- learning ------------------------------------------------------------------------------------------------

    def _entry(self, key: str) -> ZooEntry:
        if key not in self.all_entries:
            raise ValueError(f"unknown zoo model {key!r}; known: {', '.join(sorted(self.all_entries))}")
        return self.all_entries[key]

    def _row(self, task: TaskMeta, regime: Regime, probes: Mapping[str, float], steps: float, end_lr: float):  # noqa: ANN202
        """One feature row: ``regime`` on ``task`` after ``steps`` steps with ``end_lr`` of its lr left."""
        self._entry(regime.model)
        pos = np.asarray([self.featurizer.position[regime.model]])
        used = probes if self.use_probes else None
        row = self.featurizer.static(task, pos, regime.lr, regime.frozen_stages, regime.batch_size, used or None)
        epochs = steps / math.ceil(task.num_train / regime.batch_size)
        return self.featurizer.fill_run(row, np.asarray([steps]), np.asarray([epochs]), np.asarray([end_lr]))[0]

    def row_samples(self, row: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
        """The training samples of an experience row: its final top-1 and every learning-curve point before it.

        Returns:
            Feature rows, targets, their noise stds and the task's group (the final point first).

        Raises:
            ValueError: If the row's model is not in the zoo or its fields are invalid.
        """
        task = as_task_meta({k: row[k] for k in ("num_classes", "num_train", "resolution", "channels") if k in row})
        task = TaskMeta(task.num_classes, task.num_train, task.resolution, task.channels, str(row.get("task_name", "")))
        regime = row_regime(row)
        accuracy = row.get("accuracy")
        if isinstance(accuracy, bool) or not isinstance(accuracy, numbers.Real) or not 0.0 <= accuracy <= 1.0:
            raise ValueError(f"experience row: accuracy must be in [0, 1], got {accuracy!r}")
        points = _run_points(row, regime, task.num_train, self.cost_model)
        probes = dict(row.get("probes") or {})
        X = np.vstack([self._row(task, regime, probes, s, end) for s, _, end, _ in points])
        acc = np.asarray([a for _, a, _, _ in points])
        noise = [target_noise(a, task.num_classes, n, self.noise_std) for _, a, _, n in points]
        return X, to_target(acc, task.num_classes), np.asarray(noise), task_group(task)

    def learn(self, row: Mapping[str, Any]) -> LearnReport:
        """Updates the predictor online with one finished run (an experience row), its curve points included."""
        X, y, noise, group = self.row_samples(row)
        self._observe_speed(row)
        C = int(row["num_classes"])
        before = float(from_target(self.predictor.predict_mean(X[:1], group)[0], C))
        start = time.perf_counter()
        self.predictor.update(X, y, [group] * len(y), noise)
        update_s = time.perf_counter() - start
        after = float(from_target(self.predictor.predict_mean(X[:1], group)[0], C))
        return LearnReport(update_s, before, after, float(row["accuracy"]), self.predictor.num_samples)

    def _observe_speed(self, row: Mapping[str, Any]) -> None:
        """Learns the device's speed from a row's wall time per step (rows from another device are left out)."""
        step_ms = row.get("step_ms")
        if not self.learn_time_scale or row.get("device") not in ("", None, self.device):
            return
        if not isinstance(step_ms, numbers.Real) or not math.isfinite(step_ms) or step_ms <= 0:
            return
        entry = self.all_entries.get(str(row.get("model")))
        try:
            profiled = entry.step_ms(self.device, int(row["batch_size"]), int(row["frozen_stages"]), row["resolution"])
        except (AttributeError, KeyError):
            return
        if not 1e-2 <= step_ms / profiled <= 1e3:  # not a step of this model on this device
            return
        self._speed.append((profiled, load_units(int(row["batch_size"]), int(row["resolution"])), float(step_ms)))
        self.speed = _fit_speed(self._speed)

    @property
    def speed(self) -> dict[str, float]:
        """The cost model's learned speed: ``time_scale`` and ``load_ms_per_image`` (1 and 0 until runs report)."""
        return {"time_scale": self.cost_model.time_scale, "load_ms_per_image": self.cost_model.load_ms_per_image}

    @speed.setter
    def speed(self, value: Mapping[str, float]) -> None:
        scale = min(max(float(value["time_scale"]), TIME_SCALE_BOUNDS[0]), TIME_SCALE_BOUNDS[1])
        load = min(max(float(value.get("load_ms_per_image", 0.0)), 0.0), MAX_LOAD_MS)
        if (scale, load) != (self.cost_model.time_scale, self.cost_model.load_ms_per_image):
            self.cost_model = replace(self.cost_model, time_scale=scale, load_ms_per_image=load)

    @property
    def time_scale(self) -> float:
        """The cost model's time scale (measured over profiled step time; 1 until runs report step times)."""
        return self.cost_model.time_scale

    @time_scale.setter
    def time_scale(self, value: float) -> None:
        self.speed = {"time_scale": value, "load_ms_per_image": self.cost_model.load_ms_per_image}

    def fit(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Fits the predictor from scratch on experience rows; rows it cannot use are skipped with a warning.

        Returns:
            The number of rows used (0 leaves the predictor untouched).
        """
        X, y, noise, groups, used, skipped = [], [], [], [], 0, []
        self._speed.clear()
        for row in rows:
            try:
                xs, ys, ns, group = self.row_samples(row)
            except (ValueError, KeyError, TypeError) as err:
                skipped.append(str(err))
                continue
            self._observe_speed(row)
            X.append(xs)
            y.append(ys)
            noise.append(ns)
            groups += [group] * len(ys)
            used += 1
        if skipped:
            warnings.warn(f"{len(skipped)} experience row(s) skipped; first: {skipped[0]}", stacklevel=2)
        if X:
            self.predictor.fit(np.vstack(X), np.concatenate(y), groups, np.concatenate(noise))
        return used


def _run_points(row: Mapping[str, Any], regime: Regime, num_train: int, cost: CostModel) -> list[tuple]:
    """``(steps, top-1, lr left, images scored)`` of a row's final top-1 and its curve points before it.

    A row without ``steps`` (an older store) ran its plan when it finished, else the steps its time allowed.
    """
    planned = regime.planned_steps(num_train)
    finished = bool(row.get("finished", True)) and row.get("stopped_by", "done") == "done"
    steps = row.get("steps")
    if steps is None:
        steps = planned if finished else _steps_from_time(row, planned)
    steps = max(1, int(steps))
    plan = steps if finished else planned  # a finished run was re-planned to end where it ended
    num_val = cost.num_val(num_train)
    end = 0.0 if finished and regime.schedule == "cosine" else lr_fraction(regime.schedule, steps, plan)
    points = [(float(steps), float(row["accuracy"]), end, num_val)]
    for s, acc in row.get("curve") or ():
        if 1 <= s < steps:
            frac = lr_fraction(regime.schedule, s, plan)
            points.append((float(s), float(acc), frac, min(num_val, cost.curve_images)))
    return points


def _steps_from_time(row: Mapping[str, Any], planned: int) -> int:
    """Steps an older row's run did: its share of the plan by time (measured step time when stored)."""
    step_ms = row.get("step_ms")
    time_s = float(row.get("time_s") or 0.0)
    if isinstance(step_ms, numbers.Real) and math.isfinite(step_ms) and step_ms > 0:
        return min(planned, int(time_s * 1000.0 / step_ms))
    budget = row.get("budget_s")
    share = time_s / budget if isinstance(budget, numbers.Real) and math.isfinite(budget) and budget > 0 else 1.0
    return max(1, min(planned, int(planned * min(share, 1.0))))


def _fit_speed(observed: Iterable[tuple[float, float, float]]) -> dict[str, float]:
    """``wall = time_scale x profiled + load_ms_per_image x images`` fitted to recent steps, in relative error.

    With fewer than 4 steps, or when the two cannot be told apart, the time scale alone (the median ratio).
    """
    obs = np.asarray(list(observed), dtype=np.float64)
    ratio = float(np.median(obs[:, 2] / obs[:, 0]))
    if len(obs) < 4:
        return {"time_scale": ratio, "load_ms_per_image": 0.0}
    A = obs[:, :2] / obs[:, 2:3]  # each step's equation divided by its wall time: relative errors
    A_scale = A.max(axis=0)
    coef, _, rank, sv = np.linalg.lstsq(A / A_scale, np.ones(len(obs)), rcond=None)
    coef = coef / A_scale
    apart = rank == 2 and sv[1] > 1e-3 * sv[0]  # the runs differ enough in model cost against batch images
    if not apart or not np.isfinite(coef).all() or coef[1] <= 0 or coef[0] < TIME_SCALE_BOUNDS[0]:
        return {"time_scale": ratio, "load_ms_per_image": 0.0}
    return {"time_scale": float(coef[0]), "load_ms_per_image": float(coef[1])}
