"""The ET-NAS search space: encodings, expansion to plans and analytic costs. No torch here.

The torch builder of these plans is :func:`nasoa.models.build`.
"""

from nasoa.space.cost import Complexity, complexity
from nasoa.space.encoding import OPS, Arch, BlockSpec, MacroSpec, Skip, archid_of, parse, parse_block, parse_macro
from nasoa.space.plan import expand
from nasoa.space.zoo_names import ETNAS, RESNET50_DEEP_STEM

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
    "complexity",
    "expand",
    "parse",
    "parse_block",
    "parse_macro",
]
