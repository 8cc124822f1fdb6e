"""The zoo build: pick the entries, pretrain and profile them on Ray Train workers, write the zoo.

``launch/build_zoo.py`` composes the Hydra config and calls :func:`run_zoo_job`. Each finished entry is
written to ``manifest.parquet`` at once by a sink actor, so a crash loses only the entries in flight,
and entries already in the manifest (same key, weights verified) are not trained again.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ray

from nasoa.dist.pool import ResultSink
from nasoa.zoo.manifest import MANIFEST_FILE, ZooEntry, read_manifest, write_manifest
from nasoa.zoo.pretrain import PretrainSettings, ZooItem, item_key, pretrain_entry, resolve_item, spread_front

log = logging.getLogger("nasoa.zoo")


@ray.remote(num_cpus=0)
class ZooSink(ResultSink):
    """Collects finished entries and rewrites the manifest after each one (atomically); errors are not kept."""

    def __init__(self, root: str, entries: Sequence[ZooEntry]) -> None:
        super().__init__()
        self.root = root
        self.results = {e.key: e for e in entries}

    def store(self, result: ZooEntry | Exception) -> None:
        if isinstance(result, ZooEntry):
            super().store(result)
            write_manifest(list(self.results.values()), self.root)


def pick_items(cfg: Mapping[str, Any]) -> list[ZooItem]:
    """The ET-NAS entries (a spread of a search front, and named models) and the reference entries."""
    from nasoa.search.archive import ParetoArchive

    items: list[ZooItem] = []
    search_dir = cfg.get("search_dir")
    if search_dir:
        archive = ParetoArchive.load(search_dir)
        if not len(archive):
            raise FileNotFoundError(f"zoo.search_dir={search_dir}: no archive.parquet with results there")
        for i, r in enumerate(spread_front(archive.records, int(cfg.get("front_members", 5)))):
            items.append(ZooItem(name=f"front-{i}", kind="etnas", arch=r.encoding))
    items += [resolve_item(n) for n in cfg.get("etnas", [])]
    items += [resolve_item(n) for n in cfg.get("references", [])]
    unique: dict[str, ZooItem] = {}
    for it in items:
        unique.setdefault(it.arch, it)
    return list(unique.values())


def _already_built(root: Path, keys: Sequence[str]) -> list[ZooEntry]:
    """Manifest entries whose weights are intact: kept, not retrained."""
    from nasoa.zoo.store import Zoo, ZooError

    if not (root / MANIFEST_FILE).exists():
        return []
    zoo = Zoo(root)
    kept = []
    for key in keys:
        if key in zoo:
            try:
                zoo.verify(key)
                kept.append(zoo.get(key))
            except ZooError as err:
                log.warning("retraining %s: %s", key, err)
    return kept


def _pretrain_or_error(item: ZooItem, settings: PretrainSettings, worker: str) -> ZooEntry | Exception:
    try:
        return pretrain_entry(item, settings, worker)
    except Exception as err:  # noqa: BLE001 - reported, the other entries go on
        log.exception("pretraining %s failed", item.name)
        return RuntimeError(f"{item.name}: {type(err).__name__}: {err}")


def _worker_died(item: ZooItem, attempts: int, reason: str) -> Exception:
    """The error that stands for an entry whose workers died on every attempt."""
    return RuntimeError(f"{item.name}: worker died {attempts} times while pretraining it (last: {reason})")


def run_zoo_job(cfg: Mapping[str, Any], out_dir: str | os.PathLike) -> dict[str, Any]:
    """Build (or complete) the zoo in ``cfg['zoo']['root']`` (default: ``out_dir/zoo``); returns the summary."""
    from nasoa.analysis.zoo_plot import plot_zoo
    from nasoa.dist.pool import TrainPool
    from nasoa.config import typed_settings
    from nasoa.dist.search_job import ClusterSettings, TrainerSettings, init_ray

    zoo_cfg = cfg["zoo"]
    root = Path(zoo_cfg.get("root") or Path(out_dir) / "zoo").resolve()
    root.mkdir(parents=True, exist_ok=True)
    settings = typed_settings(PretrainSettings, {**cfg["pretrain"], "root": str(root)}, "pretrain")
    trainer = typed_settings(TrainerSettings, cfg["trainer"], "trainer")
    items = [ZooItem(it.name, it.kind, it.arch, item_key(it, settings.tag)) for it in pick_items(zoo_cfg)]
    kept = _already_built(root, [it.key for it in items])
    todo = [it for it in items if it.key not in {e.key for e in kept}]
    log.info(
        "zoo %s: %d entries (%d to pretrain, %d kept), source %s at %dpx, %d epochs",
        root,
        len(items),
        len(todo),
        len(kept),
        settings.source,
        settings.resolution,
        settings.epochs,
    )
    t0 = time.time()
    owns_ray = not ray.is_initialized()
    cluster = typed_settings(ClusterSettings, cfg["cluster"], "cluster") if cfg.get("cluster") else None
    init_ray(trainer, cluster)
    try:
        existing = read_manifest(root) if (root / MANIFEST_FILE).exists() else []
        sink = ZooSink.remote(str(root), existing)
        if todo:
            resources = {"CPU": trainer.cpus_per_worker} | (
                {"GPU": trainer.gpus_per_worker} if trainer.gpus_per_worker else {}
            )
            pool = TrainPool(
                _pretrain_or_error,
                settings,
                sink,
                num_workers=min(trainer.num_workers, len(todo)),
                use_gpu=trainer.use_gpu,
                resources_per_worker=resources,
                threads=trainer.threads,
                storage_path=cluster.storage_path if cluster and cluster.storage_path else str(root / "ray_train"),
                name="zoo-build",
                on_give_up=_worker_died,
            )
            try:
                _run_with_progress(pool, sink, todo)
            finally:
                pool.close()
            stats = pool.stats()
        entries = list(ray.get(sink.wait_for.remote([it.key for it in items], 0.1)).values())
    finally:
        if owns_ray:
            ray.shutdown()
    failed = [it.name for it in items if it.key not in {e.key for e in entries}]
    plot = plot_zoo(entries, root / "zoo.png") if entries else None
    summary = {
        "root": str(root),
        "entries": [{"key": e.key, "name": e.name, "kind": e.kind, "top1": e.top1} for e in entries],
        "failed": failed,
        "seconds": time.time() - t0,
        "plot": plot,
        "settings": settings.to_dict(),
        "worker_efficiency": stats.efficiency if todo else None,
    }
    (root / "build_summary.json").write_text(json.dumps(summary, indent=2))
    for e in sorted(entries, key=lambda e: e.profile(e.devices()[0]).train_step_ms):
        p = e.profile(e.devices()[0])
        log.info(
            "  %-28s %-9s top1 %.3f  step %.1f ms (batch %d)  %.2f M params",
            e.name,
            e.kind,
            e.top1,
            p.train_step_ms,
            p.batch_size,
            e.params / 1e6,
        )
    if failed:
        log.error("failed entries: %s (see the log above)", ", ".join(failed))
    log.info("zoo written: %s, plot %s", root / MANIFEST_FILE, plot)
    return summary


def _run_with_progress(pool, sink, todo: Sequence[ZooItem]) -> None:  # noqa: ANN001
    """Queue every item and log each one as it lands."""
    keys = [it.key for it in todo]
    ray.get(pool.queue.put.remote(list(todo)))
    done: set[str] = set()
    while True:
        got = ray.get(sink.wait_for.remote(keys, 5.0))
        for key in got.keys() - done:
            log.info("  pretrained %s (%d/%d)", got[key].name, len(done) + 1, len(keys))
            done.add(key)
        stats = ray.get(pool.queue.stats.remote())
        finished = stats["evaluated"] + len(stats["given_up"])
        if len(done) == len(keys) or (finished >= len(keys) and not stats["in_flight"]):
            return
        if pool.error is not None or not pool.thread.is_alive():
            raise RuntimeError(f"the Ray Train run stopped: {pool.error!r}") from pool.error


__all__ = ["ZooSink", "pick_items", "run_zoo_job"]
