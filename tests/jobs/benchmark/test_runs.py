"""Benchmark fine-tunes on real Ray: run once, journaled, reused by a later run in the same folder."""

import json

import pytest

from nasoa.jobs.benchmark.runs import FinetuneRuns, ProbeRuns, run_key
from nasoa.online.regime import Regime

from ...helpers import make_tiny_zoo

pytestmark = pytest.mark.ray

SPEC = "digits:classes=[0,1,2],num_train=60,seed=5"


def test_runs_are_cached_journaled_and_resumed(ray_session, tmp_path):
    zoo = make_tiny_zoo(tmp_path / "zoo", models=(("tiny", "etnas", "011-_16_1-2-2-2"),))
    regimes = [Regime("tiny.digits-32px", lr, 0, 16, 1) for lr in (0.01, 0.1)]
    runs = FinetuneRuns(tmp_path / "runs.jsonl", str(zoo))
    first = runs.evaluate("t", SPEC, 5.0, 0, regimes)
    assert runs.ran == 2 and all(0.0 <= r.accuracy <= 1.0 for r in first)
    assert runs.evaluate("t", SPEC, 5.0, 0, regimes[:1]) == first[:1] and runs.ran == 2  # no second fine-tune
    lines = (tmp_path / "runs.jsonl").read_text().splitlines()
    assert {json.loads(x)["key"] for x in lines} == {run_key("t", r, 5.0, 0) for r in regimes}
    with open(tmp_path / "runs.jsonl", "a") as f:
        f.write('{"key": "torn')  # a crash mid-write: the torn line is ignored
    again = FinetuneRuns(tmp_path / "runs.jsonl", str(zoo))
    assert len(again) == 2 and again.evaluate("t", SPEC, 5.0, 0, regimes) == first and again.ran == 0
    assert run_key("t", regimes[0], 6.0, 0) != run_key("t", regimes[0], 5.0, 0)
    assert run_key("t", regimes[0], 5.0, 1) != run_key("t", regimes[0], 5.0, 0)


def test_probes_are_journaled_with_their_seconds_and_charged_again_when_reused(ray_session, tmp_path):
    zoo = make_tiny_zoo(tmp_path / "zoo", models=(("tiny", "etnas", "011-_16_1-2-2-2"),))
    runs = FinetuneRuns(tmp_path / "runs.jsonl", str(zoo))
    probes = ProbeRuns(tmp_path / "probes.jsonl", runs, sample=24, val_sample=12)
    scores, seconds = probes("t", SPEC, 0)
    assert set(scores) == {"tiny.digits-32px"} and 0.0 <= scores["tiny.digits-32px"] <= 1.0 and seconds > 0
    again = ProbeRuns(tmp_path / "probes.jsonl", runs, sample=24, val_sample=12)
    assert again("t", SPEC, 0) == (scores, seconds)  # a resumed benchmark pays what the first probe took
    assert len((tmp_path / "probes.jsonl").read_text().splitlines()) == 1
    assert ProbeRuns(tmp_path / "probes.jsonl", runs, sample=24, val_sample=12)("t", "nosuchkind:x=1", 0) == ({}, 0.0)
    capped = ProbeRuns(tmp_path / "probes.jsonl", runs, sample=24, val_sample=12, fraction=0.2)
    assert capped("t", SPEC, 0, budget_s=0.0) == ({}, pytest.approx(0.0, abs=0.05))  # no allowance: no probe
    assert len((tmp_path / "probes.jsonl").read_text().splitlines()) == 2  # keyed by the allowance too
