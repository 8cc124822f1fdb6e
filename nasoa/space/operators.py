"""Grammar-aware sampling, mutation and crossover of ET-NAS blocks and macros.

Every function takes an explicit ``numpy.random.Generator`` and returns only encodings that parse
(and so build) and respect :class:`SpaceLimits`. No torch, no pymoo: :mod:`nasoa.search.operators`
adapts these to pymoo's operator classes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nasoa.space.encoding import OPS, Arch, BlockSpec, MacroSpec, Skip, parse, parse_macro

#: The ResNet-50-like skeleton of the paper's block-level search (depths 3-4-6-3).
RESNET50_MACRO = "211-2111-211111-211"


@dataclass(frozen=True)
class SpaceLimits:
    """Bounds on the encodings the operators may produce."""

    ops: tuple[int, ...] = tuple(OPS)
    min_layers: int = 1
    max_layers: int = 5
    max_skips: int = 2
    concat: bool = True
    stem_widths: tuple[int, ...] = (32, 64)
    min_depth: int = 4
    max_depth: int = 24
    num_stages: int = 4
    min_doublings: int = 1
    max_doublings: int = 6

    def __post_init__(self) -> None:
        if not set(self.ops) <= set(OPS) or not self.ops:
            raise ValueError(f"ops must be a non-empty subset of {sorted(OPS)}, got {self.ops}")
        if not 1 <= self.min_layers <= self.max_layers <= 9:
            raise ValueError(f"need 1 <= min_layers <= max_layers <= 9, got {self.min_layers}, {self.max_layers}")
        if not 1 <= self.num_stages <= self.min_depth <= self.max_depth:
            raise ValueError("need 1 <= num_stages <= min_depth <= max_depth")
        if not 0 <= self.min_doublings <= self.max_doublings:
            raise ValueError("need 0 <= min_doublings <= max_doublings")
        if any(w % 4 for w in self.stem_widths) or not self.stem_widths:
            raise ValueError(f"stem widths must be multiples of 4, got {self.stem_widths}")


def doublings(macro: MacroSpec) -> int:
    """Number of width doublings in a macro (a ``4`` counts twice)."""
    return sum({1: 0, 2: 1, 4: 2}[m] for stage in macro.stages for m in stage)


def block_within(block: BlockSpec, limits: SpaceLimits) -> bool:
    """Whether a block respects the limits (the grammar itself is checked by :func:`parse`)."""
    return (
        limits.min_layers <= block.num_layers <= limits.max_layers
        and set(block.ops) <= set(limits.ops)
        and len(block.skips) <= limits.max_skips
        and (limits.concat or all(s.kind == "a" for s in block.skips))
    )


def macro_within(macro: MacroSpec, limits: SpaceLimits) -> bool:
    """Whether a macro respects the depth, stage and doubling limits."""
    return (
        limits.min_depth <= macro.depth <= limits.max_depth
        and len(macro.stages) == limits.num_stages
        and limits.min_doublings <= doublings(macro) <= limits.max_doublings
    )


def within(arch: Arch, limits: SpaceLimits, level: str = "both") -> bool:
    """Whether ``arch`` respects the limits; ``level`` "block" skips the macro checks (fixed skeleton)."""
    ok = block_within(arch.block, limits) and arch.stem_width in limits.stem_widths
    return ok and (level == "block" or macro_within(arch.macro, limits))


def _valid(text: str) -> Arch | None:
    try:
        return parse(text)
    except ValueError:
        return None


def _retry(make: Callable[[], Arch | None], what: str, attempts: int = 200) -> Arch:
    for _ in range(attempts):
        arch = make()
        if arch is not None:
            return arch
    raise ValueError(f"could not produce a valid {what} in {attempts} attempts; are the limits satisfiable?")


def random_block(rng: np.random.Generator, limits: SpaceLimits) -> BlockSpec:
    """A random block: layer count, ops, widths and up to ``max_skips`` skips (validity not yet checked)."""
    n = int(rng.integers(limits.min_layers, limits.max_layers + 1))
    ops = tuple(int(rng.choice(limits.ops)) for _ in range(n))
    widths = tuple(int(rng.integers(0, 5)) for _ in range(n - 1))
    return BlockSpec(ops, widths, _random_skips(rng, n, limits))


def _random_skips(rng: np.random.Generator, n: int, limits: SpaceLimits) -> tuple[Skip, ...]:
    candidates = [
        Skip(kind, src, dst)
        for dst in range(1, n + 1)
        for src in range(dst)
        for kind in ("ac" if limits.concat else "a")
        if not (src == 0 and dst == n) and not (kind == "c" and dst == n)
    ]
    if not candidates or limits.max_skips == 0:
        return ()
    k = int(rng.integers(0, min(limits.max_skips, len(candidates)) + 1))
    picked = rng.choice(len(candidates), size=k, replace=False) if k else []
    return tuple(sorted((candidates[i] for i in picked), key=lambda s: s.dst))


def random_macro(rng: np.random.Generator, depth: int, downsamplings: int, num_doublings: int) -> MacroSpec:
    """A random macro of ``depth`` blocks in ``downsamplings + 1`` stages with ``num_doublings`` doublings."""
    stages = downsamplings + 1
    if not 1 <= stages <= depth:
        raise ValueError(f"cannot split {depth} blocks into {stages} non-empty stages")
    if num_doublings > 2 * depth:
        raise ValueError(f"{depth} blocks hold at most {2 * depth} doublings, asked for {num_doublings}")
    cuts = np.sort(rng.choice(np.arange(1, depth), size=stages - 1, replace=False)) if stages > 1 else []
    mults = [1] * depth
    left = num_doublings
    while left:
        i = int(rng.integers(depth))
        if mults[i] == 1 and left >= 2 and rng.random() < 0.25:
            mults[i], left = 4, left - 2
        elif mults[i] == 1:
            mults[i], left = 2, left - 1
        elif mults[i] == 2 and rng.random() < 0.5:
            mults[i], left = 4, left - 1
    bounds = [0, *[int(c) for c in cuts], depth]
    return MacroSpec(tuple(tuple(mults[a:b]) for a, b in zip(bounds, bounds[1:])))


def sample_macro(rng: np.random.Generator, limits: SpaceLimits) -> MacroSpec:
    """A random macro within the limits."""
    depth = int(rng.integers(limits.min_depth, limits.max_depth + 1))
    dbl = int(rng.integers(limits.min_doublings, min(limits.max_doublings, 2 * depth) + 1))
    return random_macro(rng, depth, limits.num_stages - 1, dbl)


def sample_arch(
    rng: np.random.Generator, limits: SpaceLimits, macro: MacroSpec | str | None = None, stem_width: int | None = None
) -> Arch:
    """A random valid architecture; a given ``macro`` (block-level search) or ``stem_width`` is kept fixed."""
    fixed = _as_macro(macro)

    def make() -> Arch | None:
        block = random_block(rng, limits)
        width = stem_width if stem_width is not None else int(rng.choice(limits.stem_widths))
        mac = fixed if fixed is not None else sample_macro(rng, limits)
        arch = _valid(f"{block}_{width}_{mac}")
        return arch if arch is not None and within(arch, limits, "block" if fixed else "both") else None

    return _retry(make, "architecture")


def _as_macro(macro: MacroSpec | str | None) -> MacroSpec | None:
    if isinstance(macro, str):
        return parse_macro(macro)
    return macro


def mutate_block(rng: np.random.Generator, block: BlockSpec, limits: SpaceLimits) -> BlockSpec:
    """One random edit: an op, a width, a layer added or removed, or a skip added or removed."""
    ops, widths, skips = list(block.ops), list(block.widths), list(block.skips)
    n = len(ops)
    kind = rng.choice(["op", "width", "add_layer", "drop_layer", "add_skip", "drop_skip"])
    if kind == "op":
        ops[int(rng.integers(n))] = int(rng.choice(limits.ops))
    elif kind == "width" and widths:
        widths[int(rng.integers(len(widths)))] = int(rng.integers(0, 5))
    elif kind == "add_layer" and n < limits.max_layers:
        i = int(rng.integers(n))  # new layer before the last: keeps the block's output
        ops.insert(i, int(rng.choice(limits.ops)))
        widths.insert(i, int(rng.integers(0, 5)))
        skips = [Skip(s.kind, s.src + (s.src > i), s.dst + (s.dst > i)) for s in skips]
    elif kind == "drop_layer" and n > limits.min_layers:
        i = int(rng.integers(n - 1)) if n > 1 else 0
        del ops[i]
        if widths:
            del widths[min(i, len(widths) - 1)]
        skips = [Skip(s.kind, s.src - (s.src > i), s.dst - (s.dst > i)) for s in skips if i + 1 not in (s.src, s.dst)]
    elif kind == "add_skip" and len(skips) < limits.max_skips:
        extra = _random_skips(rng, n, SpaceLimits(max_skips=1, concat=limits.concat, ops=limits.ops))
        skips += [s for s in extra if s not in skips]
    elif kind == "drop_skip" and skips:
        del skips[int(rng.integers(len(skips)))]
    return BlockSpec(tuple(ops), tuple(widths), tuple(sorted(set(skips), key=lambda s: (s.dst, str(s)))))


def mutate_macro(rng: np.random.Generator, macro: MacroSpec, limits: SpaceLimits) -> MacroSpec:
    """One random edit: move a stage boundary, move or change a doubling, add or remove a block."""
    stages = [list(s) for s in macro.stages]
    kind = rng.choice(["shift", "move_doubling", "add_block", "drop_block"])
    if kind == "shift" and len(stages) > 1:
        i = int(rng.integers(len(stages) - 1))
        if rng.random() < 0.5 and len(stages[i]) > 1:
            stages[i + 1].insert(0, stages[i].pop())
        elif len(stages[i + 1]) > 1:
            stages[i].append(stages[i + 1].pop(0))
    elif kind == "move_doubling":
        flat = [m for s in stages for m in s]
        ups = [j for j, m in enumerate(flat) if m > 1]
        if ups:
            j, k = int(rng.choice(ups)), int(rng.integers(len(flat)))
            if flat[k] < 4:
                flat[j] //= 2
                flat[k] *= 2
            stages = _reshape(flat, [len(s) for s in stages])
    elif kind == "add_block":
        i = int(rng.integers(len(stages)))
        stages[i].insert(int(rng.integers(1, len(stages[i]) + 1)), 1)
    elif kind == "drop_block":
        i = int(rng.integers(len(stages)))
        ones = [j for j, m in enumerate(stages[i]) if m == 1]
        if len(stages[i]) > 1 and ones:
            del stages[i][int(rng.choice(ones))]
    return MacroSpec(tuple(tuple(s) for s in stages))


def _reshape(flat: list[int], sizes: list[int]) -> list[list[int]]:
    out, at = [], 0
    for n in sizes:
        out.append(flat[at : at + n])
        at += n
    return out


def crossover_block(rng: np.random.Generator, a: BlockSpec, b: BlockSpec) -> BlockSpec:
    """One-point crossover on layers (a's prefix, b's suffix); skips kept where their places still exist."""
    i = int(rng.integers(0, a.num_layers + 1))
    j = int(rng.integers(0, b.num_layers))
    ops = a.ops[:i] + b.ops[j:]
    layer_widths = [*a.widths[:i], *(list(b.widths[j:]) + [None])][: len(ops)]
    widths = tuple(w if w is not None else 2 for w in layer_widths[:-1])
    n = len(ops)
    pool = [s for s in a.skips if s.dst <= i] + [
        Skip(s.kind, s.src - j + i, s.dst - j + i) for s in b.skips if s.src >= j
    ]
    skips = [
        s
        for s in pool
        if 0 <= s.src < s.dst <= n and not (s.src == 0 and s.dst == n) and not (s.kind == "c" and s.dst == n)
    ]
    return BlockSpec(ops, widths, tuple(sorted(set(skips), key=lambda s: (s.dst, str(s)))))


def crossover_macro(rng: np.random.Generator, a: MacroSpec, b: MacroSpec) -> MacroSpec:
    """Stage-wise uniform crossover (each stage from either parent); stage counts must match."""
    if len(a.stages) != len(b.stages):
        raise ValueError("macro crossover needs parents with the same number of stages")
    return MacroSpec(tuple(sa if rng.random() < 0.5 else sb for sa, sb in zip(a.stages, b.stages)))


def mutate(rng: np.random.Generator, arch: Arch, limits: SpaceLimits, level: str = "block") -> Arch:
    """Mutate the block (``level="block"``) or the macro (``"macro"``) until the result is valid and new."""

    def make() -> Arch | None:
        if level == "block":
            text = f"{mutate_block(rng, arch.block, limits)}_{arch.stem_width}_{arch.macro}"
        else:
            width = arch.stem_width if rng.random() < 0.8 else int(rng.choice(limits.stem_widths))
            text = f"{arch.block}_{width}_{mutate_macro(rng, arch.macro, limits)}"
        child = _valid(text)
        return child if child is not None and child != arch and within(child, limits, level) else None

    return _retry(make, f"{level} mutation of {arch}")


def crossover(rng: np.random.Generator, a: Arch, b: Arch, limits: SpaceLimits, level: str = "block") -> Arch:
    """Cross two parents at the given level; falls back to a mutation of ``a`` when no valid child comes out."""
    for _ in range(50):
        if level == "block":
            text = f"{crossover_block(rng, a.block, b.block)}_{a.stem_width}_{a.macro}"
        else:
            width = a.stem_width if rng.random() < 0.5 else b.stem_width
            text = f"{a.block}_{width}_{crossover_macro(rng, a.macro, b.macro)}"
        child = _valid(text)
        if child is not None and within(child, limits, level):
            return child
    return mutate(rng, a, limits, level)
