"""Tasks read from a local image folder tree (`torchvision.datasets.ImageFolder` layout).

Either `root/<class>/<image>` (split into train and val, and test when test_fraction > 0, deterministically) or
`root/train/<class>/<image>` plus `root/val/<class>/<image>` and optionally `root/test/<class>/<image>`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Subset
from torchvision import transforms
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS

from nasoa.data.arrays import ArrayImageDataset
from nasoa.data.split import group_split, stratified_split, stratified_subsample
from nasoa.data.task import Task

_MODES = {1: "L", 3: "RGB"}


@dataclass(frozen=True)
class ImageLoader:
    """Opens an image file as a PIL image of a given mode; unreadable files raise ValueError naming the file."""

    mode: str = "RGB"

    def __call__(self, path: str) -> Image.Image:
        """Loads and converts one image."""
        try:
            with Image.open(path) as image:
                return image.convert(self.mode)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise ValueError(f"cannot read image file {path}: {exc}") from exc


class TaskImageFolder(ImageFolder):
    """An ImageFolder whose class-to-label mapping is given rather than discovered.

    Class folders missing under root are allowed (no samples for them); this keeps train and val labels aligned.
    """

    def __init__(
        self,
        root: str | Path,
        class_to_idx: dict[str, int],
        transform: Callable[[Image.Image], torch.Tensor] | None = None,
        loader: ImageLoader | None = None,
    ) -> None:
        self._fixed_class_to_idx = dict(class_to_idx)
        super().__init__(
            str(root), transform=transform, loader=loader or ImageLoader(), allow_empty=True, is_valid_file=None
        )

    def find_classes(self, directory: str | Path) -> tuple[list[str], dict[str, int]]:
        """Returns the fixed classes, ordered by label."""
        classes = sorted(self._fixed_class_to_idx, key=self._fixed_class_to_idx.__getitem__)
        return classes, dict(self._fixed_class_to_idx)


def _class_dirs(directory: Path) -> list[str]:
    return sorted(entry.name for entry in os.scandir(directory) if entry.is_dir() and not entry.name.startswith("."))


def _verify(paths: Sequence[str]) -> None:
    for path in paths:
        try:
            with Image.open(path) as image:
                image.verify()
        except Exception as exc:  # PIL raises many kinds on corrupt data
            raise ValueError(f"cannot read image file {path}: {exc}") from exc


def _estimate_stats(
    dataset: Dataset, indices: np.ndarray, max_samples: int, seed: int
) -> tuple[list[float], list[float]]:
    rng = np.random.default_rng(seed)
    pick = rng.permutation(indices)[:max_samples]
    images = torch.stack([dataset[int(i)][0] for i in pick])
    return images.mean(dim=(0, 2, 3)).tolist(), images.std(dim=(0, 2, 3)).clamp_min(1e-6).tolist()


def _materialize(dataset: Dataset, channels: int) -> ArrayImageDataset:
    items = [dataset[i] for i in range(len(dataset))]
    if not items:
        raise ValueError("cannot cache an empty dataset")
    images = torch.stack([x for x, _ in items])
    return ArrayImageDataset(images, [y for _, y in items], None, channels)


def folder_task(
    root: str | Path,
    resolution: int = 32,
    val_fraction: float = 0.2,
    seed: int = 0,
    channels: int = 3,
    classes: Sequence[str] | None = None,
    num_train: int | None = None,
    verify: bool = True,
    cache: bool = False,
    stats_samples: int = 256,
    test_fraction: float = 0.0,
    augment: str | None = None,
) -> Task:
    """Builds a task from a local image folder tree.

    Images are resized (short side) and center-cropped to resolution, converted to `channels` (1 or 3), and
    normalized with per-channel statistics estimated on up to stats_samples training images.

    Args:
        root: Folder holding class folders, or `train/` and `val/` folders of class folders.
        resolution: Image side in pixels.
        val_fraction: Share of each class held out for validation when root has no `train/` + `val/` layout.
        seed: Seed of the split, the training-size cap and the statistics sample.
        channels: 1 (grayscale) or 3 (RGB).
        classes: Class folder names to keep (label i is the i-th listed); all when None.
        num_train: Cap on training images (stratified pick); all when None.
        verify: Check every image file is readable before returning.
        cache: Decode all images once and keep the tensors in memory.
        stats_samples: Training images used to estimate the normalization statistics.
        test_fraction: Share of each class held out for test when root has no `train/` + `val/` layout; 0 (the
            default) keeps the former train/val split and gives no test split. With the split layout, a
            `test/` folder (if present) is the test split.
        augment: Training augmentation (see `Augment.parse`); None: none.

    Returns:
        The task.

    Raises:
        FileNotFoundError: If root does not exist or is not a folder.
        ValueError: If there are no class folders or no images, a class has no training image, or an image file
            cannot be read.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"image folder {root} does not exist")
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} is not a directory")
    if channels not in _MODES:
        raise ValueError(f"folder tasks support 1 or 3 channels, got {channels}")
    split_layout = (root / "train").is_dir() and (root / "val").is_dir()
    train_dir = root / "train" if split_layout else root
    found = _class_dirs(train_dir)
    if not found:
        raise ValueError(
            f"image folder {train_dir} has no class folders: expected {train_dir}/<class>/<image> "
            f"(or {root}/train/<class>/<image> and {root}/val/<class>/<image>)"
        )
    if classes is not None:
        classes = [str(c) for c in classes]
        unknown = [c for c in classes if c not in found]
        if unknown or not classes or len(set(classes)) != len(classes):
            raise ValueError(f"bad classes {classes}: unknown {unknown}; class folders in {train_dir}: {found}")
        found = classes
    if split_layout:
        extra = sorted(set(_class_dirs(root / "val")) - set(found))
        if extra and classes is None:
            raise ValueError(f"{root / 'val'} has class folders {extra} that {train_dir} lacks")
    class_to_idx = {name: i for i, name in enumerate(found)}

    tf = transforms.Compose([transforms.Resize(resolution), transforms.CenterCrop(resolution), transforms.ToTensor()])
    loader = ImageLoader(_MODES[channels])
    train_base = TaskImageFolder(train_dir, class_to_idx, transform=tf, loader=loader)
    targets = np.asarray(train_base.targets, dtype=np.int64)
    if len(targets) == 0:
        raise ValueError(f"image folder {train_dir} has no images (extensions {', '.join(IMG_EXTENSIONS)})")
    empty = [name for name, i in class_to_idx.items() if not np.any(targets == i)]
    if empty:
        raise ValueError(f"class folder(s) {empty} in {train_dir} have no images")

    test_base, test_idx = None, None
    if split_layout:
        val_base = TaskImageFolder(root / "val", class_to_idx, transform=tf, loader=loader)
        train_idx, val_idx = np.arange(len(targets)), np.arange(len(val_base))
        if (root / "test").is_dir():
            test_base = TaskImageFolder(root / "test", class_to_idx, transform=tf, loader=loader)
            test_idx = np.arange(len(test_base))
    elif test_fraction > 0:
        val_base = test_base = train_base
        train_idx, val_idx, test_idx = group_split(targets, None, val_fraction, test_fraction, seed)
    else:
        val_base = train_base
        train_idx, val_idx = stratified_split(targets, val_fraction, seed)
    if num_train is not None:
        train_idx = train_idx[stratified_subsample(targets[train_idx], num_train, seed)]
    if verify:
        paths = [train_base.samples[i][0] for i in train_idx] + [val_base.samples[i][0] for i in val_idx]
        _verify(paths + ([test_base.samples[i][0] for i in test_idx] if test_base is not None else []))

    mean, std = _estimate_stats(train_base, train_idx, stats_samples, seed)
    tf.transforms.append(transforms.Normalize(mean, std))
    train: Dataset = Subset(train_base, train_idx.tolist())
    val: Dataset = Subset(val_base, val_idx.tolist())
    test: Dataset | None = None if test_base is None else Subset(test_base, test_idx.tolist())
    if cache:
        train = _materialize(train, channels)
        val = _materialize(val, channels) if len(val) else val
        test = _materialize(test, channels) if test is not None and len(test) else test
    return Task.from_datasets(root.name or str(root), train, val, len(found), found, test=test, augment=augment)
