"""Tests for nasoa.data.split."""

import numpy as np
import pytest

from nasoa.data import select_classes, stratified_split, stratified_subsample

LABELS = np.repeat(np.arange(4), [50, 30, 20, 10])


def test_split_is_a_partition_with_per_class_proportions():
    train, val = stratified_split(LABELS, 0.2, seed=0)
    assert len(np.intersect1d(train, val)) == 0
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(len(LABELS)))
    assert np.bincount(LABELS[val]).tolist() == [10, 6, 4, 2]
    assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)


def test_split_is_deterministic_in_the_seed():
    a = stratified_split(LABELS, 0.3, seed=1)
    b = stratified_split(LABELS, 0.3, seed=1)
    c = stratified_split(LABELS, 0.3, seed=2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[1], c[1])


def test_split_keeps_one_of_each_class_on_both_sides():
    labels = np.array([0, 0, 1, 1, 1, 2])
    train, val = stratified_split(labels, 0.1, seed=0)
    assert set(labels[train]) == {0, 1, 2}
    assert set(labels[val]) == {0, 1}  # class 2 has a single sample: it stays in train
    train, val = stratified_split(labels, 0.0, seed=0)
    assert len(val) == 0 and len(train) == 6


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5])
def test_split_rejects_bad_fractions(fraction):
    with pytest.raises(ValueError, match="val_fraction must be in"):
        stratified_split(LABELS, fraction)


def test_subsample_keeps_proportions_and_every_class():
    keep = stratified_subsample(LABELS, 55, seed=0)
    assert len(keep) == 55 and len(np.unique(keep)) == 55
    assert np.bincount(LABELS[keep]).tolist() == [25, 15, 10, 5]
    few = stratified_subsample(LABELS, 5, seed=0)
    assert len(few) == 5 and set(LABELS[few]) == {0, 1, 2, 3}
    assert np.array_equal(stratified_subsample(LABELS, 110), np.arange(110))
    assert not np.array_equal(stratified_subsample(LABELS, 20, seed=0), stratified_subsample(LABELS, 20, seed=1))


@pytest.mark.parametrize("n", [0, 111])
def test_subsample_rejects_impossible_sizes(n):
    with pytest.raises(ValueError, match=r"num_train must be in \[1, 110\]"):
        stratified_subsample(LABELS, n)


def test_select_classes_remaps_in_the_given_order():
    labels = np.array([5, 1, 3, 1, 5, 0])
    idx, new = select_classes(labels, [5, 1])
    assert idx.tolist() == [0, 1, 3, 4]
    assert new.tolist() == [0, 1, 1, 0]


def test_select_classes_errors():
    with pytest.raises(ValueError, match=r"classes \[7\] not found"):
        select_classes(LABELS, [0, 7])
    with pytest.raises(ValueError, match="duplicates"):
        select_classes(LABELS, [1, 1])
    with pytest.raises(ValueError, match="at least one"):
        select_classes(LABELS, [])
