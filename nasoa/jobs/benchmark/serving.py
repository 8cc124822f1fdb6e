"""Serving: ``/v1/regime`` latency and throughput against a trivial Serve echo, in the same run.

Runs :mod:`nasoa.jobs.benchmark.serve_latency` on the benchmark's zoo. Written to ``serving.json``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nasoa.jobs.benchmark import serve_latency

RESULT_FILE = "serving.json"


def run_serving(cfg: Mapping[str, Any], zoo_root: str, out: Path) -> dict[str, Any]:
    """Measure the service against the echo; returns what it writes."""
    t0 = time.time()
    out.mkdir(parents=True, exist_ok=True)
    path = out / RESULT_FILE
    argv = ["--zoo-root", str(zoo_root), "--json", str(path)]
    for key in ("requests", "concurrency", "warmup", "block", "feedback", "tasks"):
        argv += [f"--{key}", str(cfg[key])]
    code = serve_latency.main(argv)
    if code != 0 or not path.exists():
        raise RuntimeError(f"the serving benchmark failed (exit {code}): see the log above")
    report = {"benchmark": "serving", "seconds": time.time() - t0} | json.loads(path.read_text())
    path.write_text(json.dumps(report, indent=2))
    return report
