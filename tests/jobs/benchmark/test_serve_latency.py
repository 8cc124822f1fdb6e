"""The serve latency benchmark runs end to end (quick mode) and writes both endpoints' numbers; no timing check."""

import json

import pytest

from nasoa.jobs.benchmark.serve_latency import main

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_benchmark_quick_run_reports_both_endpoints(ray_session, tmp_path):
    out = tmp_path / "bench.json"
    assert main(["--requests", "30", "--warmup", "5", "--feedback", "3", "--block", "10", "--json", str(out)]) == 0
    assert ray_session.is_initialized()  # Ray was up before: left up
    result = json.loads(out.read_text())
    for name in ("echo", "regime"):
        stats = result["endpoints"][name]
        assert stats["n"] == 30 and stats["errors"] == 0
        assert 0 < stats["p50_ms"] <= stats["p99_ms"]
        assert stats["throughput_rps"] > 0
    assert result["ratio_p50"] > 0 and isinstance(result["pass"], bool)
