"""Search algorithms by name (the ``search.algorithm`` config): pymoo algorithms over a search space's operators.

``ALGORITHMS.create(name, space, settings, initial)`` gives an algorithm to drive with ask/tell.
"""

from __future__ import annotations

from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.population import Population

from nasoa.common.registry import Registry
from nasoa.search.operators import ArchCrossover, ArchDuplicates, ArchMutation, ArchSampling
from nasoa.search.space import SearchSpace

ALGORITHMS: Registry = Registry("search algorithm")


@ALGORITHMS.register("nsga2")
def nsga2(space: SearchSpace, settings, initial: tuple[str, ...] = ()) -> NSGA2:  # noqa: ANN001 - LevelSettings
    """NSGA-II with the space's grammar-aware sampling, crossover and mutation."""
    return NSGA2(
        pop_size=settings.pop_size,
        n_offsprings=settings.n_offsprings,
        sampling=ArchSampling(space, initial),
        crossover=ArchCrossover(space, settings.crossover_prob),
        mutation=ArchMutation(space, settings.mutation_prob),
        eliminate_duplicates=ArchDuplicates(),
    )


class RandomSearch(NSGA2):
    """Every generation a fresh random sample (no mating); NSGA-II's survival only picks what is reported."""

    def __init__(self, space: SearchSpace, **kwargs) -> None:  # noqa: ANN003
        super().__init__(**kwargs)
        self.fresh = ArchSampling(space)

    def _infill(self) -> Population:
        return self.fresh.do(self.problem, self.n_offsprings, random_state=self.random_state)


@ALGORITHMS.register("random")
def random_search(space: SearchSpace, settings, initial: tuple[str, ...] = ()) -> RandomSearch:  # noqa: ANN001
    """Random search: a baseline that shows what NSGA-II's selection adds."""
    return RandomSearch(
        space,
        pop_size=settings.pop_size,
        n_offsprings=settings.n_offsprings,
        sampling=ArchSampling(space, initial),
        eliminate_duplicates=ArchDuplicates(),
    )
