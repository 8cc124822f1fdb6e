"""Fashion-MNIST (Debian ``dataset-fashion-mnist``, MIT): the zoo's pretraining source, kept apart from fine-tuning.

70,000 grayscale 28x28 product photos of 10 classes, in two files that this module keeps strictly apart:

- kind ``fashion`` (:func:`fashion_task`) reads only the 60,000-image **train** file. It is the pretraining source
  of the model zoo and the search proxy; its validation and test splits are carved out of that same file
  (by default 1/12 each: 5,000 + 5,000, stratified from the seed), so nothing of the t10k file is ever seen.
- kind ``fashion-ft`` (:func:`fashion_ft_task`) reads only the 10,000-image **t10k** file: the fine-tuning tasks
  (the "product photos" domain of the task suite). Any t10k image whose pixels also occur in the train file is
  dropped (there are none in the Debian files, but the check is kept), so a fine-tuning task never holds an image
  that pretraining saw. Use ``shard`` to give several fine-tuning tasks disjoint images.

Decoded arrays are cached in the nasoa cache (see `nasoa.data.sources`). Images are flipped horizontally in
training by default (clothes are left-right symmetric), with a small pad-and-crop.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from nasoa.data.augment import Augment
from nasoa.data.pool import ImagePool, pool_task
from nasoa.data.sources import apt_hint, cached_arrays, content_hashes, file_signature, require_path
from nasoa.data.task import Task

#: Where Debian's dataset-fashion-mnist puts the files.
FASHION_ROOT = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
#: Default training augmentation of both kinds.
FASHION_AUGMENT = Augment(crop="pad", flip=True)
_HINT = apt_hint("dataset-fashion-mnist")
_VERSION = "fashion-v1"


def _files(root: Path, part: str) -> tuple[Path, Path]:
    root = require_path(root, "Fashion-MNIST folder", _HINT)
    return (
        require_path(root / f"{part}-images-idx3-ubyte.gz", f"Fashion-MNIST {part} images", _HINT),
        require_path(root / f"{part}-labels-idx1-ubyte.gz", f"Fashion-MNIST {part} labels", _HINT),
    )


def _decode(images: Path, labels: Path) -> dict[str, np.ndarray]:
    with gzip.open(images) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(labels) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    if len(x) != len(y):
        raise ValueError(f"{images} holds {len(x)} images but {labels} holds {len(y)} labels")
    return {"images": x, "labels": y, "hashes": content_hashes(x)}


@lru_cache(maxsize=4)
def load_fashion(part: str = "train", root: str | Path = FASHION_ROOT) -> dict[str, np.ndarray]:
    """The decoded ``train`` or ``t10k`` file: images N x 1 x 28 x 28 uint8, labels and content hashes.

    Raises:
        MissingSourceError: If the Debian package is not installed (or root lacks the files).
    """
    if part not in ("train", "t10k"):
        raise ValueError(f"part must be 'train' or 't10k', got {part!r}")
    images, labels = _files(Path(root), part)
    return cached_arrays(_VERSION, part, file_signature([images, labels]), lambda: _decode(images, labels))


def _pool(name: str, data: dict[str, np.ndarray], keep: np.ndarray | None = None) -> ImagePool:
    if keep is None:
        return ImagePool(name, data["images"], data["labels"], FASHION_CLASSES, data["hashes"])
    return ImagePool(name, data["images"][keep], data["labels"][keep], FASHION_CLASSES, data["hashes"][keep])


@lru_cache(maxsize=2)
def _finetune_pool(root: str | Path) -> ImagePool:
    """The t10k file without any image whose pixels occur in the train file."""
    test = load_fashion("t10k", root)
    seen = set(load_fashion("train", root)["hashes"].tolist())
    keep = np.array([i for i, h in enumerate(test["hashes"].tolist()) if h not in seen], dtype=np.int64)
    return _pool("fashion-ft", test, keep)


def fashion_task(
    resolution: int = 32,
    classes: Sequence[int | str] | None = None,
    num_train: int | None = None,
    val_fraction: float = 1 / 12,
    test_fraction: float = 1 / 12,
    seed: int = 0,
    channels: int = 3,
    shard: str | None = None,
    augment: str | None = None,
    root: str | Path = FASHION_ROOT,
) -> Task:
    """The pretraining and proxy task: the Fashion-MNIST train file only (see the module docstring).

    Args:
        resolution: Image side in pixels (bilinear upsampling from 28).
        classes: Classes to keep, by number or name; all ten when None.
        num_train: Cap on training images (stratified pick); all when None.
        val_fraction: Share of the train file held out for validation.
        test_fraction: Share of the train file held out for test.
        seed: Seed of the split and of the cap.
        channels: Output channels (grayscale replicated).
        shard: Keep shards of a fixed partition of the file (see `nasoa.data.pool.pool_task`).
        augment: Training augmentation; None: pad-and-crop plus flips.
        root: Folder with the four .gz files.

    Returns:
        The task.
    """
    pool = _pool("fashion", load_fashion("train", root))
    return pool_task(
        pool,
        "fashion",
        classes=classes,
        num_train=num_train,
        resolution=resolution,
        channels=channels,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        shard=shard,
        augment=augment,
        default_augment=FASHION_AUGMENT,
    )


def fashion_ft_task(
    resolution: int = 32,
    classes: Sequence[int | str] | None = None,
    num_train: int | None = None,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    channels: int = 3,
    shard: str | None = None,
    augment: str | None = None,
    root: str | Path = FASHION_ROOT,
) -> Task:
    """A fine-tuning task from the Fashion-MNIST t10k file only, never an image of the pretraining file.

    Args:
        resolution: Image side in pixels (bilinear upsampling from 28).
        classes: Classes to keep, by number or name; all ten when None.
        num_train: Cap on training images (stratified pick); all when None.
        val_fraction: Share held out for validation.
        test_fraction: Share held out for test.
        seed: Seed of the split and of the cap.
        channels: Output channels (grayscale replicated).
        shard: ``"k/n"`` or ``"a-b/n"``: tasks on different shards of the t10k file share no image.
        augment: Training augmentation; None: pad-and-crop plus flips.
        root: Folder with the four .gz files.

    Returns:
        The task.
    """
    return pool_task(
        _finetune_pool(root),
        "fashion-ft",
        classes=classes,
        num_train=num_train,
        resolution=resolution,
        channels=channels,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        shard=shard,
        augment=augment,
        default_augment=FASHION_AUGMENT,
    )
