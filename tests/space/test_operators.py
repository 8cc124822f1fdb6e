import numpy as np
import pytest

from nasoa.space import parse
from nasoa.space.operators import (
    RESNET50_MACRO,
    SpaceLimits,
    crossover,
    doublings,
    mutate,
    random_macro,
    sample_arch,
    within,
)

LIMITS = SpaceLimits(max_layers=5, min_depth=4, max_depth=12, max_doublings=5)


def test_sampled_block_level_archs_are_valid_and_keep_the_skeleton():
    rng = np.random.default_rng(0)
    archs = [sample_arch(rng, LIMITS, macro=RESNET50_MACRO) for _ in range(100)]
    for arch in archs:
        assert parse(str(arch)) == arch
        assert str(arch.macro) == RESNET50_MACRO
        assert within(arch, LIMITS, "block")
    assert len({a.archid for a in archs}) > 80


def test_sampled_macro_level_archs_respect_limits():
    rng = np.random.default_rng(1)
    for _ in range(100):
        arch = sample_arch(rng, LIMITS)
        assert within(arch, LIMITS)
        assert len(arch.macro.stages) == LIMITS.num_stages


@pytest.mark.parametrize(("depth", "down", "dbl"), [(16, 3, 5), (4, 3, 0), (7, 1, 8), (1, 0, 2)])
def test_random_macro_has_the_requested_shape(depth, down, dbl):
    rng = np.random.default_rng(depth)
    for _ in range(20):
        macro = random_macro(rng, depth, down, dbl)
        assert macro.depth == depth
        assert len(macro.stages) == down + 1
        assert doublings(macro) == dbl


def test_random_macro_rejects_impossible_requests():
    with pytest.raises(ValueError, match="non-empty stages"):
        random_macro(np.random.default_rng(0), 3, 3, 1)
    with pytest.raises(ValueError, match="at most"):
        random_macro(np.random.default_rng(0), 2, 0, 5)


@pytest.mark.parametrize("level", ["block", "macro"])
def test_mutation_and_crossover_always_give_valid_new_archs(level):
    rng = np.random.default_rng(2)
    macro = RESNET50_MACRO if level == "block" else None
    pop = [sample_arch(rng, LIMITS, macro=macro) for _ in range(20)]
    for i in range(200):
        a, b = pop[i % 20], pop[(7 * i + 3) % 20]
        child = mutate(rng, a, LIMITS, level)
        assert child != a
        assert within(child, LIMITS, level)
        mixed = crossover(rng, a, b, LIMITS, level)
        assert within(mixed, LIMITS, level)
        if level == "block":
            assert mixed.macro == a.macro and child.macro == a.macro
        else:
            assert mixed.block == a.block and child.block == a.block


def test_operators_are_deterministic_given_the_seed():
    def run(seed):
        rng = np.random.default_rng(seed)
        archs = [sample_arch(rng, LIMITS, macro=RESNET50_MACRO) for _ in range(5)]
        return [str(mutate(rng, a, LIMITS)) for a in archs] + [str(crossover(rng, archs[0], archs[1], LIMITS))]

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_limits_are_validated():
    with pytest.raises(ValueError, match="ops"):
        SpaceLimits(ops=(9,))
    with pytest.raises(ValueError, match="multiples of 4"):
        SpaceLimits(stem_widths=(30,))
