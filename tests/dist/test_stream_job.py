"""A short stream of tasks through the real service and Ray Train, and a single fine-tune job."""

import json
import socket

import pytest

from nasoa.dist.stream_job import run_finetune_job, run_stream_job

from ..helpers import compose_config, make_tiny_zoo

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_stream_asks_finetunes_and_reports(ray_session, tmp_path):
    zoo = make_tiny_zoo(tmp_path / "zoo", models=(("tiny", "etnas", "011-_16_1-2-2-2"),))
    tasks = '["digits:classes=0-2,num_train=60","synthetic:num_classes=3,num_train=60,num_val=30"]'
    cfg = compose_config("stream", [f"stream.zoo_root={zoo}", f"stream.tasks={tasks}", "stream.budgets=[6,8]",
                                    f"service.port={free_port()}"])
    summary = run_stream_job(cfg, tmp_path / "run")
    rows = summary["tasks"]
    assert len(rows) == 2 and all("accuracy" in r for r in rows), rows
    for r in rows:
        assert r["predicted_time_s"] <= r["budget_s"]
        assert 0.0 <= r["accuracy"] <= 1.0
    assert [r["experience_size"] for r in rows] == [1, 2]
    assert json.loads((tmp_path / "run" / "stream.json").read_text())["tasks"] == rows


def test_single_finetune_with_an_explicit_regime(ray_session, tmp_path):
    zoo = make_tiny_zoo(tmp_path / "zoo", models=(("tiny", "etnas", "011-_16_1-2-2-2"),))
    cfg = compose_config("finetune", [f"zoo_root={zoo}", "task='digits:classes=0-2,num_train=60'", "budget_s=2",
                                      "regime.model=tiny.digits-32px", "regime.epochs=1000", "regime.batch_size=8"])
    out = run_finetune_job(cfg, tmp_path / "run")
    assert out["result"]["stopped_by"] == "deadline" and not out["result"]["finished"]
    assert (tmp_path / "run" / "finetune.json").exists()
    with pytest.raises(ValueError, match="regime.model"):
        run_finetune_job(compose_config("finetune", [f"zoo_root={zoo}"]), tmp_path / "run2")
