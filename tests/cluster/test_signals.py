"""Services stop cleanly: SIGTERM under load lets in-flight requests finish, shuts Serve and Ray down, exits 0.

`launch/serve.py` and `launch/stream.py` run as real processes, each with its private Ray; the load comes from a
second process (``nasoa.bench.load``), as in the service fault tests.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from nasoa.online.experience import ExperienceStore

from ..helpers import QUICK, ROOT, make_tiny_zoo
from .test_serve_app_faults import free_port

pytestmark = [pytest.mark.ray, pytest.mark.slow]
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "PYTHONUNBUFFERED": "1"}


def start(script: str, out: Path, *overrides: str) -> subprocess.Popen:
    with open(out, "w") as log:
        cmd = [sys.executable, str(ROOT / "launch" / script), *overrides]
        return subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout_s: float = 180) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(f"{url}/v1/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    pytest.fail(f"the service did not come up within {timeout_s}s\n{log.read_text()[-4000:]}")


def left_running(temp_dir: str) -> list[int]:
    """Pids of processes still naming this test's Ray temp dir (the driver's private Ray must be gone)."""
    pids = []
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if temp_dir in cmd:
            pids.append(int(name))
    return pids


def finish(proc: subprocess.Popen, temp_dir: str, log: Path) -> str:
    """Wait for the process; then no process of its Ray may be left (killed here if one is, and the test fails)."""
    try:
        proc.wait(timeout=150)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"did not exit within 150 s of SIGTERM\n{log.read_text()[-6000:]}")
    deadline = time.time() + 20
    while left_running(temp_dir) and time.time() < deadline:
        time.sleep(0.5)
    stray = left_running(temp_dir)
    for pid in stray:
        os.kill(pid, signal.SIGKILL)
    shutil.rmtree(temp_dir, ignore_errors=True)
    assert not stray, f"Ray processes left running: {stray}"
    return log.read_text()


def test_sigterm_under_load_drains_and_exits_0_with_every_acknowledged_feedback_stored_once(tmp_path):
    zoo, state, port = make_tiny_zoo(tmp_path / "zoo"), tmp_path / "state", free_port()
    temp_dir = tempfile.mkdtemp(prefix="nasoa-sig-", dir="/tmp")  # Ray's socket paths must stay under 107 bytes
    log = tmp_path / "serve.log"
    overrides = [f"zoo_root={zoo}", f"state_dir={state}", f"service.port={port}", f"runtime.temp_dir={temp_dir}"]
    proc = start("serve.py", log, *overrides, f"hydra.run.dir={tmp_path / 'run'}")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log)
        load_out = tmp_path / "load.json"
        load = subprocess.Popen(
            [sys.executable, "-m", "nasoa.bench.load", "--url", url, "--clients", "16", "--seconds", "14"]
            + ["--feedback-share", "0.5", "--tag", "sigterm", "--timeout", "30", "--json", str(load_out)],
            env=ENV,
        )
        time.sleep(5)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        text = finish(proc, temp_dir, log)
        exited_after = time.monotonic() - sent
        assert load.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, text[-6000:]
    assert "SIGTERM received: stopping" in text and "regime service stopped (SIGTERM)" in text
    assert "Traceback" not in text, text[-6000:]
    result = json.loads(load_out.read_text())
    acked = result["acked_feedback_ids"]
    print(f"exit 0 {exited_after:.1f}s after SIGTERM; {len(acked)} feedbacks acknowledged; codes {result['codes']}")
    assert len(acked) > 10 and len(set(acked)) == len(acked)
    assert set(result["codes"]) <= {"200", "404", "503"} | {c for c in result["codes"] if c.startswith("error:")}
    stored = Counter(r["feedback_id"] for r in ExperienceStore(state / "experience", readonly=True).rows())
    assert {fid: stored[fid] for fid in acked if stored[fid] != 1} == {}


def test_the_stream_stops_after_the_task_in_flight_on_sigterm(tmp_path):
    zoo = make_tiny_zoo(tmp_path / "zoo", models=(("tiny", "etnas", "011-_16_1-2-2-2"),))
    temp_dir = tempfile.mkdtemp(prefix="nasoa-sig-", dir="/tmp")
    tasks = ",".join(f"'digits:classes=0-2,num_train=60,seed={s}'" for s in range(6))
    log, run = tmp_path / "stream.log", tmp_path / "run"
    overrides = [*QUICK, f"zoo_root={zoo}", f"service.port={free_port()}", f"runtime.temp_dir={temp_dir}"]
    proc = start("stream.py", log, *overrides, f"tasks.stream=[{tasks}]", f"hydra.run.dir={run}")
    try:
        deadline = time.time() + 240
        while "[task 1/6]" not in log.read_text() and time.time() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)  # during the second task's fine-tune (or between tasks)
        text = finish(proc, temp_dir, log)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, text[-6000:]
    summary = json.loads((run / "stream.json").read_text())
    assert summary["stopped_by_signal"] == "SIGTERM" and 1 <= summary["done"] < 6
    assert all("accuracy" in row for row in summary["tasks"]), summary["tasks"]  # the task in flight finished
