"""Generated image classification tasks whose difficulty is a single knob in [0, 1].

Each class has a smooth random prototype (low-frequency noise, upsampled bicubically). A sample is its class
prototype, randomly shifted (circularly) by up to difficulty * resolution / 2 pixels, weighted by 1 - difficulty,
plus a fresh smooth pattern from the same distribution as the prototypes weighted by 2.5 * difficulty, plus a
little pixel noise. Difficulty 0 gives clean, nearly identical samples per class; 1 leaves no class signal at all
(chance level). On flattened pixels with 5 classes and 400 training images, a linear classifier scores about
1.0 at difficulty 0.1, 0.7 at 0.5 and near chance at 0.9; shift-invariant networks do better at mid difficulty.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nasoa.data.arrays import ArrayImageDataset, Preprocess
from nasoa.data.task import Task


def _smooth_patterns(n: int, channels: int, resolution: int, grid: int, g: torch.Generator) -> torch.Tensor:
    """Draws n smooth random images with unit standard deviation per image."""
    coarse = torch.randn(n, channels, grid, grid, generator=g)
    x = F.interpolate(coarse, size=(resolution, resolution), mode="bicubic", align_corners=False)
    x = x - x.mean(dim=(1, 2, 3), keepdim=True)
    return x / x.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)


def _shift(x: torch.Tensor, max_shift: int, g: torch.Generator) -> torch.Tensor:
    """Rolls each image by its own random offset in [-max_shift, max_shift] on both axes."""
    if max_shift <= 0:
        return x
    out = torch.empty_like(x)
    offsets = torch.randint(-max_shift, max_shift + 1, (len(x), 2), generator=g).tolist()
    for i, (dy, dx) in enumerate(offsets):
        out[i] = torch.roll(x[i], shifts=(dy, dx), dims=(1, 2))
    return out


def _samples(
    prototypes: torch.Tensor, labels: torch.Tensor, difficulty: float, grid: int, g: torch.Generator
) -> torch.Tensor:
    n, (_, channels, resolution, _) = len(labels), prototypes.shape
    signal, clutter = 1.0 - difficulty, 2.5 * difficulty
    max_shift = int(round(difficulty * resolution / 2))
    x = _shift(prototypes[labels], max_shift, g)
    x = signal * x + clutter * _smooth_patterns(n, channels, resolution, grid, g)
    return x + 0.1 * torch.randn(x.shape, generator=g)


def synthetic_task(
    num_classes: int = 5,
    num_train: int = 400,
    num_val: int = 200,
    resolution: int = 32,
    channels: int = 3,
    difficulty: float = 0.5,
    seed: int = 0,
    grid: int = 4,
    num_test: int | None = None,
) -> Task:
    """Generates a balanced image classification task; the same arguments give the same data.

    Args:
        num_classes: Number of classes.
        num_train: Training images (classes balanced, round-robin).
        num_val: Validation images.
        resolution: Image side in pixels.
        channels: Image channels.
        difficulty: In [0, 1]; 0 is trivially separable, 1 is pure noise.
        seed: Seed of prototypes and samples.
        grid: Side of the coarse noise grid behind every pattern (its spatial frequency).
        num_test: Test images, drawn after the training and validation images (which stay as they were);
            None: as many as num_val; 0: no test split.

    Returns:
        The task, precomputed in memory.
    """
    if not 0.0 <= difficulty <= 1.0:
        raise ValueError(f"difficulty must be in [0, 1], got {difficulty}")
    for name, value in (("num_classes", num_classes), ("num_train", num_train), ("resolution", resolution)):
        if value < 1:
            raise ValueError(f"{name} must be positive, got {value}")
    num_test = num_val if num_test is None else num_test
    for name, value in (("num_val", num_val), ("num_test", num_test)):
        if value < 0:
            raise ValueError(f"{name} must be non-negative, got {value}")
    if channels < 1 or grid < 1:
        raise ValueError(f"channels and grid must be positive, got {channels} and {grid}")
    g = torch.Generator().manual_seed(seed)
    prototypes = _smooth_patterns(num_classes, channels, resolution, grid, g)
    train_labels = torch.arange(num_train) % num_classes
    val_labels = torch.arange(num_val) % num_classes
    train_raw = _samples(prototypes, train_labels, difficulty, grid, g)
    val_raw = _samples(prototypes, val_labels, difficulty, grid, g)
    preprocess = Preprocess(resolution, channels, scale=1.0).with_stats(train_raw)
    train = ArrayImageDataset.build(train_raw, train_labels, preprocess)
    val = ArrayImageDataset.build(val_raw, val_labels, preprocess)
    test = None
    if num_test > 0:
        test_labels = torch.arange(num_test) % num_classes
        test_raw = _samples(prototypes, test_labels, difficulty, grid, g)
        test = ArrayImageDataset.build(test_raw, test_labels, preprocess)
    return Task.from_datasets(f"synthetic-{num_classes}c-d{difficulty:g}", train, val, num_classes, test=test)
