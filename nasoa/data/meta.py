"""Task meta-features: the few numbers that describe an image classification task to the regime predictor."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

_INT_FIELDS = ("num_classes", "num_train", "resolution", "channels")


def _as_positive_int(field: str, value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError(f"TaskMeta.{field} must be an integer, got bool {value!r}")
    if isinstance(value, numbers.Integral):
        value = int(value)
    elif isinstance(value, numbers.Real) and float(value).is_integer():
        value = int(value)
    else:
        raise TypeError(f"TaskMeta.{field} must be an integer, got {type(value).__name__} {value!r}")
    if value <= 0:
        raise ValueError(f"TaskMeta.{field} must be a positive integer, got {value}")
    return value


@dataclass(frozen=True)
class TaskMeta:
    """Meta-features of an image classification task.

    Attributes:
        num_classes: Number of classes.
        num_train: Number of training images.
        resolution: Side of the (square) images fed to the network, in pixels.
        channels: Number of image channels.
        name: Optional task name, for reports.
    """

    num_classes: int
    num_train: int
    resolution: int
    channels: int
    name: str = ""

    def __post_init__(self) -> None:
        for field in _INT_FIELDS:
            object.__setattr__(self, field, _as_positive_int(field, getattr(self, field)))
        if not isinstance(self.name, str):
            raise TypeError(f"TaskMeta.name must be a string, got {type(self.name).__name__}")

    def to_dict(self) -> dict[str, Any]:
        """Returns the meta-features as a plain JSON-friendly dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskMeta:
        """Builds a TaskMeta from a mapping such as the output of `to_dict`.

        Args:
            data: Mapping with keys num_classes, num_train, resolution, channels and optionally name.

        Returns:
            The validated TaskMeta.

        Raises:
            ValueError: If keys are missing or unknown, or a value is not positive.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown TaskMeta key(s) {unknown}; expected {sorted(known)}")
        missing = [k for k in _INT_FIELDS if k not in data]
        if missing:
            raise ValueError(f"missing TaskMeta key(s) {missing}")
        return cls(**{k: data[k] for k in known if k in data})
