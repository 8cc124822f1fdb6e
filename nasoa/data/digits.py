"""The scikit-learn digits task: 1,797 8x8 grayscale digits (10 classes), the one real image set that ships offline."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch

from nasoa.data.arrays import ArrayImageDataset, Preprocess
from nasoa.data.split import group_split, select_classes, stratified_split, stratified_subsample
from nasoa.data.task import Task


@lru_cache(maxsize=1)
def _load_digits() -> tuple[torch.Tensor, np.ndarray]:
    from sklearn.datasets import load_digits  # lazy: scikit-learn takes a second to import, only digits need it

    bunch = load_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1)  # N x 1 x 8 x 8, values 0..16
    return images, np.asarray(bunch.target, dtype=np.int64)


def digits_task(
    resolution: int = 32,
    classes: Sequence[int] | None = None,
    num_train: int | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
    channels: int = 3,
    test_fraction: float = 0.0,
    augment: str | None = None,
) -> Task:
    """Builds the digits task, upsampled bilinearly and normalized with training-set statistics.

    With the default test_fraction=0 the task has no test split and its train/val split is exactly the one it
    always had for the same seed; test_fraction > 0 draws a stratified three-way split instead (other
    validation images).

    Args:
        resolution: Image side in pixels.
        classes: Digits to keep (label i is the i-th digit listed); all ten when None.
        num_train: Cap on training images (stratified pick); all when None.
        val_fraction: Share of each class held out for validation.
        seed: Seed of the stratified split and of the cap.
        channels: Output channels (grayscale replicated).
        test_fraction: Share of each class held out for test; 0 for no test split.
        augment: Training augmentation (see `Augment.parse`, never flips for digits); None: none.

    Returns:
        The task; its tensors are computed once.
    """
    if resolution < 1:
        raise ValueError(f"resolution must be positive, got {resolution}")
    images, labels = _load_digits()
    names = [str(d) for d in range(10)]
    if classes is not None:
        keep, labels = select_classes(labels, classes)
        images = images[torch.as_tensor(keep)]
        names = [str(int(c)) for c in classes]
    if test_fraction > 0:
        train_idx, val_idx, test_idx = group_split(labels, None, val_fraction, test_fraction, seed)
    else:
        (train_idx, val_idx), test_idx = stratified_split(labels, val_fraction, seed), None
    if num_train is not None:
        train_idx = train_idx[stratified_subsample(labels[train_idx], num_train, seed)]
    train_images = images[torch.as_tensor(train_idx)]
    preprocess = Preprocess(resolution, channels, scale=16.0).with_stats(train_images)
    train = ArrayImageDataset.build(train_images, labels[train_idx], preprocess)
    val = ArrayImageDataset.build(images[torch.as_tensor(val_idx)], labels[val_idx], preprocess)
    test = None
    if test_idx is not None:
        test = ArrayImageDataset.build(images[torch.as_tensor(test_idx)], labels[test_idx], preprocess)
    return Task.from_datasets("digits", train, val, len(names), names, test=test, augment=augment)
