"""The zoo manifest: one row per pretrained model, with its profiles per device. No torch here.

Keys follow timm's ``arch.tag``: ``<archid>.<tag>`` for ET-NAS networks (archid = hash of the canonical
encoding), ``<reference name>.<tag>`` for torchvision references; the tag names the pretraining
(source dataset and resolution). Weights live in their own files, next to the manifest.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import pyarrow as pa

from nasoa.common.io import read_parquet_checked, write_parquet_atomic

MANIFEST_FILE = "manifest.parquet"
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+$")


@dataclass(frozen=True)
class Profile:
    """One measured training/inference step of a zoo model on a device."""

    device: str
    batch_size: int
    resolution: int
    frozen_stages: int
    train_step_ms: float
    inference_ms: float
    peak_mem_mb: float = math.nan


@dataclass(frozen=True)
class ZooEntry:
    """One pretrained model of the zoo."""

    key: str
    name: str
    kind: str  # "etnas" | "reference"
    arch: str  # the ET-NAS encoding, or the reference model name
    source: str
    num_classes: int
    top1: float
    params: int
    macs: int
    num_stages: int
    resolution: int
    weights: str
    sha256: str
    pretrain_s: float = 0.0
    profiles: tuple[Profile, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not KEY_PATTERN.match(self.key):
            raise ValueError(f"zoo key {self.key!r} must look like '<arch>.<tag>' (letters, digits, '_' and '-')")

    def devices(self) -> list[str]:
        return sorted({p.device for p in self.profiles})

    def profile(self, device: str, batch_size: int | None = None, frozen_stages: int = 0) -> Profile:
        """The profile on ``device`` for ``frozen_stages`` with the closest batch size."""
        rows = [p for p in self.profiles if p.device == device and p.frozen_stages == frozen_stages]
        if not rows:
            known = ", ".join(self.devices()) or "none"
            raise KeyError(
                f"{self.key}: no profile on {device!r} with {frozen_stages} frozen stages (devices: {known})"
            )
        if batch_size is None:
            return max(rows, key=lambda p: p.batch_size)
        return min(rows, key=lambda p: (abs(math.log(p.batch_size / batch_size)), -p.batch_size))

    def step_ms(self, device: str, batch_size: int, frozen_stages: int = 0, resolution: int | None = None) -> float:
        """Predicted training step time: the closest profile scaled linearly in batch size and pixel count."""
        p = self.profile(device, batch_size, frozen_stages)
        pixels = ((resolution or p.resolution) / p.resolution) ** 2
        return p.train_step_ms * (batch_size / p.batch_size) * pixels

    def inference_ms(self, device: str, batch_size: int, resolution: int | None = None) -> float:
        """Predicted inference time of a batch, scaled like :meth:`step_ms`."""
        p = self.profile(device, batch_size, 0)
        pixels = ((resolution or p.resolution) / p.resolution) ** 2
        return p.inference_ms * (batch_size / p.batch_size) * pixels

    def with_profiles(self, profiles: Iterable[Profile]) -> ZooEntry:
        """A copy with ``profiles`` replacing those of the same (device, batch, resolution, frozen)."""
        new = list(profiles)
        keys = {(p.device, p.batch_size, p.resolution, p.frozen_stages) for p in new}
        kept = [p for p in self.profiles if (p.device, p.batch_size, p.resolution, p.frozen_stages) not in keys]
        return replace(self, profiles=tuple(kept + new))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["profiles"] = [asdict(p) for p in self.profiles]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ZooEntry:
        names = set(cls.__dataclass_fields__)
        values = {k: v for k, v in d.items() if k in names}
        values["profiles"] = tuple(Profile(**p) for p in (d.get("profiles") or ()))
        return cls(**values)


_PROFILE_TYPE = pa.struct(
    [
        ("device", pa.string()),
        ("batch_size", pa.int64()),
        ("resolution", pa.int64()),
        ("frozen_stages", pa.int64()),
        ("train_step_ms", pa.float64()),
        ("inference_ms", pa.float64()),
        ("peak_mem_mb", pa.float64()),
    ]
)
_TYPES = {"str": pa.string(), "int": pa.int64(), "float": pa.float64()}
SCHEMA = pa.schema(
    [
        pa.field(name, pa.list_(_PROFILE_TYPE) if name == "profiles" else _TYPES[f.type])
        for name, f in ZooEntry.__dataclass_fields__.items()
    ]
)


def write_manifest(entries: Sequence[ZooEntry], root: str | os.PathLike) -> Path:
    """Write ``manifest.parquet`` atomically; keys must be unique."""
    keys = [e.key for e in entries]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise ValueError(f"duplicate zoo keys: {dupes}")
    path = Path(root) / MANIFEST_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    write_parquet_atomic(pa.Table.from_pylist([e.to_dict() for e in entries], schema=SCHEMA), path)
    return path


def read_manifest(root: str | os.PathLike) -> list[ZooEntry]:
    """Read ``manifest.parquet``; a missing or corrupt file raises an error naming it."""
    path = Path(root) / MANIFEST_FILE
    if not path.exists():
        raise FileNotFoundError(f"no zoo at {Path(root)}: {MANIFEST_FILE} is missing (build one: launch/build_zoo.py)")
    return [ZooEntry.from_dict(row) for row in read_parquet_checked(path).to_pylist()]
