"""HTTP latency and throughput of ``POST /v1/regime`` next to a trivial Ray Serve echo deployment, in one run.

Both apps run on the same Serve instance and HTTP proxy (the regime service under ``/``, the echo under
``/echo``); both are warmed up, then measured in interleaved blocks (echo, regime, echo, regime, ...) by
keep-alive ``httpx`` clients (``--concurrency`` threads, one client each). The echo is the floor of any endpoint
on this stack; the check is p50(regime) <= ``--target`` x p50(echo).

Before measuring, ``--feedback`` synthetic runs are posted to ``/v1/feedback`` so the predictor is fitted (as in
a service that has learned something); regime queries cycle through ``--tasks`` task metas and a few budgets. The
generator caches its predictions per task until the predictor changes, so a few tasks measure the warm path; give
``--tasks`` at least ``--requests`` (and more than the cache's 64) to make every query a new task (the cold path).

Run: ``python -m nasoa.jobs.benchmark.serve_latency --zoo-root /tmp/z1/zoo [--requests 300] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import httpx  # noqa: E402
import numpy as np  # noqa: E402
from fastapi import FastAPI, Request  # noqa: E402  (module level: the handler's annotations resolve from here)
from ray import serve  # noqa: E402

from nasoa.bench.tiny_zoo import make_tiny_zoo  # noqa: E402
from nasoa.cluster.runtime import RuntimeSettings  # noqa: E402
from nasoa.cluster.serve_app import start_service, stop_service  # noqa: E402
from nasoa.cluster.session import ray_session  # noqa: E402
from nasoa.common.io import write_json_atomic  # noqa: E402
from nasoa.online.service import ServiceConfig, ServiceSettings  # noqa: E402

ECHO_APP = "echo"
ECHO_PREFIX = "/echo"
ECHO_PATH = ECHO_PREFIX + "/"  # the app's "/" under its route prefix (POST /echo redirects here)
BUDGETS = (60.0, 300.0, 1800.0, 7200.0)


def _echo_api() -> FastAPI:
    api = FastAPI(title="echo")

    @api.post("/")
    async def echo(request: Request) -> Any:
        return await request.json()

    return api


def build_echo_app():  # noqa: ANN201
    """A trivial FastAPI-ingress Serve deployment answering ``POST /`` with its JSON body."""

    @serve.deployment(num_replicas=1, ray_actor_options={"num_cpus": 0}, max_ongoing_requests=256)
    @serve.ingress(_echo_api())
    class Echo:
        pass

    return Echo.bind()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tasks(n: int) -> list[dict[str, Any]]:
    """``n`` distinct task metas (deterministic)."""
    out = []
    for i in range(max(n, 1)):
        out.append(
            {
                "num_classes": (10, 5, 37, 100)[i % 4],
                "num_train": (500, 2000, 800, 5000)[i % 4] + 10 * (i // 4),
                "resolution": (32, 32, 64, 32)[i % 4],
                "channels": 3,
                "name": f"bench-{i}",
            }
        )
    return out


def queries(n: int, num_tasks: int) -> list[dict[str, Any]]:
    """``n`` regime queries cycling through ``num_tasks`` tasks and :data:`BUDGETS`."""
    ts = tasks(num_tasks)
    return [{"task": ts[i % len(ts)], "budget_s": BUDGETS[(i // len(ts)) % len(BUDGETS)]} for i in range(n)]


def _run_block(path: str, bodies: list[dict[str, Any]], clients: list) -> tuple[list[float], int, float]:
    """Send ``bodies`` to ``path`` with one thread per client; returns latencies (s), errors, wall time (s)."""
    shares = [bodies[i :: len(clients)] for i in range(len(clients))]
    lat: list[list[float]] = [[] for _ in clients]
    errors = [0] * len(clients)

    def work(k: int) -> None:
        client = clients[k]
        for body in shares[k]:
            t0 = time.perf_counter()
            r = client.post(path, json=body)
            lat[k].append(time.perf_counter() - t0)
            if r.status_code != 200:
                errors[k] += 1

    start = time.perf_counter()
    if len(clients) == 1:
        work(0)
    else:
        threads = [threading.Thread(target=work, args=(k,)) for k in range(len(clients))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    wall = time.perf_counter() - start
    return [x for xs in lat for x in xs], sum(errors), wall


def summarize(latencies: list[float], errors: int, wall_s: float) -> dict[str, float]:
    ms = np.asarray(latencies) * 1000.0
    return {
        "n": len(ms),
        "errors": errors,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "max_ms": float(ms.max()),
        "throughput_rps": len(ms) / wall_s if wall_s > 0 else float("nan"),
    }


def table(results: dict[str, dict[str, float]]) -> str:
    lines = [f"{'endpoint':<12} {'n':>5} {'err':>4} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'req/s':>8}"]
    for name, r in results.items():
        lines.append(
            f"{name:<12} {r['n']:>5} {r['errors']:>4} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
            f"{r['mean_ms']:>8.2f} {r['throughput_rps']:>8.1f}"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m nasoa.jobs.benchmark.serve_latency", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--zoo-root", help="zoo to serve (default: a tiny zoo built in a temp dir)")
    p.add_argument("--requests", type=int, default=300, help="measured requests per endpoint")
    p.add_argument("--concurrency", type=int, default=1, help="concurrent keep-alive clients (threads)")
    p.add_argument("--warmup", type=int, default=30, help="unmeasured requests per endpoint first")
    p.add_argument("--block", type=int, default=50, help="requests per measurement block (blocks alternate)")
    p.add_argument("--feedback", type=int, default=20, help="synthetic runs posted to /v1/feedback before measuring")
    p.add_argument("--tasks", type=int, default=4, help="distinct task metas the regime queries cycle through")
    p.add_argument("--port", type=int, default=0, help="Serve HTTP port (0: a free one)")
    p.add_argument("--target", type=float, default=1.5, help="pass if p50(regime) <= target x p50(echo)")
    p.add_argument("--json", dest="json_out", help="write the results as JSON here")
    args = p.parse_args(argv)
    for name in ("requests", "concurrency", "block", "tasks"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; prints the table, returns 0 (1 if any request failed)."""
    args = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="nasoa-bench-"))
    try:
        zoo_root = args.zoo_root or str(make_tiny_zoo(tmp / "zoo"))
        config = ServiceConfig(zoo_root, str(tmp / "state"), ServiceSettings(port=args.port or free_port()))
        with ray_session(RuntimeSettings()):
            try:
                return _serve_and_measure(args, config)
            finally:
                stop_service()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _serve_and_measure(args: argparse.Namespace, config: ServiceConfig) -> int:
    """Start the service and the echo, teach the service, measure both; 1 if any request failed."""
    t0 = time.perf_counter()
    url = start_service(config)
    serve.run(build_echo_app(), name=ECHO_APP, route_prefix=ECHO_PREFIX, blocking=False)
    print(f"serve up in {time.perf_counter() - t0:.1f} s at {url} (regime: /v1/regime, echo: {ECHO_PATH})")
    clients = [httpx.Client(base_url=url, timeout=60) for _ in range(args.concurrency)]
    try:
        num_candidates = _teach(clients[0], args)
        if num_candidates is None:
            return 1
        results, errors = _measure(clients, args)
    finally:
        for client in clients:
            client.close()
    _report(args, config.zoo_root, num_candidates, results)
    return 1 if errors else 0


