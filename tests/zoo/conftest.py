import pytest

from nasoa.models import create_model
from nasoa.zoo import Profile, ZooEntry, save_weights, write_manifest

ENCODING = "011-_16_1-2-2-2"


def profiles(device="cpu:test", stages=4, base=40.0):
    return tuple(
        Profile(device, b, 32, k, base * b / 32 * (1 - 0.15 * k), base / 3 * b / 32, 100.0 + b)
        for k in range(stages + 1)
        for b in (16, 32, 64)
    )


@pytest.fixture()
def tiny_zoo(tmp_path):
    """A two-entry zoo on disk: one ET-NAS network, one reference model, random weights."""
    entries = []
    for name, kind, arch in [("tiny", "etnas", ENCODING), ("mnv3s", "reference", "mobilenet_v3_small")]:
        model = create_model(arch, 10)
        key = f"{name}.digits-32px"
        weights, digest = save_weights(model, tmp_path, key)
        entries.append(
            ZooEntry(
                key,
                name,
                kind,
                arch,
                "digits",
                10,
                0.5,
                1000,
                2000,
                model.num_stages,
                32,
                weights,
                digest,
                profiles=profiles(stages=model.num_stages),
            )
        )
    write_manifest(entries, tmp_path)
    return tmp_path
