"""Predictors of the fine-tuning target from feature rows, with batch fit, online update and JSON state.

The interface follows archai's ``discrete_search/api/predictor.py`` (``fit(X, y)``, ``predict(X) -> MeanVar``) and
adds ``update`` for one or a few new samples, ``to_state``/``from_state`` as plain JSON-able data (no pickle), and
two optional inputs: ``groups`` (the task of each row: a predictor may learn a per-task offset) and ``noise`` (each
sample's noise std, when it is known). ``prepare`` tells a predictor the names of the columns and the prior of
their weights (the regime generator calls it).

``CurveBLR`` (``curve_blr``, the service's default) is conjugate Bayesian linear regression with a random offset
per task that is integrated out exactly: each task's rows share an unknown offset ``N(0, offset_std^2)``, so the
weights learn what transfers between tasks and a task's own feedback moves only its offset and what it teaches
about the weights. Its state is the posterior precision, its right-hand side and three sufficient statistics per
task; an update is a few rank-one changes and a solve of the (small) precision: the same numbers as a batch fit.
``BayesianLinearPredictor`` (over standardized features plus random Fourier features), ``KNNPredictor`` and
``MeanPredictor`` are simpler baselines that ignore the groups. No Ray, no torch.
"""

from __future__ import annotations

import itertools
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple, TypeVar

import numpy as np

from nasoa.common.registry import Registry

__all__ = [
    "PREDICTORS",
    "BayesianLinearPredictor",
    "CurveBLR",
    "KNNPredictor",
    "MeanPredictor",
    "MeanVar",
    "Predictor",
    "PredictorSettings",
    "create_predictor",
    "predictor_from_state",
    "register_predictor",
]

STATE_VERSION = 1

#: Process-wide source of :attr:`Predictor.cache_token` values (never reused, so a token names one state of one
#: predictor object).
_TOKENS = itertools.count(1)


def _new_token() -> int:
    return next(_TOKENS)


class MeanVar(NamedTuple):
    """Predictive mean and variance, one value per row of the input."""

    mean: np.ndarray
    var: np.ndarray


def _check_xy(X: Any, y: Any | None = None, dim: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[None, :]
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array (samples x features), got shape {X.shape}")
    if dim is not None and X.shape[1] != dim:
        raise ValueError(f"X has {X.shape[1]} features, the predictor was fitted on {dim}")
    if not np.isfinite(X).all():
        raise ValueError("X has non-finite values")
    if y is None:
        return X, None
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]} values")
    if not np.isfinite(y).all():
        raise ValueError("y has non-finite values")
    return X, y


def _check_state(cls: type[Predictor], state: Mapping[str, Any]) -> None:
    if not isinstance(state, Mapping) or state.get("name") != cls.name:
        got = state.get("name") if isinstance(state, Mapping) else type(state).__name__
        raise ValueError(f"not a {cls.name!r} predictor state (name {got!r})")
    if state.get("version") != STATE_VERSION:
        raise ValueError(f"{cls.name} state version {state.get('version')!r} is not supported ({STATE_VERSION})")


#: Rows' tasks: one key for all rows, one per row, or None (each row's task unknown / new).
Groups = str | Sequence[str] | None


def _group_list(groups: Groups, n: int) -> list[str | None]:
    if groups is None or isinstance(groups, str):
        return [groups] * n
    out = list(groups)
    if len(out) != n:
        raise ValueError(f"{n} rows but {len(out)} groups")
    return out


def _check_noise(noise: Any, n: int) -> np.ndarray | None:
    if noise is None:
        return None
    noise = np.broadcast_to(np.asarray(noise, dtype=np.float64), (n,))
    if not (np.isfinite(noise).all() and (noise > 0).all()):
        raise ValueError("noise must be finite and positive")
    return noise


