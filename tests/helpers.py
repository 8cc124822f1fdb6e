"""Test helpers: compose the real Hydra configs (``QUICK``: the quick experiment), a tiny zoo on disk."""

from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from nasoa.jobs.config import compose_job, register_configs

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

#: Every stage small (seconds per candidate, entry, trial): the experiment the main job's --quick runs.
QUICK = ["experiment=quick"]


def compose_config(name: str, overrides: list[str] | None = None) -> dict:
    """Compose ``conf/<name>.yaml`` with overrides into what its job takes (schema nodes as dataclasses)."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose_job(name, overrides or [])


def compose_raw(name: str, overrides: list[str] | None = None) -> dict:
    """Compose ``conf/<name>.yaml`` with overrides as plain data (no schema objects, interpolations kept)."""
    register_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name=name, overrides=overrides or [])
    return OmegaConf.to_container(cfg, resolve=False)


def fake_profiles(device="cpu:test", stages=4, base=40.0):
    """Profiles of a model whose step time grows with the batch and shrinks as stages are frozen."""
    from nasoa.bench.tiny_zoo import fake_profiles as bench_profiles

    return bench_profiles(stages, device, base)


def make_tiny_zoo(root, models=None):
    """A zoo on disk with random weights and fake profiles on ``cpu:test`` (no training)."""
    from nasoa.bench.tiny_zoo import TINY_MODELS
    from nasoa.bench.tiny_zoo import make_tiny_zoo as bench_zoo

    return bench_zoo(root, models or TINY_MODELS, device="cpu:test")
