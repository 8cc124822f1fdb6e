"""The regime service over HTTP: a FastAPI ingress on Ray Serve in front of the adaptation actor.

``POST /v1/regime``, ``POST /v1/feedback``, ``GET /v1/health``, ``GET /v1/zoo``; OpenAPI at ``/docs`` and
``/openapi.json``. One :class:`~nasoa.online.service.AdaptationService` runs as a named Ray actor (the single
writer of the experience store); Serve replicas call it. Bad input gets a 4xx with a message.

``/v1/regime`` is answered inside the replica, without a call to the actor: each replica keeps a read-only copy of
the actor's generator and refreshes its predictor from the actor when that changed (checked at most every
:data:`REFRESH_S` seconds, and on the next query after feedback through the same replica), so answers match the
actor's (``AdaptationService.propose``) except for at most :data:`REFRESH_S` seconds after feedback that reached
the actor another way.

While the adaptation actor is down (it crashed and Ray restarts it; ``max_restarts=-1``), calls to it are queued by
Ray and retried (``max_task_retries``); a call that fails anyway, or takes over :data:`ACTOR_TIMEOUT_S`, is answered
``503`` with ``Retry-After`` (never 500), and ``/v1/regime`` keeps answering from the replica's last copy. Feedback
is idempotent by ``feedback_id``, so a client retries a 503 with the same id; every acknowledged feedback is on disk.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any, Literal

import ray
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from ray import serve

from nasoa.online.generator import RegimeGenerator
from nasoa.online.predictor import predictor_from_state
from nasoa.online.service import AdaptationService, ServiceSettings, make_generator, propose_answer
from nasoa.zoo.manifest import read_manifest

log = logging.getLogger("nasoa.service")
ACTOR_NAME = "nasoa-adaptation"
#: Seconds a replica's copy of the predictor may go unchecked against the actor's.
REFRESH_S = 0.5
#: Seconds a handler waits for the adaptation actor before answering 503 (the actor may be restarting).
ACTOR_TIMEOUT_S = 30.0
#: Seconds a replica waits for a predictor snapshot before answering from its last copy.
SNAPSHOT_TIMEOUT_S = 2.0
#: The ``Retry-After`` of a 503.
RETRY_AFTER_S = 1
#: Errors meaning the actor is down or restarting (answered 503).
UNAVAILABLE = (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError, asyncio.TimeoutError, TimeoutError)
#: Per replica process: the adaptation actor's handle and the read-only generator copy, set by the deployment's
#: constructor.
_REPLICA: dict[str, Any] = {}


def _set_service(handle: ray.actor.ActorHandle) -> None:
    # Module-level (pickled by reference): the handlers, cloudpickled by value with the app, share this dict.
    _REPLICA["service"] = handle


def _service() -> ray.actor.ActorHandle:
    return _REPLICA["service"]


def _set_local(spec: dict[str, Any], snapshot: dict[str, Any]) -> None:
    """Build this replica's read-only generator from the actor's ``replica_spec()`` and ``snapshot()``."""
    predictor = predictor_from_state(snapshot["predictor"])
    _REPLICA["generator"] = make_generator(spec["settings"], spec["entries"], spec["device"], predictor, quiet=True)
    _REPLICA["version"] = snapshot["version"]
    _REPLICA["checked"] = time.monotonic()


def _invalidate_local() -> None:
    """The actor's predictor may have changed: check before the next answer."""
    _REPLICA["invalidated"] = _REPLICA.get("invalidated", 0) + 1
    _REPLICA["checked"] = -math.inf


async def _local_generator() -> RegimeGenerator:
    """This replica's generator, its predictor refreshed from the actor's if unchecked for REFRESH_S seconds."""
    if time.monotonic() - _REPLICA["checked"] >= REFRESH_S:
        async with _REPLICA.setdefault("lock", asyncio.Lock()):
            if time.monotonic() - _REPLICA["checked"] >= REFRESH_S:  # else refreshed while this one waited
                invalidated, checked = _REPLICA.get("invalidated", 0), time.monotonic()
                try:
                    ref = _service().snapshot.remote(_REPLICA["version"])
                    snapshot = await asyncio.wait_for(ref, SNAPSHOT_TIMEOUT_S)
                except UNAVAILABLE as err:  # actor down: answer from the last copy, check again later
                    log.warning("predictor snapshot failed (%s); answering from the replica's copy", err)
                    _REPLICA["checked"] = time.monotonic()
                    return _REPLICA["generator"]
                if snapshot is not None:
                    _REPLICA["generator"].predictor = predictor_from_state(snapshot["predictor"])
                    _REPLICA["version"] = snapshot["version"]
                if _REPLICA.get("invalidated", 0) == invalidated:  # no feedback since the snapshot was asked for
                    _REPLICA["checked"] = checked
    return _REPLICA["generator"]


