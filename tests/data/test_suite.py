"""The fine-tuning task suite (conf/tasks/suite.yaml): its rules, and every task loaded for real.

Loading all tasks takes about 10 s with a warm nasoa cache (``~/.cache/nasoa``); a cold cache first decodes the
clipart folders (about 30 s) and renders the card decks (about two minutes).
"""

import itertools

import pytest
from omegaconf import OmegaConf

from nasoa.data.fashion import load_fashion
from nasoa.data.suite import DEFAULT_SUITE, Suite, SuiteTask, check_suite, content_hashes, load_suite, split_hashes


@pytest.fixture(scope="module")
def suite():
    return load_suite()


@pytest.fixture(scope="module")
def loaded(suite):
    """Every task of the suite, built once, with the content hashes of its splits."""
    return {t.name: (t, t.build()) for t in suite.tasks}


def test_the_suite_file_is_a_hydra_config_group(suite):
    assert DEFAULT_SUITE.read_text().startswith("# @package tasks")
    node = OmegaConf.load(DEFAULT_SUITE)
    assert load_suite(node) == suite
    assert load_suite({"tasks": OmegaConf.to_container(node)}) == suite
    assert len(suite.past) >= 10 and len(suite.stream) >= 4 and len(suite.tasks) >= 16


def test_hold_out(suite):
    past_domains = {t.domain for t in suite.past}
    assert {t.domain for t in suite.tasks} >= {"drawings", "cards", "icons", "handwriting", "products"}
    assert {t.domain for t in suite.stream} - past_domains == {"cards"}  # a whole domain held out
    assert not {(t.domain, t.subdomain) for t in suite.stream} & {(t.domain, t.subdomain) for t in suite.past}
    assert {t.subdomain for t in suite.stream if t.domain == "drawings"} == {"food", "travel"}


def _task(name, spec="digits", domain="a", subdomain="x"):
    return SuiteTask(name, spec, domain, subdomain)


@pytest.mark.parametrize(
    ("suite_", "message"),
    [
        (Suite((_task("a"),), (_task("a", domain="b"),)), "not unique"),
        (Suite((_task("a"),), (_task("b", spec="digits:colour=red", domain="b"),)), "takes no option"),
        (Suite((_task("a"),), (_task("b", spec="nope", domain="b"),)), "unknown task kind"),
        (Suite((_task("a"),), (_task("b", spec="mnist5k:shard=3/2", domain="b"),)), "shard"),
        (Suite((_task("a"), _task("c", domain="b")), (_task("b", domain="b"),)), r"pairs in both.*\('b', 'x'\)"),
        (Suite((_task("a"), _task("c", domain="b")), (_task("b", domain="b", subdomain="y"),)), "held out whole"),
        (Suite((), (_task("b"),)), "need past and stream"),
    ],
)
def test_broken_rules_are_reported(suite_, message):
    with pytest.raises(ValueError, match=message):
        check_suite(suite_)


def test_bad_entries():
    with pytest.raises(ValueError, match=r"missing or empty \['subdomain'\]"):
        load_suite({"past": [{"name": "a", "spec": "digits", "domain": "d"}], "stream": []})
    with pytest.raises(ValueError, match="'stream_budgets' only, got also"):
        load_suite({"past": [], "stream": [], "future": []})


def test_every_task_loads_with_the_suite_name(loaded):
    for name, (_, task) in loaded.items():
        assert task.name == task.meta.name == name
        assert task.test is not None and len(task.val) > 0 and len(task.test) > 0, name
    classes = [task.num_classes for _, task in loaded.values()]
    sizes = [task.meta.num_train for _, task in loaded.values()]
    assert min(classes) == 2 and max(classes) >= 45
    assert min(sizes) <= 60 and max(sizes) >= 4900
    assert {task.meta.resolution for _, task in loaded.values()} == {32, 48, 64}


def test_no_image_is_shared_between_tasks_splits_or_with_pretraining(loaded):
    per_task = {}
    for name, (_, task) in loaded.items():
        splits = split_hashes(task)
        for a, b in itertools.combinations(splits, 2):
            assert not splits[a] & splits[b], f"{name}: {a} and {b} share images"
        per_task[name] = set().union(*splits.values())
        assert sum(map(len, splits.values())) == len(task.train) + len(task.val) + len(task.test), name
    for a, b in itertools.combinations(per_task, 2):
        assert not per_task[a] & per_task[b], f"tasks {a} and {b} share {len(per_task[a] & per_task[b])} images"
    pretraining = set(load_fashion("train")["hashes"].tolist())
    for name, hashes in per_task.items():
        assert not hashes & pretraining, f"{name} shares images with the Fashion-MNIST pretraining file"


def test_content_hashes_of_one_split(loaded):
    _, task = loaded["mnist-4v9-50"]
    assert len(content_hashes(task, "train")) == 50
    assert content_hashes(task) == set().union(*split_hashes(task).values())
    with pytest.raises(ValueError, match="split must be"):
        content_hashes(task, "holdout")
