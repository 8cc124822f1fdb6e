"""Regime choosers behind one interface: nasoa's one-shot generator and the baselines it is measured against.

Each method answers "which model and regime for this task under this budget" (:meth:`RegimeMethod.choose`)
from a :class:`Cell`: the task, the budget and every regime of the shared space predicted to fit it. A method
may fine-tune regimes to decide (``evaluate``, cached across methods, see :mod:`nasoa.jobs.benchmark.runs`); what
it spent is part of its :class:`Choice`: the fine-tunes it needed (the final one included) and their seconds.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from nasoa.common.registry import Registry
from nasoa.data.meta import TaskMeta
from nasoa.online.generator import NoFeasibleRegime, RegimeGenerator
from nasoa.online.regime import Regime, RegimeSpace
from nasoa.train.finetune import FinetuneResult

#: ``evaluate(regimes)``: the fine-tuning results of ``regimes`` on the cell's task under its budget.
Evaluate = Callable[[Sequence[Regime]], list[FinetuneResult]]


@dataclass(frozen=True)
class Cell:
    """One (task, budget) of the benchmark stream.

    Attributes:
        spec: The task spec (``make_task`` string).
        meta: Its meta-features.
        budget_s: Seconds allowed for the whole fine-tune.
        feasible: Every regime of the space predicted to fit the budget, in grid order.
        predicted_s: Predicted seconds of each of them, by regime id.
        space: The regime space they come from.
    """

    spec: str
    meta: TaskMeta
    budget_s: float
    feasible: tuple[Regime, ...]
    predicted_s: Mapping[str, float] = field(default_factory=dict)
    space: RegimeSpace | None = None


@dataclass(frozen=True)
class Choice:
    """A method's answer for a cell and what it cost to find.

    Attributes:
        method: The method's name.
        regime: The regime picked (None when nothing fits).
        fine_tunes: Fine-tunes run to choose, the final one included.
        choose_s: Compute seconds spent choosing: those fine-tunes' seconds plus the method's own work.
        trace: ``(seconds so far, regime)`` each time the method's best-so-far changed, in the order it ran
            (how much compute it needed to reach a given accuracy).
        note: Anything unusual (e.g. no regime of the recipe fits and the shortest one runs into the deadline).
    """

    method: str
    regime: Regime | None
    fine_tunes: int
    choose_s: float
    trace: tuple[tuple[float, Regime], ...] = ()
    note: str = ""


class RegimeMethod(Protocol):
    """A way of choosing a regime."""

    name: str

    def choose(self, cell: Cell, evaluate: Evaluate) -> Choice: ...


def best_of(name: str, cell: Cell, regimes: Sequence[Regime], evaluate: Evaluate, note: str = "") -> Choice:
    """Fine-tune every one of ``regimes`` and keep the most accurate (ties: the first)."""
    if not regimes:
        return Choice(name, None, 0, 0.0, note="no regime fits the budget")
    results = evaluate(regimes)
    spent, best, trace = 0.0, -1, []
    for i, r in enumerate(results):
        spent += r.time_s
        if best < 0 or r.accuracy > results[best].accuracy:
            best = i
            trace.append((spent, regimes[i]))
    return Choice(name, regimes[best], len(regimes), spent, tuple(trace), note)


class NasoaOneShot:
    """nasoa: the regime generator's best predicted regime, one fine-tune; it learns from each finished task."""

    name = "nasoa"

    def __init__(self, generator: RegimeGenerator) -> None:
        self.generator = generator

    def choose(self, cell: Cell, evaluate: Evaluate) -> Choice:
        t0 = time.perf_counter()
        try:
            regime = self.generator.propose(cell.meta, cell.budget_s, top_k=0).regime
        except NoFeasibleRegime as err:
            return Choice(self.name, None, 0, time.perf_counter() - t0, note=str(err))
        propose_s = time.perf_counter() - t0
        result = evaluate([regime])[0]
        return Choice(self.name, regime, 1, propose_s + result.time_s, ((propose_s + result.time_s, regime),))

    def learn(self, rows: Sequence[Mapping]) -> None:
        """Feed finished runs (experience rows) back into the predictor."""
        for row in rows:
            self.generator.learn(row)


