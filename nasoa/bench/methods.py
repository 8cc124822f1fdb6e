"""Regime choosers behind one interface: nasoa's one-shot generator and the baselines it is measured against.

Each method answers "which model and regime for this task under this budget" (:meth:`RegimeMethod.choose`) for a
:class:`Cell` (a task, a budget, a seed). Every regime is sized to the budget (its steps fill it, see
:func:`nasoa.online.regime.sized_to_budget`). A method that compares regimes fine-tunes them (``evaluate``, cached
across methods) and keeps the best *validation* top-1; every method is scored on the *test* split. What it spent
is part of its :class:`Choice`: the fine-tunes it needed (the final one included) and their seconds.
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
from nasoa.online.regime import CostModel, Regime, sized_to_budget
from nasoa.train.finetune import FinetuneResult
from nasoa.zoo.manifest import ZooEntry

#: ``evaluate(regimes)``: the fine-tuning results of ``regimes`` on the cell's task under its budget and seed.
Evaluate = Callable[[Sequence[Regime]], list[FinetuneResult]]


@dataclass(frozen=True)
class Cell:
    """One (task, budget, seed) of the benchmark stream.

    Attributes:
        task: The task's name.
        spec: Its spec (a suite record or a ``make_task`` spec).
        meta: Its meta-features.
        budget_s: Seconds allowed for the whole fine-tune (probes included).
        multiple: The budget as a multiple of the task's cheapest sensible full fine-tune.
        seed: The fine-tuning seed.
        entries: The zoo models methods choose among.
        device: Zoo profile device of the cost model.
        cost: The time model.
    """

    task: str
    spec: Any
    meta: TaskMeta
    budget_s: float
    multiple: float
    seed: int
    entries: tuple[ZooEntry, ...]
    device: str
    cost: CostModel = field(default_factory=CostModel)

    def entry(self, key: str) -> ZooEntry:
        return next(e for e in self.entries if e.key == key)

    def sized(self, regime: Regime, budget_s: float | None = None) -> Regime | None:
        """``regime`` with the steps that fill the budget (None: not one step fits, or no profile on the device)."""
        try:
            entry = self.entry(regime.model)
            return sized_to_budget(entry, regime, self.meta, budget_s or self.budget_s, self.device, self.cost)
        except (KeyError, StopIteration):
            return None


@dataclass(frozen=True)
class Choice:
    """A method's answer for a cell and what it cost to find.

    Attributes:
        method: The method's name.
        regime: The regime picked (None when nothing fits).
        fine_tunes: Fine-tunes run to choose, the final one included.
        compute_s: Seconds spent choosing and running: those fine-tunes' seconds plus the method's own work.
        trace: ``(seconds so far, regime)`` each time the method's best-so-far changed, in the order it ran.
        note: Anything unusual.
        predicted: The method's own prediction of its pick (accuracy, std, time), if it makes one.
        probe_s: Seconds of probing the task's data before choosing (part of ``compute_s`` and of the budget).
    """

    method: str
    regime: Regime | None
    fine_tunes: int
    compute_s: float
    trace: tuple[tuple[float, Regime], ...] = ()
    note: str = ""
    predicted: Mapping[str, Any] | None = None
    probe_s: float = 0.0


class RegimeMethod(Protocol):
    """A way of choosing a regime.

    A method whose fine-tunes do not depend on each other's results may also have ``plan(cell) -> list[Regime]``:
    the regimes its ``choose`` will ask ``evaluate`` for, so that the benchmark fine-tunes those of every method of
    a cell in parallel before the methods choose (their ``evaluate`` then reads the results back).
    """

    name: str

    def choose(self, cell: Cell, evaluate: Evaluate) -> Choice: ...


def best_of(name: str, cell: Cell, regimes: Sequence[Regime | None], evaluate: Evaluate, note: str = "") -> Choice:
    """Fine-tune every regime that fits and keep the best validation top-1 (ties: the first)."""
    fits = [r for r in regimes if r is not None]
    if not fits:
        return Choice(name, None, 0, 0.0, note=note or "no regime fits the budget")
    results = evaluate(fits)
    spent, best, trace = 0.0, -1, []
    for i, r in enumerate(results):
        spent += r.time_s
        if best < 0 or r.accuracy > results[best].accuracy:
            best = i
            trace.append((spent, fits[i]))
    return Choice(name, fits[best], len(fits), spent, tuple(trace), note)


@dataclass(frozen=True)
class Grid:
    """A product of regimes: models (None: every zoo model) x lrs x frozen fractions x batch sizes.

    A frozen fraction f freezes ``round(f * num_stages)`` stages (the stem and those stages).
    """

    models: tuple[str, ...] | None = None
    lrs: tuple[float, ...] = (0.01,)
    frozen_fractions: tuple[float, ...] = (0.0,)
    batch_sizes: tuple[int, ...] = (32,)
    schedule: str = "cosine"

    def regimes(self, cell: Cell) -> list[Regime]:
        """Every regime of the product over the cell's zoo models (named ones only, if given), before sizing."""
        keys = {e.name: e.key for e in cell.entries} | {e.key: e.key for e in cell.entries}
        entries = cell.entries if self.models is None else [cell.entry(keys[m]) for m in self.models if m in keys]
        out = {}
        for e in entries:
            for f in self.frozen_fractions:
                for b in self.batch_sizes:
                    for lr in self.lrs:
                        r = Regime(e.key, lr, round(f * e.num_stages), b, 1, self.schedule)
                        out[r.regime_id] = r
        return list(out.values())