APP_NAME = "nasoa"


class TaskIn(BaseModel):
    """Task meta-features."""

    model_config = ConfigDict(extra="forbid", strict=True)
    num_classes: int = Field(gt=0, le=100_000, description="number of classes")
    num_train: int = Field(gt=0, le=100_000_000, description="number of training images")
    resolution: int = Field(gt=0, le=4096, description="image side in pixels")
    channels: int = Field(gt=0, le=16, description="image channels")
    name: str = Field("", max_length=200)


class RegimeQuery(BaseModel):
    """A task and its time budget."""

    model_config = ConfigDict(extra="forbid", strict=True)
    task: TaskIn
    budget_s: float = Field(gt=0, le=1e7, allow_inf_nan=False, description="wall-clock budget in seconds")
    top_k: int = Field(3, ge=0, le=20, description="how many alternatives to return")


class RegimeIn(BaseModel):
    """The regime that ran (extra fields of a /v1/regime answer are ignored)."""

    model_config = ConfigDict(extra="ignore", strict=True)
    model: str = Field(min_length=1, max_length=200, description="zoo key")
    lr: float = Field(gt=0, le=10, allow_inf_nan=False)
    frozen_stages: int = Field(ge=0, le=64)
    batch_size: int = Field(gt=0, le=65536)
    epochs: int = Field(gt=0, le=100_000)
    schedule: Literal["cosine", "step", "constant"] = Field("cosine", description="learning-rate schedule")


class ResultIn(BaseModel):
    """What the run achieved."""

    model_config = ConfigDict(extra="forbid", strict=True)
    accuracy: float = Field(ge=0, le=1, allow_inf_nan=False)
    time_s: float = Field(ge=0, le=1e8, allow_inf_nan=False)
    finished: bool = True
    stopped_by: str = Field("done", max_length=32)


class Feedback(BaseModel):
    """A finished fine-tuning run to learn from."""

    model_config = ConfigDict(extra="forbid", strict=True)
    task: TaskIn
    regime: RegimeIn
    result: ResultIn
    budget_s: float | None = Field(None, gt=0, allow_inf_nan=False)
    feedback_id: str | None = Field(None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")


class ErrorOut(BaseModel):
    """An error answer: a message, and for invalid input the errors by location."""

    model_config = ConfigDict(extra="allow")
    detail: str
    errors: list[dict[str, Any]] | None = None
    cheapest_time_s: float | None = Field(None, description="no regime fits: the cheapest regime's predicted time")


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error codes (all answered with :class:`ErrorOut`)."""
    words = {
        400: "body is not JSON",
        401: "missing or wrong bearer token",
        404: "unknown zoo key",
        413: "request body too large",
        422: "invalid input, or no regime fits the budget",
        503: "adaptation service unavailable (restarting): retry after Retry-After seconds",
    }
    return {c: {"model": ErrorOut, "description": words[c]} for c in codes}


def unavailable(err: BaseException) -> JSONResponse:
    """The 503 answer while the adaptation actor is down or restarting."""
    detail = f"adaptation service unavailable, probably restarting ({type(err).__name__}); retry"
    return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})


def create_api(settings: ServiceSettings) -> FastAPI:
    """The FastAPI app; handlers reach the adaptation actor set up by the replica (:data:`_REPLICA`)."""
    api = FastAPI(title="nasoa regime service", version="1", description=__doc__)

    @api.middleware("http")
    async def limit_body(request: Request, call_next):  # noqa: ANN001, ANN202
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > settings.max_body_bytes):
            return JSONResponse({"detail": f"request body over {settings.max_body_bytes} bytes"}, status_code=413)
        return await call_next(request)

    @api.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()
        ]
        message = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in errors)
        return JSONResponse({"detail": message or "invalid request", "errors": errors}, status_code=422)

    def authorized(request: Request) -> bool:
        return settings.auth_token is None or request.headers.get("authorization") == f"Bearer {settings.auth_token}"

    async def call(request: Request, method: str, *args: Any) -> Any:
        try:
            return await asyncio.wait_for(getattr(_service(), method).remote(*args), ACTOR_TIMEOUT_S)
        except UNAVAILABLE as err:
            log.warning("adaptation actor call %s failed: %r", method, err)
            return unavailable(err)

    def answer(out: Any) -> Any:
        if isinstance(out, JSONResponse):
            return out
        if isinstance(out, dict) and "error" in out:
            body = {k: v for k, v in out.items() if k != "error"}
            return JSONResponse(_finite(body), status_code=int(out["error"]))
        return _finite(out)

    @api.post(
        "/v1/regime",
        summary="The zoo model and fine-tuning regime predicted best within the budget",
        responses=_errors(400, 413, 422),
    )
    async def regime(query: RegimeQuery, request: Request) -> Any:
        generator = await _local_generator()  # the actor's answer (propose), without a call to it
        out = propose_answer(generator, query.task.model_dump(), query.budget_s, query.top_k)
        # Plain JSON types already: the same bytes as FastAPI's default, without its jsonable_encoder pass.
        return answer(out) if "error" in out else JSONResponse(_finite(out))

    @api.post(
        "/v1/feedback",
        summary="Report a finished fine-tuning run; it is stored and learned from",
        responses=_errors(400, 401, 404, 413, 422, 503),
    )
    async def feedback(body: Feedback, request: Request) -> Any:
        if not authorized(request):
            return JSONResponse({"detail": "missing or wrong bearer token"}, status_code=401)
        args = (body.task.model_dump(), body.regime.model_dump(), body.result.model_dump(), body.budget_s)
        try:
            return answer(await call(request, "feedback", *args, body.feedback_id))
        finally:
            _invalidate_local()

    @api.get("/v1/health", summary="Liveness and sizes", responses=_errors(503))
    async def health(request: Request) -> Any:
        return answer(await call(request, "health"))

    @api.get("/v1/zoo", summary="The zoo models the service chooses from", responses=_errors(503))
    async def zoo(request: Request) -> Any:
        return answer(await call(request, "zoo"))

    document_zoo_keys(api, sorted(e.key for e in read_manifest(settings.zoo_root)))
    return api


def document_zoo_keys(api: FastAPI, keys: list[str]) -> None:
    """Make the OpenAPI schema name the zoo keys ``/v1/feedback`` accepts (an ``enum`` on ``regime.model``).

    Validation stays in the actor (an unknown key is a 404 with a message); the enum tells clients, ``/docs`` and
    schema fuzzers which keys exist, so generated feedback reaches the storing path.
    """
    generate = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            schema = generate()
            schema["components"]["schemas"]["RegimeIn"]["properties"]["model"]["enum"] = keys
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]


def _finite(value: Any) -> Any:
    """JSON has no NaN: replace non-finite floats with None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def service_actor(settings: ServiceSettings) -> ray.actor.ActorHandle:
    """The named adaptation actor (created if absent); restarted by Ray if its process dies."""
    actor_cls = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=3)(AdaptationService)
    return actor_cls.options(name=ACTOR_NAME, get_if_exists=True, max_concurrency=1).remote(settings)


