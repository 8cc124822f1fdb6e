"""Load generator for the regime service: mixed ``/v1/regime`` and ``/v1/feedback`` traffic from a second process.

``--clients`` threads, each with its own keep-alive ``httpx`` client, send requests back to back until
``--seconds`` have passed or ``--max-requests`` were sent in all. A share ``--feedback-share`` of the requests
are feedback, each with a unique ``feedback_id``; the ids the service acknowledged (200 with ``stored`` or
``duplicate`` true) are recorded, so a test can check each is in the experience store exactly once. Status codes
are counted per endpoint (``error:<Exception>`` for transport errors); failures are kept with their time offset to
measure an outage window.

Run: ``python -m nasoa.bench.load --url http://127.0.0.1:8000 --clients 32 --seconds 60 --feedback-share 0.3
--json out.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

#: The endpoints under load.
ENDPOINTS = ("/v1/regime", "/v1/feedback")


@dataclass
class ClientLog:
    """What one client thread saw."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {e: [] for e in ENDPOINTS})
    codes: dict[str, Counter] = field(default_factory=lambda: {e: Counter() for e in ENDPOINTS})
    acked: list[str] = field(default_factory=list)
    failures: list[tuple[float, str, str]] = field(default_factory=list)  # (offset s, endpoint, code)


def random_task(rng: random.Random) -> dict[str, Any]:
    """A random task meta (a few hundred distinct ones, so both warm and cold predictor paths are hit)."""
    return {
        "num_classes": rng.choice((2, 5, 10, 37, 100)),
        "num_train": rng.choice((200, 500, 1000, 5000, 20000)),
        "resolution": rng.choice((28, 32, 64)),
        "channels": rng.choice((1, 3)),
    }


def _client_loop(
    index: int,
    url: str,
    args: argparse.Namespace,
    tag: str,
    start: float,
    budget: threading.Semaphore,
    log: ClientLog,
) -> None:
    rng = random.Random(args.seed * 1000 + index)
    regime: dict[str, Any] | None = None
    seq = 0
    deadline = start + args.seconds
    with httpx.Client(base_url=url, timeout=args.timeout) as client:
        while time.monotonic() < deadline and budget.acquire(blocking=False):
            task = random_task(rng)
            is_feedback = regime is not None and rng.random() < args.feedback_share
            if is_feedback:
                endpoint, seq = "/v1/feedback", seq + 1
                fid = f"{tag}-{index}-{seq}"
                result = {"accuracy": round(rng.uniform(0.3, 0.99), 4), "time_s": round(rng.uniform(1, 300), 2)}
                body = {"task": task, "regime": regime, "result": result, "budget_s": 600.0, "feedback_id": fid}
            else:
                endpoint = "/v1/regime"
                body = {"task": task, "budget_s": rng.choice((60.0, 300.0, 1800.0)), "top_k": rng.choice((0, 3))}
            t0 = time.monotonic()
            try:
                response = client.post(endpoint, json=body)
                code = str(response.status_code)
            except httpx.HTTPError as err:
                response, code = None, f"error:{type(err).__name__}"
            log.latencies[endpoint].append(time.monotonic() - t0)
            log.codes[endpoint][code] += 1
            if response is not None and response.status_code == 200:
                out = response.json()
                if is_feedback and (out.get("stored") is True or out.get("duplicate") is True):
                    log.acked.append(fid)
                elif not is_feedback:
                    regime = {k: out[k] for k in ("model", "lr", "frozen_stages", "batch_size", "epochs", "schedule")}
            else:
                log.failures.append((round(t0 - start, 3), endpoint, code))
                retry = response.headers.get("retry-after") if response is not None else None
                time.sleep(min(float(retry), 1.0) if retry and retry.isdigit() else 0.05)


def _quantiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    arr = np.asarray(values) * 1000
    return {
        "p50_ms": float(np.percentile(arr, 50)),
        "p99_ms": float(np.percentile(arr, 99)),
        "max_ms": float(arr.max()),
    }


def run_load(args: argparse.Namespace) -> dict[str, Any]:
    """Run the load described by ``args`` (see :func:`parse_args`); returns the summary (see module doc)."""
    url = args.url.rstrip("/")
    tag = args.tag or uuid.uuid4().hex[:10]
    budget = threading.Semaphore(args.max_requests)
    logs = [ClientLog() for _ in range(args.clients)]
    start = time.monotonic()
    threads = [
        threading.Thread(target=_client_loop, args=(i, url, args, tag, start, budget, logs[i]), daemon=True)
        for i in range(args.clients)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(args.seconds + 2 * args.timeout + 5)
    wall = time.monotonic() - start
    endpoints: dict[str, Any] = {}
    for e in ENDPOINTS:
        codes = sum((log.codes[e] for log in logs), Counter())
        latencies = [x for log in logs for x in log.latencies[e]]
        endpoints[e] = {"requests": len(latencies), "codes": dict(codes), **_quantiles(latencies)}
    codes = sum((Counter(v["codes"]) for v in endpoints.values()), Counter())
    failures = sorted(f for log in logs for f in log.failures)
    total = sum(codes.values())
    return {
        "url": url,
        "clients": args.clients,
        "seconds": wall,
        "requests": total,
        "throughput_rps": total / wall if wall > 0 else 0.0,
        "codes": dict(codes),
        "n_5xx": sum(n for c, n in codes.items() if c.startswith("5")),
        "n_failed": len(failures),
        "failure_window_s": [failures[0][0], failures[-1][0]] if failures else None,
        "endpoints": endpoints,
        "acked_feedback_ids": sorted(fid for log in logs for fid in log.acked),
        "failures": failures[:1000],
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see module doc)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--max-requests", type=int, default=500_000, help="stop after this many requests in all")
    p.add_argument("--feedback-share", type=float, default=0.3)
    p.add_argument("--timeout", type=float, default=30.0, help="per-request timeout in seconds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tag", default="", help="feedback id prefix (default: random)")
    p.add_argument("--json", default="", help="write the summary (with acknowledged feedback ids) here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the load, print the figures, write ``--json``; exit status 0."""
    args = parse_args(argv)
    out = run_load(args)
    for e, s in out["endpoints"].items():
        p50, p99 = s["p50_ms"], s["p99_ms"]
        figures = f"p50 {p50:.1f} ms  p99 {p99:.1f} ms" if p50 is not None else "no requests"
        print(f"{e:14s} {s['requests']:7d} req  {figures}  codes {s['codes']}")
    print(
        f"total {out['requests']} req in {out['seconds']:.1f} s: {out['throughput_rps']:.1f} req/s, "
        f"5xx {out['n_5xx']}, failed {out['n_failed']} (window {out['failure_window_s']}), "
        f"acknowledged feedback {len(out['acked_feedback_ids'])}"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