class NasoaOneShot:
    """nasoa: the regime generator's pick (one fine-tune), with or without task probes; it learns from each task.

    Args:
        generator: The service's generator (its predictor and regime space).
        probes: ``probes(cell) -> (scores by zoo key, seconds)``; None: meta-features only.
        name: The method's name in the results.
    """

    def __init__(
        self, generator: RegimeGenerator, probes: Callable[[Cell], tuple[dict, float]] | None = None, name: str = ""
    ) -> None:
        self.generator, self.probes = generator, probes
        self.name = name or ("nasoa" if probes is not None else "nasoa_noprobe")
        self.last_probes: dict[str, float] = {}  # the scores of the last choice (stored with its experience row)
        self._last: tuple[Cell, tuple] | None = None  # the last cell and its proposal

    def _propose(self, cell: Cell) -> tuple[Any, dict | None, float, float]:
        """The generator's answer (or the error), the probe scores, their seconds, and the proposal's seconds.

        The last cell's proposal is kept: ``plan`` then ``choose`` on one cell propose once (the generator only
        changes in ``learn``, which forgets it).
        """
        if self._last is not None and self._last[0] == cell:
            return self._last[1]
        scores, probe_s = self.probes(cell) if self.probes is not None else (None, 0.0)
        extra = {} if scores is None else {"probes": scores, "probe_s": probe_s}
        t0 = time.perf_counter()
        try:
            answer = self.generator.propose(cell.meta, cell.budget_s, top_k=0, **extra)
        except (NoFeasibleRegime, ValueError) as err:
            answer = err
        self._last = (cell, (answer, scores, probe_s, time.perf_counter() - t0))
        return self._last[1]

    def plan(self, cell: Cell) -> list[Regime]:
        answer = self._propose(cell)[0]
        return [] if isinstance(answer, Exception) else [answer.regime]

    def choose(self, cell: Cell, evaluate: Evaluate) -> Choice:
        answer, scores, probe_s, propose_s = self._propose(cell)
        if isinstance(answer, Exception):
            return Choice(self.name, None, 0, propose_s + probe_s, note=str(answer), probe_s=probe_s)
        result = evaluate([answer.regime])[0]
        spent = probe_s + propose_s + result.time_s
        predicted = {"accuracy": answer.predicted_accuracy, "std": answer.predicted_std}
        predicted |= {"time_s": answer.predicted_time_s, "fallback": bool(getattr(answer, "fallback", False))}
        self.last_probes = scores or {}
        return Choice(self.name, answer.regime, 1, spent, ((spent, answer.regime),), "", predicted, probe_s)

    def learn(self, rows: Sequence[Mapping]) -> None:
        """Feed finished runs (experience rows) back into the predictor."""
        self._last = None
        for row in rows:
            self.generator.learn(row)


class FixedRecipe:
    """One regime for every task: a model and a learning rate, nothing frozen, trained until the budget ends."""

    def __init__(self, name: str, model: str, lr: float, batch_size: int, schedule: str = "constant") -> None:
        self.name, self.regime = name, (model, lr, batch_size, schedule)

    def _regime(self, cell: Cell) -> tuple[Regime | None, str | None]:
        model, lr, batch, schedule = self.regime
        key = _key_of(cell, model)
        return (cell.sized(Regime(key, lr, 0, batch, 1, schedule)) if key else None), key

    def plan(self, cell: Cell) -> list[Regime]:
        return [r for r in self._regime(cell)[:1] if r is not None]

    def choose(self, cell: Cell, evaluate: Evaluate) -> Choice:
        regime, key = self._regime(cell)
        return best_of(self.name, cell, [regime], evaluate, "" if key else f"{self.regime[0]} is not in the zoo")


