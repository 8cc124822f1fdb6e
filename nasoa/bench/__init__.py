"""Benchmarks of the running system (HTTP latency of the regime service next to a trivial Serve deployment)."""
