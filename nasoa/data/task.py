"""The `Task` value (train and validation datasets plus meta-features) and its data loaders."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler

from nasoa.data.meta import TaskMeta


@dataclass(frozen=True)
class Task:
    """An image classification task.

    Items of `train` and `val` are `(image, label)`: a float tensor channels x resolution x resolution,
    normalized per channel, and an int in [0, num_classes).

    Attributes:
        name: Task name, for reports.
        train: Training dataset.
        val: Validation dataset.
        num_classes: Number of classes.
        meta: Meta-features measured from the data.
        classes: Class names, index i naming label i (may be empty).
    """

    name: str
    train: Dataset
    val: Dataset
    num_classes: int
    meta: TaskMeta
    classes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.meta.num_classes != self.num_classes:
            raise ValueError(f"meta.num_classes={self.meta.num_classes} but num_classes={self.num_classes}")
        if self.meta.num_train != len(self.train):
            raise ValueError(f"meta.num_train={self.meta.num_train} but the training set has {len(self.train)} items")
        if self.classes and len(self.classes) != self.num_classes:
            raise ValueError(f"{len(self.classes)} class names for {self.num_classes} classes")

    @classmethod
    def from_datasets(
        cls,
        name: str,
        train: Dataset,
        val: Dataset,
        num_classes: int,
        classes: Sequence[str] | None = None,
    ) -> Task:
        """Builds a task, measuring its meta-features from the first training image.

        Raises:
            ValueError: If the training set is empty or its images are not square C x H x W tensors.
        """
        if len(train) == 0:
            raise ValueError(f"task {name!r} has no training images")
        image, _ = train[0]
        if not isinstance(image, torch.Tensor) or image.ndim != 3 or image.shape[1] != image.shape[2]:
            shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
            raise ValueError(f"task {name!r}: images must be square C x H x W tensors, got {shape}")
        channels, resolution = int(image.shape[0]), int(image.shape[1])
        meta = TaskMeta(num_classes, len(train), resolution, channels, name=name)
        return cls(name, train, val, int(num_classes), meta, tuple(classes or ()))


def make_loaders(
    task: Task,
    batch_size: int,
    seed: int = 0,
    num_workers: int = 0,
    val_batch_size: int | None = None,
    drop_last: bool = False,
) -> tuple[DataLoader, DataLoader]:
    """Makes the training and validation loaders of a task.

    The training loader shuffles with a `torch.Generator` seeded from `seed`, so the batch order of every epoch
    is the same for the same seed, whatever num_workers; worker seeds come from a second generator seeded from
    `seed`. The validation loader keeps the dataset order.

    Args:
        task: The task.
        batch_size: Training batch size.
        seed: Seed of the training shuffle.
        num_workers: Loader worker processes (0 loads in the main process).
        val_batch_size: Validation batch size; defaults to batch_size.
        drop_last: Drop the last incomplete training batch.

    Returns:
        The training loader and the validation loader.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    sampler = RandomSampler(task.train, generator=torch.Generator().manual_seed(seed))
    train = DataLoader(
        task.train,
        batch_size=batch_size,
        sampler=sampler,
        generator=torch.Generator().manual_seed(seed + 1),
        drop_last=drop_last,
        num_workers=num_workers,
    )
    val = DataLoader(task.val, batch_size=val_batch_size or batch_size, shuffle=False, num_workers=num_workers)
    return train, val
