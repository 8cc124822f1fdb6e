"""The two-level search (NSGA-II by default), driven by ask/tell with evaluation outside the algorithm.

Level 1 searches blocks inside a fixed skeleton; level 2 searches macros for the best blocks of level 1 (the
paper's two stages). :func:`run_level` runs any :class:`~nasoa.search.space.SearchSpace` with any registered
algorithm (:data:`ALGORITHMS`). Resuming is a deterministic replay: with the same seed the algorithm proposes the
same candidates, archived ones are answered from the archive and only the rest are evaluated, so nothing archived
is ever trained twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from nasoa.common.pareto import spread
from nasoa.search.algorithms import ALGORITHMS
from nasoa.search.archive import Record, hypervolume, non_dominated
from nasoa.search.evaluator import ArchiveStore, Candidate, Evaluator
from nasoa.search.problem import ArchProblem, objectives
from nasoa.search.space import BlockSpace, MacroSpace, SearchSpace, SpaceSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LevelSettings:
    """NSGA-II settings of one level."""

    pop_size: int = 8
    generations: int = 3
    n_offsprings: int | None = None
    crossover_prob: float = 0.9
    mutation_prob: float = 0.9

    def __post_init__(self) -> None:
        if self.pop_size < 2 or self.generations < 1:
            raise ValueError(f"need pop_size >= 2 and generations >= 1, got {self.pop_size}, {self.generations}")


@dataclass(frozen=True)
class SearchSettings:
    """The ``search`` config: the algorithm, its seed, both levels, and the analytic caps on candidates."""

    algorithm: str = "nsga2"
    seed: int = 0
    top_blocks: int = 3
    block: LevelSettings = field(default_factory=LevelSettings)
    macro: LevelSettings = field(default_factory=LevelSettings)
    max_params: int | None = None
    max_macs: int | None = None
    cost_num_classes: int = 10

    def __post_init__(self) -> None:
        ALGORITHMS.get(self.algorithm)  # an unknown name fails here, naming the known ones


@dataclass(frozen=True)
class GenerationReport:
    """What one generation did, for progress output."""

    level: str
    generation: int
    proposed: int
    evaluated: int
    cached: int
    failed: int
    archive_size: int
    front_size: int
    hypervolume: float
    best_accuracy: float
    fastest_step_ms: float
    seconds: float

    def line(self) -> str:
        return (
            f"[{self.level} gen {self.generation}] proposed {self.proposed}, evaluated {self.evaluated}, "
            f"cached {self.cached}, failed {self.failed} | archive {self.archive_size}, front {self.front_size}, "
            f"HV {self.hypervolume:.4f}, best acc {self.best_accuracy:.3f}, fastest step {self.fastest_step_ms:.1f} ms "
            f"| {self.seconds:.1f}s"
        )


@dataclass
class SearchResult:
    """The proposals of each level in order, the generation reports and the final archive's front."""

    proposals: dict[str, list[str]] = field(default_factory=dict)
    reports: list[GenerationReport] = field(default_factory=list)
    evaluated: list[str] = field(default_factory=list)
    ref_step_ms: float = 0.0


def _candidates(space: SearchSpace, pop, generation: int) -> list[Candidate]:  # noqa: ANN001
    return [Candidate(space.key(ind.X[0]), ind.X[0], space.level, generation) for ind in pop]


def run_level(
    space: SearchSpace,
    settings: LevelSettings,
    evaluator: Evaluator,
    store: ArchiveStore,
    seed: int,
    result: SearchResult,
    initial: tuple[str, ...] = (),
    on_generation: Callable[[GenerationReport], None] | None = None,
    algorithm: str = "nsga2",
) -> None:
    """Run one level of the search with the registered ``algorithm``; appends to ``result``."""
    algo = ALGORITHMS.create(algorithm, space, settings, initial)
    algo.setup(ArchProblem(), termination=("n_gen", settings.generations), seed=seed, verbose=False)
    proposals = result.proposals.setdefault(space.level, [])
    generation = 0
    while algo.has_next():
        t0 = time.perf_counter()
        pop = algo.ask()
        candidates = _candidates(space, pop, generation)
        proposals.extend(c.archid for c in candidates)
        records, evaluated = _evaluate(candidates, evaluator, store, result)
        F, G = objectives(records)
        pop.set("F", F)
        pop.set("G", G)
        algo.tell(infills=pop)
        archive = store.snapshot()
        if not result.ref_step_ms:
            steps = [r.train_step_ms for r in archive.records if r.ok]
            result.ref_step_ms = 1.1 * max(steps) if steps else 0.0
        report = _report(space.level, generation, records, evaluated, archive.records, result.ref_step_ms, t0)
        result.reports.append(report)
        if on_generation is not None:
            on_generation(report)
        generation += 1


