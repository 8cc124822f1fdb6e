"""The cluster path for real on this machine: a Ray head and two GPU worker nodes, each its own `ray start` process.

The search, the zoo build and the stream run with `+cluster=aws` as typed; only addresses and paths change
(``runtime.address``, ``cluster.storage_root``, ``cluster.data_root``, ``service.port``, and the zoo's
``search_dir``), and ``experiment=quick`` sets the sizes. The aws runtime asks for 8 workers x 6 CPUs x 1 GPU, so
each worker node declares 48 logical CPUs and 8 GPUs it does not have (logical resources: the workers fall back to
the CPU, ``nasoa.cluster.device``), and either node alone can hold a whole worker group. The proxy and pretraining
data is a real image tree (``<data_root>/imagenet100/{train,val}/<class>/*.png``, from Debian's openclipart-png).
While the search runs, the worker node running its Train workers is killed (every process of that node): the
search completes on the other node, no candidate recorded twice. The zoo build then reads the search's archive,
and the stream uses that zoo, both through the same cluster.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from nasoa.search.archive import ParetoArchive

from ..helpers import ROOT

pytestmark = [pytest.mark.ray, pytest.mark.slow]
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "PYTHONUNBUFFERED": "1"}
CLIPART = Path("/usr/share/openclipart/png")
CLASSES = ("animals", "food", "plants", "transportation")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_image_tree(root: Path, per_class: int = 24, val: int = 8) -> None:
    """``root/{train,val}/<class>/*.png``: real drawings, 48 px RGB on white."""
    for cls in CLASSES:
        files = sorted((CLIPART / cls).rglob("*.png"))[:per_class]
        assert len(files) == per_class, f"openclipart-png is not installed (or {cls} has too few drawings)"
        for i, f in enumerate(files):
            with Image.open(f) as im:
                rgba = im.convert("RGBA")
            white = Image.new("RGBA", rgba.size, "white")
            out = root / ("val" if i < val else "train") / cls / f"{i:03d}.png"
            out.parent.mkdir(parents=True, exist_ok=True)
            Image.alpha_composite(white, rgba).convert("RGB").resize((48, 48)).save(out)


def children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            ppid = int(Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        out.setdefault(ppid, []).append(int(name))
    return out


def descendants(pid: int) -> list[int]:
    tree, out, todo = children(), [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += tree.get(p, [])
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class LocalCluster:
    """A head and worker nodes on this machine, each a separate ``ray start --block`` process (its own session)."""

    def __init__(self, logs: Path) -> None:
        self.temp_dir = tempfile.mkdtemp(prefix="nasoa-mn-", dir="/tmp")  # socket paths must stay under 107 bytes
        self.logs, self.used, self.nodes = logs, set(), {}
        self.port = self.free_port()

    def free_port(self) -> int:
        """A free port not handed out before (a node binds its ports only later: never give one out twice)."""
        while (port := free_port()) in self.used:
            pass
        self.used.add(port)
        return port

    def start(self, name: str, *args: str) -> None:
        kinds = ("node-manager", "object-manager", "metrics-export", "dashboard-agent-listen", "dashboard-agent-grpc")
        ports = [f"--{kind}-port={self.free_port()}" for kind in (*kinds, "runtime-env-agent")]
        cmd = [sys.executable, "-m", "ray.scripts.scripts", "start", "--block", f"--temp-dir={self.temp_dir}"]
        cmd += ["--object-store-memory=200000000", *ports, *args]
        with open(self.logs / f"{name}.log", "w") as log:
            proc = subprocess.Popen(cmd, env=ENV, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.nodes[name] = proc

    def start_head(self) -> None:
        extra = [f"--ray-client-server-port={self.free_port()}", f"--dashboard-port={self.free_port()}"]
        self.start("head", "--head", f"--port={self.port}", "--num-cpus=0", "--include-dashboard=false", *extra)
        self.wait_until(lambda status: "Active:" in status and " node_" in status, "the head node")

    def add_gpu_node(self, name: str, cpus: int, gpus: int, tries: int = 3) -> None:
        """Start a worker node and wait for its GPUs; a start that fails (Ray gives a raylet 30 s to register, which
        two loaded cores may not meet) is retried."""
        total = sum(int(n.startswith("gpu")) for n in self.nodes) * gpus + gpus
        for _ in range(tries):
            self.start(name, f"--address=127.0.0.1:{self.port}", f"--num-cpus={cpus}", f"--num-gpus={gpus}")
            if self.wait_until(lambda status: f"/{total}.0 GPU" in status, name, self.nodes[name]):
                return
        pytest.fail(f"{name} did not start in {tries} tries:\n{(self.logs / f'{name}.log').read_text()[-3000:]}")

    def wait_until(self, ready, what: str, proc: subprocess.Popen | None = None, timeout_s: float = 180) -> bool:
        """Poll ``ray status`` until ``ready(status)``; False if ``proc`` exits first (a node that failed to start)."""
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            assert self.nodes["head"].poll() is None, (self.logs / "head.log").read_text()
            if proc is not None and proc.poll() is not None:
                return False
            cmd = [sys.executable, "-m", "ray.scripts.scripts", "status", f"--address=127.0.0.1:{self.port}"]
            if ready(subprocess.run(cmd, env=ENV, capture_output=True, text=True).stdout):
                return True
            time.sleep(2)
        pytest.fail(f"{what} not up within {timeout_s}s")

    def train_workers(self, name: str) -> list[int]:
        return [p for p in descendants(self.nodes[name].pid) if "RayTrainWorker" in cmdline(p)]

    def kill_node(self, name: str) -> list[int]:
        """SIGKILL every process of one node (its raylet, its workers), as when a spot instance goes."""
        pids = descendants(self.nodes[name].pid)
        for pid in reversed(pids):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.nodes[name].wait(timeout=30)
        return pids

    def stop(self) -> None:
        """Stop only this cluster: its `ray start` processes and every process naming its temp dir."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for proc in self.nodes.values():
                if proc.poll() is None:
                    proc.send_signal(sig)
            for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
                if self.temp_dir in cmdline(pid) and pid != os.getpid():
                    try:
                        os.kill(pid, sig)
                    except ProcessLookupError:
                        pass
            time.sleep(3)
        for proc in self.nodes.values():
            proc.wait(timeout=30)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def run_job(script: str, log: Path, *overrides: str) -> subprocess.Popen:
    with open(log, "w") as out:
        cmd = [sys.executable, str(ROOT / "launch" / script), *overrides]
        return subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def finish(proc: subprocess.Popen, log: Path, timeout_s: float) -> str:
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail(f"{log.name}: not done within {timeout_s}s\n{log.read_text()[-6000:]}")
    text = log.read_text()
    assert proc.returncode == 0, text[-8000:]
    return text


def kill_the_busy_node(cluster: LocalCluster, storage: Path, proc: subprocess.Popen, log: Path) -> tuple[str, list]:
    """Once the search has archived a result, kill the worker node running its Train workers."""
    deadline = time.time() + 420
    while time.time() < deadline:
        assert proc.poll() is None, log.read_text()[-6000:]
        runs = list((storage / "runs" / "search").glob("*"))
        busy = [n for n in ("gpu-a", "gpu-b") if cluster.train_workers(n)]
        if runs and len(ParetoArchive.load(runs[0])) >= 2 and len(busy) == 1:
            return busy[0], cluster.kill_node(busy[0])
        time.sleep(1)
    pytest.fail(f"the search never had archived results on one busy node\n{log.read_text()[-6000:]}")


def test_search_zoo_and_stream_on_a_multi_node_cluster_surviving_a_lost_worker_node(tmp_path):
    t0 = time.time()
    storage, data = tmp_path / "storage", tmp_path / "data"
    write_image_tree(data / "imagenet100")
    cluster = LocalCluster(tmp_path)
    try:
        cluster.start_head()
        cluster.add_gpu_node("gpu-a", cpus=48, gpus=8)
        cluster.add_gpu_node("gpu-b", cpus=48, gpus=8)
        where = ["+cluster=aws", "experiment=quick", f"runtime.address=127.0.0.1:{cluster.port}"]
        where += [f"cluster.storage_root={storage}", f"cluster.data_root={data}"]
        log = tmp_path / "search.log"
        search = run_job("search.py", log, *where)
        killed_node, killed = kill_the_busy_node(cluster, storage, search, log)
        text = finish(search, log, 600)
        run_dir = next((storage / "runs" / "search").glob("*"))
        check_search(run_dir, text, killed, data, cluster.port)
        zoo_log = tmp_path / "zoo.log"
        finish(run_job("build_zoo.py", zoo_log, *where, f"search_dir={run_dir}"), zoo_log, 900)
        check_zoo(storage / "zoo", run_dir)
        stream_log = tmp_path / "stream.log"
        finish(run_job("stream.py", stream_log, *where, f"service.port={free_port()}"), stream_log, 600)
        check_stream(storage)
    finally:
        cluster.stop()
    print(f"multi-node test: {time.time() - t0:.0f} s wall, killed {killed_node} ({len(killed)} processes)")


def check_search(run_dir: Path, text: str, killed: list[int], data: Path, port: int) -> None:
    summary = json.loads((run_dir / "summary.json").read_text())
    records = pq.read_table(run_dir / "archive.parquet").to_pylist()
    counts = Counter(r["archid"] for r in records)
    assert all(n == 1 for n in counts.values()), counts  # no candidate recorded twice
    assert summary["duplicate_results"] == 0 and summary["archive_size"] == len(records)
    assert {r["level"] for r in records} == {"block", "macro"}
    assert summary["joined_cluster"] and summary["ray_address"].endswith(f":{port}")
    assert "Started a local Ray instance" not in text  # runtime.address joins the cluster, never starts its own
    assert summary["runtime"]["name"] == "aws" and summary["runtime"]["gpus_per_worker"] == 1
    assert summary["proxy"]["source"] == f"folder:root={data}/imagenet100"
    assert all(r["device"].startswith("cpu:") for r in records if r["status"] == "ok")  # fake GPUs: CPU fallback
    dead = {str(p) for p in killed}
    for archid in re.findall(r"requeued (\S+) after attempt", text):
        victim = next(r for r in records if r["archid"] == archid)  # requeued after the kill: redone elsewhere
        assert victim["worker"].split(":")[1].split("/")[0] not in dead, victim


def check_zoo(zoo_root: Path, run_dir: Path) -> None:
    summary = json.loads((zoo_root / "build_summary.json").read_text())
    assert summary["entries"] and not summary["failed"], summary["failed"]
    assert any(e["name"].startswith("front-") for e in summary["entries"])
    assert (zoo_root / "manifest.parquet").exists() and run_dir.exists()


def check_stream(storage: Path) -> None:
    run = next((storage / "runs" / "stream").glob("*"))
    summary = json.loads((run / "stream.json").read_text())
    assert summary["done"] == len(summary["tasks"]) == 2, summary["tasks"]
    assert summary["stopped_by_signal"] is None
