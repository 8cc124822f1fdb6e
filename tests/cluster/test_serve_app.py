"""The regime service over real HTTP on Ray Serve: answers, feedback, bad input, restart, auth."""

import json
import socket

import httpx
import pytest

from nasoa.cluster.serve_app import start_service, stop_service
from nasoa.online.service import ServiceConfig, ServiceSettings

from ..helpers import make_tiny_zoo

pytestmark = [pytest.mark.ray]
TASK = {"num_classes": 10, "num_train": 500, "resolution": 32, "channels": 3}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def service(ray_session, tmp_path):
    """Start the service on a free port; yields (client, settings); always shut down."""
    settings = ServiceConfig(
        str(make_tiny_zoo(tmp_path / "zoo")), str(tmp_path / "state"), ServiceSettings(port=free_port())
    )
    started = []

    def start(s=settings):
        url = start_service(s)
        started.append(url)
        return httpx.Client(base_url=url, timeout=60)

    try:
        yield start, settings
    finally:
        if started:
            stop_service()


@pytest.fixture(scope="module")
def running(ray_session, tmp_path_factory):
    """One service for the read-mostly tests of this module."""
    root = tmp_path_factory.mktemp("svc")
    settings = ServiceConfig(str(make_tiny_zoo(root / "zoo")), str(root / "state"), ServiceSettings(port=free_port()))
    url = start_service(settings)
    try:
        yield httpx.Client(base_url=url, timeout=60)
    finally:
        stop_service()


def test_smallest_query_feedback_and_restart(service):
    start, settings = service
    client = start()
    answer = client.post("/v1/regime", json={"task": TASK, "budget_s": 60})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    for key in ["model", "lr", "frozen_stages", "batch_size", "epochs", "predicted_accuracy", "predicted_time_s"]:
        assert key in body
    assert body["predicted_time_s"] <= 60
    assert len(body["alternatives"]) == 3
    feedback = {"task": TASK, "regime": body, "result": {"accuracy": 0.91, "time_s": 20.5}, "feedback_id": "run-1"}
    stored = client.post("/v1/feedback", json=feedback)
    assert stored.status_code == 200 and stored.json()["stored"] is True
    assert stored.json()["update_s"] < 1.0
    assert abs(stored.json()["predicted_after"] - 0.91) < abs(stored.json()["predicted_before"] - 0.91)
    assert client.post("/v1/feedback", json=feedback).json()["duplicate"] is True
    assert client.get("/v1/health").json()["experience_size"] == 1

    stop_service()  # restart: the service comes back from what it stored
    client = start()
    health = client.get("/v1/health").json()
    assert health["experience_size"] == 1 and health["fitted_on_start"] == 1
    again = client.post("/v1/feedback", json=feedback).json()
    assert again["duplicate"] is True
    zoo = client.get("/v1/zoo").json()
    assert {e["key"] for e in zoo} == {"tiny.digits-32px", "mnv3s.digits-32px"}
    schema = client.get("/openapi.json").json()
    assert schema["paths"].keys() >= {"/v1/regime", "/v1/feedback", "/v1/health"}
    assert schema["components"]["schemas"]["RegimeIn"]["properties"]["model"]["enum"] == sorted(e["key"] for e in zoo)
    assert client.get("/docs").status_code == 200


def test_feedback_can_require_a_bearer_token(service, tmp_path):
    start, settings = service
    from dataclasses import replace

    client = start(replace(settings, service=replace(settings.service, auth_token="s3cret")))
    regime = client.post("/v1/regime", json={"task": TASK, "budget_s": 60}).json()
    feedback = {"task": TASK, "regime": regime, "result": {"accuracy": 0.5, "time_s": 3}}
    assert client.post("/v1/feedback", json=feedback).status_code == 401
    ok = client.post("/v1/feedback", json=feedback, headers={"authorization": "Bearer s3cret"})
    assert ok.status_code == 200


