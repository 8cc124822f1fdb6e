import pytest

from nasoa.zoo import Profile, ZooEntry, read_manifest, write_manifest

from .conftest import profiles


def entry(key="abc.digits-32px", **kw):
    values = dict(
        key=key,
        name="n",
        kind="etnas",
        arch="0-_8_1",
        source="digits",
        num_classes=10,
        top1=0.9,
        params=1,
        macs=2,
        num_stages=1,
        resolution=32,
        weights="weights/x.pt",
        sha256="0" * 64,
        profiles=profiles(stages=1),
    )
    return ZooEntry(**(values | kw))


def test_manifest_round_trip_keeps_profiles(tmp_path):
    entries = [entry(), entry("def.digits-32px", kind="reference", arch="resnet18")]
    write_manifest(entries, tmp_path)
    assert read_manifest(tmp_path) == entries


def test_keys_are_arch_dot_tag_and_unique(tmp_path):
    with pytest.raises(ValueError, match="<arch>.<tag>"):
        entry(key="../../etc")
    with pytest.raises(ValueError, match="duplicate"):
        write_manifest([entry(), entry()], tmp_path)


def test_missing_and_corrupt_manifests_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest.parquet is missing"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(ValueError, match="manifest.parquet is corrupt"):
        read_manifest(tmp_path)


def test_step_time_scales_with_batch_resolution_and_freezing():
    e = entry()
    base = e.step_ms("cpu:test", 32)
    assert e.step_ms("cpu:test", 64) == pytest.approx(2 * base)
    assert e.step_ms("cpu:test", 32, resolution=64) == pytest.approx(4 * base)
    assert e.step_ms("cpu:test", 32, frozen_stages=1) < base
    with pytest.raises(KeyError, match="no profile on 'cuda:x'"):
        e.step_ms("cuda:x", 32)


def test_profiles_per_device_accumulate():
    e = entry()
    gpu = [Profile("cuda:H100", 64, 32, 0, 1.5, 0.5)]
    both = e.with_profiles(gpu)
    assert both.devices() == ["cpu:test", "cuda:H100"]
    assert both.with_profiles([Profile("cuda:H100", 64, 32, 0, 1.2, 0.4)]).profile("cuda:H100").train_step_ms == 1.2
