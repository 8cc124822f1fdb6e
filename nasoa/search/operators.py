"""pymoo operators over string candidates (object-valued genomes: ``X[i, 0]`` is the canonical encoding).

Each operator implements only ``_do`` and delegates to a :class:`~nasoa.search.space.SearchSpace`, as pymoo's
customization guide does for object variables.
"""

from __future__ import annotations

import numpy as np
from pymoo.core.crossover import Crossover
from pymoo.core.duplicate import ElementwiseDuplicateElimination
from pymoo.core.mutation import Mutation
from pymoo.core.sampling import Sampling

from nasoa.search.space import SearchSpace


class ArchSampling(Sampling):
    """Random feasible encodings, unique within the sample."""

    def __init__(self, space: SearchSpace, initial: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.space = space
        self.initial = tuple(space.canonical(e) for e in initial)

    def _do(self, problem, n_samples, *args, random_state=None, **kwargs):  # noqa: ANN001, ANN201
        seen: list[str] = list(dict.fromkeys(self.initial))[:n_samples]
        attempts = 0
        while len(seen) < n_samples and attempts < 50 * n_samples:
            text = self.space.sample(random_state)
            attempts += 1
            if text not in seen:
                seen.append(text)
        X = np.empty((len(seen), 1), dtype=object)
        X[:, 0] = seen
        return X


class ArchCrossover(Crossover):
    """Two parents give one child through the level's grammar crossover."""

    def __init__(self, space: SearchSpace, prob: float = 0.9) -> None:
        super().__init__(n_parents=2, n_offsprings=1, prob=prob)
        self.space = space

    def _do(self, problem, X, *args, random_state=None, **kwargs):  # noqa: ANN001, ANN201
        _, n_matings, _ = X.shape
        Y = np.empty((1, n_matings, 1), dtype=object)
        for k in range(n_matings):
            Y[0, k, 0] = self.space.crossover(random_state, X[0, k, 0], X[1, k, 0])
        return Y


class ArchMutation(Mutation):
    """Each offspring is mutated with probability ``prob`` through the level's grammar mutation."""

    def __init__(self, space: SearchSpace, prob: float = 0.9) -> None:
        super().__init__(prob=prob)
        self.space = space

    def _do(self, problem, X, *args, random_state=None, **kwargs):  # noqa: ANN001, ANN201
        Y = X.copy()
        for i in range(len(X)):
            Y[i, 0] = self.space.mutate(random_state, X[i, 0])
        return Y


class ArchDuplicates(ElementwiseDuplicateElimination):
    """Two individuals are the same candidate when their canonical encodings (so keys) are equal."""

    def is_equal(self, a, b) -> bool:  # noqa: ANN001
        return a.X[0] == b.X[0]
