"""The ET-NAS search space: encodings, expansion to plans, analytic costs and the torch builder."""

from nasoa.space.cost import Complexity, complexity
from nasoa.space.encoding import OPS, Arch, BlockSpec, MacroSpec, Skip, archid_of, parse, parse_block, parse_macro
from nasoa.space.plan import expand
from nasoa.space.zoo_names import ETNAS, RESNET50_DEEP_STEM


def build(arch, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.0):  # noqa: ANN001, ANN201
    """Build the torch module for an architecture; see :func:`nasoa.space.network.build` (imports torch lazily)."""
    from nasoa.space.network import build as _build

    return _build(arch, num_classes, in_chans, dropout)


__all__ = [
    "ETNAS",
    "OPS",
    "RESNET50_DEEP_STEM",
    "Arch",
    "BlockSpec",
    "Complexity",
    "MacroSpec",
    "Skip",
    "archid_of",
    "build",
    "complexity",
    "expand",
    "parse",
    "parse_block",
    "parse_macro",
]
