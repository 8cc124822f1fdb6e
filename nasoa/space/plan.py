"""Expand an :class:`Arch` into concrete per-stage, per-block, per-conv lists (pycls's ``generate_regnet`` role).

Both the torch builder (:func:`nasoa.models.build`) and the analytic cost model (:mod:`nasoa.space.cost`)
consume these plans only, so they cannot disagree. No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass

from nasoa.space.encoding import Arch, BlockSpec, Skip


@dataclass(frozen=True)
class ConvPlan:
    """One convolution followed by BatchNorm."""

    in_ch: int
    out_ch: int
    kernel: int
    stride: int
    groups: int = 1


@dataclass(frozen=True)
class LayerPlan:
    """One layer: its op digit and the convs (one, or two for separable) it is made of."""

    op: int
    convs: tuple[ConvPlan, ...]

    @property
    def out_ch(self) -> int:
        return self.convs[-1].out_ch


@dataclass(frozen=True)
class SkipPlan:
    """A skip, resolved: ``proj`` is the 1x1 conv + BN on the source, or None for an identity."""

    kind: str
    src: int
    dst: int
    proj: ConvPlan | None


@dataclass(frozen=True)
class BlockPlan:
    """A block: ``layers[i]`` writes place i+1; ``skips[i]`` merge into place i+1 before its ReLU."""

    in_ch: int
    out_ch: int
    stride: int
    layers: tuple[LayerPlan, ...]
    skips: tuple[tuple[SkipPlan, ...], ...]


@dataclass(frozen=True)
class NetPlan:
    """The stem convs, the blocks of each stage, and the width the classifier sees."""

    stem: tuple[ConvPlan, ...]
    stages: tuple[tuple[BlockPlan, ...], ...]
    out_ch: int


def stride_layer(block: BlockSpec) -> int:
    """Index of the layer that carries a block's stride: the first that is not a 1x1 conv (else the last)."""
    for i, op in enumerate(block.ops[:-1]):
        if op != 1:
            return i
    return block.num_layers - 1


def _conv_plans(op: int, in_ch: int, out_ch: int, stride: int, where: str) -> tuple[ConvPlan, ...]:
    def need(cond: bool, why: str) -> None:
        if not cond:
            raise ValueError(f"{where}: op {op} cannot map {in_ch} -> {out_ch} channels: {why}")

    if op == 0:
        return (ConvPlan(in_ch, out_ch, 3, stride),)
    if op == 1:
        return (ConvPlan(in_ch, out_ch, 1, stride),)
    if op in (2, 3):
        g = 2 if op == 2 else 4
        need(in_ch % g == 0 and out_ch % g == 0, f"both must be multiples of {g} groups")
        return (ConvPlan(in_ch, out_ch, 3, stride, g),)
    if op == 4:
        need(out_ch % in_ch == 0, "depthwise needs output channels a multiple of input channels")
        return (ConvPlan(in_ch, out_ch, 3, stride, in_ch),)
    if op == 5:
        need(in_ch % 32 == 0, "32 channels per group needs input channels a multiple of 32")
        g = in_ch // 32
        need(out_ch % g == 0, f"output channels must be a multiple of {g} groups")
        return (ConvPlan(in_ch, out_ch, 3, stride, g),)
    if op == 6:
        return (ConvPlan(in_ch, in_ch, 3, stride, in_ch), ConvPlan(in_ch, out_ch, 1, 1))
    raise ValueError(f"{where}: unknown op {op}")


def expand_block(block: BlockSpec, in_ch: int, out_ch: int, stride: int, where: str = "block") -> BlockPlan:
    """Resolve one block's layers and skips for given input/output widths and stride."""
    n = block.num_layers
    at = stride_layer(block)
    place_ch = [in_ch]
    place_stride = [1]
    layers: list[LayerPlan] = []
    skips: list[tuple[SkipPlan, ...]] = []
    for i in range(n):
        width = out_ch if i == n - 1 else out_ch * 2 ** block.widths[i] // 4
        if width < 1:
            raise ValueError(f"{where}: layer {i + 1} would have {width} channels")
        s = stride if i == at else 1
        layers.append(
            LayerPlan(
                block.ops[i],
                _conv_plans(
                    block.ops[i], place_ch[-1], width, s, f"{where} layer {i + 1} (op digit at position {2 * i})"
                ),
            )
        )
        place_ch.append(width)
        place_stride.append(place_stride[-1] * s)
        here: list[SkipPlan] = []
        incoming = [sk for sk in block.skips if sk.dst == i + 1]
        if i == n - 1:
            incoming.append(Skip("a", 0, n))
        for sk in incoming:
            rel = place_stride[sk.dst] // place_stride[sk.src]
            src_ch = place_ch[sk.src]
            if sk.kind == "a":
                needs = rel != 1 or src_ch != place_ch[sk.dst]
                proj = ConvPlan(src_ch, place_ch[sk.dst], 1, rel) if needs else None
            else:
                proj = ConvPlan(src_ch, src_ch, 1, rel) if rel != 1 else None
                place_ch[sk.dst] += src_ch
            here.append(SkipPlan(sk.kind, sk.src, sk.dst, proj))
        skips.append(tuple(here))
    return BlockPlan(in_ch, out_ch, stride, tuple(layers), tuple(skips))


def stem_plan(stem_width: int, in_chans: int = 3) -> tuple[ConvPlan, ...]:
    """Deep stem: conv3x3/2 (in -> C0/2), conv3x3 (C0/2 -> C0/2), conv3x3/2 (C0/2 -> C0)."""
    half = stem_width // 2
    return (ConvPlan(in_chans, half, 3, 2), ConvPlan(half, half, 3, 1), ConvPlan(half, stem_width, 3, 2))


def expand(arch: Arch, in_chans: int = 3) -> NetPlan:
    """Expand an architecture into its full plan; raise ``ValueError`` if any layer is unbuildable."""
    ch = arch.stem_width
    stages: list[tuple[BlockPlan, ...]] = []
    for si, stage in enumerate(arch.macro.stages):
        blocks = []
        for bi, mult in enumerate(stage):
            stride = 2 if si > 0 and bi == 0 else 1
            where = f"stage {si + 1} block {bi + 1}"
            blocks.append(expand_block(arch.block, ch, ch * mult, stride, where))
            ch *= mult
        stages.append(tuple(blocks))
    return NetPlan(stem=stem_plan(arch.stem_width, in_chans), stages=tuple(stages), out_ch=ch)
