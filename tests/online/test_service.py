"""The adaptation service as a plain class (no Ray, no HTTP): answers, feedback, errors as data, restart, copies."""

import pytest

from nasoa.online.client import REGIME_FIELDS
from nasoa.online.predictor import predictor_from_state
from nasoa.online.service import AdaptationService, ServiceConfig, make_generator, propose_answer

from ..helpers import make_tiny_zoo

TASK = {"num_classes": 10, "num_train": 500, "resolution": 32, "channels": 3}


@pytest.fixture()
def config(tmp_path):
    return ServiceConfig(str(make_tiny_zoo(tmp_path / "zoo")), str(tmp_path / "state"))


def test_propose_answers_within_the_budget(config):
    service = AdaptationService(config)
    try:
        answer = service.propose(TASK, 60.0)
        for key in ("model", "lr", "frozen_stages", "batch_size", "epochs", "predicted_accuracy", "predicted_time_s"):
            assert key in answer
        assert answer["predicted_time_s"] <= 60.0 and answer["model"] in {z["key"] for z in service.zoo()}
        refused = service.propose(TASK, 1e-3)
        assert refused["error"] == 422 and refused["cheapest_time_s"] > 1e-3
        assert service.propose({**TASK, "num_classes": 0}, 60.0)["error"] == 422
    finally:
        service.close()


def test_feedback_is_stored_once_learned_and_survives_a_restart(config):
    service = AdaptationService(config)
    regime = {k: v for k, v in service.propose(TASK, 60.0).items() if k in REGIME_FIELDS}
    assert regime["steps"] >= 1
    version = service.version
    result = {"accuracy": 0.7, "time_s": 12.0, "steps": regime["steps"], "step_ms": 30.0, "curve": [[3, 0.4]]}
    ack = service.feedback(TASK, regime, result, 60.0, "run-1", probes={"tiny.digits-32px": 0.6})
    assert ack["stored"] and not ack["duplicate"] and ack["experience_size"] == 1
    assert service.version != version and service.snapshot(service.version) is None
    again = service.feedback(TASK, regime, {"accuracy": 0.7, "time_s": 12.0}, 60.0, "run-1")
    assert again["duplicate"] and again["experience_size"] == 1
    assert service.feedback(TASK, {**regime, "model": "nope.x"}, {"accuracy": 0.5, "time_s": 1}, 60.0)["error"] == 404
    assert service.feedback(TASK, regime, {"accuracy": 1.5, "time_s": 1}, 60.0)["error"] == 422
    assert service.has_feedback("run-1") and not service.has_feedback("run-2")
    service.close()
    restarted = AdaptationService(config)
    try:
        health = restarted.health()
        assert health["experience_size"] == 1 and health["fitted_on_start"] == 1
        (row,) = restarted.store.rows()
        assert row["steps"] == regime["steps"] and row["curve"] == [[3.0, 0.4]] and row["probes"]
        assert restarted.generator.time_scale != 1.0  # learned from the reported step time
    finally:
        restarted.close()


def test_a_read_only_copy_answers_what_the_service_answers(config):
    service = AdaptationService(config)
    try:
        regime = {k: v for k, v in service.propose(TASK, 60.0).items() if k in REGIME_FIELDS}
        service.feedback(TASK, regime, {"accuracy": 0.9, "time_s": 10.0}, 60.0, "run-1")
        spec, snapshot = service.replica_spec(), service.snapshot()
        predictor = predictor_from_state(snapshot["predictor"])
        copy = make_generator(spec["config"], spec["entries"], spec["device"], predictor, quiet=True)
        copy.speed = snapshot["speed"]
        for budget in (5.0, 60.0, 600.0):
            assert propose_answer(copy, TASK, budget) == service.propose(TASK, budget)
            probes = {"tiny.digits-32px": 0.7}
            assert propose_answer(copy, TASK, budget, 1, probes, 0.5) == service.propose(TASK, budget, 1, probes, 0.5)
    finally:
        service.close()


def test_a_second_writer_is_refused(config):
    first = AdaptationService(config)
    try:
        with pytest.raises(RuntimeError, match="another writer"):
            AdaptationService(config)
    finally:
        first.close()


def test_data_references_only_under_the_allowed_roots(tmp_path):
    from nasoa.online.service import allowed_data_root

    allowed = tmp_path / "data"
    (allowed / "flowers").mkdir(parents=True)
    assert allowed_data_root(str(allowed / "flowers"), [str(allowed)]) == (allowed / "flowers").resolve()
    for bad in (str(tmp_path), str(allowed / ".." / "x"), "/etc"):
        with pytest.raises(PermissionError, match="not under"):
            allowed_data_root(bad, [str(allowed)])
    (allowed / "link").symlink_to(tmp_path)
    with pytest.raises(PermissionError):
        allowed_data_root(str(allowed / "link"), [str(allowed)])  # a link out of the allowed folder
    with pytest.raises(PermissionError, match="reads no data"):
        allowed_data_root(str(allowed), [])
