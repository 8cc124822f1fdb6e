"""ET-NAS encodings as immutable values: parse, canonical string, stable archid.

Grammar (docs/ARCHITECTURE.md and the README): ``<block>_<C0>_<macro>``, e.g. ``031-_64_1-1-221-11121``.
Follows the encoding of Xu et al., "Towards Faster Task-oriented Online Fine-tuning with a
Zoo of Models" (ICCV 2021). This module never imports torch.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

#: Op digit -> short name. Widths and groups are resolved in :mod:`nasoa.space.plan`.
OPS: dict[int, str] = {
    0: "conv3x3",
    1: "conv1x1",
    2: "conv3x3_g2",
    3: "conv3x3_g4",
    4: "conv3x3_dw",
    5: "conv3x3_gw32",
    6: "sep3x3",
}
#: Width digit k gives C * 2**k / 4 output channels.
WIDTH_DIGITS = range(5)
#: Macro digits: output width = input width times the digit.
MACRO_MULTIPLIERS = (1, 2, 4)
#: Places are single digits, so a block has at most nine layers.
MAX_LAYERS = 9


def _fail(text: str, pos: int, why: str) -> ValueError:
    char = repr(text[pos]) if 0 <= pos < len(text) else "end of string"
    return ValueError(f"invalid ET-NAS encoding {text!r}: {char} at position {pos}: {why}")


@dataclass(frozen=True)
class Skip:
    """A skip connection from place ``src`` to place ``dst`` (0 = block input, i = output of layer i)."""

    kind: str  # "a" adds, "c" concatenates channels
    src: int
    dst: int

    def __str__(self) -> str:
        return f"{self.kind}{self.src}{self.dst}"


@dataclass(frozen=True)
class BlockSpec:
    """A block: one op per layer, a width digit per layer but the last, and extra skips."""

    ops: tuple[int, ...]
    widths: tuple[int, ...]
    skips: tuple[Skip, ...] = ()

    @property
    def num_layers(self) -> int:
        return len(self.ops)

    def __str__(self) -> str:
        digits = "".join(f"{o}{w}" for o, w in zip(self.ops, self.widths)) + str(self.ops[-1])
        return digits + "-" + "".join(str(s) for s in self.skips)


@dataclass(frozen=True)
class MacroSpec:
    """Per stage, the width multiplier of each block; every stage after the first starts with stride 2."""

    stages: tuple[tuple[int, ...], ...]

    @property
    def depth(self) -> int:
        return sum(len(s) for s in self.stages)

    def __str__(self) -> str:
        return "-".join("".join(str(m) for m in stage) for stage in self.stages)


@dataclass(frozen=True)
class Arch:
    """A whole ET-NAS network: block, stem width C0 and macro skeleton."""

    block: BlockSpec
    stem_width: int
    macro: MacroSpec

    def __str__(self) -> str:
        return f"{self.block}_{self.stem_width}_{self.macro}"

    @property
    def archid(self) -> str:
        """Stable id: the first 16 hex digits of the SHA-1 of the canonical string."""
        return archid_of(str(self))

    @property
    def num_stages(self) -> int:
        return len(self.macro.stages)


def archid_of(canonical: str) -> str:
    """Return the deterministic id of a canonical encoding string."""
    return hashlib.sha1(canonical.encode()).hexdigest()[:16]


def parse_block(text: str, offset: int = 0, whole: str | None = None) -> BlockSpec:
    """Parse ``<layers>-<skips>``; positions in errors are counted in ``whole`` from ``offset``."""
    whole = text if whole is None else whole
    if "-" not in text:
        raise _fail(whole, offset + len(text), "block needs '-' between its layers and its skips")
    dash = text.index("-")
    layers, skips_text = text[:dash], text[dash + 1 :]
    if not layers:
        raise _fail(whole, offset, "block has no layers")
    for i, ch in enumerate(layers):
        if not ch.isdigit():
            raise _fail(whole, offset + i, "layer digits must be 0-9")
        value = int(ch)
        if i % 2 == 0 and value not in OPS:
            raise _fail(whole, offset + i, f"unknown op digit (ops are {min(OPS)}-{max(OPS)})")
        if i % 2 == 1 and value not in WIDTH_DIGITS:
            raise _fail(whole, offset + i, "width digit must be 0-4 (C/4, C/2, C, 2C, 4C)")
    if len(layers) % 2 == 0:
        raise _fail(
            whole, offset + len(layers) - 1, "layers need 2n-1 digits: op+width per layer, op only for the last"
        )
    ops = tuple(int(c) for c in layers[0::2])
    widths = tuple(int(c) for c in layers[1::2])
    if len(ops) > MAX_LAYERS:
        raise _fail(whole, offset + 2 * MAX_LAYERS, f"a block has at most {MAX_LAYERS} layers")
    n = len(ops)
    base = offset + dash + 1
    if len(skips_text) % 3:
        raise _fail(whole, base + len(skips_text) - len(skips_text) % 3, "skips are triples <a|c><from><to>")
    skips: list[Skip] = []
    for j in range(0, len(skips_text), 3):
        kind, src_ch, dst_ch = skips_text[j : j + 3]
        if kind not in "ac":
            raise _fail(whole, base + j, "skip kind must be 'a' (add) or 'c' (concat)")
        for k, ch in ((1, src_ch), (2, dst_ch)):
            if not ch.isdigit():
                raise _fail(whole, base + j + k, "skip places must be digits")
        src, dst = int(src_ch), int(dst_ch)
        if dst > n:
            raise _fail(whole, base + j + 2, f"skip to place {dst}, but the block has only places 0-{n}")
        if dst == 0 or src >= dst:
            raise _fail(whole, base + j + 1, f"skip must go forward (from < to), got {src}->{dst}")
        if kind == "a" and src == 0 and dst == n:
            raise _fail(whole, base + j, "the residual add from the block input to its output is implicit")
        if kind == "c" and dst == n:
            raise _fail(whole, base + j + 2, "concat into the block output would change the block's width")
        skip = Skip(kind, src, dst)
        if skip in skips:
            raise _fail(whole, base + j, f"duplicate skip {skip}")
        skips.append(skip)
    # Canonical order: stable by destination place (order among equal destinations is meaningful).
    skips.sort(key=lambda s: s.dst)
    return BlockSpec(ops=ops, widths=widths, skips=tuple(skips))


def parse_macro(text: str, offset: int = 0, whole: str | None = None) -> MacroSpec:
    """Parse a macro string of ``1``, ``2``, ``4`` and ``-`` (a ``-`` makes the next block stride 2)."""
    whole = text if whole is None else whole
    if not text:
        raise _fail(whole, offset, "macro has no blocks")
    stages: list[tuple[int, ...]] = []
    current: list[int] = []
    for i, ch in enumerate(text):
        if ch == "-":
            if not current:
                raise _fail(whole, offset + i, "empty stage: '-' must follow at least one block")
            stages.append(tuple(current))
            current = []
        elif ch.isdigit() and int(ch) in MACRO_MULTIPLIERS:
            current.append(int(ch))
        else:
            raise _fail(whole, offset + i, "macro characters are '1', '2', '4' (width multipliers) and '-'")
    if not current:
        raise _fail(whole, offset + len(text) - 1, "empty stage: the macro cannot end with '-'")
    stages.append(tuple(current))
    return MacroSpec(stages=tuple(stages))


def parse(encoding: str) -> Arch:
    """Parse and validate an ET-NAS encoding; raise ``ValueError`` naming the problem and its position."""
    if not isinstance(encoding, str):
        raise ValueError(f"an ET-NAS encoding is a string, got {type(encoding).__name__}")
    parts = encoding.split("_")
    if len(parts) != 3:
        pos = [i for i, c in enumerate(encoding) if c == "_"]
        at = pos[2] if len(pos) > 2 else len(encoding)
        raise _fail(encoding, at, f"expected <block>_<C0>_<macro> (two '_'), found {len(parts) - 1}")
    block_text, stem_text, macro_text = parts
    block = parse_block(block_text, 0, encoding)
    stem_at = len(block_text) + 1
    if not stem_text:
        raise _fail(encoding, stem_at, "missing stem width C0")
    for i, ch in enumerate(stem_text):
        if not ch.isdigit():
            raise _fail(encoding, stem_at + i, "stem width C0 must be a decimal integer")
    if stem_text[0] == "0":
        raise _fail(encoding, stem_at, "stem width C0 must be positive, without leading zeros")
    stem_width = int(stem_text)
    if stem_width % 4:
        raise _fail(encoding, stem_at, f"stem width C0={stem_width} must be a multiple of 4")
    macro = parse_macro(macro_text, stem_at + len(stem_text) + 1, encoding)
    arch = Arch(block=block, stem_width=stem_width, macro=macro)
    from nasoa.space.plan import expand  # lazy: nasoa.space.plan imports this module

    try:
        expand(arch)  # a layer whose channels do not fit its op's groups cannot be built
    except ValueError as err:
        raise ValueError(f"invalid ET-NAS encoding {encoding!r}: {err}") from None
    return arch
