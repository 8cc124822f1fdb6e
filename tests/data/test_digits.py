"""Tests for nasoa.data.digits."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from nasoa.data import TaskMeta, digits_task


@pytest.fixture(scope="module")
def task():
    return digits_task()


def _stack(ds):
    return ds.images.expand(-1, 3, -1, -1) if ds.images.shape[1] == 1 else ds.images, ds.labels


def test_shapes_dtypes_and_labels(task):
    x, y = task.train[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    assert type(y) is int and 0 <= y < 10
    assert task.num_classes == 10 and task.classes == tuple(str(d) for d in range(10))
    assert len(task.train) + len(task.val) == 1797
    assert task.meta == TaskMeta(num_classes=10, num_train=len(task.train), resolution=32, channels=3, name="digits")


def test_training_images_are_normalized_per_channel(task):
    images, _ = _stack(task.train)
    assert torch.allclose(images.mean(dim=(0, 2, 3)), torch.zeros(3), atol=0.02)
    assert torch.allclose(images.std(dim=(0, 2, 3)), torch.ones(3), atol=0.02)
    assert torch.equal(task.train[5][0][0], task.train[5][0][2])  # grayscale replicated


def test_split_is_stratified(task):
    _, full = load_digits(return_X_y=True)
    expected_val = np.round(np.bincount(full) * 0.2).astype(int)
    assert np.bincount(task.val.labels.numpy(), minlength=10).tolist() == expected_val.tolist()


def test_same_seed_same_split_other_seed_other_split(task):
    again = digits_task(seed=0)
    other = digits_task(seed=1)
    assert torch.equal(again.val.images, task.val.images) and torch.equal(again.val.labels, task.val.labels)
    assert not torch.equal(other.val.images, task.val.images)


def test_pixels_match_the_source_images():
    task = digits_task(resolution=8, channels=1, val_fraction=0.0)
    images, labels = load_digits(return_X_y=True)
    raw = torch.as_tensor(images, dtype=torch.float32).view(-1, 1, 8, 8) / 16.0
    x = task.train.images
    restored = x * raw.std() + raw.mean()
    assert torch.allclose(restored, raw, atol=1e-4)
    assert task.train.labels.tolist() == labels.tolist()


def test_class_subset_remaps_labels():
    task = digits_task(classes=[7, 3], resolution=16)
    assert task.num_classes == 2 and task.classes == ("7", "3")
    assert set(task.train.labels.tolist()) == {0, 1}
    images, labels = load_digits(return_X_y=True)
    assert len(task.train) + len(task.val) == int(np.sum(labels == 7) + np.sum(labels == 3))
    # label 0 holds sevens: its mean image correlates best with the mean seven
    mean0 = task.train.images[task.train.labels == 0].mean(0)[0]
    small = torch.nn.functional.interpolate(mean0[None, None], size=(8, 8), mode="area")[0, 0].flatten()
    seven, three = images[labels == 7].mean(0), images[labels == 3].mean(0)
    corr = [np.corrcoef(small.numpy(), ref)[0, 1] for ref in (seven, three)]
    assert corr[0] > corr[1]


def test_num_train_cap_is_stratified():
    task = digits_task(num_train=100, classes=[0, 1, 2, 3, 4])
    assert len(task.train) == 100 and task.meta.num_train == 100
    assert np.bincount(task.train.labels.numpy()).tolist() == [20] * 5
    with pytest.raises(ValueError, match="num_train must be in"):
        digits_task(num_train=5000)


def test_bad_arguments():
    with pytest.raises(ValueError, match="classes"):
        digits_task(classes=[3, 11])
    with pytest.raises(ValueError, match="resolution"):
        digits_task(resolution=0)
