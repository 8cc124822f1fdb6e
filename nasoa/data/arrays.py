"""In-memory image datasets: raw image tensors turned into normalized C x H x W float tensors.

Small tasks are precomputed once; large ones are kept raw and preprocessed per item.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

#: Precompute a dataset when its preprocessed tensor fits in this many bytes.
MAX_PRECOMPUTE_BYTES = 256 * 2**20

_LUMA = (0.299, 0.587, 0.114)


def convert_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Converts a batch N x c x H x W to `channels` channels.

    Grayscale is replicated (as an expanded view), RGB is turned to luma for one channel.

    Args:
        images: Float batch N x c x H x W.
        channels: Wanted number of channels.

    Returns:
        Batch N x channels x H x W.
    """
    have = images.shape[1]
    if have == channels:
        return images
    if have == 1:
        return images.expand(-1, channels, -1, -1)
    if have == 3 and channels == 1:
        w = torch.tensor(_LUMA, dtype=images.dtype).view(1, 3, 1, 1)
        return (images * w).sum(dim=1, keepdim=True)
    raise ValueError(f"cannot convert images with {have} channels to {channels} channels")


def resize(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """Bilinearly resizes a batch N x C x H x W to N x C x resolution x resolution (no-op when already there)."""
    if images.shape[-2:] == (resolution, resolution):
        return images
    return F.interpolate(images, size=(resolution, resolution), mode="bilinear", align_corners=False)


@dataclass(frozen=True)
class Preprocess:
    """Raw batch to network input: scale to [0, 1], set channels, normalize per channel, resize.

    Normalization is per channel and affine, and bilinear resizing is a convex combination, so the two commute;
    statistics are measured at the output resolution (upsampling smooths, lowering the standard deviation).

    Attributes:
        resolution: Output side in pixels.
        channels: Output channels.
        scale: Raw value that maps to 1.0 (255 for uint8 images).
        mean: Per-output-channel mean after scaling.
        std: Per-output-channel standard deviation after scaling.
    """

    resolution: int
    channels: int
    scale: float = 255.0
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.resolution < 1 or self.channels < 1:
            raise ValueError(f"resolution and channels must be positive, got {self.resolution} and {self.channels}")
        if self.scale <= 0:
            raise ValueError(f"scale must be positive, got {self.scale}")
        if len(self.mean) != len(self.std) or (self.mean and len(self.mean) != self.channels):
            raise ValueError(f"need one mean and one std per channel, got {self.mean} and {self.std}")

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Preprocesses a raw batch N x c x h x w into a float batch N x channels x resolution x resolution."""
        x = images.to(torch.float32) / self.scale
        x = convert_channels(x, self.channels)
        if self.mean:
            mean = torch.tensor(self.mean, dtype=x.dtype).view(1, -1, 1, 1)
            std = torch.tensor(self.std, dtype=x.dtype).view(1, -1, 1, 1)
            x = (x - mean) / std
        return resize(x, self.resolution)

    def with_stats(self, images: torch.Tensor, max_samples: int = 2048, seed: int = 0) -> Preprocess:
        """Returns a copy whose mean and std are measured on (a sample of) raw images, at the output resolution.

        Args:
            images: Raw images N x c x h x w.
            max_samples: Measure on at most this many images, picked at random from seed.
            seed: Seed of the pick.

        Returns:
            The copy, which maps those images to per-channel mean 0 and standard deviation 1.
        """
        if len(images) == 0:
            raise ValueError("cannot measure normalization statistics on no images")
        if len(images) > max_samples:
            g = torch.Generator().manual_seed(seed)
            images = images[torch.randperm(len(images), generator=g)[:max_samples]]
        plain = Preprocess(self.resolution, self.channels, self.scale)
        total = torch.zeros(self.channels, dtype=torch.float64)
        squares = torch.zeros(self.channels, dtype=torch.float64)
        count = 0
        for start in range(0, len(images), 256):
            x = plain(images[start : start + 256]).to(torch.float64)
            total += x.sum(dim=(0, 2, 3))
            squares += (x * x).sum(dim=(0, 2, 3))
            count += x.shape[0] * x.shape[2] * x.shape[3]
        mean = total / count
        std = ((squares / count - mean * mean).clamp_min(0) * count / max(count - 1, 1)).sqrt().clamp_min(1e-6)
        return Preprocess(self.resolution, self.channels, self.scale, tuple(mean.tolist()), tuple(std.tolist()))


class ArrayImageDataset(Dataset):
    """Images held in one tensor N x c x h x w, with integer labels.

    Items are `(image, label)`: a float tensor channels x resolution x resolution and a Python int.

    Args:
        images: Raw images, N x c x h x w (any dtype).
        labels: One integer label per image.
        preprocess: Applied per item; None when the images are already network input (then only channel
            replication is applied, as a view).
        channels: Output channels when preprocess is None.
        hashes: Optional content hash of each item's source image (see `nasoa.data.suite.content_hashes`).
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: Sequence[int] | np.ndarray | torch.Tensor,
        preprocess: Preprocess | None = None,
        channels: int | None = None,
        hashes: Sequence[str] | np.ndarray | None = None,
    ) -> None:
        labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
        if images.ndim != 4:
            raise ValueError(f"images must be N x C x H x W, got shape {tuple(images.shape)}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        if hashes is not None and len(hashes) != len(labels):
            raise ValueError(f"{len(hashes)} hashes but {len(labels)} labels")
        self.images = images
        self.labels = labels
        self.preprocess = preprocess
        self.channels = preprocess.channels if preprocess is not None else (channels or images.shape[1])
        self.hashes: tuple[str, ...] | None = None if hashes is None else tuple(str(h) for h in hashes)

    @classmethod
    def build(
        cls,
        images: torch.Tensor,
        labels: Sequence[int] | np.ndarray | torch.Tensor,
        preprocess: Preprocess,
        max_bytes: int = MAX_PRECOMPUTE_BYTES,
        hashes: Sequence[str] | np.ndarray | None = None,
    ) -> ArrayImageDataset:
        """Makes a dataset, precomputing the network input once when it fits in max_bytes.

        One-channel images replicated to several channels are stored once and expanded per item.
        """
        p = preprocess
        replicate = images.shape[1] == 1 and len(set(p.mean)) <= 1 and len(set(p.std)) <= 1
        stored = 1 if replicate else p.channels
        if len(images) * stored * p.resolution**2 * 4 > max_bytes:
            return cls(images, labels, p, hashes=hashes)
        single = Preprocess(p.resolution, stored, p.scale, p.mean[:stored], p.std[:stored]) if replicate else p
        chunks = [single(images[i : i + 1024]) for i in range(0, len(images), 1024)]
        data = torch.cat(chunks) if chunks else torch.empty(0, stored, p.resolution, p.resolution)
        return cls(data.contiguous(), labels, None, p.channels, hashes)

    def subset(
        self, indices: Sequence[int] | np.ndarray, labels: Sequence[int] | np.ndarray | None = None
    ) -> ArrayImageDataset:
        """Returns a new dataset of the given items (sharing no storage), optionally with new labels."""
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        new_labels = self.labels[idx] if labels is None else labels
        hashes = None if self.hashes is None else [self.hashes[i] for i in idx.tolist()]
        return ArrayImageDataset(self.images[idx], new_labels, self.preprocess, self.channels, hashes)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if self.preprocess is not None:
            x = self.preprocess(self.images[index].unsqueeze(0))[0]
        else:
            x = self.images[index]
            if x.shape[0] != self.channels:
                x = x.expand(self.channels, -1, -1)
        return x, int(self.labels[index])
