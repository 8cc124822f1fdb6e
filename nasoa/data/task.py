"""The `Task` value (train, validation and optional test datasets plus meta-features) and its data loaders."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler

from nasoa.data.augment import Augment, AugmentedDataset, SeededSampler
from nasoa.data.meta import TaskMeta


@dataclass(frozen=True)
class Task:
    """An image classification task.

    Items of `train`, `val` and `test` are `(image, label)`: a float tensor channels x resolution x resolution,
    normalized per channel, and an int in [0, num_classes). The test split is held out from model and regime
    selection; kinds that cannot add one without changing their train/val split (digits, folder and synthetic
    with the defaults that existed before) leave it None unless asked for one.

    Attributes:
        name: Task name, for reports.
        train: Training dataset.
        val: Validation dataset.
        num_classes: Number of classes.
        meta: Meta-features measured from the data.
        classes: Class names, index i naming label i (may be empty).
        test: Test dataset, or None.
        augment: The task's default training augmentation (what `make_loaders` applies unless told otherwise).
    """

    name: str
    train: Dataset
    val: Dataset
    num_classes: int
    meta: TaskMeta
    classes: tuple[str, ...] = ()
    test: Dataset | None = None
    augment: Augment = Augment()

    def __post_init__(self) -> None:
        if self.meta.num_classes != self.num_classes:
            raise ValueError(f"meta.num_classes={self.meta.num_classes} but num_classes={self.num_classes}")
        if self.meta.num_train != len(self.train):
            raise ValueError(f"meta.num_train={self.meta.num_train} but the training set has {len(self.train)} items")
        if self.classes and len(self.classes) != self.num_classes:
            raise ValueError(f"{len(self.classes)} class names for {self.num_classes} classes")
        if not isinstance(self.augment, Augment):
            raise TypeError(f"augment must be an Augment, got {type(self.augment).__name__}")

    @classmethod
    def from_datasets(
        cls,
        name: str,
        train: Dataset,
        val: Dataset,
        num_classes: int,
        classes: Sequence[str] | None = None,
        test: Dataset | None = None,
        augment: Augment | str | None = None,
    ) -> Task:
        """Builds a task, measuring its meta-features from the first training image.

        `augment` is the task's default training augmentation (see `Augment.parse`; None: none).

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
        return cls(name, train, val, int(num_classes), meta, tuple(classes or ()), test, Augment.parse(augment))


def make_loaders(
    task: Task,
    batch_size: int,
    seed: int = 0,
    num_workers: int = 0,
    val_batch_size: int | None = None,
    drop_last: bool = False,
    augment: bool | str | Augment | None = None,
) -> tuple[DataLoader, DataLoader]:
    """Makes the training and validation loaders of a task.

    The training loader shuffles with a `torch.Generator` seeded from `seed`, so the batch order of every epoch
    is the same for the same seed, whatever num_workers; worker seeds come from a second generator seeded from
    `seed`. With augmentation, the same generator also draws one seed per item and epoch from which the item is
    augmented, so augmented batches are the same for the same seed whatever num_workers too. The validation
    loader keeps the dataset order and never augments.

    Args:
        task: The task.
        batch_size: Training batch size.
        seed: Seed of the training shuffle (and of the augmentation).
        num_workers: Loader worker processes (0 loads in the main process).
        val_batch_size: Validation batch size; defaults to batch_size.
        drop_last: Drop the last incomplete training batch.
        augment: None or True: the task's own policy (`task.augment`); False: none; else a policy or its name
            (see `Augment.parse`).

    Returns:
        The training loader and the validation loader.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    policy = _policy(task, augment)
    generator = torch.Generator().manual_seed(seed)
    if policy.active:
        dataset: Dataset = AugmentedDataset(task.train, policy)
        sampler: torch.utils.data.Sampler = SeededSampler(len(task.train), generator)
    else:
        dataset, sampler = task.train, RandomSampler(task.train, generator=generator)
    train = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        generator=torch.Generator().manual_seed(seed + 1),
        drop_last=drop_last,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,  # one start per run, not per epoch
    )
    val = DataLoader(task.val, batch_size=val_batch_size or batch_size, shuffle=False, num_workers=num_workers)
    return train, val


def make_test_loader(task: Task, batch_size: int, num_workers: int = 0) -> DataLoader:
    """Makes the test loader of a task (dataset order, no augmentation).

    Raises:
        ValueError: If the task has no test split.
    """
    if task.test is None:
        raise ValueError(f"task {task.name!r} has no test split (its kind needs test_fraction > 0 or a test folder)")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    return DataLoader(task.test, batch_size=batch_size, shuffle=False, num_workers=num_workers)


def _policy(task: Task, augment: bool | str | Augment | None) -> Augment:
    if augment is None or augment is True:
        return task.augment
    if augment is False:
        return Augment()
    return Augment.parse(augment)
