"""Tests for nasoa.data.synthetic."""

import numpy as np
import pytest
import torch

from nasoa.data import TaskMeta, synthetic_task


def _nearest_centroid_accuracy(task):
    xtr = task.train.images.flatten(1)
    xv = task.val.images.flatten(1)
    ytr, yv = task.train.labels, task.val.labels
    centroids = torch.stack([xtr[ytr == c].mean(0) for c in range(task.num_classes)])
    pred = torch.cdist(xv, centroids).argmin(1)
    return (pred == yv).float().mean().item()


def test_shapes_balance_and_meta():
    task = synthetic_task(num_classes=4, num_train=40, num_val=12, resolution=16, channels=1)
    x, y = task.train[0]
    assert x.shape == (1, 16, 16) and x.dtype == torch.float32 and type(y) is int
    assert np.bincount(task.train.labels.numpy()).tolist() == [10] * 4
    assert np.bincount(task.val.labels.numpy()).tolist() == [3] * 4
    assert task.meta == TaskMeta(4, 40, 16, 1, name=task.name)
    assert abs(task.train.images.mean().item()) < 0.05 and abs(task.train.images.std().item() - 1) < 0.05


def test_deterministic_in_the_seed():
    a = synthetic_task(num_train=50, num_val=10, seed=3)
    b = synthetic_task(num_train=50, num_val=10, seed=3)
    c = synthetic_task(num_train=50, num_val=10, seed=4)
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.val.images, b.val.images)
    assert not torch.allclose(a.train.images, c.train.images)


def test_difficulty_changes_how_hard_it_is():
    # checked over seeds 0-9: easy 1.0 every time, hard 0.16-0.24 (chance is 0.2)
    kwargs = {"num_classes": 5, "num_train": 200, "num_val": 100, "resolution": 16, "seed": 0}
    easy = _nearest_centroid_accuracy(synthetic_task(difficulty=0.1, **kwargs))
    mid = _nearest_centroid_accuracy(synthetic_task(difficulty=0.5, **kwargs))
    hard = _nearest_centroid_accuracy(synthetic_task(difficulty=0.9, **kwargs))
    assert easy > 0.95 > hard
    assert easy >= mid >= hard
    assert hard < 0.4


@pytest.mark.parametrize("difficulty", [-0.1, 1.5])
def test_difficulty_out_of_range(difficulty):
    with pytest.raises(ValueError, match=r"difficulty must be in \[0, 1\]"):
        synthetic_task(difficulty=difficulty)


def test_bad_sizes():
    with pytest.raises(ValueError, match="num_classes must be positive"):
        synthetic_task(num_classes=0)
    with pytest.raises(ValueError, match="num_val must be non-negative"):
        synthetic_task(num_val=-1)
