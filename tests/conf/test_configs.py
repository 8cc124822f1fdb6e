"""The real Hydra configs: every primary composes, groups are roles, bad keys and types fail naming them."""

import inspect

import pytest
import yaml

from nasoa.cluster.runtime import RuntimeSettings
from nasoa.data import parse_spec
from nasoa.data.registry import TASKS
from nasoa.online.service import ServiceSettings
from nasoa.search.loop import level_spaces
from nasoa.space import parse
from nasoa.train.recipe import Recipe

from ..helpers import CONF, QUICK, ROOT, compose_config

PRIMARIES = ["search", "zoo", "collect", "stream", "serve", "finetune", "benchmark", "main"]
NEEDS_ZOO = {"stream": ["zoo_root=/z"], "serve": ["zoo_root=/z"], "finetune": ["zoo_root=/z"]}


@pytest.mark.parametrize("name", PRIMARIES)
@pytest.mark.parametrize("experiment", ["full", "quick"])
def test_every_primary_config_composes(name, experiment):
    overrides = NEEDS_ZOO.get(name, []) + ([f"experiment={experiment}"] if name not in ("serve", "finetune") else [])
    cfg = compose_config(name, overrides)
    if "runtime" in cfg:
        assert isinstance(cfg["runtime"], RuntimeSettings)


def test_default_search_config_composes_into_typed_settings():
    cfg = compose_config("search")
    block, macro = level_spaces(cfg["space"], cfg["search"], cfg["proxy"].resolution)
    assert block.level == "block" and macro.level == "macro"
    assert block.macro == "211-2111-211111-211"
    parse(f"0-_16_{block.macro}")
    assert cfg["runtime"].num_workers == 2 and not cfg["runtime"].use_gpu
    assert isinstance(cfg["proxy"], Recipe) and cfg["proxy"].source == "fashion:num_train=2000,val_fraction=0.02"
    assert cfg["runtime"].address is None


def test_cluster_aws_is_appended_and_overrides_resources():
    cfg = compose_config("search", ["+cluster=aws"])
    assert cfg["runtime"].address == "auto"
    assert cfg["runtime"].use_gpu and cfg["runtime"].gpus_per_worker == 1
    assert cfg["runtime"].device == "cuda"
    assert cfg["proxy"].source.startswith("folder:")


def test_quick_experiment_composes_small_stages():
    cfg = compose_config("search", QUICK)
    assert cfg["search"].block.pop_size == 4 and cfg["proxy"].max_steps == 4
    assert cfg["space"].skeleton == "11-21-21-21"
    assert compose_config("zoo", QUICK)["pretrain"].epochs == 1
    collect = compose_config("collect", QUICK)
    assert collect["collect"].trials_per_task == 2 and collect["regime_space"].epochs == (1, 2)


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("+runtime.num_wrokers=3", "num_wrokers"),
        ("+proxy.batchsize=3", "batchsize"),
        ("+space.limits.depth=3", "depth"),
    ],
)
def test_unknown_keys_fail_with_their_name(override, named):
    with pytest.raises(ValueError, match=named):
        compose_config("search", [override])


def test_aws_cluster_launcher_yaml_validates_against_rays_schema():
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((ROOT / "deploy" / "aws-cluster.yaml").read_text())
    validate_config(prepare_config(config))
    config["head_node_typ"] = "oops"
    with pytest.raises(Exception, match="head_node_typ"):
        validate_config(prepare_config(config))


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("runtime.num_workers=two", "runtime.num_workers.*Integer"),
        ("proxy.lr=fast", "proxy.lr.*Float"),
        ("space.limits.ops=3", "space.limits.ops"),
        ("runtime.threads=[1]", "runtime.threads"),
    ],
)
def test_wrong_types_fail_at_start_with_their_name(override, named):
    with pytest.raises(ValueError, match=named):
        compose_config("search", [override])


def test_zoo_build_takes_the_cluster_too():
    cfg = compose_config("zoo", ["+cluster=aws"])
    assert cfg["runtime"].address == "auto" and cfg["runtime"].use_gpu is True
    assert isinstance(cfg["pretrain"], Recipe) and cfg["pretrain"].source.startswith("folder:")
    assert cfg["zoo_root"] == "/mnt/shared/nasoa/zoo"


