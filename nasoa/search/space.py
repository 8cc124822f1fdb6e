"""The search space a search level explores: grammar operators, limits and cheap cost constraints.

Shaped like archai's ``EvolutionarySearchSpace`` (``sample`` / ``mutate`` / ``crossover``). Candidates
whose analytic params or MACs exceed the caps are never proposed, so nothing infeasible is dispatched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nasoa.space import Arch, complexity, parse, parse_block
from nasoa.space.operators import SpaceLimits, crossover, mutate, sample_arch


@dataclass(frozen=True)
class SearchSpace:
    """One search level.

    ``level="block"`` searches blocks inside the fixed ``macro`` skeleton; ``level="macro"`` searches macros
    (and stem widths) for the given ``blocks`` (the best blocks of the block level).
    """

    level: str
    limits: SpaceLimits
    macro: str | None = None
    blocks: tuple[str, ...] = ()
    stem_width: int | None = None
    max_params: int | None = None
    max_macs: int | None = None
    resolution: int = 32
    num_classes: int = 10

    def __post_init__(self) -> None:
        if self.level not in ("block", "macro"):
            raise ValueError(f"level must be 'block' or 'macro', got {self.level!r}")
        if self.level == "block" and not self.macro:
            raise ValueError("block-level search needs a fixed macro skeleton")
        for b in self.blocks:
            parse_block(b)
        if self.stem_width is not None and self.stem_width not in self.limits.stem_widths:
            raise ValueError(f"stem_width {self.stem_width} is not among limits.stem_widths {self.limits.stem_widths}")

    def feasible(self, arch: Arch) -> bool:
        """Whether the analytic cost of ``arch`` fits the caps."""
        if self.max_params is None and self.max_macs is None:
            return True
        cx = complexity(arch, self.resolution, self.num_classes)
        return (self.max_params is None or cx.params <= self.max_params) and (
            self.max_macs is None or cx.macs <= self.max_macs
        )

    def _until_feasible(self, make, what: str, attempts: int = 200) -> Arch:  # noqa: ANN001
        for _ in range(attempts):
            arch = make()
            if self.feasible(arch):
                return arch
        raise ValueError(f"no {what} within max_params={self.max_params}, max_macs={self.max_macs} in {attempts} tries")

    def sample(self, rng: np.random.Generator) -> Arch:
        """A random feasible candidate of this level."""
        if self.level == "block":
            return self._until_feasible(
                lambda: sample_arch(rng, self.limits, macro=self.macro, stem_width=self.stem_width), "block sample"
            )

        def make() -> Arch:
            arch = sample_arch(rng, self.limits, stem_width=self.stem_width)
            if self.blocks:
                block = self.blocks[int(rng.integers(len(self.blocks)))]
                try:
                    return parse(f"{block}_{arch.stem_width}_{arch.macro}")
                except ValueError:
                    return make()
            return arch

        return self._until_feasible(make, "macro sample")

    def mutate(self, rng: np.random.Generator, arch: Arch) -> Arch:
        """A feasible mutation at this level (at the macro level the block may also be swapped)."""

        def make() -> Arch:
            if self.level == "macro" and len(self.blocks) > 1 and rng.random() < 0.2:
                block = self.blocks[int(rng.integers(len(self.blocks)))]
                try:
                    child = parse(f"{block}_{arch.stem_width}_{arch.macro}")
                    if child != arch:
                        return child
                except ValueError:
                    pass
            return mutate(rng, arch, self.limits, self.level)

        return self._until_feasible(make, "mutation")

    def crossover(self, rng: np.random.Generator, a: Arch, b: Arch) -> Arch:
        """A feasible child of two parents (a mutation of ``a`` when crossing fails)."""
        return self._until_feasible(lambda: crossover(rng, a, b, self.limits, self.level), "crossover")
