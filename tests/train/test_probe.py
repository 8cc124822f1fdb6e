"""Task probes on a tiny zoo: scores per model, the disk cache by data fingerprint, a broken model, the command."""

import json

import pytest

from nasoa.data import make_task
from nasoa.jobs.probe import main
from nasoa.train.probe import ProbeCache, probe_zoo
from nasoa.zoo import Zoo

from ..helpers import make_tiny_zoo


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    return Zoo(make_tiny_zoo(tmp_path_factory.mktemp("zoo")))


@pytest.fixture(scope="module")
def task():
    return make_task("digits:classes=0-2,num_train=90", resolution=32)


@pytest.mark.parametrize("method", ["ncm", "knn"])
def test_every_model_gets_a_score_and_the_cache_answers_the_second_time(zoo, task, tmp_path, method):
    first = probe_zoo(zoo, task, sample=40, val_sample=20, method=method, cache_dir=tmp_path)
    assert set(first.scores) == set(zoo.keys()) and all(0.0 <= v <= 1.0 for v in first.scores.values())
    assert first.cached == [] and first.seconds > 0 and first.sample == (40, 20) and not first.errors
    again = probe_zoo(zoo, task, sample=40, val_sample=20, method=method, cache_dir=tmp_path)
    assert again.scores == first.scores and sorted(again.cached) == sorted(zoo.keys())
    assert again.fingerprint == first.fingerprint and again.seconds < first.seconds
    other = probe_zoo(zoo, task, sample=40, val_sample=20, seed=1, method=method, cache_dir=tmp_path)
    assert other.fingerprint != first.fingerprint and other.cached == []  # another sample: another fingerprint


def test_an_allowance_probes_models_in_order_until_the_next_would_overrun_it(zoo, task):
    keys = list(zoo.keys())
    full = probe_zoo(zoo, task, sample=40, val_sample=20)
    one = probe_zoo(zoo, task, sample=40, val_sample=20, max_s=1e-6)  # the first model runs: nothing to go by yet
    assert set(one.scores) == {keys[0]} and one.skipped == keys[1:] and one.scores[keys[0]] == full.scores[keys[0]]
    assert probe_zoo(zoo, task, sample=40, val_sample=20, max_s=3600.0).scores == full.scores
    none = probe_zoo(zoo, task, sample=40, val_sample=20, max_s=0.0)
    assert none.scores == {} and none.skipped == keys and none.seconds < full.seconds
    with pytest.raises(ValueError, match="max_s"):
        probe_zoo(zoo, task, max_s=-1.0)


def test_a_model_that_cannot_be_probed_is_reported_not_fatal(tmp_path, task):
    root = make_tiny_zoo(tmp_path / "zoo")
    (root / "weights" / "mnv3s.digits-32px.pt").write_bytes(b"tampered")
    result = probe_zoo(Zoo(root), task, sample=20, val_sample=10)
    assert set(result.scores) == {"tiny.digits-32px"} and "does not match" in result.errors["mnv3s.digits-32px"]
    assert ProbeCache(tmp_path / "nothing").get("f" * 64) == {}


def test_the_command_prints_what_a_client_sends(zoo, tmp_path, capsys):
    out = tmp_path / "probes.json"
    args = ["--zoo-root", str(zoo.root), "--task", "digits:classes=0-2,num_train=60", "--sample", "20"]
    assert main([*args, "--val-sample", "10", "--json", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    assert set(printed["probes"]["scores"]) == set(zoo.keys()) and printed["probes"]["seconds"] > 0
    from nasoa.cluster.serve_app import ProbesIn

    ProbesIn.model_validate(printed["probes"])  # what a /v1/regime query takes as its probes
