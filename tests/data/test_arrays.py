"""Tests for nasoa.data.arrays."""

import pytest
import torch

from nasoa.data import ArrayImageDataset, Preprocess
from nasoa.data.arrays import convert_channels


def test_convert_channels():
    gray = torch.rand(2, 1, 4, 4)
    rgb = convert_channels(gray, 3)
    assert rgb.shape == (2, 3, 4, 4) and torch.equal(rgb[:, 2], gray[:, 0])
    back = convert_channels(rgb, 1)
    assert torch.allclose(back, gray, atol=1e-6)  # luma weights sum to one
    with pytest.raises(ValueError, match="cannot convert images with 2 channels to 3"):
        convert_channels(torch.rand(1, 2, 4, 4), 3)


def test_preprocess_scales_normalizes_and_resizes():
    raw = torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8)
    p = Preprocess(resolution=16, channels=3, scale=255.0).with_stats(raw)
    out = p(raw)
    assert out.shape == (64, 3, 16, 16) and out.dtype == torch.float32
    # statistics are measured at the output resolution
    assert torch.allclose(out.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(out.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-3)
    # normalization commutes with bilinear resizing: the mean is the same at the stored resolution
    same_res = Preprocess(8, 3, 255.0, p.mean, p.std)(raw)
    assert torch.allclose(same_res.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.all(same_res.std(dim=(0, 2, 3)) > 1.1)  # upsampling smooths


def test_preprocess_validates():
    with pytest.raises(ValueError, match="resolution and channels must be positive"):
        Preprocess(resolution=0, channels=3)
    with pytest.raises(ValueError, match="one mean and one std per channel"):
        Preprocess(8, 3, mean=(0.5,), std=(0.2,))


@pytest.mark.parametrize("raw_channels", [1, 3])
def test_precomputed_and_lazy_datasets_agree(raw_channels):
    raw = torch.randint(0, 256, (10, raw_channels, 8, 8), dtype=torch.uint8)
    labels = list(range(10))
    p = Preprocess(resolution=12, channels=3).with_stats(raw)
    eager = ArrayImageDataset.build(raw, labels, p)
    lazy = ArrayImageDataset.build(raw, labels, p, max_bytes=0)
    assert eager.preprocess is None and lazy.preprocess is p
    assert eager.images.shape[1] == raw_channels  # grayscale is stored once and expanded per item
    for i in (0, 9, -1):
        (xe, ye), (xl, yl) = eager[i], lazy[i]
        assert xe.shape == (3, 12, 12) and type(ye) is int and ye == yl
        assert torch.allclose(xe, xl, atol=1e-5)
    sub = eager.subset([2, 5], labels=[0, 1])
    assert len(sub) == 2 and sub[1][1] == 1 and torch.equal(sub[0][0], eager[2][0])


def test_dataset_checks_shapes():
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        ArrayImageDataset(torch.zeros(3, 1, 2, 2), [0, 1])
    with pytest.raises(ValueError, match="N x C x H x W"):
        ArrayImageDataset(torch.zeros(3, 2, 2), [0, 1, 2])
