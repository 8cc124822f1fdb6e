"""The regime service over HTTP: a FastAPI ingress on Ray Serve in front of the adaptation actor.

``POST /v1/regime``, ``POST /v1/feedback``, ``GET /v1/health``, ``GET /v1/zoo``; OpenAPI at ``/docs`` and
``/openapi.json``. One :class:`~nasoa.online.service.AdaptationService` runs as a named Ray actor (the single
writer of the experience store); Serve replicas call it. Bad input gets a 4xx with a message.

A ``/v1/regime`` query gives the task's meta-features alone, or also probe scores a client computed with
``python -m nasoa.train.probe`` (``probes``: scores and the seconds they took, counted against the budget), or a
data reference (``data.root``: an ImageFolder tree) that the replica probes itself, only under the operator's
``service.data_roots`` (else 403 with a message); probe scores are cached under ``<state_dir>/probes``.

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

import asyncio
import logging
import math
import time
from pathlib import Path
from typing import Annotated, Any, Literal

import ray
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from ray import serve

from nasoa.online.generator import RegimeGenerator
from nasoa.online.predictor import predictor_from_state
from nasoa.online.service import AdaptationService, ServiceConfig, allowed_data_root, make_generator, propose_answer
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


class Replica:
    """One Serve replica's link to the adaptation actor, and its read-only copy of the actor's generator.

    The deployment (:func:`build_app`) keeps one; its route methods use it.
    """

    def __init__(self, actor: ray.actor.ActorHandle, spec: dict[str, Any], snapshot: dict[str, Any]) -> None:
        self.actor = actor
        self.config: ServiceConfig = spec["config"]
        predictor = predictor_from_state(snapshot["predictor"])
        self.generator = make_generator(spec["config"], spec["entries"], spec["device"], predictor, quiet=True)
        self.generator.speed = snapshot["speed"]
        self.zoo = None  # opened on the first data reference
        self.version = snapshot["version"]
        self.checked = time.monotonic()
        self.invalidated = 0
        self.lock = asyncio.Lock()

    @classmethod
    def connect(cls, config: ServiceConfig) -> "Replica":
        """Get (or create) the adaptation actor, wait until it is up, and copy its generator."""
        actor = service_actor(config)
        ray.get(actor.health.remote(), timeout=300)
        spec, snapshot = ray.get([actor.replica_spec.remote(), actor.snapshot.remote()], timeout=300)
        return cls(actor, spec, snapshot)

    def invalidate(self) -> None:
        """The actor's predictor may have changed: check before the next answer."""
        self.invalidated += 1
        self.checked = -math.inf

    async def call(self, method: str, *args: Any) -> Any:
        """Call the actor; a 503 answer when it is down or restarting."""
        try:
            return await asyncio.wait_for(getattr(self.actor, method).remote(*args), ACTOR_TIMEOUT_S)
        except UNAVAILABLE as err:
            log.warning("adaptation actor call %s failed: %r", method, err)
            return unavailable(err)

    async def current_generator(self) -> RegimeGenerator:
        """The generator, its predictor refreshed from the actor's if unchecked for :data:`REFRESH_S` seconds."""
        if time.monotonic() - self.checked >= REFRESH_S:
            async with self.lock:
                if time.monotonic() - self.checked >= REFRESH_S:  # else refreshed while this one waited
                    await self._refresh()
        return self.generator

    async def probe(self, root: str, task: dict[str, Any], budget_s: float) -> tuple[dict[str, float], float]:
        """Probe scores of the zoo on the ImageFolder at ``root`` (allowed roots only) and the seconds they took.

        The probe spends at most ``service.probe_fraction`` of ``budget_s``: models it has no time for are left out.

        Raises:
            PermissionError: If ``root`` is not under ``service.data_roots``.
            ValueError: If the folder cannot be read as a task.
        """
        settings = self.config.service
        path = allowed_data_root(root, settings.data_roots)
        from nasoa.train.probe import probe_folder  # lazy: torch in the replica only once data references are used
        from nasoa.zoo.store import Zoo  # lazy: as above

        if self.zoo is None:
            self.zoo = Zoo(self.config.zoo_root)
        kw = {"sample": settings.probe_sample, "val_sample": settings.probe_val_sample}
        kw["max_s"] = settings.probe_fraction * budget_s
        kw["cache_dir"] = str(Path(self.config.state_dir) / "probes")
        try:
            result = await asyncio.to_thread(probe_folder, self.zoo, path, task["resolution"], task["channels"], **kw)
        except Exception as err:  # noqa: BLE001 - an unreadable folder or image is the query's fault: 422
            raise ValueError(f"data root {root!r} could not be probed: {type(err).__name__}: {err}") from err
        return result.scores, result.seconds

    async def _refresh(self) -> None:
        invalidated, checked = self.invalidated, time.monotonic()
        try:
            snapshot = await asyncio.wait_for(self.actor.snapshot.remote(self.version), SNAPSHOT_TIMEOUT_S)
        except UNAVAILABLE as err:  # actor down: answer from the last copy, check again later
            log.warning("predictor snapshot failed (%s); answering from the replica's copy", err)
            self.checked = time.monotonic()
            return
        if snapshot is not None:
            self.generator.predictor = predictor_from_state(snapshot["predictor"])
            self.generator.speed = snapshot["speed"]
            self.version = snapshot["version"]
        if self.invalidated == invalidated:  # no feedback since the snapshot was asked for
            self.checked = checked


