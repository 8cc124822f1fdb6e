"""One training recipe for the search proxy and zoo pretraining: train on a source task, evaluate, profile.

The proxy trains a candidate for ``max_steps`` steps and profiles it at one batch size; pretraining trains for
``epochs`` and profiles every batch size (and every frozen-stage count). Both are a :class:`Recipe` (the
``recipe`` config group) and use :func:`fit` and :func:`profile`. Plain torch, no Ray.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import asdict, dataclass
from typing import Any

SCHEDULES = ("cosine", "step", "constant")


@dataclass(frozen=True)
class Recipe:
    """How a network is trained and profiled on a source task.

    Attributes:
        source: Task spec of the source (``make_task``), e.g. ``digits`` or ``folder:root=/data/imagenet100``.
        resolution: Image side in pixels.
        batch_size: Training batch size.
        epochs: Passes over the source's training images (bounded by ``max_steps``).
        max_steps: Optimizer steps at most (the proxy's partial training); None: all ``epochs``.
        lr: Peak SGD learning rate.
        weight_decay: SGD weight decay.
        schedule: ``cosine``, ``step`` or ``constant``.
        optimizer: ``sgd`` (momentum 0.9) or ``adamw``.
        warmup_fraction: Share of the planned steps with a linear learning-rate warm-up.
        label_smoothing: Cross-entropy label smoothing.
        recalibrate_bn_batches: Training batches for BatchNorm re-estimation before evaluation.
        profile_batch_sizes: Batch sizes of the step-time profiles.
        profile_warmup: Untimed steps before each profile.
        profile_steps: Timed steps of each profile.
        profile_frozen: Profile every frozen-stage count too (the regime generator needs them), not only 0.
        seed: Seed of the model's initialisation and the batch order.
        loader_workers: Data-loader worker processes (0: load in the training process, the faster choice for the
            in-memory sources on a 2-core machine; a GPU node's spare CPUs decode and augment ahead).
        device: Torch device; jobs set it from the runtime (a worker from the GPU Ray assigned it).
    """

    source: str = "digits"
    resolution: int = 32
    batch_size: int = 64
    epochs: int = 1
    max_steps: int | None = None
    lr: float = 0.1
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    optimizer: str = "sgd"
    warmup_fraction: float = 0.0
    label_smoothing: float = 0.0
    recalibrate_bn_batches: int = 5
    profile_batch_sizes: tuple[int, ...] = (64,)
    profile_warmup: int = 2
    profile_steps: int = 5
    profile_frozen: bool = False
    seed: int = 0
    loader_workers: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        object.__setattr__(self, "profile_batch_sizes", tuple(self.profile_batch_sizes))
        if self.schedule not in SCHEDULES:
            raise ValueError(f"recipe.schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        for name in ("resolution", "batch_size", "epochs", "profile_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"recipe.{name} must be at least 1, got {getattr(self, name)}")
        if not self.profile_batch_sizes:
            raise ValueError("recipe.profile_batch_sizes must not be empty")

    @property
    def tag(self) -> str:
        """The pretraining tag of zoo keys: a slug of the source and the resolution."""
        slug = re.sub(r"[^A-Za-z0-9]+", "-", self.source).strip("-").lower()[:24]
        if slug != self.source:
            slug = f"{slug}-{hashlib.sha1(self.source.encode()).hexdigest()[:6]}"
        return f"{slug}-{self.resolution}px"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@functools.lru_cache(maxsize=4)
def source_task(spec: str, resolution: int, seed: int):  # noqa: ANN201 - a nasoa.data.Task
    """The source task, built once per process."""
    from nasoa.data import make_task  # lazy: configs import the Recipe value without torch

    return make_task(spec, resolution=resolution, seed=seed)


def fit(model, recipe: Recipe):  # noqa: ANN001, ANN201 - a StagedNet; (TrainResult, EvalResult | None)
    """Train ``model`` on the recipe's source, re-estimate BatchNorm, evaluate; None for a diverged run."""
    from nasoa.data import make_loaders  # lazy: configs import the Recipe value without torch
    from nasoa.train.loop import train_and_evaluate  # lazy: as above

    task = source_task(recipe.source, recipe.resolution, recipe.seed)
    train_loader, val_loader = make_loaders(
        task, recipe.batch_size, seed=recipe.seed, num_workers=recipe.loader_workers
    )
    planned = recipe.epochs * len(train_loader) if recipe.max_steps is None else recipe.max_steps
    return train_and_evaluate(
        model,
        train_loader,
        val_loader,
        bn_batches=recipe.recalibrate_bn_batches,
        device=recipe.device,
        epochs=recipe.epochs,
        max_steps=recipe.max_steps,
        lr=recipe.lr,
        weight_decay=recipe.weight_decay,
        schedule=recipe.schedule,
        optimizer=recipe.optimizer,
        warmup_steps=round(recipe.warmup_fraction * planned),
        label_smoothing=recipe.label_smoothing,
    )


def profile(model, recipe: Recipe, num_stages: int = 0) -> list[tuple[int, int, Any]]:  # noqa: ANN001
    """``(batch_size, frozen_stages, StepProfile)`` at every profile batch size (and frozen count, if asked)."""
    from nasoa.train.profile import profile_step  # lazy: configs import the Recipe value without torch

    frozen_counts = range(num_stages + 1) if recipe.profile_frozen else [0]
    return [
        (
            batch,
            frozen,
            profile_step(
                model,
                batch_size=batch,
                resolution=recipe.resolution,
                device=recipe.device,
                frozen_stages=frozen,
                warmup=recipe.profile_warmup,
                steps=recipe.profile_steps,
            ),
        )
        for frozen in frozen_counts
        for batch in recipe.profile_batch_sizes
    ]
