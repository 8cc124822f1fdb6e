"""Pretrain and profile one zoo entry; pick a spread of Pareto members. Plain torch, no Ray.

:mod:`nasoa.dist.zoo_job` runs :func:`pretrain_entry` on Ray Train workers, one entry per item.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from nasoa.search.archive import Record, non_dominated, spread
from nasoa.zoo.manifest import Profile, ZooEntry


@dataclass(frozen=True)
class ZooItem:
    """A model to put in the zoo: a display name, its kind and its architecture (encoding or reference name)."""

    name: str
    kind: str  # "etnas" | "reference"
    arch: str
    key: str = ""


@dataclass(frozen=True)
class PretrainSettings:
    """Pretraining on the source task, and the profiles taken afterwards."""

    source: str = "digits"
    resolution: int = 32
    batch_size: int = 64
    epochs: int = 3
    lr: float = 0.03
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    recalibrate_bn_batches: int = 10
    profile_batch_sizes: tuple[int, ...] = (16, 32, 64)
    profile_warmup: int = 2
    profile_steps: int = 5
    profile_frozen: bool = True  # profile every frozen-stage count (the regime generator needs them)
    device: str = "cpu"
    seed: int = 0
    root: str = ""

    @property
    def tag(self) -> str:
        """The pretraining tag of zoo keys: a slug of the source and the resolution."""
        slug = re.sub(r"[^A-Za-z0-9]+", "-", self.source).strip("-").lower()[:24]
        if slug != self.source:
            slug = f"{slug}-{hashlib.sha1(self.source.encode()).hexdigest()[:6]}"
        return f"{slug}-{self.resolution}px"

    def to_dict(self) -> dict:
        return asdict(self)


def item_key(item: ZooItem, tag: str) -> str:
    """``<archid>.<tag>`` for ET-NAS networks, ``<reference name>.<tag>`` for references."""
    if item.kind == "etnas":
        from nasoa.space import parse

        return f"{parse(item.arch).archid}.{tag}"
    return f"{item.arch}.{tag}"


def resolve_item(name: str) -> ZooItem:
    """A zoo item from a published ET-NAS name, an encoding or a reference model name."""
    from nasoa.models.registry import model_kind
    from nasoa.space import ETNAS

    kind = model_kind(name)
    return ZooItem(name=name, kind=kind, arch=ETNAS.get(name, name))


def spread_front(records: Sequence[Record], k: int) -> list[Record]:
    """``k`` members of the records' front spread along training step time (both ends included)."""
    return spread(non_dominated(records), k)


def profile_model(model, settings: PretrainSettings, num_stages: int) -> list[Profile]:  # noqa: ANN001
    """Profiles at each configured batch size, for every frozen-stage count when ``profile_frozen``."""
    from nasoa.search.proxy import device_name
    from nasoa.train import profile_step

    device = device_name(settings.device)
    out = []
    for frozen in range(num_stages + 1) if settings.profile_frozen else [0]:
        for batch in settings.profile_batch_sizes:
            p = profile_step(
                model,
                batch_size=batch,
                resolution=settings.resolution,
                device=settings.device,
                frozen_stages=frozen,
                warmup=settings.profile_warmup,
                steps=settings.profile_steps,
            )
            peak = p.peak_mem_mb if p.peak_mem_mb is not None else math.nan
            out.append(Profile(device, batch, settings.resolution, frozen, p.train_step_ms, p.inference_ms, peak))
    return out


def pretrain_entry(item: ZooItem, settings: PretrainSettings, worker: str = "") -> ZooEntry:
    """Pretrain ``item`` on the source task, evaluate top-1, save its weights and profile it."""
    import torch

    from nasoa.data import make_loaders, make_task
    from nasoa.models import create_model, model_complexity
    from nasoa.train import train_and_evaluate
    from nasoa.zoo.store import save_weights

    t0 = time.perf_counter()
    task = make_task(settings.source, resolution=settings.resolution, seed=settings.seed)
    torch.manual_seed(settings.seed)
    model = create_model(item.arch, task.num_classes)
    train_loader, val_loader = make_loaders(task, settings.batch_size, seed=settings.seed)
    _, ev = train_and_evaluate(
        model,
        train_loader,
        val_loader,
        bn_batches=settings.recalibrate_bn_batches,
        device=settings.device,
        epochs=settings.epochs,
        lr=settings.lr,
        weight_decay=settings.weight_decay,
        schedule=settings.schedule,
    )
    if ev is None:
        raise FloatingPointError(f"{item.name}: non-finite loss while pretraining")
    top1 = ev.top1
    model = model.cpu()
    key = item.key or item_key(item, settings.tag)
    weights, digest = save_weights(model, settings.root, key)
    pretrain_s = time.perf_counter() - t0
    cx = model_complexity(item.arch, settings.resolution, task.num_classes)
    return ZooEntry(
        key=key,
        name=item.name,
        kind=item.kind,
        arch=item.arch,
        source=settings.source,
        num_classes=task.num_classes,
        top1=float(top1),
        params=cx.params,
        macs=cx.macs,
        num_stages=model.num_stages,
        resolution=settings.resolution,
        weights=weights,
        sha256=digest,
        pretrain_s=pretrain_s,
        profiles=tuple(profile_model(model, settings, model.num_stages)),
    )