def recipe_regime(cell: Cell, model: str, lr: float, batch_size: int) -> tuple[Regime | None, str]:
    """Default fine-tuning of ``model``: ``lr``, nothing frozen, as many epochs as are predicted to fit.

    Returns the regime and a note. When not even one epoch is predicted to fit, the recipe runs the fewest epochs
    of the space anyway and the deadline stops it, as a user would find out (noted); without a space, None.
    """
    fits = [
        r
        for r in cell.feasible
        if r.model == model and r.lr == lr and r.batch_size == batch_size and r.frozen_stages == 0
    ]
    if fits:
        return max(fits, key=lambda r: r.epochs), ""
    note = f"no {model} regime with lr {lr}, batch {batch_size} is predicted to fit {cell.budget_s:g}s"
    if cell.space is None:
        return None, note
    shortest = Regime(model, lr, 0, batch_size, min(cell.space.epochs), cell.space.schedule)
    return shortest, note + f": ran {shortest.epochs} epoch(s) until the deadline"


class DefaultFinetune:
    """Default fine-tuning: one popular reference model, a standard learning rate, nothing frozen."""

    def __init__(self, model: str, lr: float, batch_size: int, name: str = "default") -> None:
        self.model, self.lr, self.batch_size, self.name = model, lr, batch_size, name

    def choose(self, cell: Cell, evaluate: Evaluate) -> Choice:
        regime, note = recipe_regime(cell, self.model, self.lr, self.batch_size)
        return best_of(self.name, cell, [regime] if regime else [], evaluate, note)


class SeriesUpperBound:
    """Every member of a model series fine-tuned with the default recipe; the best kept (an upper bound)."""

    def __init__(self, name: str, models: Sequence[str], lr: float, batch_size: int) -> None:
        if not models:
            raise ValueError(f"series {name!r} has no models")
        self.name, self.models, self.lr, self.batch_size = name, tuple(models), lr, batch_size

    def choose(self, cell: Cell, evaluate: Evaluate) -> Choice:
        picked = [recipe_regime(cell, m, self.lr, self.batch_size) for m in self.models]
        regimes = [r for r, _ in picked if r is not None]
        notes = "; ".join(n for _, n in picked if n)
        return best_of(self.name, cell, regimes, evaluate, notes)


class RandomRegime:
    """A regime drawn uniformly from those predicted to fit (seeded by the seed, task and budget)."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def choose(self, cell: Cell, evaluate: Evaluate) -> Choice:
        rng = random.Random(f"{self.seed}:{cell.spec}:{cell.budget_s}")
        regimes = [rng.choice(cell.feasible)] if cell.feasible else []
        return best_of(self.name, cell, regimes, evaluate)


class ExhaustiveOracle:
    """The best regime of the whole feasible grid (every one fine-tuned): the reference for regret."""

    name = "oracle"

    def choose(self, cell: Cell, evaluate: Evaluate) -> Choice:
        return best_of(self.name, cell, list(cell.feasible), evaluate)


@dataclass(frozen=True)
class MethodContext:
    """What a method factory may need: the benchmark's config, zoo names -> keys, the generator, where to write."""

    cfg: Mapping[str, Any]
    names: Mapping[str, str]
    generator: RegimeGenerator
    zoo_root: str
    out: Path
    runtime: Any = None  # a nasoa.cluster.runtime.RuntimeSettings: where fine-tunes run


#: Method name -> ``factory(name, context) -> RegimeMethod``; a name listed under ``series`` uses ``"series"``.
METHODS: Registry = Registry("benchmark method")


def _default_recipe(ctx: MethodContext) -> tuple[float, int]:
    d = ctx.cfg["default"]
    return float(d["lr"]), int(d["batch_size"])


METHODS.register("oracle", lambda name, ctx: ExhaustiveOracle())
METHODS.register("nasoa", lambda name, ctx: NasoaOneShot(ctx.generator))
METHODS.register("random", lambda name, ctx: RandomRegime(int(ctx.cfg["seed"])))
METHODS.register(
    "default", lambda name, ctx: DefaultFinetune(ctx.names[ctx.cfg["default"]["model"]], *_default_recipe(ctx))
)
METHODS.register(
    "series",
    lambda name, ctx: SeriesUpperBound(name, [ctx.names[m] for m in ctx.cfg["series"][name]], *_default_recipe(ctx)),
)


def create_methods(ctx: MethodContext) -> list[RegimeMethod]:
    """The methods ``ctx.cfg["methods"]`` lists, in order."""
    series = ctx.cfg.get("series") or {}
    return [METHODS.create("series" if name in series else name, name, ctx) for name in ctx.cfg["methods"]]
