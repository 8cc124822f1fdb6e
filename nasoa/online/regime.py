"""Fine-tuning regimes, the discrete regime space, and the cost model that predicts a regime's time and footprint.

A regime is a zoo model plus learning rate, frozen stages, batch size, epochs and schedule. Its time is predicted
from the model's profiled step time (which shrinks as stages are frozen) times the steps it runs, plus evaluation
and a fixed overhead (model load and BatchNorm re-estimation, which a briefly trained model needs before it is
evaluated). No Ray, no torch.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nasoa.data.meta import TaskMeta
    from nasoa.zoo.manifest import ZooEntry

SCHEDULES = ("cosine", "step", "constant")

__all__ = [
    "SCHEDULES",
    "CostModel",
    "DeviceCost",
    "Footprint",
    "Regime",
    "RegimeSpace",
    "num_steps",
    "predict_time_s",
    "sized_to_budget",
]


def _int(owner: str, name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not float(value).is_integer():
        raise ValueError(f"{owner}.{name} must be an integer, got {value!r}")
    if int(value) < minimum:
        raise ValueError(f"{owner}.{name} must be at least {minimum}, got {int(value)}")
    return int(value)


def _positive_float(owner: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{owner}.{name} must be a number, got {value!r}")
    if not math.isfinite(float(value)) or float(value) <= 0:
        raise ValueError(f"{owner}.{name} must be finite and positive, got {value!r}")
    return float(value)


def _from_mapping(cls: type, data: Mapping[str, Any], required: tuple[str, ...]) -> dict[str, Any]:
    """The keyword arguments for ``cls`` from ``data``; unknown or missing keys raise ``ValueError``."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{cls.__name__} needs a mapping, got {type(data).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} key(s) {unknown}; expected {sorted(known)}")
    missing = [k for k in required if k not in data]
    if missing:
        raise ValueError(f"missing {cls.__name__} key(s) {missing}")
    return dict(data)


#: The default safe regime: the plain default fine-tune (ResNet-18, SGD lr 0.01, nothing frozen, batch 32).
DEFAULT_FALLBACK: dict[str, Any] = {"model": "resnet18", "lr": 0.01, "frozen_stages": 0, "batch_size": 32}


def _fallback(data: Any) -> dict[str, Any]:
    """A validated copy of a fallback spec (missing keys take :data:`DEFAULT_FALLBACK`'s)."""
    if not isinstance(data, Mapping):
        raise ValueError(f"RegimeSpace.fallback must be a mapping, got {data!r}")
    unknown = sorted(set(data) - set(DEFAULT_FALLBACK))
    if unknown:
        raise ValueError(f"unknown RegimeSpace.fallback key(s) {unknown}; expected {sorted(DEFAULT_FALLBACK)}")
    out = {**DEFAULT_FALLBACK, **data}
    if not isinstance(out["model"], str) or not out["model"]:
        raise ValueError(f"RegimeSpace.fallback.model must be a zoo key or name, got {out['model']!r}")
    out["lr"] = _positive_float("RegimeSpace.fallback", "lr", out["lr"])
    out["frozen_stages"] = _int("RegimeSpace.fallback", "frozen_stages", out["frozen_stages"], 0)
    out["batch_size"] = _int("RegimeSpace.fallback", "batch_size", out["batch_size"], 1)
    return out


def num_steps(num_train: int, batch_size: int, epochs: int) -> int:
    """Optimizer steps of ``epochs`` passes over ``num_train`` images (the last batch of an epoch may be short)."""
    return epochs * math.ceil(num_train / batch_size)


