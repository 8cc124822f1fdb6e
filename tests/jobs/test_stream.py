"""A short stream of tasks through the real service and Ray Train, and a single fine-tune job."""

import json
import socket

import pytest

from nasoa.jobs.finetune import run_finetune_job
from nasoa.jobs.stream import run_stream_job
from nasoa.online.experience import ExperienceStore

from ..helpers import QUICK, compose_config, make_tiny_zoo

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_stream_asks_finetunes_and_reports(ray_session, tmp_path):
    zoo = make_tiny_zoo(tmp_path / "zoo", models=(("tiny", "etnas", "011-_16_1-2-2-2"),))
    # a task as a dict spec beside a string spec: both go through the service and the fine-tuning pool alike
    tasks = "[{kind:digits,classes:[3,4,5],num_train:60,seed:3},'synthetic:num_classes=3,num_train=60,num_val=30']"
    overrides = [f"zoo_root={zoo}", f"service.port={free_port()}", f"tasks.stream={tasks}", "stream.probes=true"]
    cfg = compose_config("stream", QUICK + overrides + ["stream.probe_sample=20", "stream.probe_val_sample=10"])
    assert isinstance(cfg["tasks"]["stream"][0], dict)
    summary = run_stream_job(cfg, tmp_path / "run")
    rows = summary["tasks"]
    assert len(rows) == 2 and all("accuracy" in r for r in rows), rows
    for r in rows:  # the client probed first: its seconds came off the budget
        assert r["probe_s"] > 0 and r["predicted_time_s"] + r["probe_s"] <= r["budget_s"]
        assert 0.0 <= r["accuracy"] <= 1.0 and r["steps"] >= 1
    assert [r["experience_size"] for r in rows] == [1, 2]
    stored = ExperienceStore(tmp_path / "run" / "state" / "experience", readonly=True).rows()
    assert all(s["probes"] and s["curve"] and s["step_ms"] > 0 and s["planned_steps"] for s in stored)
    assert json.loads((tmp_path / "run" / "stream.json").read_text())["tasks"] == rows


def test_single_finetune_with_an_explicit_regime(ray_session, tmp_path):
    zoo = make_tiny_zoo(tmp_path / "zoo", models=(("tiny", "etnas", "011-_16_1-2-2-2"),))
    cfg = compose_config(
        "finetune",
        [
            f"zoo_root={zoo}",
            "task='digits:classes=0-2,num_train=60'",
            "budget_s=2",
            "regime.model=tiny.digits-32px",
            "regime.epochs=1000",
            "regime.batch_size=8",
        ],
    )
    out = run_finetune_job(cfg, tmp_path / "run")
    r = out["result"]  # 1000 epochs planned, re-planned to end annealed within the 2 s
    assert r["stopped_by"] == "done" and r["finished"] and r["steps"] < r["planned_steps"]
    assert (tmp_path / "run" / "finetune.json").exists()
    with pytest.raises(ValueError, match="regime.model"):
        run_finetune_job(compose_config("finetune", [f"zoo_root={zoo}"]), tmp_path / "run2")


def test_finetune_takes_a_dict_task_spec(ray_session, tmp_path):
    zoo = make_tiny_zoo(tmp_path / "zoo", models=(("tiny", "etnas", "011-_16_1-2-2-2"),))
    overrides = [f"zoo_root={zoo}", "task={kind:digits,classes:[0,1,2],num_train:60}", "budget_s=3"]
    overrides += ["regime.model=tiny.digits-32px", "regime.epochs=1", "regime.batch_size=16"]
    out = run_finetune_job(compose_config("finetune", overrides), tmp_path / "run")
    assert out["task"]["num_classes"] == 3 and out["task"]["num_train"] == 60
    assert 0.0 <= out["result"]["accuracy"] <= 1.0 and out["result"]["finished"]