CLUSTER = ["+cluster=aws"]


def task_specs(cfg) -> list:
    """Every task spec a composed config holds: recipe sources, past and stream tasks, a benchmark's or a run's task."""
    specs = [r.source for r in cfg.values() if isinstance(r, Recipe)]
    specs += [r["source"] for r in cfg.values() if isinstance(r, dict) and "source" in r]  # the alias's, unused here
    tasks = cfg.get("tasks") or {}
    specs += [
        t["spec"] if isinstance(t, dict) and "spec" in t else t
        for t in [*tasks.get("past", []), *tasks.get("stream", [])]
    ]
    specs += list((cfg.get("regime_quality") or {}).get("tasks", []))
    return specs + ([cfg["task"]] if "task" in cfg else [])


def assert_spec_opens(spec) -> None:
    """A registered kind whose factory takes the spec's arguments (what make_task calls, without opening data)."""
    kind, kwargs = parse_spec(spec)
    inspect.signature(TASKS.get(kind)).bind(**kwargs)


@pytest.mark.parametrize("name", PRIMARIES[:-1])  # main composes each stage's own config
@pytest.mark.parametrize("experiment", ["full", "quick"])
def test_every_cluster_config_parses_its_task_specs(name, experiment):
    """`+cluster=aws` as typed, on every config the cluster runtime composes, with its real task specs (no digits)."""
    extra = NEEDS_ZOO.get(name, []) + ([f"experiment={experiment}"] if name not in ("serve", "finetune") else [])
    for roots in ([], ["cluster.data_root=/fsx/data", "cluster.storage_root=/fsx/nasoa"]):
        cfg = compose_config(name, CLUSTER + extra + roots)
        data_root, storage_root = cfg["cluster"]["data_root"], cfg["cluster"]["storage_root"]
        assert data_root == ("/fsx/data" if roots else "/mnt/shared/data")
        runtime = cfg["runtime"]
        assert runtime.name == "aws" and runtime.address == "auto" and runtime.use_gpu
        assert runtime.storage_path == f"{storage_root}/ray"
        specs = task_specs(cfg)
        assert specs or name == "serve", name
        for spec in specs:
            assert_spec_opens(spec)
            kind, kwargs = parse_spec(spec)
            if kind == "folder":
                assert kwargs == {"root": f"{data_root}/imagenet100"}, spec
        if name in ("search", "zoo"):  # the stages that read the shared data: never the embedded digits
            assert {parse_spec(s)[0] for s in specs} == {"folder"}
        if name not in NEEDS_ZOO:
            assert cfg["zoo_root"] == f"{storage_root}/zoo"


def test_cluster_sizes_follow_the_experiment():
    full, quick = compose_config("search", CLUSTER), compose_config("search", [*CLUSTER, *QUICK])
    assert (full["proxy"].resolution, full["proxy"].max_steps) == (128, 600)
    assert (quick["proxy"].resolution, quick["proxy"].max_steps) == (32, 4)  # quick stays quick on the cluster
    assert quick["space"].skeleton == "11-21-21-21" and quick["proxy"].source.startswith("folder:")
    assert compose_config("zoo", CLUSTER)["pretrain"].epochs == 30
    assert compose_config("zoo", [*CLUSTER, *QUICK])["pretrain"].epochs == 1


def test_service_settings_are_typed():
    cfg = compose_config("serve", ["zoo_root=/z"])
    assert isinstance(cfg["service"], ServiceSettings) and cfg["service"].host == "127.0.0.1"
    with pytest.raises(ValueError, match="service.port.*Integer"):
        compose_config("serve", ["zoo_root=/z", "service.port=eighty"])
    with pytest.raises(ValueError, match="prot"):
        compose_config("serve", ["zoo_root=/z", "+service.prot=1"])


def test_config_groups_are_roles_with_options():
    for group in (
        "runtime",
        "experiment",
        "predictor",
        "regime_space",
        "recipe",
        "tasks",
        "space",
        "search",
        "service",
    ):
        options = [p.stem for p in (CONF / group).glob("*.yaml")]
        assert len(options) >= 2, (group, options)
