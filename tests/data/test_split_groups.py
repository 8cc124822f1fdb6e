"""Tests for the grouped three-way split, shards and deduplication in nasoa.data.split."""

import numpy as np
import pytest

from nasoa.data.split import group_split, parse_shard, shard_indices, unique_by_hash


def test_ungrouped_split_is_a_stratified_three_way_split():
    labels = np.repeat(np.arange(4), [40, 20, 10, 3])
    train, val, test = group_split(labels, None, 0.2, 0.1, seed=0)
    assert len(set(train) | set(val) | set(test)) == len(labels)
    assert not (set(train) & set(val) or set(train) & set(test) or set(val) & set(test))
    assert np.bincount(labels[val]).tolist() == [8, 4, 2, 1]
    assert np.bincount(labels[test]).tolist() == [4, 2, 1, 1]  # at least one each when there are 3+ samples
    again = group_split(labels, None, 0.2, 0.1, seed=0)
    other = group_split(labels, None, 0.2, 0.1, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again))
    assert not np.array_equal(val, other[1])


def test_groups_never_straddle_splits():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 30)
    groups = labels * 100 + rng.integers(0, 8, len(labels))  # nested in classes: stratified per class
    parts = group_split(labels, groups, 0.2, 0.2, seed=3)
    owners = [set(groups[p]) for p in parts]
    assert not (owners[0] & owners[1] or owners[0] & owners[2] or owners[1] & owners[2])
    for p in parts:
        assert set(labels[p]) == {0, 1, 2}


def test_groups_across_classes_split_whole_groups():
    labels = np.tile(np.arange(4), 10)  # 10 "decks", each holding all 4 classes
    decks = np.repeat(np.arange(10), 4)
    train, val, test = group_split(labels, decks, 0.2, 0.2, seed=0)
    assert len(set(decks[val])) == 2 and len(set(decks[test])) == 2 and len(set(decks[train])) == 6
    assert not set(decks[train]) & (set(decks[val]) | set(decks[test]))


def test_bad_fractions():
    with pytest.raises(ValueError, match="sum < 1"):
        group_split([0, 1], None, 0.6, 0.5)


def test_shards_partition_the_source_independently_of_seeds_and_classes():
    labels = np.repeat(np.arange(5), 100)
    shards = [shard_indices(labels, None, f"{k}/4", "src") for k in range(4)]
    assert sorted(np.concatenate(shards).tolist()) == list(range(500))
    assert all(np.bincount(labels[s]).tolist() == [25] * 5 for s in shards)
    assert np.array_equal(shard_indices(labels, None, "1-2/4", "src"), np.sort(np.concatenate(shards[1:3])))
    assert not np.array_equal(shard_indices(labels, None, "0/4", "other"), shards[0])
    assert np.array_equal(shard_indices(labels, None, None, "src"), np.arange(500))
    for bad in ("4/4", "2-1/4", "a/b"):
        with pytest.raises(ValueError, match="shard"):
            parse_shard(bad)


def test_unique_by_hash_keeps_one_copy_and_drops_conflicts():
    hashes = ["a", "b", "a", "c", "c", "d"]
    labels = [0, 1, 0, 1, 2, 3]
    assert unique_by_hash(hashes, labels).tolist() == [0, 1, 5]
