"""Build an ET-NAS network (a :class:`~nasoa.models.staged.StagedNet`) from the plans of :mod:`nasoa.space.plan`."""

from __future__ import annotations

from torch import nn

from nasoa.models.etnas_blocks import EncodedBlock, Stem
from nasoa.models.staged import StagedNet, classifier_head
from nasoa.space.encoding import Arch, parse
from nasoa.space.plan import expand


class ETNASNet(StagedNet):
    """An ET-NAS network; ``arch`` keeps the encoding it was built from."""

    def __init__(self, arch: Arch, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.0) -> None:
        plan = expand(arch, in_chans)
        stages = [nn.Sequential(*(EncodedBlock(b) for b in stage)) for stage in plan.stages]
        super().__init__(Stem(plan.stem), stages, classifier_head(plan.out_ch, num_classes, dropout))
        self.arch = arch


def build(arch: Arch | str, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.0) -> ETNASNet:
    """Build the ``nn.Module`` for an architecture (or encoding string) with a ``num_classes`` head."""
    if isinstance(arch, str):
        arch = parse(arch)
    if num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    return ETNASNet(arch, num_classes, in_chans, dropout)
