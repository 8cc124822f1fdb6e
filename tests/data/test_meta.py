"""Tests for nasoa.data.meta."""

import dataclasses

import numpy as np
import pytest

from nasoa.data import TaskMeta


def test_round_trip_through_dict():
    meta = TaskMeta(num_classes=10, num_train=500, resolution=32, channels=3, name="digits")
    d = meta.to_dict()
    assert d == {"num_classes": 10, "num_train": 500, "resolution": 32, "channels": 3, "name": "digits"}
    assert TaskMeta.from_dict(d) == meta


def test_name_is_optional_and_numpy_ints_are_coerced():
    meta = TaskMeta.from_dict({"num_classes": np.int64(5), "num_train": 40.0, "resolution": 16, "channels": 1})
    assert meta.name == ""
    assert type(meta.num_classes) is int and type(meta.num_train) is int
    assert meta.num_train == 40


def test_is_frozen_and_hashable():
    meta = TaskMeta(2, 3, 4, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        meta.num_classes = 5
    assert hash(meta) == hash(TaskMeta(2, 3, 4, 1))


@pytest.mark.parametrize("field", ["num_classes", "num_train", "resolution", "channels"])
@pytest.mark.parametrize("bad", [0, -3])
def test_non_positive_values_raise_value_error_naming_the_field(field, bad):
    kwargs = {"num_classes": 10, "num_train": 500, "resolution": 32, "channels": 3, field: bad}
    with pytest.raises(ValueError, match=f"{field} must be a positive integer, got {bad}"):
        TaskMeta(**kwargs)


@pytest.mark.parametrize("bad", [2.5, "10", True, None])
def test_non_integers_raise_type_error(bad):
    with pytest.raises(TypeError, match="num_classes must be an integer"):
        TaskMeta(num_classes=bad, num_train=1, resolution=1, channels=1)


def test_from_dict_rejects_missing_and_unknown_keys():
    with pytest.raises(ValueError, match=r"missing TaskMeta key\(s\) \['channels'\]"):
        TaskMeta.from_dict({"num_classes": 10, "num_train": 500, "resolution": 32})
    with pytest.raises(ValueError, match="unknown TaskMeta key.*'colour'"):
        TaskMeta.from_dict({"num_classes": 10, "num_train": 500, "resolution": 32, "channels": 3, "colour": 1})


def test_importing_task_meta_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys; from nasoa.data import TaskMeta; TaskMeta(1, 1, 1, 1); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
