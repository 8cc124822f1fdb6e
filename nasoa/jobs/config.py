"""Hydra configs in code: the schemas of the config groups (Hydra's ConfigStore) and composing a job's config.

Every group that names a role has a dataclass schema (each option's YAML starts with ``defaults: [base, _self_]``),
so a wrong key or type fails when the config is composed, naming it. :func:`job_config` turns a composed config
into what the ``run_*_job`` functions take: a dict whose schema nodes are the dataclasses themselves.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from hydra import compose
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig, ListConfig, OmegaConf

from nasoa.cluster.runtime import RuntimeSettings
from nasoa.jobs.collect import CollectSettings
from nasoa.jobs.stream import StreamSettings
from nasoa.jobs.zoo import ZooSettings
from nasoa.online.predictor import PredictorSettings
from nasoa.online.regime import RegimeSpace
from nasoa.online.service import ServiceSettings
from nasoa.search.loop import SearchSettings
from nasoa.search.space import SpaceSettings
from nasoa.train.recipe import Recipe

#: Config group -> its schema.
SCHEMAS: dict[str, type] = {
    "runtime": RuntimeSettings,
    "recipe": Recipe,
    "search": SearchSettings,
    "space": SpaceSettings,
    "predictor": PredictorSettings,
    "regime_space": RegimeSpace,
    "service": ServiceSettings,
}


#: Job config node -> its schema (a primary config lists ``<node>_schema`` first in its defaults).
NODE_SCHEMAS: dict[str, type] = {
    "zoo": ZooSettings,
    "collect": CollectSettings,
    "stream": StreamSettings,
}


def register_configs() -> None:
    """Store every schema (call before composing; idempotent).

    A group's schema is its ``base`` option (each option's YAML starts with ``defaults: [base, _self_]``); a job
    node's schema is the root config ``<node>_schema``, placed at that node.
    """
    store = ConfigStore.instance()
    for group, schema in SCHEMAS.items():
        store.store(group=group, name="base", node=_writable(schema))
    for node, schema in NODE_SCHEMAS.items():
        store.store(name=f"{node}_schema", node=_writable(schema), package=node)


def _writable(schema: type) -> DictConfig:
    """The schema as a typed config node that YAML values may merge into (frozen dataclasses are read-only)."""
    node = OmegaConf.structured(schema)
    _unfreeze(node)
    return node


def _unfreeze(node: DictConfig | ListConfig) -> None:
    OmegaConf.set_readonly(node, False)
    for key in node if isinstance(node, DictConfig) else range(len(node)):
        child = node._get_node(key)  # the child node itself (not its value), to reach nested containers
        if isinstance(child, DictConfig | ListConfig):
            _unfreeze(child)


def job_config(cfg: DictConfig) -> dict[str, Any]:
    """A composed config as plain data: interpolations resolved, schema nodes as their dataclasses.

    Raises:
        ValueError: A schema node has a key its dataclass does not know (added with ``+key=value``).
    """
    _check_keys(cfg, "")
    return OmegaConf.to_object(cfg)  # type: ignore[return-value]


def _check_keys(node: DictConfig, where: str) -> None:
    """Refuse keys a schema node's dataclass has no field for, naming them and the known ones."""
    schema = OmegaConf.get_type(node)
    if dataclasses.is_dataclass(schema):
        known = {f.name for f in dataclasses.fields(schema)}
        unknown = sorted(set(node.keys()) - known)
        if unknown:
            raise ValueError(f"{where or 'config'}: unknown key(s) {unknown}; known: {sorted(known)}")
    for key in node.keys():
        child = node._get_node(key)
        if isinstance(child, DictConfig):
            _check_keys(child, f"{where}.{key}" if where else str(key))


def compose_job(name: str, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Compose ``<name>.yaml`` with ``overrides`` and return its :func:`job_config`.

    Hydra must be initialised: by the running launch script, or by a test's ``initialize_config_dir``.
    """
    if not GlobalHydra.instance().is_initialized():
        raise RuntimeError(f"composing {name!r} needs Hydra initialised: run it from a launch script or a test")
    register_configs()
    try:
        cfg = compose(config_name=name, overrides=list(overrides))
    except ConfigCompositionException as err:  # name the bad value's key and type, not only the override
        cause = err.__cause__
        raise ValueError(f"{err}: {cause}" if cause else str(err)) from err
    return job_config(cfg)