def _fail(response: httpx.Response, path: str) -> None:
    print(f"{path} answered {response.status_code}: {response.text}", file=sys.stderr)


def _teach(c: httpx.Client, args: argparse.Namespace) -> int | None:
    """Check the echo, then post ``--feedback`` synthetic runs so the predictor is fitted; the candidate count."""
    probe = queries(1, 1)[0]
    echoed = c.post(ECHO_PATH, json=probe)
    if echoed.status_code != 200 or echoed.json() != probe:
        return _fail(echoed, ECHO_PATH)
    first = c.post("/v1/regime", json=queries(1, 1)[0])
    if first.status_code != 200:
        return _fail(first, "/v1/regime")
    rng = np.random.default_rng(0)
    for i, q in enumerate(queries(args.feedback, max(args.tasks, 2))):
        proposed = c.post("/v1/regime", json=q | {"top_k": 0})
        if proposed.status_code != 200:
            return _fail(proposed, "/v1/regime")
        regime = proposed.json()
        result = {"accuracy": float(rng.uniform(0.3, 0.95)), "time_s": float(regime["predicted_time_s"])}
        r = c.post(
            "/v1/feedback", json={"task": q["task"], "regime": regime, "result": result, "feedback_id": f"bench-{i}"}
        )
        if r.status_code != 200:
            return _fail(r, "/v1/feedback")
    return first.json()["num_candidates"]


def _measure(clients: list[httpx.Client], args: argparse.Namespace) -> tuple[dict[str, Any], int]:
    """Warm both endpoints up, then interleaved blocks; per-endpoint summaries and the number of errors."""
    bodies = queries(args.requests, args.tasks)  # the echo gets the same JSON bodies back
    paths = {"echo": ECHO_PATH, "regime": "/v1/regime"}
    for path in paths.values():
        _run_block(path, (bodies * (1 + args.warmup // len(bodies)))[: args.warmup], clients)
    lat: dict[str, list[float]] = {"echo": [], "regime": []}
    err = {"echo": 0, "regime": 0}
    wall = {"echo": 0.0, "regime": 0.0}
    for lo in range(0, args.requests, args.block):
        for name, path in paths.items():
            got, errors, seconds = _run_block(path, bodies[lo : lo + args.block], clients)
            lat[name] += got
            err[name] += errors
            wall[name] += seconds
    return {name: summarize(lat[name], err[name], wall[name]) for name in lat}, err["echo"] + err["regime"]


def _report(args: argparse.Namespace, zoo_root: str, num_candidates: int, results: dict[str, Any]) -> None:
    ratio = results["regime"]["p50_ms"] / results["echo"]["p50_ms"]
    passed = ratio <= args.target
    print(
        f"zoo {zoo_root}: {num_candidates} candidate regimes; {args.feedback} feedback runs; "
        f"{args.tasks} task(s); concurrency {args.concurrency}"
    )
    print(table({"echo": results["echo"], "/v1/regime": results["regime"]}))
    print(f"p50(regime) / p50(echo) = {ratio:.2f} (target <= {args.target}): {'PASS' if passed else 'FAIL'}")
    if args.json_out:
        out = {
            "endpoints": results,
            "ratio_p50": ratio,
            "target": args.target,
            "pass": passed,
            "num_candidates": num_candidates,
            "config": {k: v for k, v in vars(args).items() if k != "json_out"} | {"zoo_root": zoo_root},
        }
        write_json_atomic(out, args.json_out)


if __name__ == "__main__":
    sys.exit(main())
