"""Tests for nasoa.data.augment and the augmented, seeded loaders of nasoa.data.task."""

import pytest
import torch

from nasoa.data import ArrayImageDataset, Augment, Task, make_loaders, make_test_loader


def _task(augment="pad+flip", n=24, test=True):
    torch.manual_seed(0)

    def ds(k):
        return ArrayImageDataset(torch.randn(k, 3, 8, 8), [i % 3 for i in range(k)])

    return Task.from_datasets("toy", ds(n), ds(6), 3, test=ds(5) if test else None, augment=augment)


def _batches(loader):
    return [(x.clone(), y.clone()) for x, y in loader]


@pytest.mark.parametrize("text", ["none", "flip", "pad", "pad+flip", "resized", "resized+flip"])
def test_policy_names_round_trip(text):
    assert str(Augment.parse(text)) == text


def test_policy_validation():
    assert not Augment().active and Augment(flip=True).active
    assert Augment.parse(None, default=Augment(crop="pad")) == Augment(crop="pad")
    assert Augment.parse({"crop": "resized", "scale": [0.8, 1.0]}).scale == (0.8, 1.0)
    assert Augment(crop="pad", flip=True).without_flip() == Augment(crop="pad")
    with pytest.raises(ValueError, match="augmentation must be"):
        Augment.parse("pad+resized")
    with pytest.raises(ValueError, match="crop must be"):
        Augment(crop="zoom")


def test_transforms_keep_shape_and_flip_mirrors():
    x = torch.arange(2 * 8 * 8, dtype=torch.float32).view(2, 8, 8)
    g = torch.Generator().manual_seed(0)
    for policy in ("pad", "resized", "pad+flip"):
        assert Augment.parse(policy)(x, g).shape == x.shape
    flips = {bool(torch.equal(Augment(flip=True)(x, torch.Generator().manual_seed(s)), x.flip(-1))) for s in range(8)}
    assert flips == {True, False}
    same = Augment(crop="pad", pad=0.0)(x, g)
    assert torch.equal(same, x)


def test_pad_crop_is_a_shift_with_replicated_border():
    x = torch.arange(36, dtype=torch.float32).view(1, 6, 6)
    out = Augment(crop="pad", pad=0.34)(x, torch.Generator().manual_seed(5))
    assert out.shape == x.shape
    assert set(out.unique().tolist()) <= set(x.unique().tolist())


def test_augmented_loader_is_seeded_and_independent_of_workers():
    task = _task()
    a = _batches(make_loaders(task, batch_size=5, seed=7)[0])
    b = _batches(make_loaders(task, batch_size=5, seed=7)[0])
    w = _batches(make_loaders(task, batch_size=5, seed=7, num_workers=2)[0])
    c = _batches(make_loaders(task, batch_size=5, seed=8)[0])
    for (xa, ya), (xb, yb), (xw, yw) in zip(a, b, w, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
        assert torch.equal(xa, xw) and torch.equal(ya, yw)
    assert not all(torch.equal(xa, xc) for (xa, _), (xc, _) in zip(a, c, strict=True))
    plain = torch.cat([x for x, _ in _batches(make_loaders(task, batch_size=5, seed=7, augment=False)[0])])
    assert not torch.equal(torch.cat([x for x, _ in a]), plain)  # augmentation changed the images


def test_each_epoch_draws_new_augmentations():
    train, _ = make_loaders(_task(n=1), batch_size=1, seed=0)  # one item: only the augmentation changes
    epochs = [next(iter(train))[0] for _ in range(4)]
    assert any(not torch.equal(epochs[0], x) for x in epochs[1:])


def test_task_policy_is_the_default_and_validation_is_never_augmented():
    task = _task(augment="none")
    train, val = make_loaders(task, batch_size=4, seed=0)
    assert isinstance(train.dataset, ArrayImageDataset)  # no augmentation: the former loader exactly
    aug, val2 = make_loaders(task, batch_size=4, seed=0, augment="pad")
    assert not isinstance(aug.dataset, ArrayImageDataset)
    assert torch.equal(torch.cat([x for x, _ in val2]), task.val.images)


def test_test_loader():
    task = _task()
    loader = make_test_loader(task, batch_size=2)
    assert torch.equal(torch.cat([x for x, _ in loader]), task.test.images)
    with pytest.raises(ValueError, match="no test split"):
        make_test_loader(_task(test=False), batch_size=2)
    with pytest.raises(TypeError, match="Augment"):
        Task("toy", task.train, task.val, 3, task.meta, augment="pad")
