"""Analytic parameter and multiply-accumulate counts, from plans alone (pycls's ``*_cx`` functions).

Counts cover convolutions, BatchNorm affine parameters and the linear classifier; MACs count
convolutions and the classifier (BatchNorm, ReLU, additions and pooling are not MACs).
No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass

from nasoa.space.encoding import Arch, parse
from nasoa.space.plan import BlockPlan, ConvPlan, expand


@dataclass(frozen=True)
class Complexity:
    """Parameters and multiply-accumulates of a network at a given resolution."""

    params: int
    macs: int

    def __add__(self, other: Complexity) -> Complexity:
        return Complexity(self.params + other.params, self.macs + other.macs)


ZERO = Complexity(0, 0)


def out_size(size: int, stride: int) -> int:
    """Spatial size after a 3x3 (padding 1) or 1x1 (padding 0) conv with the given stride."""
    return (size - 1) // stride + 1


def conv_bn_cx(conv: ConvPlan, size: int) -> tuple[Complexity, int]:
    """Cost of one conv + BN at input size ``size``; returns the cost and the output size."""
    out = out_size(size, conv.stride)
    weights = conv.kernel * conv.kernel * (conv.in_ch // conv.groups) * conv.out_ch
    return Complexity(weights + 2 * conv.out_ch, weights * out * out), out


def block_cx(block: BlockPlan, size: int) -> tuple[Complexity, int]:
    """Cost of a block: its layers' convs and its skip projections."""
    total = ZERO
    place_size = [size]
    for layer, skips in zip(block.layers, block.skips):
        s = place_size[-1]
        for conv in layer.convs:
            cx, s = conv_bn_cx(conv, s)
            total += cx
        place_size.append(s)
        for skip in skips:
            if skip.proj is not None:
                cx, _ = conv_bn_cx(skip.proj, place_size[skip.src])
                total += cx
    return total, place_size[-1]


def linear_cx(in_features: int, out_features: int) -> Complexity:
    """Cost of a linear layer with bias."""
    return Complexity(in_features * out_features + out_features, in_features * out_features)


def complexity(arch: Arch | str, resolution: int = 224, num_classes: int = 1000) -> Complexity:
    """Analytic params and MACs of an ET-NAS network at ``resolution`` (square input, 3 channels)."""
    if isinstance(arch, str):
        arch = parse(arch)
    plan = expand(arch)
    total, size = ZERO, resolution
    for conv in plan.stem:
        cx, size = conv_bn_cx(conv, size)
        total += cx
    for stage in plan.stages:
        for block in stage:
            cx, size = block_cx(block, size)
            total += cx
    return total + linear_cx(plan.out_ch, num_classes)
