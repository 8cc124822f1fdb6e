"""Test helpers: compose the real Hydra configs, tiny search overrides."""

from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

#: Overrides that make the default search tiny (seconds per candidate on a 2-core CPU).
TINY_SEARCH = [
    "search.block.pop_size=4",
    "search.block.generations=2",
    "search.macro.pop_size=4",
    "search.macro.generations=1",
    "search.top_blocks=2",
    "space.skeleton=11-21-21-21",
    "space.limits.max_layers=3",
    "space.limits.min_depth=5",
    "space.limits.max_depth=8",
    "space.limits.stem_widths=[16]",
    "proxy.train_steps=4",
    "proxy.batch_size=32",
    "proxy.recalibrate_bn_batches=1",
    "objectives.profile.profile_batch_size=16",
    "objectives.profile.profile_warmup=1",
    "objectives.profile.profile_steps=2",
    "objectives.max_params=400000",
]


def compose_config(name: str, overrides: list[str] | None = None) -> dict:
    """Compose ``conf/<name>.yaml`` with overrides, resolved to a plain dict."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name=name, overrides=overrides or [])
    return OmegaConf.to_container(cfg, resolve=False)


#: Overrides that make the default zoo build quick (same entries, tiny pretraining and profiles).
TINY_ZOO = [
    "pretrain.source='digits:num_train=200'",
    "pretrain.epochs=1",
    "pretrain.batch_size=32",
    "pretrain.recalibrate_bn_batches=2",
    "pretrain.profile_batch_sizes=[8,16]",
    "pretrain.profile_warmup=1",
    "pretrain.profile_steps=1",
]


def fake_profiles(device="cpu:test", stages=4, base=40.0):
    """Profiles of a model whose step time grows with the batch and shrinks as stages are frozen."""
    from nasoa.bench.tiny_zoo import fake_profiles as bench_profiles

    return bench_profiles(stages, device, base)


def make_tiny_zoo(root, models=None):
    """A zoo on disk with random weights and fake profiles on ``cpu:test`` (no training)."""
    from nasoa.bench.tiny_zoo import TINY_MODELS
    from nasoa.bench.tiny_zoo import make_tiny_zoo as bench_zoo

    return bench_zoo(root, models or TINY_MODELS, device="cpu:test")


#: Overrides that make the default collect tiny: 2 small tasks x 2 regimes, short epochs, a 6 s deadline.
TINY_COLLECT = [
    "collect.tasks=['digits:classes=0-2,num_train=60','synthetic:num_classes=3,num_train=60,num_val=30']",
    "collect.trials_per_task=2",
    "collect.max_trial_s=6",
    "+collect.regime_space={epochs:[1,2],batch_sizes:[16,32],lrs:[0.01,0.05]}",
]
