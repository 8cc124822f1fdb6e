"""The search spaces a level explores: one small protocol, and the ET-NAS block and macro levels.

Shaped like archai's ``EvolutionarySearchSpace``: a candidate is a string (its canonical encoding) and a space
says how to sample, mutate and cross candidates and what key (``archid``) names one. The ask/tell loop and the
pymoo operators only use this protocol, so a test can drive them with a fake space. The ET-NAS levels never
propose a candidate whose analytic params or MACs exceed the caps, so nothing infeasible is dispatched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

from nasoa.space import Arch, complexity, parse, parse_block
from nasoa.space.operators import SpaceLimits, crossover, mutate, sample_arch, within


class SearchSpace(Protocol):
    """What the ask/tell loop needs of a search level."""

    level: str

    def sample(self, rng: np.random.Generator) -> str:
        """A random candidate."""

    def mutate(self, rng: np.random.Generator, x: str) -> str:
        """A mutation of ``x``."""

    def crossover(self, rng: np.random.Generator, a: str, b: str) -> str:
        """A child of ``a`` and ``b``."""

    def key(self, x: str) -> str:
        """The stable id of a candidate (the archive key)."""

    def canonical(self, x: str) -> str:
        """The canonical form of a candidate given by a user (e.g. an initial population)."""


@dataclass(frozen=True)
class SpaceSettings:
    """The ``space`` config: the block level's fixed skeleton, stem widths and the grammar limits."""

    skeleton: str = "211-2111-211111-211"
    block_stem_width: int | None = 16
    macro_stem_width: int | None = None
    limits: SpaceLimits = field(default_factory=SpaceLimits)


@dataclass(frozen=True)
class ETNASLevel:
    """What both ET-NAS levels share: the grammar limits and the analytic cost caps."""

    limits: SpaceLimits
    stem_width: int | None = None
    max_params: int | None = None
    max_macs: int | None = None
    resolution: int = 32
    num_classes: int = 10

    def __post_init__(self) -> None:
        if self.stem_width is not None and self.stem_width not in self.limits.stem_widths:
            raise ValueError(f"stem_width {self.stem_width} is not among limits.stem_widths {self.limits.stem_widths}")

    def key(self, x: str) -> str:
        return parse(x).archid

    def canonical(self, x: str) -> str:
        return str(parse(x))

    def feasible(self, arch: Arch) -> bool:
        """Whether the analytic cost of ``arch`` fits the caps."""
        if self.max_params is None and self.max_macs is None:
            return True
        cx = complexity(arch, self.resolution, self.num_classes)
        return (self.max_params is None or cx.params <= self.max_params) and (
            self.max_macs is None or cx.macs <= self.max_macs
        )

    def _until_feasible(self, make: Callable[[], Arch], what: str, attempts: int = 200) -> str:
        for _ in range(attempts):
            arch = make()
            if self.feasible(arch):
                return str(arch)
        raise ValueError(f"no {what} within max_params={self.max_params}, max_macs={self.max_macs} in {attempts} tries")

    def crossover(self, rng: np.random.Generator, a: str, b: str) -> str:
        """A feasible child of two parents (a mutation of ``a`` when crossing fails)."""
        pa, pb = parse(a), parse(b)
        return self._until_feasible(lambda: crossover(rng, pa, pb, self.limits, self.level), "crossover")


@dataclass(frozen=True)
class BlockSpace(ETNASLevel):
    """Blocks inside the fixed macro skeleton ``macro``."""

    macro: str = "211-2111-211111-211"
    level: str = "block"

    def sample(self, rng: np.random.Generator) -> str:
        make = lambda: sample_arch(rng, self.limits, macro=self.macro, stem_width=self.stem_width)  # noqa: E731
        return self._until_feasible(make, "block sample")

    def mutate(self, rng: np.random.Generator, x: str) -> str:
        arch = parse(x)
        return self._until_feasible(lambda: mutate(rng, arch, self.limits, "block"), "mutation")


@dataclass(frozen=True)
class MacroSpace(ETNASLevel):
    """Macros (and stem widths) around the given ``blocks`` (the best blocks of the block level)."""

    blocks: tuple[str, ...] = ()
    level: str = "macro"

    def __post_init__(self) -> None:
        super().__post_init__()
        for b in self.blocks:
            parse_block(b)

    def with_blocks(self, blocks: tuple[str, ...]) -> MacroSpace:
        return replace(self, blocks=tuple(blocks))

    def accepts(self, x: str) -> bool:
        """Whether ``x`` fits this level's caps and grammar limits (a candidate carried over from the block level)."""
        arch = parse(x)
        return self.feasible(arch) and within(arch, self.limits, "macro")

    def _with_block(self, rng: np.random.Generator, arch: Arch) -> Arch | None:
        block = self.blocks[int(rng.integers(len(self.blocks)))]
        try:
            return parse(f"{block}_{arch.stem_width}_{arch.macro}")
        except ValueError:
            return None

    def sample(self, rng: np.random.Generator) -> str:
        def make() -> Arch:
            arch = sample_arch(rng, self.limits, stem_width=self.stem_width)
            if not self.blocks:
                return arch
            return self._with_block(rng, arch) or make()

        return self._until_feasible(make, "macro sample")

    def mutate(self, rng: np.random.Generator, x: str) -> str:
        """A feasible mutation (the block may also be swapped for another of the best blocks)."""
        arch = parse(x)

        def make() -> Arch:
            if len(self.blocks) > 1 and rng.random() < 0.2:
                child = self._with_block(rng, arch)
                if child is not None and child != arch:
                    return child
            return mutate(rng, arch, self.limits, "macro")

        return self._until_feasible(make, "mutation")
