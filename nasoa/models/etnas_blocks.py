"""Torch modules for ET-NAS plans; each mirrors a cost function in :mod:`nasoa.space.cost`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nasoa.space.plan import BlockPlan, ConvPlan, LayerPlan, SkipPlan


class ConvBN(nn.Sequential):
    """Conv (no bias) + BatchNorm, from a :class:`ConvPlan` (cost: :func:`nasoa.space.cost.conv_bn_cx`)."""

    def __init__(self, plan: ConvPlan) -> None:
        pad = plan.kernel // 2
        conv = nn.Conv2d(plan.in_ch, plan.out_ch, plan.kernel, plan.stride, pad, groups=plan.groups, bias=False)
        nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
        super().__init__(conv, nn.BatchNorm2d(plan.out_ch))


class Layer(nn.Sequential):
    """One ET-NAS layer: a conv + BN, or depthwise + BN then pointwise + BN for the separable op."""

    def __init__(self, plan: LayerPlan) -> None:
        super().__init__(*(ConvBN(c) for c in plan.convs))


class SkipMerge(nn.Module):
    """Adds or concatenates a (possibly projected) earlier place into a later one."""

    def __init__(self, plan: SkipPlan) -> None:
        super().__init__()
        self.kind, self.src = plan.kind, plan.src
        self.proj = ConvBN(plan.proj) if plan.proj is not None else nn.Identity()

    def forward(self, places: list[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
        source = self.proj(places[self.src])
        return target + source if self.kind == "a" else torch.cat([target, source], dim=1)


class EncodedBlock(nn.Module):
    """An ET-NAS block: layers in sequence, skips merged into each place, ReLU after the merge.

    The residual add from the block input to its output is part of the plan (cost: :func:`nasoa.space.cost.block_cx`).
    """

    def __init__(self, plan: BlockPlan) -> None:
        super().__init__()
        self.layers = nn.ModuleList(Layer(p) for p in plan.layers)
        self.merges = nn.ModuleList(nn.ModuleList(SkipMerge(s) for s in skips) for skips in plan.skips)
        last_bn = self.layers[-1][-1][-1]
        nn.init.ones_(last_bn.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        places = [x]
        for layer, merges in zip(self.layers, self.merges):
            y = layer(places[-1])
            for merge in merges:
                y = merge(places, y)
            places.append(F.relu(y, inplace=True))
        return places[-1]


class Stem(nn.Sequential):
    """The deep stem: three conv + BN + ReLU."""

    def __init__(self, plans: tuple[ConvPlan, ...]) -> None:
        layers: list[nn.Module] = []
        for p in plans:
            layers += [ConvBN(p), nn.ReLU(inplace=True)]
        super().__init__(*layers)
