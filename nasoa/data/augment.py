"""Training-time augmentation, applied on the fly to preprocessed C x H x W tensors, reproducibly from a seed.

A task carries its default policy (:class:`Augment`; e.g. no flips for digits, cards or letters). The training
loader draws, with the shuffle's own generator, one seed per item and epoch, and the item is augmented from a
generator seeded with it: the same loader seed gives the same augmented batches whatever ``num_workers``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Sampler

Crop = Literal["none", "pad", "resized"]
_CROPS = ("none", "pad", "resized")


@dataclass(frozen=True)
class Augment:
    """An augmentation policy; ``str(policy)`` and :meth:`parse` round-trip (``"pad+flip"``, ``"resized"``).

    Attributes:
        crop: ``"none"``; ``"pad"`` (pad each side by ``pad`` x side, replicating the border, and crop back at
            a random offset); or ``"resized"`` (a random crop of ``scale`` x the area with aspect ratio in
            ``ratio``, resized back bilinearly).
        flip: Flip horizontally with probability 1/2 (off for digits, letters, cards and other oriented images).
        pad: Padding of a pad-and-crop, as a fraction of the side.
        scale: Area fraction range of a random resized crop.
        ratio: Aspect ratio range of a random resized crop.
    """

    crop: Crop = "none"
    flip: bool = False
    pad: float = 0.125
    scale: tuple[float, float] = (0.5, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)

    def __post_init__(self) -> None:
        if self.crop not in _CROPS:
            raise ValueError(f"crop must be one of {_CROPS}, got {self.crop!r}")
        if not 0.0 <= self.pad <= 1.0:
            raise ValueError(f"pad must be in [0, 1], got {self.pad}")
        if not 0.0 < self.scale[0] <= self.scale[1] <= 1.0:
            raise ValueError(f"scale must satisfy 0 < low <= high <= 1, got {self.scale}")
        if not 0.0 < self.ratio[0] <= self.ratio[1]:
            raise ValueError(f"ratio must satisfy 0 < low <= high, got {self.ratio}")

    @property
    def active(self) -> bool:
        """Whether the policy changes images at all."""
        return self.crop != "none" or self.flip

    def __str__(self) -> str:
        parts = [self.crop] if self.crop != "none" else []
        parts += ["flip"] if self.flip else []
        return "+".join(parts) or "none"

    @classmethod
    def parse(cls, spec: str | Augment | Mapping[str, Any] | None, default: Augment | None = None) -> Augment:
        """Reads a policy.

        Args:
            spec: An Augment, a mapping of its fields, or ``"none"``, ``"flip"``, ``"pad"``, ``"pad+flip"``,
                ``"resized"`` or ``"resized+flip"``.
            default: What None gives (no augmentation when default is None too).

        Returns:
            The policy.
        """
        if spec is None:
            return default or cls()
        if isinstance(spec, Augment):
            return spec
        if isinstance(spec, Mapping):
            return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()})
        words = [w.strip().lower() for w in str(spec).split("+") if w.strip()]
        unknown = [w for w in words if w not in (*_CROPS, "flip")]
        crops = [w for w in words if w in _CROPS and w != "none"]
        if unknown or len(crops) > 1:
            raise ValueError(f"augmentation must be none, flip, pad, resized, pad+flip or resized+flip; got {spec!r}")
        return cls(crop=crops[0] if crops else "none", flip="flip" in words)

    def without_flip(self) -> Augment:
        """The same policy with flips off."""
        return replace(self, flip=False)

    def __call__(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augments one C x H x W tensor with random numbers from generator."""
        x = image
        if self.crop == "pad":
            x = _pad_crop(x, self.pad, generator)
        elif self.crop == "resized":
            x = _resized_crop(x, self.scale, self.ratio, generator)
        if self.flip and bool(torch.rand((), generator=generator) < 0.5):
            x = x.flip(-1)
        return x


def _pad_crop(x: torch.Tensor, pad: float, g: torch.Generator) -> torch.Tensor:
    h, w = x.shape[-2:]
    p = int(round(pad * min(h, w)))
    if p == 0:
        return x
    padded = F.pad(x.unsqueeze(0), (p, p, p, p), mode="replicate")[0]
    i, j = torch.randint(0, 2 * p + 1, (2,), generator=g).tolist()
    return padded[:, i : i + h, j : j + w]


def _resized_crop(
    x: torch.Tensor, scale: tuple[float, float], ratio: tuple[float, float], g: torch.Generator
) -> torch.Tensor:
    h, w = x.shape[-2:]
    area = h * w
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        u = torch.rand(4, generator=g).tolist()
        target = area * (scale[0] + (scale[1] - scale[0]) * u[0])
        aspect = math.exp(log_ratio[0] + (log_ratio[1] - log_ratio[0]) * u[1])
        cw, ch = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            i, j = int(u[2] * (h - ch + 1)), int(u[3] * (w - cw + 1))
            break
    else:  # as torchvision: fall back to the whole image
        i, j, ch, cw = 0, 0, h, w
    crop = x[:, i : i + ch, j : j + cw].unsqueeze(0)
    return F.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False)[0]


class AugmentedDataset(Dataset):
    """Wraps a dataset of ``(image, label)``; indexed by ``(index, seed)`` it returns the item augmented from seed.

    A plain integer index returns the item unchanged.
    """

    def __init__(self, base: Dataset, policy: Augment) -> None:
        self.base = base
        self.policy = policy

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, int]:
        if not isinstance(key, tuple):
            return self.base[key]
        index, seed = key
        image, label = self.base[index]
        return self.policy(image, torch.Generator().manual_seed(seed)), label


class SeededSampler(Sampler):
    """A random permutation per epoch, each index paired with a fresh augmentation seed, all from one generator.

    The permutation is drawn first, exactly as ``RandomSampler`` draws it, then one seed per item.
    """

    def __init__(self, n: int, generator: torch.Generator) -> None:
        self.n = n
        self.generator = generator

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = torch.randperm(self.n, generator=self.generator).tolist()
        seeds = torch.randint(0, 2**62, (self.n,), generator=self.generator).tolist()
        return iter(zip(order, seeds))
