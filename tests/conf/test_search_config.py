import pytest
import yaml

from nasoa.dist.search_job import settings_from_config
from nasoa.space import parse

from ..helpers import CONF, TINY_SEARCH, compose_config


def test_default_search_config_composes_into_typed_settings():
    s = settings_from_config(compose_config("search"))
    assert s["block_space"].level == "block" and s["macro_space"].level == "macro"
    assert s["block_space"].macro == "211-2111-211111-211"
    parse(f"0-_16_{s['block_space'].macro}")
    assert s["trainer"].num_workers == 2 and not s["trainer"].use_gpu
    assert s["proxy"].task == "digits"
    assert s["cluster"] is None


def test_cluster_aws_is_appended_and_overrides_resources():
    cfg = compose_config("search", ["+cluster=aws"])
    s = settings_from_config(cfg)
    assert s["cluster"].address == "auto"
    assert s["trainer"].use_gpu and s["trainer"].gpus_per_worker == 1
    assert s["proxy"].device == "cuda"
    assert s["proxy"].task.startswith("folder:")


def test_tiny_overrides_compose():
    s = settings_from_config(compose_config("search", TINY_SEARCH))
    assert s["block"].pop_size == 4 and s["proxy"].train_steps == 4


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("+trainer.num_wrokers=3", "num_wrokers"),
        ("+proxy.batchsize=3", "batchsize"),
        ("+space.limits.depth=3", "depth"),
    ],
)
def test_unknown_keys_fail_with_their_name(override, named):
    with pytest.raises(ValueError, match=named):
        settings_from_config(compose_config("search", [override]))


def test_aws_cluster_launcher_yaml_validates_against_rays_schema():
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((CONF / "cluster" / "aws-cluster.yaml").read_text())
    validate_config(prepare_config(config))
    config["head_node_typ"] = "oops"
    with pytest.raises(Exception, match="head_node_typ"):
        validate_config(prepare_config(config))


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("trainer.num_workers=two", "trainer.num_workers: expected int"),
        ("proxy.lr=fast", "lr: expected float"),
        ("space.limits.ops=3", "space.limits.ops: expected tuple"),
        ("trainer.use_gpu=[1]", "trainer.use_gpu: expected bool"),
    ],
)
def test_wrong_types_fail_at_start_with_their_name(override, named):
    with pytest.raises(ValueError, match=named):
        settings_from_config(compose_config("search", [override]))


def test_zoo_build_takes_the_cluster_too():
    from nasoa.zoo.pretrain import PretrainSettings

    cfg = compose_config("zoo", ["+cluster=aws"])
    assert cfg["cluster"]["address"] == "auto"
    pre = PretrainSettings(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg["pretrain"].items()})
    assert pre.device == "cuda" and pre.source.startswith("folder:")
    assert cfg["trainer"]["use_gpu"] is True


def test_service_settings_are_typed():
    from nasoa.config import typed_settings
    from nasoa.online.service import ServiceSettings

    cfg = compose_config("serve", ["zoo_root=/z", "service.port=eighty"])
    with pytest.raises(ValueError, match="service.port: expected int"):
        typed_settings(ServiceSettings, {**cfg["service"], "zoo_root": "/z", "state_dir": "/s"}, "service")
    cfg = compose_config("serve", ["zoo_root=/z", "+service.prot=1"])
    with pytest.raises(ValueError, match="prot"):
        typed_settings(ServiceSettings, {**cfg["service"], "zoo_root": "/z", "state_dir": "/s"}, "service")
