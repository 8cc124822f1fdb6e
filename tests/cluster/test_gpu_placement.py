"""GPU placement is consistent: every job that trains asks Ray for a GPU per worker when the runtime says so, and the
worker takes its torch device from what Ray assigned (the CPU here, with a warning: the GPUs are fake)."""

import json
import os
import subprocess
import sys

import pytest
import ray

from nasoa.cluster.device import assigned_device

from ..helpers import ROOT

ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
ONE_GPU_PER_WORKER = {"CPU": 1.0, "GPU": 1.0}


def test_outside_ray_the_requested_device_stands():
    if not ray.is_initialized():
        assert assigned_device("cpu") == "cpu" and assigned_device("cuda:1") == "cuda:1"


@pytest.mark.ray
def test_a_worker_without_an_assigned_gpu_trains_on_the_cpu_whatever_was_requested(ray_session):
    device = ray.remote(num_cpus=0)(assigned_device)
    assert ray.get([device.remote("cuda"), device.remote("cpu")]) == ["cpu", "cpu"]


@pytest.mark.ray
@pytest.mark.slow
def test_every_training_job_asks_ray_for_a_gpu_per_worker_on_a_node_with_fake_gpus(tmp_path):
    out = tmp_path / "placement.json"
    cmd = [sys.executable, "-m", "tests.cluster.gpu_probe", str(out), str(tmp_path)]
    done = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-6000:]
    report = json.loads(out.read_text())
    print(json.dumps(report))
    # Ray Train (search; the zoo, stream and finetune pools are the same TrainPool) and Ray Tune (collect, BOHB):
    # one bundle per worker or trial, each with a GPU, and both of the node's 2 GPUs taken at once.
    for job in ("search", "collect", "bohb"):
        assert report[job]["bundles"] and all(b == ONE_GPU_PER_WORKER for b in report[job]["bundles"]), job
        assert report[job]["min_gpus_available"] == 0.0, job
    assert report["benchmark_runs"]["min_gpus_available"] == 1.0  # one ray.remote run asking for one GPU
    for job in ("search", "collect", "benchmark_runs"):  # Ray assigned a GPU torch cannot see: the CPU
        assert report[job]["devices"] and all(d.startswith("cpu:") for d in report[job]["devices"]), job
    assert report["bohb"]["fine_tunes"] >= 2  # trials until two budgets of compute are spent, two at once
