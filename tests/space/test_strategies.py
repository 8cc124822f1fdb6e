"""The bounded encoding strategy still reaches every feature the property tests exist for."""

import pytest
from hypothesis import HealthCheck, find, settings

from nasoa.space import Arch, complexity, expand
from nasoa.space.plan import stride_layer

from .strategies import MAX_MACS, MAX_PARAMS, encodings

FIND = settings(max_examples=2_000, database=None, suppress_health_check=list(HealthCheck))


def features(arch: Arch) -> set[str]:
    """The grammar features an encoding exercises."""
    block = arch.block
    found = {f"op {k}" for k in block.ops} | {f"width digit {k}" for k in block.widths}
    found |= {f"skip {s.kind}" for s in block.skips}
    if len(arch.macro.stages) > 1:
        found.add(f"stride on layer {stride_layer(block) + 1}")
    merges = [s for stage in expand(arch).stages for b in stage for skips in b.skips for s in skips]
    found |= {f"projected {s.kind} skip" for s in merges if s.proj is not None}
    found |= {f"{m}x block" for stage in arch.macro.stages for m in stage}
    found |= {f"{len(arch.macro.stages)} stages"}
    return found


EXPECTED = sorted(
    [f"op {k}" for k in range(7)]
    + [f"width digit {k}" for k in range(5)]
    + [f"skip {k}" for k in "ac"]
    + [f"projected {k} skip" for k in "ac"]
    + [f"stride on layer {i}" for i in range(1, 5)]
    + [f"{m}x block" for m in (1, 2, 4)]
    + [f"{n} stages" for n in (1, 2, 3)]
)


@pytest.mark.parametrize("feature", EXPECTED)
def test_strategy_reaches(feature):
    arch = find(encodings(), lambda a: feature in features(a), settings=FIND)
    cx = complexity(arch, resolution=32, num_classes=10)
    assert cx.params <= MAX_PARAMS and cx.macs <= MAX_MACS
