"""The collect job on real Ray Tune: a tiny zoo, two tiny tasks, rows in the experience store, an idempotent re-run."""

import json

import pytest

from nasoa.jobs.collect import SUMMARY_FILE, run_collect_job
from nasoa.online.experience import ExperienceStore

from ..helpers import QUICK, compose_config, make_tiny_zoo

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_collect_stores_one_row_per_trial_and_a_rerun_skips_them(ray_session, tmp_path):
    zoo = make_tiny_zoo(tmp_path / "zoo")
    cfg = compose_config("collect", QUICK + [f"zoo_root={zoo}"])
    max_s = cfg["collect"].max_trial_s
    trials = len(cfg["tasks"]["past"]) * cfg["collect"].trials_per_task

    summary = run_collect_job(cfg, tmp_path / "run")
    assert summary["failed"] == 0, summary["failures"]
    assert summary["rows_stored"] == summary["rows_total"] == trials
    assert summary["skipped"] == 0
    assert summary["profile_device"] == "cpu:test"
    assert 0.0 < summary["worker_efficiency"] <= 1.0
    assert json.loads((tmp_path / "run" / SUMMARY_FILE).read_text())["rows_stored"] == trials

    rows = ExperienceStore(tmp_path / "run" / "state" / "experience", readonly=True).rows()
    assert len(rows) == trials
    assert {r["task_name"] for r in rows} == set(cfg["tasks"]["past"])
    assert len({r["feedback_id"] for r in rows}) == trials
    for r in rows:
        assert 0.0 <= r["accuracy"] <= 1.0
        assert 0.0 < r["time_s"] <= r["budget_s"] + 3.0 and r["budget_s"] <= max_s
        assert r["source"] == "collect" and r["model"] in {"tiny.digits-32px", "mnv3s.digits-32px"}
        # what ran: the plan sized to the budget, the steps done, the curve, the task's probe of every zoo model
        assert r["planned_steps"] >= 1 and 1 <= r["steps"] <= r["planned_steps"] and r["curve"][-1][1] == r["accuracy"]
        assert set(r["probes"]) == {"tiny.digits-32px", "mnv3s.digits-32px"}
    assert len({r["budget_s"] for r in rows}) == 2  # a spread of budgets per task

    again = run_collect_job(cfg, tmp_path / "run")
    assert again["rows_stored"] == 0 and again["trials_run"] == 0
    assert again["skipped"] == trials and again["rows_total"] == trials
    assert len(ExperienceStore(tmp_path / "run" / "state" / "experience", readonly=True)) == trials


def test_collect_needs_a_zoo(tmp_path):
    with pytest.raises(ValueError, match="zoo_root is required"):
        run_collect_job(compose_config("collect", QUICK), tmp_path)
    cfg = compose_config("collect", QUICK + [f"zoo_root={tmp_path / 'nozoo'}"])
    with pytest.raises(FileNotFoundError, match="no zoo there"):
        run_collect_job(cfg, tmp_path)


def test_a_failing_trial_is_counted_not_stored_and_the_sweep_goes_on(ray_session, tmp_path):
    zoo = make_tiny_zoo(tmp_path / "zoo")
    (zoo / "weights" / "mnv3s.digits-32px.pt").write_bytes(b"tampered")  # the trial's zoo.load refuses it
    overrides = QUICK + [f"zoo_root={zoo}", "tasks.past=['digits:classes=0-2,num_train=60']"]
    summary = run_collect_job(compose_config("collect", overrides), tmp_path / "run")
    assert summary["rows_stored"] == 1 and summary["failed"] == 1  # one regime per model
    (failure,) = summary["failures"]
    assert "does not match the manifest" in failure["error"]
    (row,) = ExperienceStore(tmp_path / "run" / "state" / "experience", readonly=True).rows()
    assert row["model"] == "tiny.digits-32px" and row["feedback_id"] != failure["feedback_id"]
