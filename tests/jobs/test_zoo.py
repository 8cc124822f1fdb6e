"""The default zoo build (tiny pretraining) on real Ray, and what it writes."""

import math

import pytest
import torch

from nasoa.analysis.zoo_plot import zoo_points
from nasoa.jobs.zoo import fairness, run_zoo_job
from nasoa.zoo import Zoo

from ..helpers import QUICK, compose_config

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_default_zoo_build_is_loadable_fine_tunable_and_plotted(ray_session, tmp_path):
    cfg = compose_config("zoo", QUICK + [f"zoo_root={tmp_path / 'zoo'}"])
    summary = run_zoo_job(cfg, tmp_path)
    assert not summary["failed"]
    zoo = Zoo(tmp_path / "zoo")
    assert len(zoo.entries("etnas")) == 2 and len(zoo.entries("reference")) == 5  # the main zoo, no search run
    assert [e.key for e in zoo.entries() if math.isnan(e.top1)] == ["efficientnet_lite0.imagenet"]  # published
    for entry in zoo.entries():
        assert entry.sha256 and (math.isnan(entry.top1) or 0.0 <= entry.top1 <= 1.0)
        frozen_levels = {p.frozen_stages for p in entry.profiles}
        assert frozen_levels == set(range(entry.num_stages + 1))
        model = zoo.load(entry.key, num_classes=3, frozen_stages=1)
        opt = torch.optim.SGD(model.trainable_parameters(), lr=0.01)
        loss = torch.nn.functional.cross_entropy(model(torch.randn(2, 3, 32, 32)), torch.tensor([0, 2]))
        loss.backward()
        opt.step()
        assert torch.isfinite(loss)
    assert len(zoo_points(zoo.entries())) == len(zoo)
    assert (tmp_path / "zoo" / "zoo.png").stat().st_size > 10_000
    fair = summary["fairness"]
    assert fair["margin"] == 0.15 and fair["best"] in {e.name for e in zoo.entries()}
    assert fair["met"] == (not fair["outside"])

    again = run_zoo_job(cfg, tmp_path)  # a second run keeps every verified entry
    assert {e["key"] for e in again["entries"]} == {e.key for e in zoo.entries()}
    assert again["worker_efficiency"] is None


def test_fairness_names_entries_outside_the_margin_and_skips_published_ones():
    from types import SimpleNamespace as E

    entries = [E(name="a", top1=0.8), E(name="b", top1=0.7), E(name="c", top1=0.6), E(name="lite", top1=math.nan)]
    fair = fairness(entries, 0.15)
    assert fair["best"] == "a" and fair["outside"] == {"c": 0.2} and not fair["met"]
    assert fairness(entries[:2], 0.15)["met"]
