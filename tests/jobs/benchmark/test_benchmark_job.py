"""``launch/benchmark.py``: the real configs compose; ``--quick`` runs every benchmark end to end."""

import json
import os
import subprocess
import sys

import pytest

from nasoa.data import make_task

from ...helpers import ROOT, compose_config

BENCHMARKS = ["zoo_efficiency", "regime_quality", "search_efficiency", "serving"]


def test_full_config_composes_with_every_method_and_four_budgets():
    cfg = compose_config("benchmark")
    assert cfg["benchmarks"] == BENCHMARKS and cfg["experiment_name"] == "full"
    rq = cfg["regime_quality"]
    assert len(rq["budgets"]) >= 4
    assert {"oracle", "nasoa", "default", "random", "bohb", *rq["series"]} == set(rq["methods"])
    assert cfg["sources"]["build"] == "pipeline"


def test_stream_tasks_are_not_the_experience_tasks():
    from nasoa.online.selection import task_key

    stream = {task_key(make_task(s).meta.to_dict()) for s in compose_config("benchmark")["regime_quality"]["tasks"]}
    past = {task_key(make_task(s).meta.to_dict()) for s in compose_config("collect")["tasks"]["past"]}
    assert len(stream) == 3 and not stream & past


def test_default_zoo_holds_every_model_the_baselines_name():
    rq = compose_config("benchmark")["regime_quality"]
    refs = set(compose_config("zoo")["zoo"].references)
    assert rq["default"]["model"] in refs
    for members in rq["series"].values():
        assert set(members) <= refs and len(members) >= 2


def test_quick_mode_overrides_sizes_not_the_structure():
    cfg = compose_config("benchmark", ["experiment=quick"])
    assert cfg["experiment_name"] == "quick" and cfg["sources"]["build"] == "tiny"
    assert cfg["benchmarks"] == BENCHMARKS
    assert cfg["regime_quality"]["methods"] == compose_config("benchmark")["regime_quality"]["methods"]


@pytest.mark.slow
@pytest.mark.ray
def test_quick_benchmark_runs_every_benchmark_and_writes_the_report(tmp_path):
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    run = tmp_path / "run"
    cmd = [sys.executable, str(ROOT / "launch" / "benchmark.py"), "--quick", f"hydra.run.dir={run}"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    index = json.loads((run / "benchmark.json").read_text())
    assert all("error" not in index[b] for b in BENCHMARKS)

    rq = json.loads((run / "regime_quality.json").read_text())
    methods = rq["summary"]["methods"]
    assert set(methods) == {"oracle", "nasoa", "default", "regnet_series", "efficientnet_series", "random", "bohb"}
    assert all(v is not None for s in methods.values() for v in s["by_budget"].values())
    cells = {(r["task"], r["budget_s"]) for r in rq["rows"]}
    assert len(cells) == len(rq["tasks"]) * len(rq["budgets"])
    for r in rq["rows"]:  # every method picks from the same feasible grid the oracle ran exhaustively
        assert r["regret"] is not None and r["regret"] >= -1e-12, r
    by = {(r["method"], r["budget_s"]): r for r in rq["rows"]}
    for b in rq["budgets"]:
        assert by[("nasoa", b)]["fine_tunes"] == 1
        assert by[("oracle", b)]["fine_tunes"] == by[("oracle", b)]["feasible"]
        assert by[("bohb", b)]["fine_tunes"] >= 1
    assert "bohb_accuracy_at_40x_less_compute" in rq["summary"]["targets"]

    ze = json.loads((run / "zoo_efficiency.json").read_text())
    assert {m["name"] for m in ze["models"]} == {"tiny", "mnv3s", "regnet", "effnet"}
    assert all(m["train_step_ms"] > 0 for m in ze["models"])
    se = json.loads((run / "search_efficiency.json").read_text())
    assert [r["workers"] for r in se["runs"]] == [1, 2] and "2" in se["speedup_vs_1_worker"]
    assert all(r["candidates"] > 0 and 0 < r["worker_efficiency"] <= 1 for r in se["runs"])
    sv = json.loads((run / "serving.json").read_text())
    assert sv["endpoints"]["regime"]["errors"] == 0 and sv["ratio_p50"] > 0

    report = (run / "report.md").read_text()
    for section in ("## Regime quality", "## Zoo efficiency", "## Search efficiency", "## Serving"):
        assert section in report
    for method in methods:
        assert f"| {method} |" in report
    for png in ("accuracy_vs_budget.png", "zoo_efficiency.png"):
        assert (run / png).stat().st_size > 1000
