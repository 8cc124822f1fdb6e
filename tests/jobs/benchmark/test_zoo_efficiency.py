"""Matched-accuracy speed-ups and the zoo's front, from measured rows."""

from nasoa.jobs.benchmark.zoo_efficiency import front, matched_speedups


def m(name, kind, top1, ms):
    return {"name": name, "kind": kind, "top1": top1, "train_step_ms": ms}


MODELS = [
    m("z-fast", "etnas", 0.80, 10.0),
    m("z-mid", "etnas", 0.90, 20.0),
    m("z-slow", "etnas", 0.89, 40.0),  # dominated by z-mid
    m("ref-a", "reference", 0.85, 60.0),
    m("ref-b", "reference", 0.95, 50.0),
]


def test_fastest_zoo_model_at_least_as_accurate_gives_the_speedup():
    got = {r["reference"]: r for r in matched_speedups(MODELS, tolerance=0.0)}
    assert got["ref-a"]["zoo_model"] == "z-mid" and got["ref-a"]["speedup"] == 3.0
    assert got["ref-b"]["zoo_model"] is None and got["ref-b"]["speedup"] is None
    loose = {r["reference"]: r for r in matched_speedups(MODELS, tolerance=0.06)}
    assert loose["ref-b"]["zoo_model"] == "z-mid" and loose["ref-b"]["speedup"] == 2.5


def test_front_keeps_the_non_dominated_zoo_models():
    assert front(MODELS) == ["z-fast", "z-mid"]
