"""Tests for nasoa.data.registry (make_task, parse_spec, register_task)."""

import pytest

from nasoa.data import Task, TaskMeta, make_task, parse_spec, register_task, registry, synthetic_task


@pytest.mark.parametrize(
    ("spec", "kind", "kwargs"),
    [
        ("digits", "digits", {}),
        ("digits:classes=0-4,num_train=300", "digits", {"classes": [0, 1, 2, 3, 4], "num_train": 300}),
        ("digits:classes=[1, 3,5],seed=2", "digits", {"classes": [1, 3, 5], "seed": 2}),
        ("digits:classes=2|7", "digits", {"classes": [2, 7]}),
        ("synthetic:difficulty=0.25,num_val=none", "synthetic", {"difficulty": 0.25, "num_val": None}),
        ("folder:root=/data/my-task,verify=false", "folder", {"root": "/data/my-task", "verify": False}),
        ("cifar10:root=/data", "torchvision", {"name": "cifar10", "root": "/data"}),
        ({"kind": "digits", "classes": "0-2"}, "digits", {"classes": [0, 1, 2]}),
        ({"kind": "FashionMNIST", "root": "/d"}, "torchvision", {"name": "FashionMNIST", "root": "/d"}),
    ],
)
def test_parse_spec(spec, kind, kwargs):
    assert parse_spec(spec) == (kind, kwargs)


def test_make_task_from_string_and_dict():
    task = make_task("digits:classes=0-4,num_train=300")
    assert task.meta == TaskMeta(num_classes=5, num_train=300, resolution=32, channels=3, name="digits")
    task = make_task({"kind": "synthetic", "num_classes": 3, "num_train": 30, "num_val": 6}, resolution=8)
    assert task.meta.num_classes == 3 and task.meta.resolution == 8


def test_unknown_kind_lists_the_known_kinds():
    with pytest.raises(ValueError, match="unknown task kind 'imagenet'; known kinds: .*digits.*folder.*synthetic"):
        make_task("imagenet")


def test_bad_specs():
    with pytest.raises(ValueError, match=r"does not take option\(s\) \['colour'\]"):
        make_task("digits:colour=red")
    with pytest.raises(ValueError, match="is not key=value"):
        make_task("digits:num_train")
    with pytest.raises(ValueError, match="needs a 'kind' key"):
        make_task({"classes": [1, 2]})
    with pytest.raises(ValueError, match="unbalanced brackets"):
        parse_spec("digits:classes=[1,2")
    with pytest.raises(TypeError, match="string or a mapping"):
        make_task(42)


def test_register_task(monkeypatch):
    monkeypatch.setattr(registry, "TASKS", registry.TASKS.copy())

    @register_task("tiny")
    def tiny(seed: int = 0) -> Task:
        return synthetic_task(num_classes=2, num_train=4, num_val=2, resolution=4, seed=seed)

    assert make_task("tiny:seed=1").meta.num_train == 4
    with pytest.raises(ValueError, match="already registered"):
        register_task("tiny", tiny)
    register_task("tiny", tiny, replace=True)
    with pytest.raises(ValueError, match="task kind must be"):
        register_task("bad kind", tiny)
