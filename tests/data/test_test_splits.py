"""The test split of the former kinds (digits, synthetic, folder, torchvision): old train/val kept, test added."""

import torch

from nasoa.data import digits_task, folder_task, synthetic_task, torchvision_task
from nasoa.data.suite import content_hashes

from .test_folders import COLOURS, _write_class
from .test_torchvision_sets import write_fake_mnist


def test_digits_keeps_its_split_by_default_and_carves_a_test_split_on_request():
    plain = digits_task(seed=3)
    assert plain.test is None
    with_test = digits_task(seed=3, test_fraction=0.15)
    assert len(with_test.train) + len(with_test.val) + len(with_test.test) == 1797
    splits = [content_hashes(with_test, s) for s in ("train", "val", "test")]
    assert not (splits[0] & splits[1] or splits[0] & splits[2] or splits[1] & splits[2])
    assert str(with_test.augment) == "none" and str(digits_task(augment="pad").augment) == "pad"


def test_synthetic_test_split_leaves_train_and_val_unchanged():
    with_test = synthetic_task(num_classes=3, num_train=30, num_val=9, resolution=8)
    without = synthetic_task(num_classes=3, num_train=30, num_val=9, resolution=8, num_test=0)
    assert without.test is None and len(with_test.test) == 9
    assert torch.equal(with_test.train.images, without.train.images)
    assert torch.equal(with_test.val.images, without.val.images)
    assert not torch.equal(with_test.test.images, with_test.val.images)


def test_folder_test_folder_and_test_fraction(tmp_path):
    root = tmp_path / "split"
    for part, n in (("train", 6), ("val", 2), ("test", 3)):
        for name in COLOURS:
            _write_class(root / part, name, n, start={"train": 0, "val": 100, "test": 200}[part])
    task = folder_task(root, resolution=8)
    assert len(task.test) == 9 and sorted(y for _, y in task.test) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    flat = tmp_path / "flat"
    for name in COLOURS:
        _write_class(flat, name, 10)
    assert folder_task(flat, resolution=8).test is None
    three = folder_task(flat, resolution=8, val_fraction=0.2, test_fraction=0.2)
    assert (len(three.train), len(three.val), len(three.test)) == (18, 6, 6)


def test_torchvision_official_test_split_becomes_test_when_val_is_carved(tmp_path):
    write_fake_mnist(tmp_path)
    assert torchvision_task("mnist", tmp_path, resolution=8).test is None
    task = torchvision_task("mnist", tmp_path, resolution=8, val_fraction=0.2, classes=[1, 3])
    assert len(task.test) == 4 and sorted(y for _, y in task.test) == [0, 0, 1, 1]
