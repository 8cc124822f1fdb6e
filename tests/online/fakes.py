"""A fake zoo (profiles only, no weights) and a synthetic fine-tuning simulator for the online tests."""

import math

import numpy as np

from nasoa.data.meta import TaskMeta
from nasoa.online import BayesianLinearPredictor, Regime, RegimeGenerator, RegimeSpace, experience_row
from nasoa.zoo.manifest import Profile, ZooEntry

DEVICE = "cpu:test"
BATCHES = (16, 32, 64)


def make_entry(key: str, kind: str, base_ms: float, top1: float, params: int, num_stages: int = 4) -> ZooEntry:
    """A zoo entry profiled on DEVICE at 32 px; each frozen stage makes a step 18% of the full cost cheaper."""
    profiles = tuple(
        Profile(DEVICE, b, 32, k, base_ms * (b / 16) * (1.0 - 0.18 * k), inference_ms=0.3 * base_ms * (b / 16))
        for b in BATCHES
        for k in range(num_stages + 1)
    )
    return ZooEntry(
        key=key,
        name=key.split(".")[0],
        kind=kind,
        arch=key.split(".")[0],
        source="test",
        num_classes=10,
        top1=top1,
        params=params,
        macs=params * 30,
        num_stages=num_stages,
        resolution=32,
        weights=f"weights/{key}.pt",
        sha256="0" * 64,
        profiles=profiles,
    )


ENTRIES = (
    make_entry("fast.t", "etnas", 2.0, 0.60, 200_000),
    make_entry("mid.t", "etnas", 5.0, 0.70, 800_000),
    make_entry("slow.t", "reference", 12.0, 0.78, 3_000_000),
)


def simulate(task: TaskMeta, entry: ZooEntry, regime: Regime, rng: np.random.Generator | None = None) -> float:
    """A smooth made-up top-1: better models and more images seen help, a mistuned lr and many classes hurt."""
    frozen = regime.frozen_stages / entry.num_stages
    seen = regime.planned_steps(task.num_train) * regime.batch_size / task.num_train
    progress = 1.0 - math.exp(-0.5 * seen * (1.0 + frozen))  # frozen backbones converge faster ...
    ceiling = entry.top1 * (1.0 - 0.25 * frozen)  # ... to a lower ceiling
    lr_penalty = 0.05 * (math.log10(regime.lr) - math.log10(0.03)) ** 2
    acc = ceiling * (0.35 + 0.65 * progress) - lr_penalty - 0.03 * math.log(task.num_classes)
    if rng is not None:
        acc += rng.normal(0.0, 0.02)
    return float(np.clip(acc, 0.0, 1.0))


def random_task(rng: np.random.Generator) -> TaskMeta:
    return TaskMeta(
        num_classes=int(rng.integers(2, 50)),
        num_train=int(rng.integers(100, 3000)),
        resolution=int(rng.choice([32, 48, 64])),
        channels=int(rng.choice([1, 3])),
    )


def random_rows(n: int, seed: int = 0, space: RegimeSpace | None = None) -> list[dict]:
    """Experience rows of random (task, regime) pairs with simulated accuracies."""
    rng = np.random.default_rng(seed)
    space = space or RegimeSpace()
    rows = []
    for _ in range(n):
        task, entry = random_task(rng), ENTRIES[int(rng.integers(len(ENTRIES)))]
        regime = Regime(
            entry.key,
            float(rng.choice(space.lrs)),
            int(rng.integers(0, entry.num_stages + 1)),
            int(rng.choice(space.batch_sizes)),
            int(rng.choice(space.epochs)),
        )
        acc = simulate(task, entry, regime, rng)
        rows.append(experience_row(task, regime, entry, accuracy=acc, time_s=1.0, source="collect", device=DEVICE))
    return rows


def fitted_generator(rows: list[dict], **kwargs) -> RegimeGenerator:
    generator = RegimeGenerator(list(ENTRIES), BayesianLinearPredictor(), RegimeSpace(), DEVICE, **kwargs)
    assert generator.fit(rows) == len(rows)
    return generator
