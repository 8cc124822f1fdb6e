"""Tasks from torchvision datasets already on local disk (never downloaded).

The files must sit under `root` in torchvision's own layout, e.g. `root/MNIST/raw/train-images-idx3-ubyte` or
`root/cifar-10-batches-py/data_batch_1`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torchvision import datasets

from nasoa.data.arrays import ArrayImageDataset, Preprocess
from nasoa.data.split import select_classes, stratified_split, stratified_subsample
from nasoa.data.task import Task


@dataclass(frozen=True)
class _Source:
    cls: str
    split_kwarg: str  # "train" (True/False) or "split" ("train"/"test")
    layout: str  # where the files go, for error messages


TORCHVISION_DATASETS: dict[str, _Source] = {
    "mnist": _Source("MNIST", "train", "{root}/MNIST/raw/{{train,t10k}}-{{images-idx3,labels-idx1}}-ubyte"),
    "fashionmnist": _Source(
        "FashionMNIST", "train", "{root}/FashionMNIST/raw/{{train,t10k}}-{{images-idx3,labels-idx1}}-ubyte"
    ),
    "kmnist": _Source("KMNIST", "train", "{root}/KMNIST/raw/{{train,t10k}}-{{images-idx3,labels-idx1}}-ubyte"),
    "cifar10": _Source("CIFAR10", "train", "{root}/cifar-10-batches-py/ (data_batch_1..5, test_batch, batches.meta)"),
    "cifar100": _Source("CIFAR100", "train", "{root}/cifar-100-python/ (train, test, meta)"),
    "svhn": _Source("SVHN", "split", "{root}/train_32x32.mat and {root}/test_32x32.mat"),
}


def _canonical(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def _open(source: _Source, root: Path, train: bool):
    cls = getattr(datasets, source.cls)
    split = {"train": train} if source.split_kwarg == "train" else {"split": "train" if train else "test"}
    try:
        return cls(str(root), download=False, **split)
    except (RuntimeError, FileNotFoundError, OSError) as exc:
        raise FileNotFoundError(
            f"{source.cls} ({'train' if train else 'test'} split) is missing or corrupt under {root}: "
            f"place the files there in torchvision's layout ({source.layout.format(root=root)}); "
            f"nothing is downloaded. torchvision said: {exc}"
        ) from exc


def _arrays(ds) -> tuple[torch.Tensor, np.ndarray]:
    data = ds.data
    images = data if isinstance(data, torch.Tensor) else torch.from_numpy(np.asarray(data))
    if images.ndim == 3:
        images = images.unsqueeze(1)
    elif images.shape[-1] in (1, 3) and images.shape[1] not in (1, 3):
        images = images.permute(0, 3, 1, 2)
    labels = ds.targets if hasattr(ds, "targets") else ds.labels
    return images, np.asarray(labels, dtype=np.int64).reshape(-1)


def torchvision_task(
    name: str,
    root: str | Path,
    resolution: int = 32,
    channels: int = 3,
    classes: Sequence[int] | None = None,
    num_train: int | None = None,
    val_fraction: float | None = None,
    seed: int = 0,
) -> Task:
    """Builds a task from a torchvision dataset found under root.

    Args:
        name: One of TORCHVISION_DATASETS (case-insensitive, e.g. "CIFAR10", "mnist", "FashionMNIST").
        root: The folder passed to the torchvision class as its root.
        resolution: Image side in pixels (bilinear resize).
        channels: Output channels (grayscale replicated, RGB turned to luma for 1).
        classes: Original labels to keep (label i is the i-th listed); all when None.
        num_train: Cap on training images (stratified pick); all when None.
        val_fraction: None validates on the official test split (and the task has no test split); a fraction
            holds out that share of the official training split for validation instead (stratified, from seed)
            and the official test split becomes the task's test split.
        seed: Seed of the split and of the training-size cap.

    Returns:
        The task, normalized with training-set statistics.

    Raises:
        ValueError: If the name is unknown.
        FileNotFoundError: If the dataset files are not under root.
    """
    key = _canonical(name)
    if key not in TORCHVISION_DATASETS:
        raise ValueError(f"unknown torchvision dataset {name!r}; known: {sorted(TORCHVISION_DATASETS)}")
    source = TORCHVISION_DATASETS[key]
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(
            f"dataset root {root} does not exist: place {source.cls} there in torchvision's layout "
            f"({source.layout.format(root=root)}); nothing is downloaded"
        )
    train_ds = _open(source, root, train=True)
    images, labels = _arrays(train_ds)
    names = [str(c) for c in getattr(train_ds, "classes", [])] or [str(i) for i in range(int(labels.max()) + 1)]
    test_images = test_labels = None
    if val_fraction is None:
        val_images, val_labels = _arrays(_open(source, root, train=False))
    else:
        test_images, test_labels = _arrays(_open(source, root, train=False))
        train_idx, val_idx = stratified_split(labels, val_fraction, seed)
        val_images, val_labels = images[torch.as_tensor(val_idx)], labels[val_idx]
        images, labels = images[torch.as_tensor(train_idx)], labels[train_idx]
    if classes is not None:
        keep, labels = select_classes(labels, classes)
        images = images[torch.as_tensor(keep)]
        val_images, val_labels = _keep_classes(val_images, val_labels, classes)
        if test_images is not None:
            test_images, test_labels = _keep_classes(test_images, test_labels, classes)
        names = [names[int(c)] for c in classes]
    if num_train is not None:
        keep = stratified_subsample(labels, num_train, seed)
        images, labels = images[torch.as_tensor(keep)], labels[keep]
    preprocess = Preprocess(resolution, channels, scale=255.0).with_stats(images, seed=seed)
    train = ArrayImageDataset.build(images, labels, preprocess)
    val = ArrayImageDataset.build(val_images, val_labels, preprocess)
    test = None if test_images is None else ArrayImageDataset.build(test_images, test_labels, preprocess)
    return Task.from_datasets(source.cls.lower(), train, val, len(names), names, test=test)


def _keep_classes(images: torch.Tensor, labels: np.ndarray, classes: Sequence[int]) -> tuple[torch.Tensor, np.ndarray]:
    """The samples of some original labels, relabelled 0..k-1 in the order given."""
    mapping = {int(c): i for i, c in enumerate(classes)}
    keep = np.flatnonzero(np.isin(labels, list(mapping)))
    return images[torch.as_tensor(keep)], np.array([mapping[int(y)] for y in labels[keep]], dtype=np.int64)
