"""Tests for nasoa.data.torchvision_sets, on tiny fake datasets written in torchvision's on-disk formats."""

import pickle
import struct

import numpy as np
import pytest
import torch

from nasoa.data import TaskMeta, torchvision_task


def _write_idx(path, array):
    """Writes an IDX (ubyte) file: magic 0x0000 08 <ndim>, big-endian dims, then the bytes."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.tobytes())


def _digit_images(labels, seed):
    """28x28 images whose bright row band sits at a height set by the label."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 30, (len(labels), 28, 28))
    for i, y in enumerate(labels):
        images[i, 2 * y + 4 : 2 * y + 7, :] = 250
    return images.astype(np.uint8)


def write_fake_mnist(root, folder="MNIST", n_train=60, n_test=20):
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    for prefix, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        labels = np.arange(n) % 10
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", _digit_images(labels, seed))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return root


def test_mnist_from_raw_idx_files(tmp_path):
    write_fake_mnist(tmp_path)
    task = torchvision_task("MNIST", tmp_path, resolution=32, channels=3)
    assert task.meta == TaskMeta(num_classes=10, num_train=60, resolution=32, channels=3, name="mnist")
    assert task.classes[3] == "3 - three" and len(task.val) == 20
    x, y = task.train[13]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and y == 3
    stacked = torch.stack([x for x, _ in task.train])
    assert torch.allclose(stacked.mean(dim=(0, 2, 3)), torch.zeros(3), atol=0.02)
    assert torch.allclose(stacked.std(dim=(0, 2, 3)), torch.ones(3), atol=0.02)


def test_pixels_and_labels_survive_the_round_trip(tmp_path):
    write_fake_mnist(tmp_path)
    task = torchvision_task("mnist", tmp_path, resolution=28, channels=1)
    labels = np.arange(20) % 10
    raw = torch.as_tensor(_digit_images(labels, seed=1), dtype=torch.float32) / 255
    (x, y) = task.val[7]
    assert y == 7
    train_raw = torch.as_tensor(_digit_images(np.arange(60) % 10, seed=0), dtype=torch.float32) / 255
    mean, std = train_raw.mean(), train_raw.std()  # undo normalization with training-set statistics
    assert torch.allclose(x[0] * std + mean, raw[7], atol=1e-4)


def test_fashion_mnist_options(tmp_path):
    write_fake_mnist(tmp_path, folder="FashionMNIST", n_train=100)
    task = torchvision_task("fashion-mnist", tmp_path, resolution=16, classes=[4, 2], num_train=10, val_fraction=0.2)
    assert task.classes == ("Coat", "Pullover")
    assert task.meta == TaskMeta(num_classes=2, num_train=10, resolution=16, channels=3, name="fashionmnist")
    assert sorted(y for _, y in task.train) == [0] * 5 + [1] * 5
    assert sorted(y for _, y in task.val) == [0] * 2 + [1] * 2  # held out from the 20 training images of 4 and 2


def test_cifar10_from_pickled_batches(tmp_path, monkeypatch):
    # CIFAR files are checked against the md5 of the real archive; a fake cannot match, so skip only that check
    import torchvision.datasets.cifar as cifar

    monkeypatch.setattr(cifar, "check_integrity", lambda path, md5=None: True)
    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    rng = np.random.default_rng(0)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    files = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in files:
        labels = list(range(10))
        images = np.zeros((10, 3, 32, 32), dtype=np.uint8)
        for i, y in enumerate(labels):
            images[i, y % 3] = 200 + rng.integers(0, 50)  # the label picks the lit colour plane
        with open(base / name, "wb") as f:
            pickle.dump({"data": images.reshape(10, -1), "labels": labels}, f)
    with open(base / "batches.meta", "wb") as f:
        pickle.dump({"label_names": names}, f)
    task = torchvision_task("cifar10", tmp_path, resolution=8)
    assert task.meta == TaskMeta(num_classes=10, num_train=50, resolution=8, channels=3, name="cifar10")
    assert task.classes == tuple(names)
    for x, y in task.val:
        assert int(x.mean(dim=(1, 2)).argmax()) == y % 3  # channels came back in CHW order


def test_missing_dataset_says_where_to_put_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"dataset root .*nowhere does not exist.*nothing is downloaded"):
        torchvision_task("mnist", tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"MNIST .* missing or corrupt .*MNIST/raw.*nothing is downloaded"):
        torchvision_task("mnist", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"cifar-10-batches-py"):
        torchvision_task("CIFAR10", tmp_path)


def test_unknown_dataset_name(tmp_path):
    with pytest.raises(ValueError, match=r"unknown torchvision dataset 'imagenet'; known: .*cifar10"):
        torchvision_task("imagenet", tmp_path)
