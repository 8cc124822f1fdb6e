"""Benchmark pieces without Ray: regime choosers behind one interface, a tiny zoo, an HTTP load generator.

The benchmark job that runs them on Ray is :mod:`nasoa.jobs.benchmark`.
"""
