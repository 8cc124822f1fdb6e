"""``launch/benchmark.py``: the real configs compose; ``--quick`` runs every benchmark end to end."""

import json
import os
import subprocess
import sys

import pytest

from nasoa.data import make_task

from ...helpers import ROOT, compose_config

BENCHMARKS = ["zoo_efficiency", "regime_quality", "search_efficiency", "serving"]


def test_full_config_composes_with_every_method_budgets_spanning_16x_and_three_seeds():
    cfg = compose_config("benchmark")
    assert cfg["benchmarks"] == BENCHMARKS and cfg["experiment_name"] == "full"
    rq = cfg["regime_quality"]
    assert max(rq["multiples"]) / min(rq["multiples"]) >= 16 and len(rq["seeds"]) >= 3
    assert {"oracle", "nasoa", "nasoa_noprobe", "default", "random", "bohb", *rq["series"]} == set(rq["methods"])
    assert rq["default"] == {"model": "resnet18", "lr": 0.01, "batch_size": 32, "schedule": "constant"}
    assert cfg["sources"]["build"] == "pipeline"


def test_the_benchmark_runs_the_service_as_shipped():
    bench, serve = compose_config("benchmark"), compose_config("serve", ["zoo_root=/z"])
    for group in ("predictor", "regime_space", "service"):
        assert bench[group] == serve[group], group


def test_stream_tasks_are_not_the_experience_tasks():
    from nasoa.online.selection import task_key

    tasks = compose_config("benchmark")["tasks"]
    stream = {task_key(make_task(s).meta.to_dict()) for s in tasks["stream"]}
    past = {task_key(make_task(s).meta.to_dict()) for s in compose_config("collect")["tasks"]["past"]}
    assert len(stream) == len(tasks["stream"]) >= 6 and not stream & past
    assert {t["domain"] for t in tasks["stream"]} - {t["domain"] for t in tasks["past"]}  # a whole domain held out


def test_default_zoo_holds_every_model_the_baselines_name():
    rq = compose_config("benchmark")["regime_quality"]
    refs = set(compose_config("zoo", ["zoo=full"])["zoo"].references)
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
    expected = {"oracle", "nasoa", "nasoa_noprobe", "default", "regnet_series", "efficientnet_series", "random"}
    assert set(methods) == expected | {"bohb", "fixed_best"}
    cells = {(r["task"], r["multiple"], r["seed"]) for r in rq["rows"]}
    assert len(cells) == len(rq["tasks"]) * len(rq["multiples"]) * len(rq["seeds"])
    for c in cells:  # every method answers every cell, chosen on validation and scored on test
        by = {r["method"]: r for r in rq["rows"] if (r["task"], r["multiple"], r["seed"]) == c}
        assert set(by) == set(methods)
        for m in expected:
            if by[m]["test_accuracy"] is None:  # a fixed family may have no model fast enough for the 1x budget
                assert m.endswith("_series") and c[1] == 1 and by[m]["note"] == "no regime fits the budget", by[m]
                continue
            assert by[m]["val_accuracy"] is not None, (m, by[m])
        assert by["nasoa"]["fine_tunes"] == 1 and by["oracle"]["fine_tunes"] >= 1
    bohb = [r for r in rq["rows"] if r["method"] == "bohb" and r["regime"]]
    assert bohb and all(r["fine_tunes"] >= 1 for r in bohb)
    for name in ("beats_default_by_5_points", "regret_at_most_2_points", "no_run_over_budget_by_5pct"):
        assert name in rq["summary"]["targets"]

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
