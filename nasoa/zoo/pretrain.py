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
from nasoa.data import make_test_loader
from nasoa.models import create_model, model_complexity
from nasoa.models.reference import LITE0_RESOLUTION
from nasoa.models.registry import model_kind, model_pretrained
from nasoa.search.archive import Record, non_dominated
from nasoa.space import ETNAS, parse
from nasoa.train.device import device_name
from nasoa.train.loop import evaluate
from nasoa.train.recipe import Recipe, fit, profile, source_task
from nasoa.zoo.manifest import Profile, ZooEntry
from nasoa.zoo.store import save_weights


@dataclass(frozen=True)
class ZooItem:
    """A model to put in the zoo: a display name, its kind and its architecture (encoding or reference name).

    ``pretrained`` names where published weights come from (``"imagenet"``): such an entry keeps them and is not
    trained on the zoo's source, only profiled.
    """

    name: str
    kind: str  # "etnas" | "reference"
    arch: str
    key: str = ""
    pretrained: str = ""


def item_key(item: ZooItem, tag: str) -> str:
    """``<archid>.<tag>`` for ET-NAS, ``<reference>.<tag>`` for references, ``<reference>.imagenet`` for published."""
    if item.kind == "etnas":
        return f"{parse(item.arch).archid}.{tag}"
    return f"{item.arch}.{item.pretrained or tag}"


def resolve_item(name: str) -> ZooItem:
    """A zoo item from a published ET-NAS name, an encoding or a reference model name (with published weights)."""
    return ZooItem(name=name, kind=model_kind(name), arch=ETNAS.get(name, name), pretrained=model_pretrained(name))


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
    """Pretrain ``item`` on the recipe's source (unless it has published weights), save and profile it.

    ``top1`` is its accuracy on the source's test split (its validation split when there is none; NaN for published
    weights, which never saw the source). Weights go under ``root``.
    """
    t0 = time.perf_counter()
    task = source_task(recipe.source, recipe.resolution, recipe.seed)
    torch.manual_seed(recipe.seed)
    if item.pretrained:
        model, top1, source, num_classes = create_model(item.arch, 1000), math.nan, item.pretrained, 1000
    else:
        model, num_classes = create_model(item.arch, task.num_classes), task.num_classes
        top1, source = _trained_top1(model, task, recipe, item.name), recipe.source
    model = model.cpu()
    key = item.key or item_key(item, recipe.tag)
    weights, digest = save_weights(model, root, key)
    cx = model_complexity(item.arch, recipe.resolution, num_classes)
    return ZooEntry(
        key=key,
        name=item.name,
        kind=item.kind,
        arch=item.arch,
        source=source,
        num_classes=num_classes,
        top1=top1,
        params=cx.params,
        macs=cx.macs,
        num_stages=model.num_stages,
        resolution=LITE0_RESOLUTION if item.pretrained else recipe.resolution,
        weights=weights,
        sha256=digest,
        pretrain_s=time.perf_counter() - t0,
        profiles=tuple(profile_model(model, recipe, model.num_stages)),
    )


def _trained_top1(model, task, recipe: Recipe, name: str) -> float:  # noqa: ANN001
    """Pretrain ``model`` with the recipe; its top-1 on the source's test split (validation when there is none)."""
    _, ev = fit(model, recipe)
    if ev is None:
        raise FloatingPointError(f"{name}: non-finite loss while pretraining")
    if task.test is None:
        return float(ev.top1)
    return float(evaluate(model, make_test_loader(task, recipe.batch_size), device=recipe.device).top1)
