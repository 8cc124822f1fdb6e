"""Fault injection on real Ray: items outlive dead workers; a search survives a Train worker killed mid-candidate."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import ray

from nasoa.cluster.pool import KeyedSink
from nasoa.cluster.work_queue import WorkQueue
from nasoa.search.archive import ARCHIVE_FILE, JOURNAL_FILE

from ..helpers import QUICK, ROOT

pytestmark = [pytest.mark.ray, pytest.mark.slow]
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "PYTHONUNBUFFERED": "1"}


@dataclass(frozen=True)
class Out:
    key: str
    value: str


def _gave_up(item: Out, attempts: int, reason: str) -> Out:
    return Out(item.key, f"gave up after {attempts}: {reason}")


def test_queue_requeues_items_of_dead_workers_then_gives_up(ray_session):
    sink = KeyedSink.remote()
    q = WorkQueue.remote(sink, _gave_up, 2)
    ray.get(q.put.remote([Out("a", ""), Out("b", "")]))
    ray.get(q.register.remote("h:1/rank0", "rank0"))
    assert ray.get(q.get.remote("h:1/rank0")).key == "a"
    assert ray.get(q.register.remote("h:2/rank0", "rank0")) == ["a"]  # a new process in the slot: "a" is back first
    assert ray.get(q.get.remote("h:2/rank0")).key == "a"
    assert ray.get(q.register.remote("h:3/rank0", "rank0")) == ["a"]  # second death: given up, a result stands in
    assert ray.get(sink.wait_for.remote(["a"], 5.0))["a"].value.startswith("gave up after 2: worker h:2/rank0 died")
    assert ray.get(q.get.remote("h:3/rank0")).key == "b"
    assert ray.get(q.done.remote("h:3/rank0", "b", Out("b", "ok"), 0.1))
    assert not ray.get(q.done.remote("h:2/rank0", "a", Out("a", "late"), 0.1))  # a late result never lands twice
    s = ray.get(q.stats.remote())
    assert s["given_up"] == ["a"] and s["dropped_results"] == 1 and s["evaluated"] == 1 and not s["in_flight"]
    assert ray.get(sink.wait_for.remote(["a", "b"], 1.0))["b"].value == "ok"


def test_a_dead_workers_pending_get_never_takes_a_requeued_item(ray_session):
    sink = KeyedSink.remote()
    q = WorkQueue.remote(sink, _gave_up, 2)
    ray.get(q.put.remote([Out("a", "")]))
    ray.get([q.register.remote("h:1/rank0", "rank0"), q.register.remote("h:2/rank1", "rank1")])
    assert ray.get(q.get.remote("h:1/rank0")).key == "a"
    waiting = q.get.remote("h:2/rank1")  # rank1 waits for work; then rank0 is killed and the group restarts
    assert ray.get(q.register.remote("h:3/rank1", "rank1")) == ["a"]  # new rank1 first: the whole old group is gone
    assert ray.get(waiting, timeout=10) is None  # the old rank1's call does not take "a"
    assert ray.get(q.register.remote("h:4/rank0", "rank0")) == []  # the old rank0 was already accounted for
    assert ray.get(q.get.remote("h:4/rank0")).key == "a"  # second attempt, on a live worker
    assert ray.get(q.done.remote("h:4/rank0", "a", Out("a", "ok"), 0.1))
    s = ray.get(q.stats.remote())
    assert s["given_up"] == [] and s["evaluated"] == 1 and len(s["events"]) == 1


def _procs() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        out[int(name)] = (ppid, cmd)
    return out


def _train_workers(temp_dir: str) -> list[int]:
    """Pids of Ray Train workers spawned by the raylet of the Ray instance rooted at ``temp_dir`` (and no other)."""
    procs = _procs()
    raylets = {pid for pid, (_, cmd) in procs.items() if "raylet" in cmd.split(" ")[0] and temp_dir in cmd}
    return [pid for pid, (ppid, cmd) in procs.items() if ppid in raylets and "RayTrainWorker" in cmd]


def _cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _busiest(pids: list[int], window_s: float = 1.0) -> int | None:
    """The pid that used the most CPU over ``window_s`` (a worker training a candidate), if any used much."""
    try:
        before = {p: _cpu_ticks(p) for p in pids}
        time.sleep(window_s)
        used = {p: _cpu_ticks(p) - before[p] for p in pids}
    except OSError:
        return None
    pid = max(used, key=used.get, default=None)
    return pid if pid is not None and used[pid] >= 0.3 * window_s * os.sysconf("SC_CLK_TCK") else None


def _archived(run_dir: Path) -> bool:
    """Whether the search archived a result yet (a journaled line, or a compacted archive)."""
    journal = run_dir / JOURNAL_FILE
    return (run_dir / ARCHIVE_FILE).exists() or (journal.exists() and journal.stat().st_size > 0)


def test_search_survives_a_train_worker_killed_mid_candidate(tmp_path):
    temp_dir = tempfile.mkdtemp(prefix="nasoa-fault-", dir="/tmp")  # Ray's socket paths must stay under 107 bytes
    run_dir = tmp_path / "run"
    overrides = [*QUICK, "proxy.max_steps=200", f"runtime.temp_dir={temp_dir}"]  # seconds per candidate
    cmd = [sys.executable, str(ROOT / "launch" / "search.py"), f"hydra.run.dir={run_dir}", *overrides]
    log = tmp_path / "out.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        killed = None
        deadline = time.time() + 150
        while killed is None and time.time() < deadline and proc.poll() is None:
            time.sleep(0.5)
            if not _archived(run_dir):
                continue  # wait until the workers are past start-up and warm-up, inside the pull loop
            pid = _busiest(_train_workers(temp_dir))
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
                killed = pid
        assert killed is not None, f"no busy Ray Train worker found\n{log.read_text()}"
        try:
            proc.wait(timeout=240)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the search did not finish within 240 s of the kill\n{log.read_text()[-6000:]}")
        text = log.read_text()
        assert proc.returncode == 0, text
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(temp_dir, ignore_errors=True)
    summary = json.loads((run_dir / "summary.json").read_text())
    records = pq.read_table(run_dir / "archive.parquet").to_pylist()
    counts = Counter(r["archid"] for r in records)
    assert all(n == 1 for n in counts.values()), counts
    assert summary["duplicate_results"] == 0
    assert {r["level"] for r in records} == {"block", "macro"}
    assert [g["level"] for g in summary["generations"]][-1] == "macro"
    hit = re.findall(rf"requeued (\S+) after attempt 1 of 2: worker \S+:{killed}/rank\d died", text)
    assert len(hit) == 1, text
    victim = next(r for r in records if r["archid"] == hit[0])
    assert victim["status"] == "ok" or "worker died" in victim["error"], victim
    assert f":{killed}/" not in victim["worker"]