def test_replica_answers_equal_the_actors_and_follow_its_learning(service):
    """/v1/regime is answered from the replica's copy of the generator: the same as the actor's, kept in step."""
    import time

    import ray

    from nasoa.cluster.serve_app import ACTOR_NAME, REFRESH_S

    start, _ = service
    client = start()
    actor = ray.get_actor(ACTOR_NAME)

    def both(task=TASK, budget=60, top_k=3):
        http = client.post("/v1/regime", json={"task": task, "budget_s": budget, "top_k": top_k}).json()
        return http, json.loads(json.dumps(ray.get(actor.propose.remote(task, budget, top_k))))

    first, same = both()
    assert first == same
    fb = {"task": TASK, "regime": first, "result": {"accuracy": 0.97, "time_s": 10.0}}
    assert client.post("/v1/feedback", json=fb).status_code == 200
    second, same = both()  # feedback through this replica: seen by the very next query
    assert second == same and second["predicted_accuracy"] != first["predicted_accuracy"]
    other = {**TASK, "num_classes": 3, "num_train": 900}
    ray.get(actor.feedback.remote(other, second, {"accuracy": 0.2, "time_s": 5.0}))  # past the replica
    time.sleep(REFRESH_S + 0.2)
    for budget in (20, 60, 600):
        http, same = both(other, budget, 5)
        assert http == same


# The tests below share one running service (module scope): keep function-scoped services above them.
@pytest.mark.parametrize(
    ("payload", "status", "words"),
    [
        ({"task": {"num_classes": 10}, "budget_s": 60}, 422, "task.num_train: Field required"),
        ({"task": TASK, "budget_s": -5}, 422, "budget_s"),
        ({"task": TASK, "budget_s": 0}, 422, "greater than 0"),
        ({"task": TASK, "budget_s": 0.001}, 422, "no regime fits a budget"),
        ({"task": {**TASK, "num_classes": 0}, "budget_s": 60}, 422, "num_classes"),
        ({"task": TASK, "budget_s": 60, "extra": 1}, 422, "extra"),
        ({"task": TASK}, 422, "budget_s: Field required"),
        # The schema's types are kept strictly: no bool-as-int, no numbers in strings (schemathesis ST201)
        ({"task": {**TASK, "channels": True}, "budget_s": 60}, 422, "task.channels: Input should be a valid integer"),
        ({"task": {**TASK, "num_train": "900"}, "budget_s": 60}, 422, "task.num_train"),
        ({"task": TASK, "budget_s": "60"}, 422, "budget_s: Input should be a valid number"),
        ({"task": TASK, "budget_s": True}, 422, "budget_s"),
        ({"task": TASK, "budget_s": 60, "top_k": 2.5}, 422, "top_k"),
    ],
)
def test_bad_regime_queries_get_4xx_with_a_message(running, payload, status, words):
    r = running.post("/v1/regime", json=payload)
    assert r.status_code == status
    assert words in r.json()["detail"]


def test_nan_unknown_zoo_key_and_garbage_get_4xx(running):
    client = running
    nan = client.post(
        "/v1/regime",
        content=b'{"task": %s, "budget_s": NaN}' % json.dumps(TASK).encode(),
        headers={"content-type": "application/json"},
    )
    assert nan.status_code == 422 and "finite" in nan.json()["detail"]
    regime = {"model": "nope.x", "lr": 0.01, "frozen_stages": 0, "batch_size": 32, "epochs": 1}
    unknown = client.post(
        "/v1/feedback", json={"task": TASK, "regime": regime, "result": {"accuracy": 0.5, "time_s": 1}}
    )
    assert unknown.status_code == 404 and "unknown zoo key 'nope.x'" in unknown.json()["detail"]
    garbage = client.post("/v1/regime", content=b"{not json", headers={"content-type": "application/json"})
    assert 400 <= garbage.status_code < 500
    big = client.post("/v1/regime", content=b" " * 200_000, headers={"content-type": "application/json"})
    assert big.status_code == 413


def test_binds_loopback_only_by_default(running):
    import ray.util

    port = int(str(running.base_url).rstrip("/").rsplit(":", 1)[1])
    assert running.get("/v1/health").status_code == 200
    node_ip = ray.util.get_node_ip_address()  # this machine's non-loopback address
    assert not node_ip.startswith("127.")
    with pytest.raises(OSError), socket.create_connection((node_ip, port), timeout=2):
        pass
    assert ServiceConfig(zoo_root="z", state_dir="s").service.host == "127.0.0.1"
