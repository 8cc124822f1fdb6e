"""Task probes: how well each zoo model's frozen features fit a task, measured on a sample of its images.

For every zoo model: penultimate features (the stages, then the head's pooling) of ``sample`` training images
and ``val_sample`` validation images, with the pretrained weights and BatchNorm statistics as they are; the probe's
score is the validation top-1 of a nearest-class-mean classifier on L2-normalized features (``ncm``) or of a
5-nearest-neighbour vote (``knn``). The regime predictor reads these scores as the task's features: how hard
the task is, and which model's features fit it. Scores are cached on disk (plain JSON) by a fingerprint of the
sampled images, the model's weights and the method; the seconds a call spent (loading, forward passes) are
returned, so the caller can count them against a budget. A probe may be given an allowance (``max_s``, a share of
the task's budget): models are probed in order until the next one is expected to overrun it; the rest are left out.

The command line that computes the scores a client sends to the service as ``probes`` is
``python -m nasoa.jobs.probe`` (it opens the zoo, which this room does not import).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nasoa.common.io import write_json_atomic
from nasoa.data import folder_task

__all__ = ["METHODS", "ProbeCache", "ProbeResult", "probe_folder", "probe_zoo", "sample_images"]

#: Probe classifiers on frozen features.
METHODS = ("ncm", "knn")
#: Bumped when scores computed the old way must not be reused.
PROBE_VERSION = 1


@dataclass(frozen=True)
class ProbeResult:
    """Probe scores of zoo models on one task.

    Attributes:
        scores: Probe top-1 by zoo key.
        seconds: Wall seconds this call spent (sampling, loading, forward passes; a cache hit costs almost none).
        fingerprint: Hash of the sampled images and labels.
        cached: Zoo keys whose score came from the cache.
        method: The probe classifier.
        sample: Training and validation images used.
        errors: Why a model could not be probed, by zoo key (left out of ``scores``).
        skipped: Zoo keys left out because the allowance ``max_s`` would have been overrun.
    """

    scores: dict[str, float]
    seconds: float
    fingerprint: str
    cached: list[str] = field(default_factory=list)
    method: str = "ncm"
    sample: tuple[int, int] = (0, 0)
    errors: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ProbeCache:
    """Probe scores on disk, one JSON file per data fingerprint (``<root>/<fp[:2]>/<fp>.json``)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, fingerprint: str) -> Path:
        return self.root / fingerprint[:2] / f"{fingerprint}.json"

    def get(self, fingerprint: str) -> dict[str, float]:
        """Cached scores by cache key (empty when none or unreadable)."""
        try:
            data = json.loads(self._path(fingerprint).read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def put(self, fingerprint: str, scores: dict[str, float]) -> None:
        """Adds scores (written atomically; a concurrent writer's scores may be lost, never torn)."""
        path = self._path(fingerprint)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic({**self.get(fingerprint), **scores}, path, indent=None)


def sample_images(task: Any, sample: int, val_sample: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """``sample`` training and ``val_sample`` validation images (seeded, without replacement) and their labels."""
    rng = np.random.default_rng(seed)

    def take(dataset: Any, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = np.sort(rng.choice(len(dataset), size=min(k, len(dataset)), replace=False))
        items = [dataset[int(i)] for i in idx]
        return torch.stack([x for x, _ in items]).float(), torch.as_tensor([int(y) for _, y in items])

    return (*take(task.train, sample), *take(task.val, val_sample))


def fingerprint(tensors: Sequence[torch.Tensor]) -> str:
    """SHA-256 of the tensors' bytes and shapes (float32 images at the task's resolution, int labels)."""
    h = hashlib.sha256(f"probe-v{PROBE_VERSION}".encode())
    for t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(str(tuple(t.shape)).encode() + str(t.dtype).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


@torch.inference_mode()
def features(model: nn.Module, images: torch.Tensor, batch_size: int = 64, device: str = "cpu") -> torch.Tensor:
    """Penultimate features (stages, then the head's pooling and flattening) in eval mode, L2-normalized."""
    model.eval()
    out = []
    for lo in range(0, len(images), batch_size):
        x = images[lo : lo + batch_size].to(device)
        out.append(model.head[:-1](model.forward_features(x)).float().cpu())
    feats = torch.cat(out)
    return feats / feats.norm(dim=1, keepdim=True).clamp_min(1e-12)


def ncm_top1(f_train: torch.Tensor, y_train: torch.Tensor, f_val: torch.Tensor, y_val: torch.Tensor) -> float:
    """Validation top-1 of the nearest class mean (cosine) of the training features."""
    classes = torch.unique(y_train)
    means = torch.stack([f_train[y_train == c].mean(0) for c in classes])
    means = means / means.norm(dim=1, keepdim=True).clamp_min(1e-12)
    pred = classes[(f_val @ means.T).argmax(1)]
    return float((pred == y_val).float().mean())


def knn_top1(f_train: torch.Tensor, y_train: torch.Tensor, f_val: torch.Tensor, y_val: torch.Tensor, k: int = 5):  # noqa: ANN201
    """Validation top-1 of a ``k``-nearest-neighbour (cosine) vote, ties to the nearest."""
    sim = f_val @ f_train.T
    top = sim.topk(min(k, len(f_train)), dim=1)
    votes = torch.zeros(len(f_val), int(y_train.max()) + 1)
    votes.scatter_add_(1, y_train[top.indices], 1.0 + 1e-3 * top.values)  # similarity breaks ties
    return float((votes.argmax(1) == y_val).float().mean())


def probe_zoo(
    zoo: Any,
    task: Any,
    sample: int = 128,
    val_sample: int = 64,
    seed: int = 0,
    device: str = "cpu",
    models: Sequence[str] | None = None,
    method: str = "ncm",
    cache_dir: str | Path | None = None,
    batch_size: int = 64,
    max_s: float | None = None,
) -> ProbeResult:
    """Probe scores of every zoo model (or ``models``, keys) on ``task`` (a ``nasoa.data.Task``).

    Args:
        zoo: A ``nasoa.zoo.Zoo``.
        task: The task; its training and validation splits are sampled.
        sample: Training images whose features make the classifier.
        val_sample: Validation images it is scored on.
        seed: Seed of the sample.
        device: Torch device of the forward passes.
        models: Zoo keys to probe (None: all).
        method: ``ncm`` (nearest class mean) or ``knn``.
        cache_dir: Folder of the score cache (None: no cache).
        batch_size: Images per forward pass.
        max_s: Seconds allowed (None: no limit): after the first model probed, another is probed only while the
            seconds spent plus the slowest model so far stay within it; 0 probes nothing.
    """
    if method not in METHODS:
        raise ValueError(f"unknown probe method {method!r}; known: {', '.join(METHODS)}")
    if max_s is not None and not 0 <= max_s < math.inf:
        raise ValueError(f"max_s must be a finite non-negative number of seconds, got {max_s!r}")
    start = time.perf_counter()
    keys = list(models or zoo.keys())
    if max_s == 0:
        return ProbeResult({}, time.perf_counter() - start, "", method=method, skipped=keys)
    data = sample_images(task, sample, val_sample, seed)
    fp = fingerprint(data)
    cache = ProbeCache(cache_dir) if cache_dir else None
    known = cache.get(fp) if cache else {}
    scores, cached, fresh, errors, skipped, slowest = {}, [], {}, {}, [], 0.0
    for key in keys:
        name = f"{key}:{zoo.get(key).sha256[:16]}:{method}"
        if name in known:
            scores[key] = known[name]
            cached.append(key)
            continue
        began = time.perf_counter()
        if max_s is not None and slowest > 0 and began - start + slowest > max_s:
            skipped.append(key)
            continue
        try:
            scores[key] = fresh[name] = _score(zoo, key, data, method, device, batch_size)
        except Exception as err:  # noqa: BLE001 - one model's failure (e.g. a corrupt weights file) is reported
            errors[key] = f"{type(err).__name__}: {err}"
        slowest = max(slowest, time.perf_counter() - began)
    if cache and fresh:
        cache.put(fp, fresh)
    sizes = (len(data[0]), len(data[2]))
    return ProbeResult(scores, time.perf_counter() - start, fp, cached, method, sizes, errors, skipped)


def _score(zoo: Any, key: str, data: tuple, method: str, device: str, batch_size: int) -> float:
    x_train, y_train, x_val, y_val = data
    model = zoo.load(key, device=device)
    f_train = features(model, x_train, batch_size, device)
    f_val = features(model, x_val, batch_size, device)
    top1 = ncm_top1 if method == "ncm" else knn_top1
    score = top1(f_train, y_train, f_val, y_val)
    return score if math.isfinite(score) else 0.0


def probe_folder(zoo: Any, root: str | Path, resolution: int, channels: int = 3, **kwargs: Any) -> ProbeResult:
    """:func:`probe_zoo` on an ImageFolder tree (``root/<class>/<image>``, or ``train/`` and ``val/`` of them)."""
    task = folder_task(root, resolution=resolution, channels=channels, verify=False)
    return probe_zoo(zoo, task, **kwargs)
