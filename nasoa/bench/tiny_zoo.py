"""A tiny zoo on disk for benchmarks and demos: random weights and made-up profiles (no training)."""

from __future__ import annotations

import os
from pathlib import Path

from nasoa.models import create_model
from nasoa.zoo import Profile, ZooEntry, save_weights, write_manifest

#: (name, kind, arch) of the default tiny zoo.
TINY_MODELS = (("tiny", "etnas", "011-_16_1-2-2-2"), ("mnv3s", "reference", "mobilenet_v3_small"))


def fake_profiles(num_stages: int, device: str = "cpu:bench", base_ms: float = 40.0) -> tuple:
    """Profiles of a model whose step time grows with the batch and shrinks as stages are frozen."""
    return tuple(
        Profile(device, b, 32, k, base_ms * b / 32 * (1 - 0.15 * k), base_ms / 3 * b / 32, 100.0 + b)
        for k in range(num_stages + 1)
        for b in (16, 32, 64)
    )


def make_tiny_zoo(root: str | os.PathLike, models: tuple = TINY_MODELS, device: str = "cpu:bench") -> Path:
    """Write a zoo of ``models`` (random weights, fake profiles on ``device``) under ``root``; returns root."""
    entries = []
    for i, (name, kind, arch) in enumerate(models):
        model = create_model(arch, 10)
        key = f"{name}.digits-32px"
        weights, digest = save_weights(model, root, key)
        entries.append(
            ZooEntry(
                key,
                name,
                kind,
                arch,
                "digits",
                10,
                0.5 + 0.1 * i,
                1000 * (i + 1),
                2000 * (i + 1),
                model.num_stages,
                32,
                weights,
                digest,
                profiles=fake_profiles(model.num_stages, device, base_ms=20.0 * (i + 1)),
            )
        )
    write_manifest(entries, root)
    return Path(root)
