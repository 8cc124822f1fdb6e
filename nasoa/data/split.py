"""Deterministic, stratified index selection: class subsets, train/val splits and training-size caps."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _labels(labels: Sequence[int] | np.ndarray) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"labels must be one-dimensional, got shape {arr.shape}")
    return arr.astype(np.int64, copy=False)


def select_classes(labels: Sequence[int] | np.ndarray, classes: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Keeps the samples of some classes and remaps their labels to 0..k-1.

    Args:
        labels: Integer label of every sample.
        classes: Original labels to keep; the i-th becomes label i.

    Returns:
        The kept sample indices (ascending) and their new labels.

    Raises:
        ValueError: If classes is empty, has duplicates, or names a label absent from labels.
    """
    arr = _labels(labels)
    classes = [int(c) for c in classes]
    if not classes:
        raise ValueError("classes must name at least one class")
    if len(set(classes)) != len(classes):
        raise ValueError(f"classes has duplicates: {classes}")
    present = set(np.unique(arr).tolist())
    absent = [c for c in classes if c not in present]
    if absent:
        raise ValueError(f"classes {absent} not found; the labels present are {sorted(present)}")
    mapping = {c: i for i, c in enumerate(classes)}
    idx = np.flatnonzero(np.isin(arr, classes))
    new = np.array([mapping[int(y)] for y in arr[idx]], dtype=np.int64)
    return idx, new


def stratified_split(
    labels: Sequence[int] | np.ndarray, val_fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Splits sample indices into train and validation, class by class.

    Each class sends round(n_c * val_fraction) of its samples to validation, at least one when it has two or
    more samples and val_fraction > 0, and always keeps at least one for training.

    Args:
        labels: Integer label of every sample.
        val_fraction: Share of each class held out for validation, in [0, 1).
        seed: Seed of the shuffle; the same seed gives the same split.

    Returns:
        Sorted train indices and sorted validation indices.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    arr = _labels(labels)
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(arr):
        idx = rng.permutation(np.flatnonzero(arr == c))
        n_val = int(round(len(idx) * val_fraction))
        if val_fraction > 0 and len(idx) >= 2:
            n_val = min(max(n_val, 1), len(idx) - 1)
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def stratified_subsample(labels: Sequence[int] | np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Picks n sample indices keeping class proportions (largest-remainder rounding, every class kept if n allows).

    Args:
        labels: Integer label of every sample.
        n: Number of samples to keep, 1..len(labels).
        seed: Seed of the pick.

    Returns:
        The sorted kept indices.
    """
    arr = _labels(labels)
    if not 1 <= n <= len(arr):
        raise ValueError(f"cannot keep {n} samples out of {len(arr)}; num_train must be in [1, {len(arr)}]")
    if n == len(arr):
        return np.arange(len(arr))
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(arr, return_counts=True)
    quota = counts * n / len(arr)
    take = np.floor(quota).astype(np.int64)
    if n >= len(classes):
        take = np.maximum(take, 1)
    remainder = n - take.sum()
    if remainder > 0:
        order = np.argsort(-(quota - np.floor(quota)), kind="stable")
        order = [i for i in order if take[i] < counts[i]]
        for i in order[:remainder]:
            take[i] += 1
    while take.sum() > n:  # only when forcing one per class overshot
        i = int(np.argmax(take))
        take[i] -= 1
    keep = [rng.permutation(np.flatnonzero(arr == c))[:k] for c, k in zip(classes, take, strict=True)]
    return np.sort(np.concatenate(keep))
