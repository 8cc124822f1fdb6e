"""Tests for nasoa.data.task (Task and make_loaders)."""

import pytest
import torch

from nasoa.data import ArrayImageDataset, Task, TaskMeta, make_loaders


def _task(n_train=20, n_val=8, classes=4, res=6, channels=3):
    def ds(n):
        return ArrayImageDataset(torch.randn(n, channels, res, res), [i % classes for i in range(n)])

    return Task.from_datasets("toy", ds(n_train), ds(n_val), classes, [f"c{i}" for i in range(classes)])


def test_meta_is_measured_from_the_data():
    task = _task(n_train=20, classes=4, res=6, channels=1)
    assert task.meta == TaskMeta(num_classes=4, num_train=20, resolution=6, channels=1, name="toy")
    assert task.classes == ("c0", "c1", "c2", "c3")


def test_inconsistent_tasks_are_rejected():
    task = _task()
    with pytest.raises(ValueError, match="meta.num_train=99"):
        Task("toy", task.train, task.val, 4, TaskMeta(4, 99, 6, 3))
    with pytest.raises(ValueError, match="meta.num_classes=5"):
        Task("toy", task.train, task.val, 4, TaskMeta(5, 20, 6, 3))
    with pytest.raises(ValueError, match="no training images"):
        Task.from_datasets("empty", task.train.subset([]), task.val, 4)
    non_square = ArrayImageDataset(torch.zeros(2, 3, 4, 5), [0, 1])
    with pytest.raises(ValueError, match=r"square C x H x W.*\(3, 4, 5\)"):
        Task.from_datasets("rect", non_square, non_square, 2)


def _order(loader):
    return torch.cat([y for _, y in loader]).tolist(), torch.cat([x for x, _ in loader])


def test_loaders_shuffle_deterministically_from_the_seed():
    task = _task(n_train=40)
    train_a, val_a = make_loaders(task, batch_size=8, seed=3)
    train_b, _ = make_loaders(task, batch_size=8, seed=3)
    train_c, _ = make_loaders(task, batch_size=8, seed=4)
    xa, xb, xc = _order(train_a)[1], _order(train_b)[1], _order(train_c)[1]
    assert torch.equal(xa, xb)
    assert not torch.equal(xa, xc)
    assert not torch.equal(xa, task.train.images)  # shuffled
    x, y = next(iter(train_a))
    assert x.shape == (8, 3, 6, 6) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.equal(_order(val_a)[1], task.val.images)  # validation keeps its order
    assert sum(len(y) for _, y in val_a) == 8


def test_batch_order_does_not_depend_on_workers_and_changes_per_epoch():
    task = _task(n_train=21)
    train, _ = make_loaders(task, batch_size=5, seed=0, num_workers=1, drop_last=True)
    ref, _ = make_loaders(task, batch_size=5, seed=0, drop_last=True)
    epoch1 = _order(train)[1]
    assert epoch1.shape[0] == 20  # the incomplete batch is dropped
    assert torch.equal(epoch1, _order(ref)[1])
    epoch2 = _order(train)[1]
    assert not torch.equal(epoch1, epoch2)
    assert torch.equal(epoch2, _order(ref)[1])
    with pytest.raises(ValueError, match="batch_size must be positive"):
        make_loaders(task, batch_size=0)