@dataclass(frozen=True)
class Regime:
    """A fine-tuning regime: which zoo model, and how to fine-tune it.

    Attributes:
        model: Zoo key of the model (``<arch>.<tag>``).
        lr: Peak learning rate of SGD.
        frozen_stages: Stem and first ``k`` stages frozen (0 = none).
        batch_size: Training batch size.
        epochs: Passes over the training images (at most; with ``steps``, the passes those steps start).
        schedule: Learning-rate schedule: ``"cosine"``, ``"step"`` or ``"constant"``.
        steps: Planned optimizer steps, the schedule's horizon (None: ``epochs`` full passes). A regime sized to a
            budget plans its steps from the budget; the run re-plans from its measured step times.
    """

    model: str
    lr: float
    frozen_stages: int
    batch_size: int
    epochs: int
    schedule: str = "cosine"
    steps: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise ValueError(f"Regime.model must be a non-empty zoo key, got {self.model!r}")
        object.__setattr__(self, "lr", _positive_float("Regime", "lr", self.lr))
        object.__setattr__(self, "frozen_stages", _int("Regime", "frozen_stages", self.frozen_stages, 0))
        object.__setattr__(self, "batch_size", _int("Regime", "batch_size", self.batch_size, 1))
        object.__setattr__(self, "epochs", _int("Regime", "epochs", self.epochs, 1))
        if self.schedule not in SCHEDULES:
            raise ValueError(f"Regime.schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.steps is not None:
            object.__setattr__(self, "steps", _int("Regime", "steps", self.steps, 1))

    @property
    def regime_id(self) -> str:
        """Stable 12-hex-digit hash of the canonical dict (sorted keys, plain JSON)."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    def planned_steps(self, num_train: int) -> int:
        """Optimizer steps this regime plans on ``num_train`` training images."""
        full = num_steps(num_train, self.batch_size, self.epochs)
        return full if self.steps is None else min(self.steps, full)

    def to_dict(self) -> dict[str, Any]:
        """The regime as a plain JSON-friendly dict (``steps`` only when set, so older ids stay as they were)."""
        out = asdict(self)
        if out["steps"] is None:
            del out["steps"]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Regime:
        """Builds a regime from a mapping such as the output of :meth:`to_dict`.

        Raises:
            ValueError: If keys are missing or unknown, or a value is invalid.
        """
        return cls(**_from_mapping(cls, data, ("model", "lr", "frozen_stages", "batch_size", "epochs")))


@dataclass(frozen=True)
class RegimeSpace:
    """The discrete grid of regimes the generator chooses from.

    Attributes:
        lrs: Learning rates.
        batch_sizes: Batch sizes.
        epochs: Epoch counts.
        max_frozen_fraction: Largest fraction of a model's stages that may be frozen (1.0 allows training only
            the head).
        schedule: Schedule of every regime.
        max_epochs: Most passes over the training images a regime sized to a budget plans.
        fallback: The safe regime the generator answers when no other is confidently better: ``model`` (a zoo
            key, name or arch; the first entry that matches), ``lr``, ``frozen_stages``, ``batch_size``; sized to
            the budget like every other.

    The regime generator sizes every (model, lr, frozen stages, batch size) of the grid to the budget
    (:func:`sized_to_budget`); ``epochs`` is the grid of fixed-length regimes (:meth:`enumerate`), which baselines
    and :func:`feasible_regimes` use.
    """

    lrs: tuple[float, ...] = (0.003, 0.01, 0.03, 0.1)
    batch_sizes: tuple[int, ...] = (16, 32, 64)
    epochs: tuple[int, ...] = (1, 2, 3, 5, 8, 12)
    max_frozen_fraction: float = 1.0
    schedule: str = "cosine"
    max_epochs: int = 100
    fallback: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_FALLBACK))

    def __post_init__(self) -> None:
        for name, convert in (("lrs", None), ("batch_sizes", 1), ("epochs", 1)):
            values = getattr(self, name)
            if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
                raise ValueError(f"RegimeSpace.{name} must be a sequence, got {values!r}")
            values = tuple(
                _positive_float("RegimeSpace", name, v) if convert is None else _int("RegimeSpace", name, v, convert)
                for v in values
            )
            if not values:
                raise ValueError(f"RegimeSpace.{name} must not be empty")
            if len(set(values)) != len(values):
                raise ValueError(f"RegimeSpace.{name} has duplicates: {values}")
            object.__setattr__(self, name, values)
        fraction = self.max_frozen_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0.0 <= fraction <= 1.0:
            raise ValueError(f"RegimeSpace.max_frozen_fraction must be in [0, 1], got {fraction!r}")
        object.__setattr__(self, "max_frozen_fraction", float(fraction))
        if self.schedule not in SCHEDULES:
            raise ValueError(f"RegimeSpace.schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        object.__setattr__(self, "max_epochs", _int("RegimeSpace", "max_epochs", self.max_epochs, 1))
        object.__setattr__(self, "fallback", _fallback(self.fallback))

    def frozen_options(self, entry: ZooEntry, device: str | None = None) -> list[int]:
        """Frozen-stage counts allowed for ``entry``; with ``device``, only those profiled on it."""
        top = math.floor(self.max_frozen_fraction * entry.num_stages + 1e-9)
        options = list(range(0, top + 1))
        if device is not None:
            profiled = {p.frozen_stages for p in entry.profiles if p.device == device}
            options = [k for k in options if k in profiled]
        return options

    def enumerate(self, entry: ZooEntry, device: str | None = None) -> Iterator[Regime]:
        """All regimes of ``entry``, in the order frozen stages, batch size, epochs, learning rate."""
        for frozen in self.frozen_options(entry, device):
            for batch in self.batch_sizes:
                for epochs in self.epochs:
                    for lr in self.lrs:
                        yield Regime(entry.key, lr, frozen, batch, epochs, self.schedule)

    def to_dict(self) -> dict[str, Any]:
        """The space as a plain JSON-friendly dict (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RegimeSpace:
        """Builds a space from a mapping (e.g. a Hydra config); missing keys take the defaults."""
        return cls(**_from_mapping(cls, data, ()))


@dataclass(frozen=True)
class CostModel:
    """Constants of the time model beyond the profiled step times.

    A run's time is its training steps at the profiled step time, plus evaluation: BatchNorm re-estimation
    (``bn_batches`` forward passes), the learning curve (``curve_points`` evaluations of at most ``curve_images``
    validation images) and the final validation, each batch at the profiled inference time, plus a fixed overhead.
    ``nasoa.train.finetune`` runs exactly these (its constants are checked against these defaults).

    Attributes:
        val_fraction: Validation images, as a fraction of the training images.
        overhead_s: Fixed seconds per run: model load and set-up.
        curve_points: Learning-curve points measured during a run.
        curve_images: Validation images each curve point is measured on.
        bn_batches: Training batches of BatchNorm re-estimation.
        time_scale: Measured over profiled step time on this device now (a busier machine than when the zoo was
            profiled runs slower): every profiled time is multiplied by it.
        load_ms_per_image: Milliseconds of loading and augmenting one 32 x 32 training image (scaled by pixels),
            added to every step: the profiles time the model's step alone. The regime generator learns both from
            the wall time per step that runs report.
    """

    val_fraction: float = 0.2
    overhead_s: float = 1.0
    curve_points: int = 3
    curve_images: int = 128
    bn_batches: int = 5
    time_scale: float = 1.0
    load_ms_per_image: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "time_scale", _positive_float("CostModel", "time_scale", self.time_scale))
        for name in ("val_fraction", "overhead_s", "load_ms_per_image"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
                raise ValueError(f"CostModel.{name} must be finite and non-negative, got {value!r}")
            object.__setattr__(self, name, float(value))
        for name in ("curve_points", "curve_images", "bn_batches"):
            object.__setattr__(self, name, _int("CostModel", name, getattr(self, name), 0))

    def num_val(self, num_train: int) -> int:
        """Estimated validation images of a task with ``num_train`` training images."""
        return math.ceil(self.val_fraction * num_train)

    def eval_batches(self, num_train: int, batch_size: int) -> int:
        """Forward passes after (and during) training: BN re-estimation, curve points, final validation."""
        num_val = self.num_val(num_train)
        curve = self.curve_points * math.ceil(min(num_val, self.curve_images) / batch_size)
        return math.ceil(num_val / batch_size) + curve + self.bn_batches

    def time_s(self, entry: ZooEntry, regime: Regime, task: TaskMeta, device: str) -> float:
        """See :func:`predict_time_s`."""
        if regime.model != entry.key:
            raise ValueError(f"regime is for {regime.model!r}, not for {entry.key!r}")
        step_ms = self.step_ms(entry, regime, task, device)
        train_s = regime.planned_steps(task.num_train) * step_ms / 1000.0
        return train_s + self.eval_s(entry, regime.batch_size, task, device) + self.overhead_s

    def step_ms(self, entry: ZooEntry, regime: Regime, task: TaskMeta, device: str) -> float:
        """Predicted wall milliseconds of a training step: the profile's times :attr:`time_scale`, plus loading."""
        profiled = entry.step_ms(device, regime.batch_size, regime.frozen_stages, resolution=task.resolution)
        return profiled * self.time_scale + self.load_ms_per_image * load_units(regime.batch_size, task.resolution)

    def eval_s(self, entry: ZooEntry, batch_size: int, task: TaskMeta, device: str) -> float:
        """Seconds of the forward passes of :meth:`eval_batches`, at the profiled inference time."""
        inf_ms = entry.inference_ms(device, batch_size, resolution=task.resolution)
        return self.eval_batches(task.num_train, batch_size) * (inf_ms * self.time_scale) / 1000.0

    def steps_within(self, entry: ZooEntry, regime: Regime, task: TaskMeta, device: str, budget_s: float) -> int:
        """Optimizer steps of ``regime``'s model, frozen stages and batch size predicted to fit ``budget_s`` (0: none).

        The inverse of :meth:`time_s`: a regime with this many ``steps`` is predicted to take at most ``budget_s``.
        """
        step_ms = self.step_ms(entry, regime, task, device)
        left = budget_s - self.eval_s(entry, regime.batch_size, task, device) - self.overhead_s
        return max(0, math.floor(left * 1000.0 / step_ms + 1e-9)) if step_ms > 0 else 0


def load_units(batch_size: int | float, resolution: int) -> float:
    """A training batch's images in 32 x 32 equivalents (the unit of :attr:`CostModel.load_ms_per_image`)."""
    return batch_size * (resolution / 32) ** 2


def predict_time_s(
    entry: ZooEntry, regime: Regime, task: TaskMeta, device: str, cost: CostModel | None = None
) -> float:
    """Predicted wall time of fine-tuning ``entry`` with ``regime`` on ``task``.

    ``epochs x ceil(num_train / batch_size)`` steps at the profiled step time (scaled to the task's resolution),
    plus evaluating the estimated validation images in batches, plus the fixed overhead.

    Args:
        entry: The zoo model, with profiles on ``device``.
        regime: A regime of that model.
        task: The task's meta-features.
        device: Profile device name.
        cost: Time-model constants; defaults to ``CostModel()``.

    Returns:
        Seconds.

    Raises:
        KeyError: If the entry has no profile on ``device`` for the regime's frozen stages.
    """
    return (cost or CostModel()).time_s(entry, regime, task, device)


def sized_to_budget(
    entry: ZooEntry,
    regime: Regime,
    task: TaskMeta,
    budget_s: float,
    device: str,
    cost: CostModel | None = None,
    max_epochs: int = 100,
) -> Regime | None:
    """``regime`` (its model, lr, frozen stages, batch size, schedule) with the training length that fills ``budget_s``.

    Its ``steps`` are those predicted to fit (at most ``max_epochs`` passes) and its ``epochs`` the passes they
    start; None when not one step fits.
    """
    per_epoch = math.ceil(task.num_train / regime.batch_size)
    steps = min((cost or CostModel()).steps_within(entry, regime, task, device, budget_s), max_epochs * per_epoch)
    if steps < 1:
        return None
    return replace(regime, steps=steps, epochs=math.ceil(steps / per_epoch))


def feasible_regimes(
    entries: Iterable[ZooEntry],
    space: RegimeSpace,
    task: TaskMeta,
    budget_s: float,
    device: str,
    cost: CostModel | None = None,
) -> tuple[tuple[Regime, ...], dict[str, float]]:
    """The regimes of ``space`` over ``entries`` predicted to fit ``budget_s``, in grid order.

    Returns them with their predicted seconds by regime id; regimes without a profile on ``device`` are left out.
    """
    fits, predicted = [], {}
    for entry in entries:
        for regime in space.enumerate(entry, device):
            try:
                t = predict_time_s(entry, regime, task, device, cost)
            except KeyError:
                continue
            if t <= budget_s:
                fits.append(regime)
                predicted[regime.regime_id] = t
    return tuple(fits), predicted


@dataclass(frozen=True)
class Footprint:
    """Resources one run uses.

    Attributes:
        device_seconds: Seconds the device is held.
        energy_kwh: Energy drawn.
        cost_usd: Price of the device time.
        co2e_kg: Emissions of the energy, in kg CO2-equivalent.
    """

    device_seconds: float
    energy_kwh: float
    cost_usd: float
    co2e_kg: float

    def to_dict(self) -> dict[str, float]:
        """The footprint as a plain dict."""
        return asdict(self)


@dataclass(frozen=True)
class DeviceCost:
    """What a second of the device costs. The defaults are nominal placeholders: configure them per machine.

    Attributes:
        watts: Average power draw while fine-tuning.
        usd_per_hour: Price of an hour of the device.
        kg_co2e_per_kwh: Carbon intensity of the electricity.
    """

    watts: float = 65.0
    usd_per_hour: float = 0.05
    kg_co2e_per_kwh: float = 0.4

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
                raise ValueError(f"DeviceCost.{f.name} must be finite and non-negative, got {value!r}")
            object.__setattr__(self, f.name, float(value))

    def footprint(self, seconds: float) -> Footprint:
        """The footprint of holding the device for ``seconds``."""
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"seconds must be finite and non-negative, got {seconds!r}")
        energy = self.watts * seconds / 3.6e6
        return Footprint(float(seconds), energy, self.usd_per_hour * seconds / 3600.0, energy * self.kg_co2e_per_kwh)
