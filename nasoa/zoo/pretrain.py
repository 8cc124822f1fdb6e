"""Pretrain and profile one zoo entry with the ``recipe@pretrain`` recipe; pick a spread of Pareto members.

Plain torch, no Ray: :mod:`nasoa.jobs.zoo` runs :func:`pretrain_entry` on Ray Train workers, one entry per item.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from nasoa.common.pareto import spread
from nasoa.models import create_model, model_complexity
from nasoa.models.registry import model_kind
from nasoa.search.archive import Record, non_dominated
from nasoa.space import ETNAS, parse
from nasoa.train.device import device_name
from nasoa.train.recipe import Recipe, fit, profile, source_task
from nasoa.zoo.manifest import Profile, ZooEntry
from nasoa.zoo.store import save_weights


@dataclass(frozen=True)
class ZooItem:
    """A model to put in the zoo: a display name, its kind and its architecture (encoding or reference name)."""

    name: str
    kind: str  # "etnas" | "reference"
    arch: str
    key: str = ""


def item_key(item: ZooItem, tag: str) -> str:
    """``<archid>.<tag>`` for ET-NAS networks, ``<reference name>.<tag>`` for references."""
    if item.kind == "etnas":
        return f"{parse(item.arch).archid}.{tag}"
    return f"{item.arch}.{tag}"


def resolve_item(name: str) -> ZooItem:
    """A zoo item from a published ET-NAS name, an encoding or a reference model name."""
    kind = model_kind(name)
    return ZooItem(name=name, kind=kind, arch=ETNAS.get(name, name))


def spread_front(records: Sequence[Record], k: int) -> list[Record]:
    """``k`` members of the records' front spread along training step time (both ends included)."""
    return spread(non_dominated(records), k)


def profile_model(model, recipe: Recipe, num_stages: int) -> list[Profile]:  # noqa: ANN001
    """Profiles at each recipe batch size, for every frozen-stage count when ``recipe.profile_frozen``."""
    device = device_name(recipe.device)
    out = []
    for batch, frozen, p in profile(model, recipe, num_stages):
        peak = p.peak_mem_mb if p.peak_mem_mb is not None else math.nan
        out.append(Profile(device, batch, recipe.resolution, frozen, p.train_step_ms, p.inference_ms, peak))
    return out


def pretrain_entry(item: ZooItem, recipe: Recipe, worker: str = "", *, root: str) -> ZooEntry:
    """Pretrain ``item`` on the recipe's source, evaluate top-1, save its weights under ``root`` and profile it."""
    t0 = time.perf_counter()
    task = source_task(recipe.source, recipe.resolution, recipe.seed)
    torch.manual_seed(recipe.seed)
    model = create_model(item.arch, task.num_classes)
    _, ev = fit(model, recipe)
    if ev is None:
        raise FloatingPointError(f"{item.name}: non-finite loss while pretraining")
    model = model.cpu()
    key = item.key or item_key(item, recipe.tag)
    weights, digest = save_weights(model, root, key)
    pretrain_s = time.perf_counter() - t0
    cx = model_complexity(item.arch, recipe.resolution, task.num_classes)
    return ZooEntry(
        key=key,
        name=item.name,
        kind=item.kind,
        arch=item.arch,
        source=recipe.source,
        num_classes=task.num_classes,
        top1=float(ev.top1),
        params=cx.params,
        macs=cx.macs,
        num_stages=model.num_stages,
        resolution=recipe.resolution,
        weights=weights,
        sha256=digest,
        pretrain_s=pretrain_s,
        profiles=tuple(profile_model(model, recipe, model.num_stages)),
    )
