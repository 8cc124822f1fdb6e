"""Deterministic, stratified index selection: class subsets, splits, training-size caps, shards and deduplication."""

from __future__ import annotations

import re
import zlib
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


def unique_by_hash(hashes: Sequence[str] | np.ndarray, labels: Sequence[int] | np.ndarray) -> np.ndarray:
    """Indices that keep each distinct image once: the first copy, or none when its copies carry different labels.

    Args:
        hashes: Content hash of every sample.
        labels: Integer label of every sample.

    Returns:
        Sorted indices of the samples to keep.
    """
    h, arr = np.asarray(hashes), _labels(labels)
    if len(h) != len(arr):
        raise ValueError(f"{len(h)} hashes but {len(arr)} labels")
    _, first, inverse = np.unique(h, return_index=True, return_inverse=True)
    lo = np.full(len(first), np.iinfo(np.int64).max)
    hi = np.full(len(first), np.iinfo(np.int64).min)
    np.minimum.at(lo, inverse, arr)
    np.maximum.at(hi, inverse, arr)
    return np.sort(first[lo == hi])


def _strata(labels: np.ndarray, groups: np.ndarray) -> list[np.ndarray]:
    """Sample indices per stratum: per class when every group lies in one class, else a single stratum."""
    _, inverse = np.unique(groups, return_inverse=True)
    lo = np.full(inverse.max() + 1, np.iinfo(np.int64).max)
    hi = np.full(inverse.max() + 1, np.iinfo(np.int64).min)
    np.minimum.at(lo, inverse, labels)
    np.maximum.at(hi, inverse, labels)
    if np.any(lo != hi):
        return [np.arange(len(labels))]
    return [np.flatnonzero(labels == c) for c in np.unique(labels)]


def _group_order(groups: np.ndarray, idx: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """The samples of each group within idx, groups in a shuffled order."""
    order = np.argsort(groups[idx], kind="stable")
    _, starts = np.unique(groups[idx][order], return_index=True)
    members = np.split(idx[order], starts[1:])
    return [members[i] for i in rng.permutation(len(members))]


def _fill(members: list[np.ndarray], free: list[int], target: int) -> list[int]:
    """Greedy: groups (in order) that fit in target samples without overshooting.

    At least one group is chosen when target > 0, and one group is always left free (for training).
    """
    chosen: list[int] = []
    need = target
    for g in free:
        if need <= 0 or len(free) - len(chosen) <= 1:
            break
        if len(members[g]) <= need:
            chosen.append(g)
            need -= len(members[g])
    if not chosen and target > 0 and len(free) > 1:
        chosen = [min(free, key=lambda g: len(members[g]))]
    return chosen


def group_split(
    labels: Sequence[int] | np.ndarray,
    groups: Sequence[int] | np.ndarray | None,
    val_fraction: float,
    test_fraction: float,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Splits samples into train, validation and test so that no group straddles two splits.

    Groups hold near-duplicates (a drawing and its black-and-white copy) or one style (a deck of cards). When every
    group lies within one class the split is made class by class (stratified); otherwise whole groups are split
    across all classes at once (every deck holds every class). In each stratum groups are shuffled from seed and
    filled greedily into test, then validation, up to round(n * fraction) samples without overshooting; each of
    them gets at least one group when the fraction is positive and a group is left for training. Without groups
    (every sample its own group) this is a plain stratified three-way split.

    Args:
        labels: Integer label of every sample.
        groups: Group id of every sample; None puts every sample in its own group.
        val_fraction: Share held out for validation, in [0, 1).
        test_fraction: Share held out for test, in [0, 1); val_fraction + test_fraction < 1.
        seed: Seed of the shuffle; the same seed gives the same split.

    Returns:
        Sorted train, validation and test indices.
    """
    if not (0.0 <= val_fraction < 1.0 and 0.0 <= test_fraction < 1.0 and val_fraction + test_fraction < 1.0):
        raise ValueError(f"need val_fraction, test_fraction >= 0 with sum < 1, got {val_fraction}, {test_fraction}")
    arr = _labels(labels)
    grp = np.arange(len(arr)) if groups is None else np.asarray(groups)
    if len(grp) != len(arr):
        raise ValueError(f"{len(grp)} group ids but {len(arr)} labels")
    rng = np.random.default_rng(seed)
    parts: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
    for stratum in _strata(arr, grp) if len(arr) else []:
        members = _group_order(grp, stratum, rng)
        free = list(range(len(members)))
        for split, fraction in ((2, test_fraction), (1, val_fraction)):
            target = max(int(round(len(stratum) * fraction)), 1 if fraction > 0 else 0)
            chosen = _fill(members, free, target)
            parts[split].extend(members[g] for g in chosen)
            taken = set(chosen)
            free = [g for g in free if g not in taken]
        parts[0].extend(members[g] for g in free)
    empty = np.zeros(0, dtype=np.int64)
    return tuple(np.sort(np.concatenate(p)) if p else empty for p in parts)  # type: ignore[return-value]


def parse_shard(spec: str | int | None) -> tuple[tuple[int, ...], int] | None:
    """Reads a shard spec: ``"k/n"`` (shard k of n) or ``"a-b/n"`` (shards a..b of n, inclusive); None for all.

    Returns:
        The selected shard numbers and n, or None.
    """
    if spec is None:
        return None
    match = re.fullmatch(r"\s*(\d+)(?:\s*-\s*(\d+))?\s*/\s*(\d+)\s*", str(spec))
    if not match:
        raise ValueError(f"shard must look like 'k/n' or 'a-b/n', got {spec!r}")
    lo, hi, n = int(match.group(1)), int(match.group(2) or match.group(1)), int(match.group(3))
    if not 0 <= lo <= hi < n:
        raise ValueError(f"shard {spec!r}: need 0 <= a <= b < n")
    return tuple(range(lo, hi + 1)), n


def shard_indices(
    labels: Sequence[int] | np.ndarray,
    groups: Sequence[int] | np.ndarray | None,
    shard: str | None,
    salt: str,
) -> np.ndarray:
    """Indices of the samples in some shards of a fixed partition of a source (tasks on other shards share none).

    The partition does not depend on any task seed: groups are ordered by a permutation seeded from salt (the
    source name) and dealt, largest first, to the shard with the fewest samples so far, class by class when every
    group lies in one class (stratified shards) and across all classes otherwise.

    Args:
        labels: Integer label of every sample of the whole source.
        groups: Group id of every sample (None: each sample alone); a group never straddles two shards.
        shard: See :func:`parse_shard`; None keeps every sample.
        salt: Fixes the partition, e.g. the source name.

    Returns:
        Sorted indices of the samples in the selected shards.
    """
    arr = _labels(labels)
    parsed = parse_shard(shard)
    if parsed is None:
        return np.arange(len(arr))
    wanted, n = parsed
    grp = np.arange(len(arr)) if groups is None else np.asarray(groups)
    rng = np.random.default_rng(zlib.crc32(salt.encode()))
    keep = []
    for stratum in _strata(arr, grp) if len(arr) else []:
        members = _group_order(grp, stratum, rng)
        members.sort(key=len, reverse=True)  # stable: equal sizes keep the shuffled order
        load = np.zeros(n, dtype=np.int64)
        for m in members:
            k = int(np.argmin(load))
            load[k] += len(m)
            if k in wanted:
                keep.append(m)
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=np.int64)