APP_NAME = "nasoa"


class TaskIn(BaseModel):
    """Task meta-features."""

    model_config = ConfigDict(extra="forbid", strict=True)
    num_classes: int = Field(gt=0, le=100_000, description="number of classes")
    num_train: int = Field(gt=0, le=100_000_000, description="number of training images")
    resolution: int = Field(gt=0, le=4096, description="image side in pixels")
    channels: int = Field(gt=0, le=16, description="image channels")
    name: str = Field("", max_length=200)


ZooKey = Annotated[str, Field(min_length=1, max_length=200)]
Top1 = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class ProbesIn(BaseModel):
    """Probe scores of zoo models on the task (``python -m nasoa.train.probe``) and the seconds they took."""

    model_config = ConfigDict(extra="forbid", strict=True)
    scores: dict[ZooKey, Top1] = Field(max_length=1024, description="probe top-1 by zoo key")
    seconds: float = Field(0.0, ge=0, le=1e7, allow_inf_nan=False, description="counted against the budget")


class DataIn(BaseModel):
    """A data reference the service may read: an ImageFolder tree under one of its ``service.data_roots``."""

    model_config = ConfigDict(extra="forbid", strict=True)
    root: str = Field(min_length=1, max_length=4096, description="root/<class>/<image>, or root/train and root/val")


class RegimeQuery(BaseModel):
    """A task and its time budget; optionally probe scores, or data to probe."""

    model_config = ConfigDict(extra="forbid", strict=True)
    task: TaskIn
    budget_s: float = Field(gt=0, le=1e7, allow_inf_nan=False, description="wall-clock budget in seconds")
    top_k: int = Field(3, ge=0, le=20, description="how many alternatives to return")
    probes: ProbesIn | None = None
    data: DataIn | None = None


class RegimeIn(BaseModel):
    """The regime that ran (extra fields of a /v1/regime answer are ignored)."""

    model_config = ConfigDict(extra="ignore", strict=True)
    model: str = Field(min_length=1, max_length=200, description="zoo key")
    lr: float = Field(gt=0, le=10, allow_inf_nan=False)
    frozen_stages: int = Field(ge=0, le=64)
    batch_size: int = Field(gt=0, le=65536)
    epochs: int = Field(gt=0, le=100_000)
    schedule: Literal["cosine", "step", "constant"] = Field("cosine", description="learning-rate schedule")
    steps: int | None = Field(None, gt=0, le=1_000_000_000, description="planned steps (the answer's)")


CurvePoint = Annotated[list[Annotated[float, Field(allow_inf_nan=False)]], Field(min_length=2, max_length=2)]


class ResultIn(BaseModel):
    """What the run achieved."""

    model_config = ConfigDict(extra="forbid", strict=True)
    accuracy: float = Field(ge=0, le=1, allow_inf_nan=False)
    time_s: float = Field(ge=0, le=1e8, allow_inf_nan=False)
    finished: bool = True
    stopped_by: str = Field("done", max_length=32)
    steps: int | None = Field(None, ge=0, le=1_000_000_000, description="optimizer steps done")
    epochs_done: float | None = Field(None, ge=0, le=1e7, allow_inf_nan=False)
    step_ms: float | None = Field(None, gt=0, le=1e7, allow_inf_nan=False, description="median wall ms of a step")
    curve: list[CurvePoint] = Field(default_factory=list, max_length=64, description="[steps, top-1] points")


class Feedback(BaseModel):
    """A finished fine-tuning run to learn from."""

    model_config = ConfigDict(extra="forbid", strict=True)
    task: TaskIn
    regime: RegimeIn
    result: ResultIn
    budget_s: float | None = Field(None, gt=0, allow_inf_nan=False)
    feedback_id: str | None = Field(None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")
    probes: dict[ZooKey, Top1] | None = Field(None, max_length=1024, description="probe scores the regime used")


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
        403: "data reference outside the folders this service may read",
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


def create_api(config: ServiceConfig) -> FastAPI:
    """The FastAPI app: body-size limit, validation errors as 422 with a message, the zoo keys in the schema.

    The routes are methods of the deployment (:func:`build_app`), so they reach the replica's :class:`Replica`.
    """
    settings = config.service
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

    return api


def answer(out: Any) -> Any:
    """An actor's answer over HTTP: an error dict becomes its status code with the message, floats stay finite."""
    if isinstance(out, JSONResponse):
        return out
    if isinstance(out, dict) and "error" in out:
        body = {k: v for k, v in out.items() if k != "error"}
        return JSONResponse(_finite(body), status_code=int(out["error"]))
    return _finite(out)


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


#: The service's processes run numpy's BLAS on one thread: on a small or shared machine a multi-threaded matrix
#: product of a cold query's ~1,000 candidate rows took 3-7 ms instead of 0.2 ms (measured on 2 shared cores).
SINGLE_THREADED = {"env_vars": {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}}


def service_actor(config: ServiceConfig) -> ray.actor.ActorHandle:
    """The named adaptation actor (created if absent); restarted by Ray if its process dies."""
    actor_cls = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=3, runtime_env=SINGLE_THREADED)(
        AdaptationService
    )
    return actor_cls.options(name=ACTOR_NAME, get_if_exists=True, max_concurrency=1).remote(config)


