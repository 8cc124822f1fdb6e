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
    for key in ["model", "lr", "frozen_stages", "batch_size", "epochs", "steps", "predicted_accuracy",
                "predicted_std", "predicted_lcb", "predicted_time_s", "fallback", "probe_s"]:  # fmt: skip
        assert key in body
    assert body["predicted_time_s"] <= 60 and body["steps"] >= 1 and body["predicted_std"] > 0
    assert len(body["alternatives"]) == 3
    result = {"accuracy": 0.91, "time_s": 20.5, "steps": body["steps"], "epochs_done": 2.0, "step_ms": 12.5,
              "curve": [[5, 0.5], [10, 0.8]], "finished": True, "stopped_by": "done"}  # fmt: skip
    feedback = {"task": TASK, "regime": body, "result": result, "feedback_id": "run-1"}
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


def test_a_data_reference_under_the_allowed_roots_is_probed(service, tmp_path):
    """The replica probes an ImageFolder under service.data_roots, counts the seconds, caches the scores."""
    from dataclasses import replace

    from PIL import Image

    root = tmp_path / "data" / "shapes"
    for c, colour in enumerate(("red", "blue")):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(8):
            Image.new("RGB", (20 + i, 20 + i), colour).save(root / f"c{c}" / f"{i}.png")
    start, settings = service
    client = start(replace(settings, service=replace(settings.service, data_roots=[str(tmp_path / "data")])))
    query = {"task": {**TASK, "num_classes": 2, "num_train": 13}, "budget_s": 60, "data": {"root": str(root)}}
    first = client.post("/v1/regime", json=query)
    assert first.status_code == 200, first.text
    body = first.json()
    assert set(body["probes"]) == {"tiny.digits-32px", "mnv3s.digits-32px"} and body["probe_s"] > 0
    assert body["predicted_time_s"] + body["probe_s"] <= 60
    again = client.post("/v1/regime", json=query).json()
    assert again["probes"] == body["probes"] and again["probe_s"] < body["probe_s"]  # cached by the data's fingerprint
    outside = client.post("/v1/regime", json=query | {"data": {"root": str(tmp_path)}})
    assert outside.status_code == 403 and "not under" in outside.json()["detail"]
    missing = client.post("/v1/regime", json=query | {"data": {"root": str(tmp_path / "data" / "none")}})
    assert missing.status_code == 422 and "could not be probed" in missing.json()["detail"]


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
        ({"task": TASK, "budget_s": 60, "probes": {"scores": {"tiny.digits-32px": 1.5}}}, 422, "probes.scores"),
        ({"task": TASK, "budget_s": 60, "probes": {"scores": {}, "seconds": -1}}, 422, "probes.seconds"),
        ({"task": TASK, "budget_s": 2, "probes": {"scores": {}, "seconds": 5}}, 422, "no regime fits"),
        ({"task": TASK, "budget_s": 60, "data": {"root": "/etc"}}, 403, "reads no data"),
        ({"task": TASK, "budget_s": 60, "data": {"root": "/etc"}, "probes": {"scores": {}}}, 422, "not both"),
        ({"task": TASK, "budget_s": 60, "data": {}}, 422, "data.root"),
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


def test_probe_scores_count_against_the_budget_and_bad_feedback_fields_get_422(running):
    probes = {"scores": {"tiny.digits-32px": 0.9, "mnv3s.digits-32px": 0.4}, "seconds": 4.0}
    body = running.post("/v1/regime", json={"task": TASK, "budget_s": 30, "probes": probes}).json()
    assert body["probe_s"] == 4.0 and body["predicted_time_s"] + 4.0 <= 30 and body["probes"] == probes["scores"]
    regime = {k: body[k] for k in ("model", "lr", "frozen_stages", "batch_size", "epochs", "steps")}
    base = {"task": TASK, "regime": regime, "result": {"accuracy": 0.5, "time_s": 3.0}}
    for bad in ({"result": {"accuracy": 0.5, "time_s": 3.0, "curve": [[1, 0.5, 2]]}},
                {"result": {"accuracy": 0.5, "time_s": 3.0, "curve": [[1, 1.5]]}},
                {"result": {"accuracy": 0.5, "time_s": 3.0, "steps": -1}},
                {"regime": {**regime, "steps": 0}},
                {"probes": {"tiny.digits-32px": 2.0}}):  # fmt: skip
        r = running.post("/v1/feedback", json=base | bad)
        assert r.status_code == 422, (bad, r.text)
    assert running.post("/v1/feedback", json=base | {"probes": probes["scores"]}).status_code == 200
