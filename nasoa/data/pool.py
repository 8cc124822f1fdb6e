"""From a pool of raw source images to a `Task`: deduplication, shards, class selection, splits, caps, loaders.

Every real-image kind (fashion, mnist5k, clipart, cards, emoji) loads its source once into an :class:`ImagePool`
and builds tasks with :func:`pool_task`, in this order:

1. deduplicate by content hash over the whole pool (one copy kept; none when copies carry different labels);
2. keep the requested shards of a fixed, seed-independent partition of the pool (tasks on different shards of
   one source share no image, whatever their seeds);
3. keep the requested classes (labels renumbered in the order given);
4. split into train, validation and test with the task seed, whole groups at a time (near-duplicates or a
   style, e.g. a deck of cards, never straddle two splits);
5. cap the training set (stratified);
6. resize (area-antialiased when shrinking), set channels, and normalize with training-set statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from nasoa.data.arrays import ArrayImageDataset, Preprocess
from nasoa.data.augment import Augment
from nasoa.data.sources import slug
from nasoa.data.split import group_split, select_classes, shard_indices, stratified_subsample, unique_by_hash
from nasoa.data.task import Task


@dataclass(frozen=True, eq=False)
class ImagePool:
    """Every image of one source with what splitting needs.

    Attributes:
        name: Source name; it also fixes the shard partition.
        images: Raw images, N x C x H x W uint8 (C is 1 or 3, square).
        labels: Integer label of every image.
        classes: Class names, index i naming label i.
        hashes: Content hash of every image (see `nasoa.data.sources.content_hash`).
        groups: Group id of every image (None: each image alone); a group never straddles two splits or shards.
    """

    name: str
    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    hashes: np.ndarray
    groups: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.ndim != 4 or self.images.dtype != np.uint8 or self.images.shape[2] != self.images.shape[3]:
            raise ValueError(f"pool {self.name!r}: images must be square N x C x H x W uint8, got {self.images.shape}")
        lengths = {len(self.labels), len(self.hashes), n if self.groups is None else len(self.groups)}
        if lengths != {n}:
            raise ValueError(f"pool {self.name!r}: {n} images but labels/hashes/groups of lengths {sorted(lengths)}")
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.classes)):
            raise ValueError(f"pool {self.name!r}: labels outside [0, {len(self.classes)})")


def resolve_classes(classes: Sequence[int | str] | None, names: Sequence[str]) -> list[int] | None:
    """Class selection by label number or by name (exact, or the same up to case and punctuation)."""
    if classes is None:
        return None
    if isinstance(classes, (str, int)):
        classes = [classes]
    by_slug = {slug(n): i for i, n in enumerate(names)}
    out = []
    for c in classes:
        if isinstance(c, (int, np.integer)) and not isinstance(c, bool):
            if not 0 <= int(c) < len(names):
                raise ValueError(f"class {c} out of range: there are {len(names)} classes ({', '.join(names)})")
            out.append(int(c))
        elif str(c) in names or slug(str(c)) in by_slug:
            out.append(names.index(str(c)) if str(c) in names else by_slug[slug(str(c))])
        else:
            raise ValueError(f"unknown class {c!r}; classes: {', '.join(names)}")
    return out


def fit_resolution(images: np.ndarray, resolution: int) -> torch.Tensor:
    """Raw uint8 images as a tensor; shrunk with antialiasing (as float 0..255) when larger than resolution."""
    x = torch.from_numpy(np.ascontiguousarray(images))
    if x.shape[-1] <= resolution:
        return x
    small = F.interpolate(x.float(), size=(resolution, resolution), mode="bilinear", antialias=True)
    return small.clamp_(0, 255)


def pool_task(
    pool: ImagePool,
    name: str,
    *,
    classes: Sequence[int | str] | None = None,
    num_train: int | None = None,
    resolution: int = 32,
    channels: int = 3,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    shard: str | None = None,
    augment: str | Augment | None = None,
    default_augment: Augment | None = None,
) -> Task:
    """Builds a task from a pool (see the module docstring for the steps).

    Args:
        pool: The source's images.
        name: Task name.
        classes: Classes to keep, by number or name (label i is the i-th listed); all when None.
        num_train: Cap on training images (stratified pick); all when None.
        resolution: Image side in pixels.
        channels: Output channels (1: luma; 3: RGB, grayscale replicated).
        val_fraction: Share held out for validation.
        test_fraction: Share held out for test; 0 leaves the task without a test split.
        seed: Seed of the split and of the cap (not of the shards).
        shard: ``"k/n"`` or ``"a-b/n"``: keep those shards of the source's fixed n-way partition.
        augment: Training augmentation (see `Augment.parse`); None: default_augment.
        default_augment: The kind's default policy.

    Returns:
        The task; every dataset carries the content hashes of its images (`dataset.hashes`).
    """
    if resolution < 1 or channels not in (1, 3):
        raise ValueError(f"resolution must be positive and channels 1 or 3, got {resolution} and {channels}")
    groups = pool.groups if pool.groups is not None else np.arange(len(pool.labels))
    idx = unique_by_hash(pool.hashes, pool.labels)
    idx = idx[shard_indices(pool.labels[idx], groups[idx], shard, salt=pool.name)]
    labels, names = pool.labels[idx], list(pool.classes)
    wanted = resolve_classes(classes, pool.classes)
    if wanted is not None:
        keep, labels = select_classes(labels, wanted)
        idx, names = idx[keep], [pool.classes[c] for c in wanted]
    else:
        present = np.unique(labels)
        if len(present) != len(names):  # a shard or the dedup emptied a class: renumber the rest
            keep, labels = select_classes(labels, present.tolist())
            idx, names = idx[keep], [pool.classes[c] for c in present]
    train, val, test = group_split(labels, groups[idx], val_fraction, test_fraction, seed)
    if num_train is not None:
        train = train[stratified_subsample(labels[train], num_train, seed)]

    def part(positions: np.ndarray) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        return fit_resolution(pool.images[idx[positions]], resolution), labels[positions], pool.hashes[idx[positions]]

    train_x, train_y, train_h = part(train)
    if len(train_x) == 0:
        raise ValueError(f"task {name!r} has no training images (shard {shard!r}, classes {classes!r})")
    preprocess = Preprocess(resolution, channels, scale=255.0).with_stats(train_x, seed=seed)
    datasets = [ArrayImageDataset.build(train_x, train_y, preprocess, hashes=train_h)]
    for positions in (val, test):
        x, y, h = part(positions)
        datasets.append(ArrayImageDataset.build(x, y, preprocess, hashes=h))
    policy = Augment.parse(augment, default_augment)
    test_set = datasets[2] if test_fraction > 0 else None
    return Task.from_datasets(name, datasets[0], datasets[1], len(names), names, test=test_set, augment=policy)
