"""A fake zoo (profiles only, no weights) and a fine-tuning simulator with hidden task difficulty for the online tests.

The simulator is not a smooth function of the meta-features: every task draws a hidden difficulty and a hidden
affinity to each model (what probes see, with noise), its best learning rate moves with what is frozen, and a run's
top-1 follows a learning curve in epochs whose speed depends on the lr and the frozen stages (a frozen backbone
learns fast to a lower ceiling), measured mid-schedule lower than annealed.
"""

import math
from dataclasses import dataclass, field

import numpy as np

from nasoa.data.meta import TaskMeta
from nasoa.online import CurveBLR, Regime, RegimeGenerator, RegimeSpace, experience_row
from nasoa.online.features import from_target
from nasoa.online.generator import lr_fraction
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
    make_entry("resnet18.t", "reference", 8.0, 0.72, 11_000_000),
)
#: A small grid for fast tests.
SPACE = RegimeSpace(lrs=(0.003, 0.01, 0.03, 0.1), batch_sizes=(16, 32), max_frozen_fraction=1.0)


@dataclass
class SimTask:
    """A simulated task: its meta-features and what the predictor cannot see."""

    meta: TaskMeta
    difficulty: float
    affinity: dict = field(default_factory=dict)

    def probes(self, rng: np.random.Generator | None = None) -> dict[str, float]:
        """Noisy probe top-1 of every model: difficulty and affinity show through."""
        out = {}
        for e in ENTRIES:
            z = 0.8 - self.difficulty + self.affinity[e.key] + 1.5 * (e.top1 - 0.7)
            z += rng.normal(0.0, 0.25) if rng is not None else 0.0
            out[e.key] = float(from_target(z, self.meta.num_classes))
        return out


def sim_task(rng: np.random.Generator, name: str) -> SimTask:
    meta = TaskMeta(
        num_classes=int(rng.integers(2, 30)),
        num_train=int(rng.integers(100, 2000)),
        resolution=int(rng.choice([32, 48])),
        channels=int(rng.choice([1, 3])),
        name=name,
    )
    affinity = {e.key: float(rng.normal(0.0, 0.6)) for e in ENTRIES}
    return SimTask(meta, float(rng.normal(0.0, 0.9)), affinity)


def _entry(key: str) -> ZooEntry:
    return next(e for e in ENTRIES if e.key == key)


def true_target(task: SimTask, regime: Regime, steps: float, lr_left: float = 0.0) -> float:
    """The noise-free logit above chance after ``steps`` steps with ``lr_left`` of the lr not yet annealed."""
    entry = _entry(regime.model)
    f = regime.frozen_stages / entry.num_stages
    best_lr = 0.03 * (1.0 - 0.6 * f) * math.sqrt(regime.batch_size / 32)
    ceiling = 2.6 - task.difficulty + task.affinity[entry.key] + 2.0 * (entry.top1 - 0.7)
    ceiling -= 1.6 * f**2 + 0.8 * math.log10(regime.lr / best_lr) ** 2
    epochs = steps * regime.batch_size / task.meta.num_train
    rate = 0.5 * (1.0 + 2.5 * f) * (regime.lr / 0.01) ** 0.3
    return ceiling - 3.5 * math.exp(-rate * epochs) - 0.6 * lr_left


def true_accuracy(task: SimTask, regime: Regime, steps: float | None = None) -> float:
    """Noise-free top-1 of the annealed run (at its planned steps by default)."""
    steps = regime.planned_steps(task.meta.num_train) if steps is None else steps
    return float(from_target(true_target(task, regime, steps), task.meta.num_classes))


def run(task: SimTask, regime: Regime, rng: np.random.Generator, budget_s: float = math.nan) -> dict:
    """A simulated finished run as an experience row: final top-1 and a curve at 1/4, 1/2, 3/4 of the plan."""
    steps = regime.planned_steps(task.meta.num_train)
    C = task.meta.num_classes

    def observe(s: float, left: float, sd: float) -> float:
        acc = float(from_target(true_target(task, regime, s, left), C)) + rng.normal(0.0, sd)
        return float(np.clip(acc, 0.0, 1.0))

    curve = [
        [p, observe(p, lr_fraction("cosine", p, steps), 0.04)]
        for p in sorted({max(1, round(f * steps)) for f in (0.25, 0.5, 0.75)})
        if p < steps
    ]
    final = observe(steps, 0.0, 0.02)
    return experience_row(
        task.meta,
        regime,
        _entry(regime.model),
        accuracy=final,
        time_s=1.0,
        budget_s=budget_s,
        source="collect",
        device=DEVICE,
        steps=steps,
        curve=[*curve, [steps, final]],
        probes=task.probes(rng),
    )


def past_rows(generator: RegimeGenerator, tasks: list, budgets=(4.0, 16.0, 64.0), per_budget: int = 6, seed=0):
    """Experience on ``tasks``: ``per_budget`` random candidates sized to each budget, run on the simulator."""
    rng = np.random.default_rng(seed)
    rows = []
    for task in tasks:
        for budget in budgets:
            steps, _ = generator.sized(task.meta, budget)
            fits = np.flatnonzero(steps >= 1)
            for i in rng.choice(fits, size=min(per_budget, len(fits)), replace=False):
                regime = generator.regime_at(int(i), int(steps[i]), task.meta.num_train)
                rows.append(run(task, regime, rng, budget))
    return rows


def generator(**kwargs) -> RegimeGenerator:
    """A generator over the fake zoo and the small grid (keyword arguments override)."""
    kwargs = {"space": SPACE, "device": DEVICE} | kwargs
    return RegimeGenerator(list(ENTRIES), kwargs.pop("predictor", None) or CurveBLR(), **kwargs)


def random_rows(n: int, seed: int = 0) -> list[dict]:
    """``n`` experience rows of random simulated tasks and candidates (for tests that need some rows)."""
    rng = np.random.default_rng(seed)
    g = generator()
    tasks = [sim_task(rng, f"r{seed}-{i}") for i in range(max(1, n // 6))]
    return past_rows(g, tasks, budgets=(8.0, 32.0), per_budget=3, seed=seed)[:n]


def fitted_generator(rows: list[dict], **kwargs) -> RegimeGenerator:
    g = generator(**kwargs)
    assert g.fit(rows) == len(rows)
    return g