def _evaluate(
    candidates: list[Candidate], evaluator: Evaluator, store: ArchiveStore, result: SearchResult
) -> tuple[list[Record], int]:
    """Records of ``candidates`` (archived ones from the store, the rest evaluated now) and how many were new."""
    known = store.get_many([c.archid for c in candidates])
    todo = [c for c in candidates if c.archid not in known]
    fresh = {r.archid: r for r in evaluator.evaluate(todo)} if todo else {}
    result.evaluated.extend(c.archid for c in todo)
    return [known.get(c.archid) or fresh[c.archid] for c in candidates], len(todo)


def _report(level, generation, records, evaluated, archived, ref_step_ms, t0) -> GenerationReport:  # noqa: ANN001
    front = non_dominated(archived)
    ok = [r for r in archived if r.ok]
    return GenerationReport(
        level=level,
        generation=generation,
        proposed=len(records),
        evaluated=evaluated,
        cached=len(records) - evaluated,
        failed=sum(not r.ok for r in records),
        archive_size=len(archived),
        front_size=len(front),
        hypervolume=hypervolume(archived, ref_step_ms) if ref_step_ms else 0.0,
        best_accuracy=max((r.accuracy for r in ok), default=float("nan")),
        fastest_step_ms=min((r.train_step_ms for r in ok), default=float("nan")),
        seconds=time.perf_counter() - t0,
    )


def best_blocks(records: list[Record], level: str, k: int) -> list[Record]:
    """Up to ``k`` front members of a level with distinct blocks, fastest first."""
    front = non_dominated([r for r in records if r.level == level])
    seen, out = set(), []
    for r in front:
        block = r.encoding.split("_")[0]
        if block not in seen:
            seen.add(block)
            out.append(r)
    return spread(out, k)


def run_search(
    block_space: BlockSpace,
    macro_space: MacroSpace,
    settings: SearchSettings,
    evaluator: Evaluator,
    store: ArchiveStore,
    on_generation: Callable[[GenerationReport], None] | None = None,
) -> SearchResult:
    """Block-level search, then macro-level search seeded with the best blocks."""
    result = SearchResult()
    algorithm, seed = settings.algorithm, settings.seed
    run_level(block_space, settings.block, evaluator, store, seed, result, (), on_generation, algorithm)
    best = best_blocks(list(store.snapshot().records), "block", settings.top_blocks)
    if not best:
        raise RuntimeError("block-level search produced no successful candidate; see the archive's error column")
    blocks = tuple(dict.fromkeys(r.encoding.split("_")[0] for r in best))
    log.info("macro level explores the blocks %s", ", ".join(blocks))
    macro_space = macro_space.with_blocks(blocks)
    initial = tuple(macro_space.canonical(r.encoding) for r in best if macro_space.accepts(r.encoding))
    run_level(macro_space, settings.macro, evaluator, store, seed + 1, result, initial, on_generation, algorithm)
    return result


def level_spaces(space: SpaceSettings, search: SearchSettings, resolution: int) -> tuple[BlockSpace, MacroSpace]:
    """The block and macro levels of the ``space`` and ``search`` configs, costed at the proxy's resolution."""
    caps = dict(limits=space.limits, max_params=search.max_params, max_macs=search.max_macs)
    caps |= dict(resolution=resolution, num_classes=search.cost_num_classes)
    block = BlockSpace(macro=space.skeleton, stem_width=space.block_stem_width, **caps)
    return block, MacroSpace(stem_width=space.macro_stem_width, **caps)