def build_app(config: ServiceConfig) -> serve.Application:
    """The Serve application: ``serve.run(build_app(config))``."""
    api = create_api(config)
    document_zoo_keys(api, sorted(e.key for e in read_manifest(config.zoo_root)))  # before ingress copies the app
    token = config.service.auth_token

    options = {"num_cpus": 0, "runtime_env": SINGLE_THREADED}

    @serve.deployment(num_replicas=config.service.replicas, ray_actor_options=options, max_ongoing_requests=256)
    @serve.ingress(api)
    class RegimeAPI:
        def __init__(self) -> None:
            self.replica = Replica.connect(config)

        @api.post(
            "/v1/regime",
            summary="The zoo model and fine-tuning regime predicted best within the budget",
            responses=_errors(400, 403, 413, 422),
        )
        async def regime(self, query: RegimeQuery) -> Any:
            generator = await self.replica.current_generator()  # the actor's answer (propose), without a call
            task = query.task.model_dump()
            probes, probe_s = (query.probes.scores, query.probes.seconds) if query.probes else (None, 0.0)
            if query.data is not None:
                if query.probes is not None:
                    return JSONResponse({"detail": "give probes or data, not both"}, status_code=422)
                try:
                    probes, probe_s = await self.replica.probe(query.data.root, task, query.budget_s)
                except PermissionError as err:
                    return JSONResponse({"detail": str(err)}, status_code=403)
                except ValueError as err:
                    return JSONResponse({"detail": str(err)}, status_code=422)
            out = propose_answer(generator, task, query.budget_s, query.top_k, probes, probe_s)
            # Plain JSON types already: the same bytes as FastAPI's default, without its jsonable_encoder pass.
            return answer(out) if "error" in out else JSONResponse(_finite(out))

        @api.post(
            "/v1/feedback",
            summary="Report a finished fine-tuning run; it is stored and learned from",
            responses=_errors(400, 401, 404, 413, 422, 503),
        )
        async def feedback(self, body: Feedback, request: Request) -> Any:
            if token is not None and request.headers.get("authorization") != f"Bearer {token}":
                return JSONResponse({"detail": "missing or wrong bearer token"}, status_code=401)
            args = (body.task.model_dump(), body.regime.model_dump(), body.result.model_dump(), body.budget_s)
            try:
                return answer(await self.replica.call("feedback", *args, body.feedback_id, "feedback", body.probes))
            finally:
                self.replica.invalidate()

        @api.get("/v1/health", summary="Liveness and sizes", responses=_errors(503))
        async def health(self) -> Any:
            return answer(await self.replica.call("health"))

        @api.get("/v1/zoo", summary="The zoo models the service chooses from", responses=_errors(503))
        async def zoo(self) -> Any:
            return answer(await self.replica.call("zoo"))

    return RegimeAPI.bind()


def start_service(config: ServiceConfig) -> str:
    """Start Serve on ``service.host:port`` of the head node and deploy the app; returns the base URL.

    One HTTP proxy, on the head node (where the job runs and users reach the service), not one per node.
    """
    settings = config.service
    serve.start(proxy_location="HeadOnly", http_options={"host": settings.host, "port": settings.port})
    serve.run(build_app(config), name=APP_NAME, route_prefix="/", blocking=False)
    url = f"http://{settings.host}:{settings.port}"
    log.info("regime service at %s (OpenAPI: %s/docs)", url, url)
    return url


def stop_service() -> None:
    """Stop Serve gracefully and end the adaptation actor (its state is on disk).

    The app is deleted first: its replicas stop taking requests and finish those in flight (Serve's graceful
    replica shutdown) before Serve and its HTTP proxy go.
    """
    try:
        try:
            serve.delete(APP_NAME)
        except Exception as err:  # noqa: BLE001 - e.g. Serve never came up: shut down whatever is there
            log.warning("deleting the Serve app failed (%s); shutting Serve down", err)
        serve.shutdown()
    finally:
        try:
            ray.kill(ray.get_actor(ACTOR_NAME))
        except ValueError:
            pass
