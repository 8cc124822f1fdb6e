"""Run by ``test_gpu_placement.py`` in its own process: every training job on a Ray node that declares 2 fake GPUs.

``python -m tests.cluster.gpu_probe <out.json> <work dir>`` starts a private Ray with ``num_gpus=2`` (logical GPUs:
this machine has none), runs the search, collect (Ray Tune), the benchmark's fine-tuning runs (``ray.remote``) and a
BOHB cell (Ray Tune) with a runtime asking for one GPU per worker, and writes, per job, what reached Ray's scheduler
(the fewest GPUs left available while it ran, the placement-group bundles it created) and the devices the workers
trained on (CPU: Ray assigned GPUs torch cannot see).
"""

import json
import shutil
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import ray

from nasoa.bench.methods import Cell, Grid
from nasoa.cluster.runtime import RuntimeSettings
from nasoa.jobs.benchmark.bohb import BOHBSearch
from nasoa.jobs.benchmark.runs import FinetuneRuns
from nasoa.jobs.collect import run_collect_job
from nasoa.jobs.finetune import cached_task
from nasoa.jobs.search import run_search_job
from nasoa.online.regime import CostModel, Regime
from nasoa.zoo.manifest import read_manifest

from ..helpers import QUICK, compose_config, make_tiny_zoo

GPU_RUNTIME = ["runtime.gpus_per_worker=1", "runtime.num_workers=2", "runtime.cpus_per_worker=1"]
TINY_SEARCH = ["search.block.pop_size=2", "search.block.generations=1", "search.macro.pop_size=2"]
TINY_SEARCH += ["search.macro.generations=1", "search.top_blocks=1"]


@contextmanager
def watched(report: dict, name: str):
    """Poll Ray while the job runs: the fewest GPUs available, the bundles of placement groups created meanwhile."""
    before, stop, low = set(ray.util.placement_group_table()), threading.Event(), [2.0]

    def poll() -> None:
        while not stop.wait(0.05):
            low[0] = min(low[0], ray.available_resources().get("GPU", 0.0))

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    entry = report.setdefault(name, {})
    try:
        yield entry
    finally:
        stop.set()
        thread.join()
        table = ray.util.placement_group_table()
        bundles = [b for pg, info in table.items() if pg not in before for b in info["bundles"].values()]
        entry |= {"min_gpus_available": low[0], "bundles": [dict(b) for b in bundles]}


def main(out: str, work: str) -> None:
    work_dir = Path(work)
    zoo = str(make_tiny_zoo(work_dir / "zoo", models=(("tiny", "etnas", "011-_16_1-2-2-2"),)))
    temp_dir = tempfile.mkdtemp(prefix="nasoa-gpu-", dir="/tmp")
    ray.init(address="local", num_cpus=4, num_gpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=temp_dir)
    report: dict = {}
    with watched(report, "search") as entry:
        summary = run_search_job(compose_config("search", QUICK + TINY_SEARCH + GPU_RUNTIME), work_dir / "search")
        entry["devices"] = sorted({r["device"] for r in _archive_rows(work_dir / "search")})
    with watched(report, "collect") as entry:
        cfg = compose_config("collect", QUICK + GPU_RUNTIME + [f"zoo_root={zoo}", "collect.trials_per_task=1"])
        entry["devices"] = sorted({r["device"] for r in _collect_rows(run_collect_job(cfg, work_dir / "collect"))})
    runtime = RuntimeSettings(gpus_per_worker=1.0)
    spec, regime = "digits:classes=0-2,num_train=60", Regime("tiny.digits-32px", 0.03, 0, 16, 1)
    with watched(report, "benchmark_runs") as entry:
        results = FinetuneRuns(work_dir / "runs.jsonl", zoo, runtime).evaluate("probe", spec, 5.0, 0, [regime])
        entry["devices"] = sorted({r.device for r in results})
    with watched(report, "bohb") as entry:
        cell = _cell(zoo, spec)
        grid = Grid(lrs=(0.01, 0.03), batch_sizes=(16,))
        cells = {"tasks": 1, "multiples": [1.0], "seeds": [0]}
        bohb = BOHBSearch(zoo, work_dir / "bohb", grid, cells, 1.0, 2, 2, runtime=runtime)
        bohb.task_order = [cell.task]
        bohb.reference[(cell.task, cell.seed, cell.multiple)] = 2 * cell.budget_s  # two budgets of compute
        choice = bohb.choose(cell, None)
        entry["fine_tunes"] = choice.fine_tunes
    report["search"]["workers"] = summary["workers"]
    ray.shutdown()
    shutil.rmtree(temp_dir, ignore_errors=True)
    Path(out).write_text(json.dumps(report, indent=1))


def _archive_rows(run_dir: Path) -> list[dict]:
    import pyarrow.parquet as pq  # lazy: only this helper reads Parquet

    return pq.read_table(run_dir / "archive.parquet").to_pylist()


def _collect_rows(summary: dict) -> list[dict]:
    from nasoa.online.experience import ExperienceStore  # lazy: only this helper reads the store

    return ExperienceStore(Path(summary["experience_path"]), readonly=True).rows()


def _cell(zoo: str, spec: str) -> Cell:
    """A benchmark cell of 5 s on ``spec`` over the tiny zoo (its profiles are on ``cpu:test``)."""
    entries = tuple(read_manifest(zoo))
    return Cell("probe", spec, cached_task(spec).meta, 5.0, 1.0, 0, entries, "cpu:test", CostModel())


if __name__ == "__main__":
    t0 = time.time()
    main(sys.argv[1], sys.argv[2])
    print(f"probe done in {time.time() - t0:.0f} s")