class SeriesUpperBound:
    """Every member of a model series with the default recipe; the best validation top-1 kept (an upper bound)."""

    def __init__(self, name: str, models: Sequence[str], lr: float, batch_size: int, schedule: str) -> None:
        if not models:
            raise ValueError(f"series {name!r} has no models")
        self.name, self.models, self.recipe = name, tuple(models), (lr, batch_size, schedule)

    def _regimes(self, cell: Cell) -> list[Regime | None]:
        lr, batch, schedule = self.recipe
        keys = [k for k in (_key_of(cell, m) for m in self.models) if k]
        return [cell.sized(Regime(k, lr, 0, batch, 1, schedule)) for k in keys]

    def plan(self, cell: Cell) -> list[Regime]:
        return [r for r in self._regimes(cell) if r is not None]

    def choose(self, cell: Cell, evaluate: Evaluate) -> Choice:
        return best_of(self.name, cell, self._regimes(cell), evaluate)


class RandomRegime:
    """A regime drawn uniformly from a grid (seeded by the seed, task and budget), sized to the budget."""

    name = "random"

    def __init__(self, grid: Grid, seed: int = 0) -> None:
        self.grid, self.seed = grid, seed

    def _draw(self, cell: Cell) -> list[Regime]:
        fits = [s for s in (cell.sized(r) for r in self.grid.regimes(cell)) if s is not None]
        rng = random.Random(f"{self.seed}:{cell.seed}:{cell.task}:{cell.budget_s}")
        return [rng.choice(fits)] if fits else []

    def plan(self, cell: Cell) -> list[Regime]:
        return self._draw(cell)

    def choose(self, cell: Cell, evaluate: Evaluate) -> Choice:
        return best_of(self.name, cell, self._draw(cell), evaluate)


class ExhaustiveOracle:
    """The best validation top-1 of a whole grid (every regime fine-tuned): the reference for regret."""

    name = "oracle"

    def __init__(self, grid: Grid) -> None:
        self.grid = grid

    def plan(self, cell: Cell) -> list[Regime]:
        return [s for s in (cell.sized(r) for r in self.grid.regimes(cell)) if s is not None]

    def choose(self, cell: Cell, evaluate: Evaluate) -> Choice:
        return best_of(self.name, cell, self.plan(cell), evaluate)


def _key_of(cell: Cell, model: str) -> str | None:
    """A zoo key from a model's name or key (None when the zoo lacks it)."""
    return next((e.key for e in cell.entries if model in (e.key, e.name)), None)


@dataclass(frozen=True)
class MethodContext:
    """What a method factory may need: the benchmark's config, generators, probes, where to write.

    ``generator(use_probes)`` builds a fresh generator (the service's, fitted on the initial experience); each
    nasoa method gets its own, so that one method's feedback never reaches another.
    """

    cfg: Mapping[str, Any]
    generator: Callable[[bool], RegimeGenerator]
    zoo_root: str
    out: Path
    runtime: Any = None  # a nasoa.cluster.runtime.RuntimeSettings: where fine-tunes run
    probes: Callable[[Cell], tuple[dict, float]] | None = None


#: Method name -> ``factory(name, context) -> RegimeMethod``; a name listed under ``series`` uses ``"series"``.
METHODS: Registry = Registry("benchmark method")


def _recipe(ctx: MethodContext) -> tuple[float, int, str]:
    d = ctx.cfg["default"]
    return float(d["lr"]), int(d["batch_size"]), str(d["schedule"])


def grid_of(spec: Mapping[str, Any]) -> Grid:
    """A :class:`Grid` from a config mapping (lists become tuples)."""
    return Grid(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()})


METHODS.register("oracle", lambda name, ctx: ExhaustiveOracle(grid_of(ctx.cfg["oracle_grid"])))
METHODS.register("nasoa", lambda name, ctx: NasoaOneShot(ctx.generator(True), ctx.probes, "nasoa"))
METHODS.register("nasoa_noprobe", lambda name, ctx: NasoaOneShot(ctx.generator(False), None, "nasoa_noprobe"))
METHODS.register("random", lambda name, ctx: RandomRegime(grid_of(ctx.cfg["random_grid"]), int(ctx.cfg["seed"])))
METHODS.register("default", lambda name, ctx: FixedRecipe(name, ctx.cfg["default"]["model"], *_recipe(ctx)))
METHODS.register("series", lambda name, ctx: SeriesUpperBound(name, ctx.cfg["series"][name], *_recipe(ctx)))


def create_methods(ctx: MethodContext) -> list[RegimeMethod]:
    """The methods ``ctx.cfg["methods"]`` lists, in order."""
    series = ctx.cfg.get("series") or {}
    return [METHODS.create("series" if name in series else name, name, ctx) for name in ctx.cfg["methods"]]


__all__ = [
    "METHODS",
    "Cell",
    "Choice",
    "Evaluate",
    "ExhaustiveOracle",
    "FixedRecipe",
    "Grid",
    "MethodContext",
    "NasoaOneShot",
    "RandomRegime",
    "RegimeMethod",
    "SeriesUpperBound",
    "best_of",
    "create_methods",
    "grid_of",
]
