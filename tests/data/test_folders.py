"""Tests for nasoa.data.folders, on small PNG trees written with PIL."""

import numpy as np
import pytest
import torch
from PIL import Image

from nasoa.data import TaskMeta, folder_task

COLOURS = {"cat": (220, 30, 30), "dog": (30, 200, 30), "eel": (30, 30, 210)}


def _write_class(folder, name, n, start=0):
    (folder / name).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(hash(name) % 2**32 + start)
    for i in range(start, start + n):
        pixels = np.clip(np.array(COLOURS[name]) + rng.integers(-20, 20, (12, 10, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / name / f"img{i}.png")


@pytest.fixture
def flat(tmp_path):
    root = tmp_path / "pets"
    for name in COLOURS:
        _write_class(root, name, 10)
    return root


def _dominant_channel(x):
    return int(x.mean(dim=(1, 2)).argmax())


def test_flat_layout_is_split_stratified_and_labelled(flat):
    task = folder_task(flat, resolution=8, val_fraction=0.2, seed=0)
    assert task.classes == ("cat", "dog", "eel")
    assert task.meta == TaskMeta(num_classes=3, num_train=24, resolution=8, channels=3, name="pets")
    assert len(task.val) == 6
    assert sorted(y for _, y in task.val) == [0, 0, 1, 1, 2, 2]
    x, y = task.train[0]
    assert x.shape == (3, 8, 8) and x.dtype == torch.float32 and type(y) is int
    stacked = torch.stack([x for x, _ in task.train])
    assert torch.allclose(stacked.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-3)
    # each class is a colour: the most red/green/blue channel (before normalization) names the label
    means = torch.tensor([m for m in task.train.dataset.transform.transforms[-1].mean])
    stds = torch.tensor([s for s in task.train.dataset.transform.transforms[-1].std])
    for x, y in task.val:
        assert _dominant_channel(x * stds[:, None, None] + means[:, None, None]) == y


def test_split_is_deterministic_in_the_seed(flat):
    def val_files(seed):
        task = folder_task(flat, resolution=8, seed=seed)
        return [task.val.dataset.samples[i][0] for i in task.val.indices]

    assert val_files(0) == val_files(0)
    assert val_files(0) != val_files(1)


def test_train_val_layout_grayscale_cache_and_subsets(tmp_path):
    root = tmp_path / "split"
    for name in COLOURS:
        _write_class(root / "train", name, 6)
    _write_class(root / "val", "dog", 3, start=100)
    _write_class(root / "val", "eel", 2, start=100)  # no 'cat' in val: labels must stay aligned with train
    task = folder_task(root, resolution=6, channels=1, cache=True)
    assert task.meta == TaskMeta(num_classes=3, num_train=18, resolution=6, channels=1, name="split")
    assert task.val.labels.tolist() == [1, 1, 1, 2, 2]
    assert task.train.images.shape == (18, 1, 6, 6)
    lazy = folder_task(root, resolution=6, channels=1)
    assert torch.allclose(lazy.train[4][0], task.train[4][0], atol=1e-6)
    sub = folder_task(root, resolution=6, classes=["eel", "cat"], num_train=4)
    assert sub.classes == ("eel", "cat") and len(sub.train) == 4
    assert sorted(y for _, y in sub.train) == [0, 0, 1, 1]
    assert [y for _, y in sub.val] == [0, 0]


def test_val_with_unknown_class_is_rejected(tmp_path):
    _write_class(tmp_path / "train", "cat", 3)
    _write_class(tmp_path / "val", "dog", 2)
    with pytest.raises(ValueError, match=r"has class folders \['dog'\] that .*train lacks"):
        folder_task(tmp_path)


def test_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="image folder .*nowhere does not exist"):
        folder_task(tmp_path / "nowhere")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        folder_task(tmp_path / "file.txt")


def test_empty_roots(tmp_path):
    with pytest.raises(ValueError, match="has no class folders"):
        folder_task(tmp_path)
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError, match="has no images"):
        folder_task(tmp_path)
    _write_class(tmp_path, "dog", 2)
    with pytest.raises(ValueError, match=r"class folder\(s\) \['cat'\] .* have no images"):
        folder_task(tmp_path)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_image_is_named(flat, damage):
    bad = flat / "dog" / "img3.png"
    data = bad.read_bytes()
    bad.write_bytes(b"this is not a png" if damage == "garbage" else data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cannot read image file .*dog.img3\.png"):
        folder_task(flat, resolution=8)


def test_corrupt_image_is_named_at_load_time_without_verify(flat):
    bad = flat / "eel" / "img0.png"
    bad.write_bytes(b"\x89PNG broken")
    with pytest.raises(ValueError, match=r"cannot read image file .*eel.img0\.png"):
        task = folder_task(flat, resolution=8, verify=False, stats_samples=1)
        for i in range(len(task.train)):
            task.train[i]
        for i in range(len(task.val)):
            task.val[i]