class Predictor(ABC):
    """Predicts a score (the fine-tuning target) with uncertainty from feature rows.

    Before any data a predictor answers its prior. ``groups`` names each row's task (predictors without a task
    effect ignore it); ``noise`` is each sample's noise std in target units (ignored by those that do not weigh
    samples).
    """

    name: ClassVar[str] = ""

    def prepare(self, names: Sequence[str], prior_mean: np.ndarray, prior_std: np.ndarray) -> None:  # noqa: B027
        """Column names and the prior of each column's weight (those that use priors keep them); default: nothing."""

    @abstractmethod
    def fit(self, X: np.ndarray, y: np.ndarray, groups: Groups = None, noise: Any = None) -> Predictor:
        """Fits from scratch on ``X`` (n x d) and ``y`` (n); returns self."""

    @abstractmethod
    def update(self, X: np.ndarray, y: np.ndarray, groups: Groups = None, noise: Any = None) -> None:
        """Adds one or a few samples to what the predictor knows, without refitting from scratch."""

    @abstractmethod
    def predict(self, X: np.ndarray, groups: Groups = None) -> MeanVar:
        """Predictive mean and variance (of a new observation) for each row of ``X``."""

    def predict_mean(self, X: np.ndarray, groups: Groups = None) -> np.ndarray:
        """``predict(X).mean``, for predictors whose variance costs extra to skip it."""
        return self.predict(X, groups).mean

    def contrast_var(self, X: np.ndarray, ref: np.ndarray) -> np.ndarray:
        """Variance of ``f(X_i) - f(ref)`` on one task: what separates two regimes (default: ``predict(X).var``)."""
        return self.predict(X).var

    def linear(self, group: str | None = None) -> tuple[np.ndarray, float] | None:
        """``(w, b)`` with ``predict_mean(X, group) == X @ w + b`` for a predictor linear in its inputs, else None."""
        return None

    @property
    @abstractmethod
    def num_samples(self) -> int:
        """Samples seen by fit and update."""

    @property
    def cache_token(self) -> int | None:
        """A value that changes whenever the predictions may change (``fit``, ``update``, ``from_state``).

        Callers may cache ``predict`` output under it (the regime generator does, per task). None (the default of
        a predictor that does not track its changes) means: do not cache.
        """
        return getattr(self, "_token", None)

    @abstractmethod
    def to_state(self) -> dict[str, Any]:
        """Everything needed to rebuild the predictor, as JSON-able data (with ``name`` and ``version``)."""

    @classmethod
    @abstractmethod
    def from_state(cls, state: Mapping[str, Any]) -> Predictor:
        """Rebuilds a predictor from :meth:`to_state` output."""


P = TypeVar("P", bound=type[Predictor])

#: Name -> predictor class.
PREDICTORS: Registry = Registry("predictor")


def register_predictor(name: str) -> Callable[[P], P]:
    """Class decorator adding a predictor to :data:`PREDICTORS` under ``name``."""

    def decorate(cls: P) -> P:
        PREDICTORS.register(name, cls)
        cls.name = name
        return cls

    return decorate


def create_predictor(name: str, **kwargs: Any) -> Predictor:
    """A new predictor of the registered kind ``name``, built with ``kwargs``."""
    return PREDICTORS.create(name, **kwargs)


def predictor_from_state(state: Mapping[str, Any]) -> Predictor:
    """Rebuilds any registered predictor from its :meth:`Predictor.to_state` output."""
    name = state.get("name") if isinstance(state, Mapping) else None
    return PREDICTORS.get(name).from_state(state)


@dataclass(frozen=True)
class PredictorSettings:
    """The ``predictor`` config: a registered predictor, its constructor arguments, and how the choice uses it.

    ``generator`` holds the :class:`~nasoa.online.generator.RegimeGenerator` arguments that say how predictions
    become a choice (``kappa``, ``max_contrast_std``, ``use_probes``, ``noise_std``): the service and the benchmark
    build their generators with them, so both choose alike.
    """

    name: str = "curve_blr"
    kwargs: dict[str, Any] = field(default_factory=dict)
    generator: dict[str, Any] = field(default_factory=dict)

    def create(self) -> Predictor:
        return create_predictor(self.name, **self.kwargs)


def _clip(mean: np.ndarray, bounds: tuple[float, float] | None) -> np.ndarray:
    return mean if bounds is None else np.clip(mean, bounds[0], bounds[1])


#: Rows per block in :meth:`BayesianLinearPredictor.predict`.
PREDICT_BLOCK = 1024