def build_app(settings: ServiceSettings) -> serve.Application:
    """The Serve application: ``serve.run(build_app(settings))``."""
    api = create_api(settings)

    @serve.deployment(num_replicas=settings.replicas, ray_actor_options={"num_cpus": 0}, max_ongoing_requests=256)
    @serve.ingress(api)
    class RegimeAPI:
        def __init__(self) -> None:
            _set_service(service_actor(settings))
            ray.get(_service().health.remote(), timeout=300)
            spec, snapshot = ray.get([_service().replica_spec.remote(), _service().snapshot.remote()], timeout=300)
            _set_local(spec, snapshot)

    return RegimeAPI.bind()


def start_service(settings: ServiceSettings, blocking: bool = False) -> str:
    """Start Serve on ``settings.host:port`` and deploy the app; returns the base URL."""
    serve.start(http_options={"host": settings.host, "port": settings.port})
    serve.run(build_app(settings), name=APP_NAME, route_prefix="/", blocking=False)
    url = f"http://{settings.host}:{settings.port}"
    log.info("regime service at %s (OpenAPI: %s/docs)", url, url)
    if blocking:
        try:
            asyncio.run(_forever())
        except KeyboardInterrupt:
            pass
    return url


async def _forever() -> None:
    while True:
        await asyncio.sleep(3600)


def stop_service() -> None:
    """Shut Serve down and end the adaptation actor (its state is on disk)."""
    try:
        serve.shutdown()
    finally:
        try:
            ray.kill(ray.get_actor(ACTOR_NAME))
        except ValueError:
            pass


def serve_from_config(cfg: dict, run_dir: str) -> None:
    """``launch/serve.py``: a private local Ray, the service on ``service.host:port``, until Ctrl-C."""
    from pathlib import Path

    from nasoa.config import typed_settings
    from nasoa.dist.search_job import TrainerSettings, init_ray

    paths = {
        "zoo_root": str(Path(cfg["zoo_root"]).resolve()),
        "state_dir": str(Path(cfg.get("state_dir") or Path(run_dir) / "state").resolve()),
    }
    settings = typed_settings(ServiceSettings, {**cfg["service"], **paths}, "service")
    init_ray(typed_settings(TrainerSettings, cfg.get("trainer", {}), "trainer"), None)
    try:
        start_service(settings, blocking=True)
    finally:
        stop_service()
        ray.shutdown()
