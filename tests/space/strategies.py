"""Hypothesis strategies for valid ET-NAS encodings, bounded so that every draw builds and trains in milliseconds.

A draw can still hold every op digit (0-6), every width digit (C/4..4C), both skip kinds, any stride placement and
every stage multiplier; what bounds it is the analytic cost (no torch involved): at most ``MAX_PARAMS`` parameters
and ``MAX_MACS`` multiply-accumulates at 32 px, and at most ``MAX_GROWTH`` times wider at the end than at the stem.
Unbounded, a draw could ask for tens of thousands of channels and tens of GB in ``backward()``.
"""

import math

from hypothesis import assume, example
from hypothesis import strategies as st

from nasoa.space import Arch, complexity, parse

MAX_PARAMS = 400_000
MAX_MACS = 40_000_000  # at 32 px
MAX_GROWTH = 8  # last stage width / stem width


def within_budget(arch: Arch) -> bool:
    """True when ``arch`` is small enough to build and train in a property test."""
    cx = complexity(arch, resolution=32, num_classes=10)
    return cx.params <= MAX_PARAMS and cx.macs <= MAX_MACS


@st.composite
def stage_multipliers(draw, max_stages: int, max_blocks: int) -> list[str]:
    """Stages of block multipliers (1, 2 or 4) whose product stays at most ``MAX_GROWTH``."""
    budget = int(math.log2(MAX_GROWTH))  # doublings left
    stages = []
    for _ in range(draw(st.integers(1, max_stages))):
        blocks = []
        for _ in range(draw(st.integers(1, max_blocks))):
            mult = draw(st.sampled_from([m for m in "124" if int(m).bit_length() - 1 <= budget]))
            budget -= int(mult).bit_length() - 1
            blocks.append(mult)
        stages.append("".join(blocks))
    return stages


@st.composite
def encodings(draw, max_layers: int = 4, max_stages: int = 3, max_blocks: int = 2, stem_widths=(8, 16, 32)) -> Arch:
    n = draw(st.integers(1, max_layers))
    ops = draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))
    widths = draw(st.lists(st.integers(0, 4), min_size=n - 1, max_size=n - 1))
    layers = "".join(f"{o}{w}" for o, w in zip(ops, widths)) + str(ops[-1])
    skip_pool = [
        f"{k}{s}{d}"
        for d in range(1, n + 1)
        for s in range(d)
        for k in "ac"
        if not (s == 0 and d == n) and not (k == "c" and d == n)
    ]
    skips = draw(st.lists(st.sampled_from(skip_pool), max_size=2, unique=True)) if skip_pool else []
    stem = draw(st.sampled_from(stem_widths))
    stages = draw(stage_multipliers(max_stages, max_blocks))
    text = f"{layers}-{''.join(skips)}_{stem}_{'-'.join(stages)}"
    try:
        arch = parse(text)
        fits = within_budget(arch)
    except ValueError:  # unbuildable widths for the op (groups, depthwise)
        fits = False
    assume(fits)
    return arch


#: Hand-picked encodings that every property test also runs (hypothesis ``@example``): projected concat and add
#: skips across a stride, every op with a stride on it, grouped ops at their channel limits, a 1x1-only block.
EDGE_CASES = (
    "000-c01_8_1-1",
    "0000000-a01c01_8_1-1",
    "10001-a02c12_16_2-1",
    "20324-c01_16_1-2",
    "5-_32_1-2",
    "43602-a12_8_2-14",
    "11111-_16_1-1",
    "6-_8_4-2",
)


def with_edge_cases(**other):  # noqa: ANN003, ANN201
    """Make a ``@given(arch=encodings(), ...)`` test also run every edge case, with ``other`` as its other arguments."""

    def decorate(test):  # noqa: ANN001, ANN202
        for text in EDGE_CASES:
            test = example(arch=parse(text), **other)(test)
        return test

    return decorate