@register_predictor("bayes_linear")
class BayesianLinearPredictor(Predictor):
    """Bayesian linear regression on [1, standardized features, random Fourier features], known noise.

    The weights have a Gaussian prior (mean ``prior_mean`` on the intercept, 0 elsewhere); the posterior is Gaussian
    and kept as its mean and covariance. The feature scaling and the Fourier basis are fixed by the first ``fit``
    (or the first ``update`` when there was no fit); a later ``fit`` rebuilds them from its data.

    Args:
        noise_std: Standard deviation of the observation noise where a sample's own is not given (target units).
        intercept_std: Prior standard deviation of the intercept.
        weight_std: Prior standard deviation of each linear weight (per standardized feature).
        rff_amplitude: Prior standard deviation of the nonlinear part (the RBF kernel's amplitude).
        num_rff: Random Fourier features (0 gives a purely linear model).
        lengthscale: RBF lengthscale in standardized units; defaults to sqrt(number of features).
        prior_mean: Prior mean of the intercept, i.e. the prediction before any data.
        bounds: Interval the predicted mean is clipped to; None (the default) disables clipping.
        clip_z: Standardized features are clipped to [-clip_z, clip_z].
        seed: Seed of the Fourier basis.
    """

    def __init__(
        self,
        noise_std: float = 0.3,
        intercept_std: float = 1.5,
        weight_std: float = 0.5,
        rff_amplitude: float = 0.3,
        num_rff: int = 64,
        lengthscale: float | None = None,
        prior_mean: float = 1.0,
        bounds: tuple[float, float] | None = None,
        clip_z: float = 5.0,
        seed: int = 0,
    ) -> None:
        for name, value in (
            ("noise_std", noise_std),
            ("intercept_std", intercept_std),
            ("weight_std", weight_std),
            ("rff_amplitude", rff_amplitude),
            ("clip_z", clip_z),
        ):
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be finite and positive, got {value!r}")
        if int(num_rff) != num_rff or num_rff < 0:
            raise ValueError(f"num_rff must be a non-negative integer, got {num_rff!r}")
        if lengthscale is not None and (not math.isfinite(lengthscale) or lengthscale <= 0):
            raise ValueError(f"lengthscale must be finite and positive, got {lengthscale!r}")
        if bounds is not None and not bounds[0] < bounds[1]:
            raise ValueError(f"bounds must be (low, high) with low < high, got {bounds!r}")
        self.params: dict[str, Any] = {
            "noise_std": float(noise_std),
            "intercept_std": float(intercept_std),
            "weight_std": float(weight_std),
            "rff_amplitude": float(rff_amplitude),
            "num_rff": int(num_rff),
            "lengthscale": None if lengthscale is None else float(lengthscale),
            "prior_mean": float(prior_mean),
            "bounds": None if bounds is None else [float(bounds[0]), float(bounds[1])],
            "clip_z": float(clip_z),
            "seed": int(seed),
        }
        self._n = 0
        self._center: np.ndarray | None = None
        self._scale = np.empty(0)
        self._rff_w = np.empty((0, 0))
        self._rff_b = np.empty(0)
        self._mean = np.empty(0)
        self._cov = np.empty((0, 0))
        self._token = _new_token()

    @property
    def num_samples(self) -> int:
        return self._n

    @property
    def dim(self) -> int | None:
        """Number of input features, once known."""
        return None if self._center is None else len(self._center)

    @property
    def _bounds(self) -> tuple[float, float] | None:
        b = self.params["bounds"]
        return None if b is None else (b[0], b[1])

    def _init_basis(self, X: np.ndarray) -> None:
        """Fixes the scaling (from ``X``) and the Fourier basis, and resets the posterior to the prior."""
        p = self.params
        d = X.shape[1]
        self._center = X.mean(axis=0)
        scale = X.std(axis=0)
        self._scale = np.where(scale > 1e-12, scale, 1.0)
        rng = np.random.default_rng(p["seed"])
        lengthscale = p["lengthscale"] or math.sqrt(max(d, 1))
        self._rff_w = rng.normal(0.0, 1.0 / lengthscale, size=(p["num_rff"], d))
        self._rff_b = rng.uniform(0.0, 2.0 * math.pi, size=p["num_rff"])
        prior_std = np.concatenate(
            [[p["intercept_std"]], np.full(d, p["weight_std"]), np.full(p["num_rff"], p["rff_amplitude"])]
        )
        self._mean = np.zeros(len(prior_std))
        self._mean[0] = p["prior_mean"]
        self._cov = np.diag(prior_std**2)

    def _basis(self, X: np.ndarray) -> np.ndarray:
        """Rows ``[1, z, sqrt(2/R) cos(z W^T + b)]``, ``z`` the standardized and clipped inputs (filled in place)."""
        d, r = X.shape[1], len(self._rff_b)
        phi = np.empty((len(X), 1 + d + r))
        phi[:, 0] = 1.0
        z = phi[:, 1 : 1 + d]
        np.subtract(X, self._center, out=z)
        z /= self._scale
        np.clip(z, -self.params["clip_z"], self.params["clip_z"], out=z)
        if r:
            # Cosine in float32: numpy's float64 cos was most of a cold /v1/regime query (5,832 x 64 phases: 4.7 ms
            # vs 0.44 ms here). Phases stay small (|z| <= clip_z), so float32 costs ~1e-6 absolute at most.
            phase = (z @ self._rff_w.T + self._rff_b).astype(np.float32)
            np.cos(phase, out=phase)
            phase *= math.sqrt(2.0 / r)
            phi[:, 1 + d :] = phase
        return phi

    def _noise_var(self, noise: Any, n: int) -> np.ndarray:
        noise = _check_noise(noise, n)
        return np.full(n, self.params["noise_std"] ** 2) if noise is None else noise**2

    def fit(self, X: np.ndarray, y: np.ndarray, groups: Groups = None, noise: Any = None) -> BayesianLinearPredictor:
        X, y = _check_xy(X, y)
        if len(X) == 0:
            raise ValueError("fit needs at least one sample")
        noise_var = self._noise_var(noise, len(X))
        self._init_basis(X)
        prior_prec = 1.0 / np.diag(self._cov)
        Phi = self._basis(X)
        precision = np.diag(prior_prec) + (Phi.T / noise_var) @ Phi
        eta = prior_prec * self._mean + Phi.T @ (y / noise_var)
        self._cov = np.linalg.solve(precision, np.eye(len(precision)))
        self._cov = 0.5 * (self._cov + self._cov.T)
        self._mean = self._cov @ eta
        self._n = len(X)
        self._token = _new_token()
        return self

    def update(self, X: np.ndarray, y: np.ndarray, groups: Groups = None, noise: Any = None) -> None:
        X, y = _check_xy(X, y, self.dim)
        noise_var = self._noise_var(noise, len(X))
        if self._center is None:
            self._init_basis(X)
        for phi, target, nv in zip(self._basis(X), y, noise_var):
            s_phi = self._cov @ phi
            gain = s_phi / (nv + phi @ s_phi)
            self._mean = self._mean + gain * (target - phi @ self._mean)
            self._cov = self._cov - np.outer(gain, s_phi)
        self._cov = 0.5 * (self._cov + self._cov.T)
        self._n += len(X)
        self._token = _new_token()

    def predict(self, X: np.ndarray, groups: Groups = None) -> MeanVar:
        X, _ = _check_xy(X, None, self.dim)
        noise_var = self.params["noise_std"] ** 2
        if self._center is None:
            prior = np.full(len(X), self.params["prior_mean"])
            return MeanVar(_clip(prior, self._bounds), np.full(len(X), self.params["intercept_std"] ** 2 + noise_var))
        mean, var = self._posterior(X, with_var=True)
        return MeanVar(_clip(mean, self._bounds), np.maximum(var, 0.0) + noise_var)

    def predict_mean(self, X: np.ndarray, groups: Groups = None) -> np.ndarray:
        if self._center is None:
            return self.predict(X).mean  # the prior
        X, _ = _check_xy(X, None, self.dim)
        return _clip(self._posterior(X, with_var=False)[0], self._bounds)

    def _posterior(self, X: np.ndarray, with_var: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Posterior mean (and variance) of the linear model, computed by blocks of rows.

        Blocks keep the temporaries small (a new task's first query scores ~6,000 regimes), and ``predict`` and
        ``predict_mean`` give the same means to the bit.
        """
        mean = np.empty(len(X))
        var = np.empty(len(X)) if with_var else None
        for lo in range(0, len(X), PREDICT_BLOCK):
            phi = self._basis(X[lo : lo + PREDICT_BLOCK])
            mean[lo : lo + len(phi)] = phi @ self._mean
            if var is not None:
                var[lo : lo + len(phi)] = ((phi @ self._cov) * phi).sum(axis=1)
        return mean, var

    def to_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"name": self.name, "version": STATE_VERSION, "params": dict(self.params)}
        state["num_samples"] = self._n
        if self._center is not None:
            state.update(
                center=self._center.tolist(),
                scale=self._scale.tolist(),
                rff_w=self._rff_w.tolist(),
                rff_b=self._rff_b.tolist(),
                mean=self._mean.tolist(),
                cov=self._cov.tolist(),
            )
        return state

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> BayesianLinearPredictor:
        _check_state(cls, state)
        params = dict(state["params"])
        if params.get("bounds") is not None:
            params["bounds"] = tuple(params["bounds"])
        self = cls(**params)
        self._n = int(state.get("num_samples", 0))
        if "center" in state:
            self._center = np.asarray(state["center"], dtype=np.float64)
            self._scale = np.asarray(state["scale"], dtype=np.float64)
            self._rff_w = np.asarray(state["rff_w"], dtype=np.float64).reshape(self.params["num_rff"], -1)
            self._rff_b = np.asarray(state["rff_b"], dtype=np.float64)
            self._mean = np.asarray(state["mean"], dtype=np.float64)
            self._cov = np.asarray(state["cov"], dtype=np.float64)
            d, p = len(self._center), 1 + len(self._center) + self.params["num_rff"]
            shapes_ok = (
                self._scale.shape == (d,)
                and self._rff_w.shape[1:] in ((d,), (0,))
                and self._rff_b.shape == (self.params["num_rff"],)
                and self._mean.shape == (p,)
                and self._cov.shape == (p, p)
            )
            if not shapes_ok:
                raise ValueError("bayes_linear state has inconsistent array shapes")
        self._token = _new_token()
        return self


def _rowwise_quadratic(X: np.ndarray, S: np.ndarray) -> np.ndarray:
    """``diag(X S X^T)`` without the n x n matrix."""
    return (X @ S * X).sum(axis=1)


@register_predictor("curve_blr")
class CurveBLR(Predictor):
    """Bayesian linear regression with a per-task random offset (integrated out) and per-sample noise.

    The model: ``y = x . w + b_task + e`` with ``w ~ N(prior_mean, diag(prior_std^2))`` (from :meth:`prepare`),
    ``b_task ~ N(0, offset_std^2)`` independently per task and ``e ~ N(0, noise^2)`` (the sample's own noise, else
    ``noise_std``). A task's rows then have noise covariance ``D + offset_std^2 11^T``; its inverse (Sherman-Morrison)
    makes the task add ``sum x x^T / s2 - c S S^T`` to the weights' precision (and ``sum x y / s2 - c S R`` to its
    right-hand side), with ``W = sum 1/s2``, ``S = sum x/s2``, ``R = sum y/s2`` and ``c = t2 / (1 + t2 W)``. Given the
    weights, the task's offset is ``N(c (R - S . w), c)``, which is how a task's first feedback moves the predictions
    of all its regimes. A row without a task counts as a task of its own. Batch fit and updates run the same
    accumulation, so an update (O(p^2) plus a p x p solve) gives what a fit on all samples gives.

    Args:
        offset_std: Prior std of a task's offset (target units: logit above chance).
        noise_std: Noise std of samples given without their own, and of the predicted observations.
        weight_std: Prior std of every weight until :meth:`prepare` names the columns (prior mean 0).
    """

    def __init__(self, offset_std: float = 0.8, noise_std: float = 0.3, weight_std: float = 0.5) -> None:
        for name, value in (("offset_std", offset_std), ("noise_std", noise_std), ("weight_std", weight_std)):
            if isinstance(value, bool) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be finite and positive, got {value!r}")
        self.params = {"offset_std": float(offset_std), "noise_std": float(noise_std), "weight_std": float(weight_std)}
        self._names: tuple[str, ...] | None = None
        self._prior: tuple[np.ndarray, np.ndarray] | None = None
        self._n = 0
        self._prec = np.empty((0, 0))
        self._eta = np.empty(0)
        self._groups: dict[str, tuple[float, float, np.ndarray]] = {}
        self._cov = np.empty((0, 0))
        self._w = np.empty(0)
        self._token = _new_token()

    @property
    def num_samples(self) -> int:
        return self._n

    @property
    def dim(self) -> int | None:
        """Number of input features, once known."""
        return len(self._eta) if len(self._eta) else None

    @property
    def names(self) -> tuple[str, ...] | None:
        """The column names given to :meth:`prepare` (None: not prepared)."""
        return self._names

    def prepare(self, names: Sequence[str], prior_mean: np.ndarray, prior_std: np.ndarray) -> None:
        names = tuple(str(n) for n in names)
        if names == self._names:
            return
        if self._n:
            raise ValueError(
                f"curve_blr was fitted on {len(self._names or ())} other columns ({self._n} samples): a predictor "
                "learns through generators of one zoo (restrict a generator's proposals with models=...)"
            )
        mean, std = np.asarray(prior_mean, dtype=np.float64), np.asarray(prior_std, dtype=np.float64)
        if mean.shape != (len(names),) or std.shape != (len(names),) or not (std > 0).all():
            raise ValueError("prior_mean and prior_std need one value per column, stds positive")
        self._names, self._prior = names, (mean, std)
        self._reset(len(names))

    def _reset(self, d: int) -> None:
        mean, std = self._prior if self._prior is not None else (np.zeros(d), np.full(d, self.params["weight_std"]))
        self._prec = np.diag(1.0 / std**2)
        self._eta = mean / std**2
        self._groups, self._n = {}, 0
        self._solve()

    def _solve(self) -> None:
        """The posterior covariance and mean from the precision and its right-hand side."""
        chol = np.linalg.cholesky(self._prec)
        inv = np.linalg.solve(chol, np.eye(len(chol)))
        self._cov = inv.T @ inv
        self._w = self._cov @ self._eta
        self._token = _new_token()

    def _accumulate(self, X: np.ndarray, y: np.ndarray, groups: Groups, noise: Any) -> None:
        keys = _group_list(groups, len(X))
        noise = _check_noise(noise, len(X))
        var = np.full(len(X), self.params["noise_std"] ** 2) if noise is None else noise**2
        t2 = self.params["offset_std"] ** 2
        lone = np.asarray([k is None for k in keys])
        prec = 1.0 / np.where(lone, var + t2, var)  # a row without a task: its own offset is more noise
        self._prec += (X.T * prec) @ X
        self._eta += X.T @ (prec * y)
        for key in dict.fromkeys(k for k in keys if k is not None):
            sel = np.asarray([k == key for k in keys])
            W0, r0, s0 = self._groups.get(key, (0.0, 0.0, np.zeros(X.shape[1])))
            W1, r1, s1 = W0 + prec[sel].sum(), r0 + (prec * y)[sel].sum(), s0 + X[sel].T @ prec[sel]
            c0, c1 = t2 / (1.0 + t2 * W0), t2 / (1.0 + t2 * W1)
            self._prec += c0 * np.outer(s0, s0) - c1 * np.outer(s1, s1)
            self._eta += c0 * s0 * r0 - c1 * s1 * r1
            self._groups[str(key)] = (float(W1), float(r1), s1)
        self._prec = 0.5 * (self._prec + self._prec.T)
        self._n += len(X)
        self._solve()

    def fit(self, X: np.ndarray, y: np.ndarray, groups: Groups = None, noise: Any = None) -> CurveBLR:
        X, y = _check_xy(X, y, len(self._names) if self._names else None)
        if len(X) == 0:
            raise ValueError("fit needs at least one sample")
        self._reset(X.shape[1])
        self._accumulate(X, y, groups, noise)
        return self

    def update(self, X: np.ndarray, y: np.ndarray, groups: Groups = None, noise: Any = None) -> None:
        X, y = _check_xy(X, y, self.dim)
        if not self.dim:
            self._reset(X.shape[1])
        self._accumulate(X, y, groups, noise)

    def _shift(self, key: str | None) -> tuple[np.ndarray | None, float, float]:
        """For rows of task ``key``: the row shift ``c S``, the mean offset ``c R`` and the offset variance."""
        t2 = self.params["offset_std"] ** 2
        if key is None or key not in self._groups:
            return None, 0.0, t2
        W, r, s = self._groups[key]
        c = t2 / (1.0 + t2 * W)
        return c * s, c * r, c

    def _predict(self, X: np.ndarray, groups: Groups, with_var: bool) -> MeanVar:
        X, _ = _check_xy(X, None, self.dim)
        if not self.dim:  # never fitted nor prepared: the prior of nothing is 0
            self._reset(X.shape[1])
        keys = _group_list(groups, len(X))
        mean = np.empty(len(X))
        var = np.empty(len(X)) if with_var else None
        for key in dict.fromkeys(keys):
            sel = slice(None) if len(set(keys)) == 1 else np.asarray([k == key for k in keys])
            shift, offset, offset_var = self._shift(key)
            rows = X[sel] if shift is None else X[sel] - shift
            mean[sel] = rows @ self._w + offset
            if var is not None:
                var[sel] = _rowwise_quadratic(rows, self._cov) + offset_var + self.params["noise_std"] ** 2
        return MeanVar(mean, var)

    def predict(self, X: np.ndarray, groups: Groups = None) -> MeanVar:
        return self._predict(X, groups, with_var=True)

    def predict_mean(self, X: np.ndarray, groups: Groups = None) -> np.ndarray:
        return self._predict(X, groups, with_var=False).mean

    def linear(self, group: str | None = None) -> tuple[np.ndarray, float] | None:
        if not self.dim:
            return None
        shift, offset, _ = self._shift(group)
        return self._w, float(offset - (0.0 if shift is None else shift @ self._w))

    def contrast_var(self, X: np.ndarray, ref: np.ndarray) -> np.ndarray:
        X, _ = _check_xy(X, None, self.dim)
        diff = X - np.asarray(ref, dtype=np.float64)
        cols = np.flatnonzero(np.any(diff != 0.0, axis=0))  # columns all rows share (the task's) cancel
        if not len(cols):
            return np.zeros(len(X))
        # float32: a variance to a few digits is all the choice needs, and it halves this pass over every candidate
        d = diff[:, cols].astype(np.float32)
        return np.maximum(_rowwise_quadratic(d, self._cov[np.ix_(cols, cols)].astype(np.float32)), 0.0).astype(float)

    def to_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"name": self.name, "version": STATE_VERSION, "params": dict(self.params)}
        state |= {"num_samples": self._n, "names": None if self._names is None else list(self._names)}
        if self._prior is not None:
            state |= {"prior_mean": self._prior[0].tolist(), "prior_std": self._prior[1].tolist()}
        if self.dim:
            state |= {"precision": self._prec.tolist(), "eta": self._eta.tolist()}
            state["groups"] = {k: [W, r, s.tolist()] for k, (W, r, s) in self._groups.items()}
        return state

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> CurveBLR:
        _check_state(cls, state)
        self = cls(**state["params"])
        if state.get("names") is not None:
            self.prepare(state["names"], np.asarray(state["prior_mean"]), np.asarray(state["prior_std"]))
        if "precision" in state:
            self._prec = np.asarray(state["precision"], dtype=np.float64)
            self._eta = np.asarray(state["eta"], dtype=np.float64)
            d = len(self._eta)
            groups = {
                str(k): (float(W), float(r), np.asarray(s, dtype=np.float64))
                for k, (W, r, s) in state["groups"].items()
            }
            if self._prec.shape != (d, d) or any(s.shape != (d,) for _, _, s in groups.values()):
                raise ValueError("curve_blr state has inconsistent array shapes")
            if self._names is not None and len(self._names) != d:
                raise ValueError("curve_blr state has inconsistent array shapes")
            self._groups = groups
            self._solve()
        self._n = int(state.get("num_samples", 0))
        self._token = _new_token()
        return self


@register_predictor("mean")
class MeanPredictor(Predictor):
    """Baseline: the mean and variance of every target seen, whatever the features.

    Args:
        prior_mean: Prediction before any data.
        prior_var: Variance before two samples were seen.
    """

    def __init__(self, prior_mean: float = 1.0, prior_var: float = 1.0) -> None:
        self.params = {"prior_mean": float(prior_mean), "prior_var": float(prior_var)}
        self._n, self._mean, self._m2 = 0, 0.0, 0.0
        self._token = _new_token()

    @property
    def num_samples(self) -> int:
        return self._n

    def fit(self, X: np.ndarray, y: np.ndarray, groups: Groups = None, noise: Any = None) -> MeanPredictor:
        _check_xy(X, y)
        self._n, self._mean, self._m2 = 0, 0.0, 0.0
        self.update(X, y)
        return self

    def update(self, X: np.ndarray, y: np.ndarray, groups: Groups = None, noise: Any = None) -> None:
        _, y = _check_xy(X, y)
        for target in y:  # Welford's running mean and sum of squared deviations
            self._n += 1
            delta = float(target) - self._mean
            self._mean += delta / self._n
            self._m2 += delta * (float(target) - self._mean)
        self._token = _new_token()

    def predict(self, X: np.ndarray, groups: Groups = None) -> MeanVar:
        X, _ = _check_xy(X)
        mean = self._mean if self._n else self.params["prior_mean"]
        var = self._m2 / (self._n - 1) if self._n > 1 else self.params["prior_var"]
        return MeanVar(np.full(len(X), mean), np.full(len(X), var))

    def to_state(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": STATE_VERSION,
            "params": dict(self.params),
            "num_samples": self._n,
            "mean": self._mean,
            "m2": self._m2,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> MeanPredictor:
        _check_state(cls, state)
        self = cls(**state["params"])
        self._n, self._mean, self._m2 = int(state["num_samples"]), float(state["mean"]), float(state["m2"])
        self._token = _new_token()
        return self


@register_predictor("knn")
class KNNPredictor(Predictor):
    """Baseline: the mean of the ``k`` nearest samples in standardized feature space.

    Args:
        k: Neighbours.
        prior_mean: Prediction before any data.
        prior_var: Variance before any data.
        noise_var: Added to the neighbours' variance.
    """

    def __init__(self, k: int = 5, prior_mean: float = 1.0, prior_var: float = 1.0, noise_var: float = 0.09):
        if int(k) != k or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        self.params = {"k": int(k), "prior_mean": float(prior_mean), "prior_var": float(prior_var)}
        self.params["noise_var"] = float(noise_var)
        self._X = np.empty((0, 0))
        self._y = np.empty(0)
        self._token = _new_token()

    @property
    def num_samples(self) -> int:
        return len(self._y)

    def fit(self, X: np.ndarray, y: np.ndarray, groups: Groups = None, noise: Any = None) -> KNNPredictor:
        self._X, self._y = _check_xy(X, y)
        self._token = _new_token()
        return self

    def update(self, X: np.ndarray, y: np.ndarray, groups: Groups = None, noise: Any = None) -> None:
        X, y = _check_xy(X, y, self._X.shape[1] if len(self._y) else None)
        self._X = X if not len(self._y) else np.vstack([self._X, X])
        self._y = np.concatenate([self._y, y])
        self._token = _new_token()

    def predict(self, X: np.ndarray, groups: Groups = None) -> MeanVar:
        X, _ = _check_xy(X, None, self._X.shape[1] if len(self._y) else None)
        if not len(self._y):
            return MeanVar(np.full(len(X), self.params["prior_mean"]), np.full(len(X), self.params["prior_var"]))
        center, scale = self._X.mean(axis=0), self._X.std(axis=0)
        scale = np.where(scale > 1e-12, scale, 1.0)
        A, B = (self._X - center) / scale, (X - center) / scale
        dist = (B**2).sum(1)[:, None] - 2.0 * B @ A.T + (A**2).sum(1)[None, :]
        k = min(self.params["k"], len(self._y))
        nearest = np.argsort(dist, axis=1, kind="stable")[:, :k]
        neighbours = self._y[nearest]
        return MeanVar(neighbours.mean(axis=1), neighbours.var(axis=1) + self.params["noise_var"])

    def to_state(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": STATE_VERSION,
            "params": dict(self.params),
            "X": self._X.tolist(),
            "y": self._y.tolist(),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> KNNPredictor:
        _check_state(cls, state)
        self = cls(**state["params"])
        self._y = np.asarray(state["y"], dtype=np.float64)
        self._X = (
            np.asarray(state["X"], dtype=np.float64).reshape(len(self._y), -1) if len(self._y) else np.empty((0, 0))
        )
        self._token = _new_token()
        return self
