"""End-to-end searches on real Ray: in-process, killed and resumed, and joining an existing cluster."""

import json
import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

from nasoa.jobs.search import run_search_job
from nasoa.search.archive import ParetoArchive

from ..helpers import QUICK, ROOT, compose_config

pytestmark = [pytest.mark.ray, pytest.mark.slow]
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "PYTHONUNBUFFERED": "1"}


def launch(run_dir, *extra):
    cmd = [sys.executable, str(ROOT / "launch" / "search.py"), f"hydra.run.dir={run_dir}", *QUICK, *extra]
    return subprocess.Popen(
        cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )


def test_tiny_search_end_to_end(ray_session, tmp_path):
    summary = run_search_job(compose_config("search", QUICK), tmp_path)
    archive = ParetoArchive.load(tmp_path)
    assert len(archive) == summary["archive_size"] >= 6
    assert {r.level for r in archive.records} == {"block", "macro"}
    table = pq.read_table(tmp_path / "archive.parquet")
    for column in [
        "archid",
        "encoding",
        "level",
        "generation",
        "status",
        "accuracy",
        "train_step_ms",
        "params",
        "macs",
        "device",
        "eval_s",
        "error",
    ]:
        assert column in table.column_names
    ok = [r for r in archive.records if r.ok]
    assert ok and all(0.0 <= r.accuracy <= 1.0 and r.train_step_ms > 0 for r in ok)
    front = pq.read_table(tmp_path / "front.parquet").to_pylist()
    assert front
    for f in front:  # no front row is dominated by any archive row
        for r in ok:
            assert not (
                (r.accuracy >= f["accuracy"] and r.train_step_ms <= f["train_step_ms"])
                and (r.accuracy > f["accuracy"] or r.train_step_ms < f["train_step_ms"])
            )
    assert (tmp_path / "pareto.png").stat().st_size > 10_000
    assert 0 < summary["worker_efficiency"] <= 1
    assert summary["duplicate_results"] == 0
    assert len(summary["evaluated_archids"]) == len(set(summary["evaluated_archids"]))


def test_killed_search_resumes_without_retraining(tmp_path):
    proc = launch(tmp_path)
    deadline = time.time() + 240
    archived = 0
    while time.time() < deadline and proc.poll() is None:
        time.sleep(1)
        try:
            archived = len(ParetoArchive.load(tmp_path))
        except ValueError:
            continue  # never expected (atomic writes), but don't crash the poll on it
        if archived >= 3:
            break
    assert proc.poll() is None, proc.stdout.read()
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and everything in its process group
    proc.wait()
    before = _settled_archive(tmp_path)
    assert len(before) >= 3
    proc = launch(tmp_path)
    out, _ = proc.communicate(timeout=400)
    assert proc.returncode == 0, out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["resumed_from"] == len(before)
    assert not set(summary["evaluated_archids"]) & before
    assert summary["duplicate_results"] == 0
    assert "resuming" in out
    assert summary["archive_size"] == len(before) + summary["evaluated_this_run"]


def _settled_archive(run_dir, quiet_s=8.0, limit_s=90.0):
    """Archived archids once the killed run's last in-flight results (if any) have landed."""
    start = last_change = time.time()
    seen = set()
    while time.time() - last_change < quiet_s and time.time() - start < limit_s:
        now = {r.archid for r in ParetoArchive.load(run_dir).records}
        if now != seen:
            seen, last_change = now, time.time()
        time.sleep(0.5)
    return seen


def test_multirun_gives_one_run_directory_per_seed(tmp_path):
    sweep = tmp_path / "sweep"
    tiny = [
        "search.block.pop_size=2",
        "search.block.generations=1",
        "search.macro.pop_size=2",
        "search.macro.generations=1",
        "search.top_blocks=1",
        f"hydra.sweep.dir={sweep}",
    ]
    cmd = [sys.executable, str(ROOT / "launch" / "search.py"), "-m", "search.seed=0,1", *QUICK, *tiny]
    out = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=500)
    assert out.returncode == 0, out.stdout + out.stderr
    runs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert [p.name for p in runs] == ["0", "1"]
    proposals = []
    for run in runs:
        assert (run / "archive.parquet").exists() and (run / "front.parquet").exists()
        proposals.append(json.loads((run / "summary.json").read_text())["proposals"])
    assert proposals[0] != proposals[1]
