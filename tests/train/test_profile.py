import json
import math

import pytest
import torch

from nasoa.models import build
from nasoa.space import ETNAS
from nasoa.train import StepProfile, profile_step
from nasoa.train.profile import main, resolve_model

from .conftest import SMALL

FAST = dict(batch_size=8, resolution=32, warmup=1, steps=3)


def test_profile_returns_sane_numbers(small_net):
    p = profile_step(small_net, **FAST)
    assert isinstance(p, StepProfile)
    assert 0 < p.inference_ms < p.train_step_ms  # a training step is a forward pass and more
    assert len(p.train_step_ms_all) == 3
    assert p.train_step_ms == sorted(p.train_step_ms_all)[1]
    assert p.peak_mem_mb is not None and p.peak_mem_mb >= 0  # measured on Linux (VmHWM or ru_maxrss)
    assert (p.batch_size, p.resolution, p.device, p.frozen_stages, p.warmup, p.steps) == (8, 32, "cpu", 0, 1, 3)
    assert p.threads == torch.get_num_threads()
    d = json.loads(json.dumps(p.to_dict()))
    assert d["train_step_ms_all"] == list(p.train_step_ms_all)


def test_warmup_excluded_and_counted(small_net):
    calls = []
    small_net.register_forward_hook(lambda *_: calls.append(1))
    p = profile_step(small_net, batch_size=4, resolution=32, warmup=2, steps=5)
    assert len(p.train_step_ms_all) == 5
    assert len(calls) == 2 * (2 + 5)  # train: warm-up + timed; inference: warm-up + timed


def test_model_left_as_it_was(small_net):
    small_net.freeze(1)
    small_net.eval()
    before = {k: v.clone() for k, v in small_net.state_dict().items()}
    grads = [p.requires_grad for p in small_net.parameters()]
    profile_step(small_net, frozen_stages=2, **FAST)
    assert small_net.frozen_stages == 1
    assert not small_net.training
    assert grads == [p.requires_grad for p in small_net.parameters()]
    assert all(torch.equal(before[k], v) for k, v in small_net.state_dict().items())
    assert all(p.grad is None for p in small_net.parameters())


def test_amp_channels_last_and_threads(small_net):
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        p = profile_step(small_net, amp=True, channels_last=True, frozen_stages=1, threads=1, **FAST)
        assert torch.get_num_threads() == 2  # restored
    finally:
        torch.set_num_threads(old)
    assert p.amp and p.channels_last and p.frozen_stages == 1 and p.threads == 1
    assert math.isfinite(p.train_step_ms)


@pytest.mark.parametrize(
    "kw",
    [
        {"batch_size": 0},
        {"steps": 0},
        {"warmup": -1},
        {"resolution": 0},
        {"frozen_stages": -1},
        {"frozen_stages": 4},
        {"threads": 0},
        {"device": "tpu"},
    ],
)
def test_bad_args(small_net, kw):
    with pytest.raises(ValueError):
        profile_step(small_net, **kw)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
def test_cuda_missing_is_a_value_error(small_net):
    with pytest.raises(ValueError, match="CUDA"):
        profile_step(small_net, device="cuda")


def test_freezing_makes_steps_cheaper():
    """Frozen stem and stages skip backward; interleaved rounds, best median per setting (robust to load)."""
    net = build(SMALL, 10)
    k = net.num_stages - 1
    full, frozen = [], []
    for _ in range(5):
        full.append(profile_step(net, batch_size=16, resolution=32, warmup=3, steps=11).train_step_ms)
        frozen.append(
            profile_step(net, batch_size=16, resolution=32, warmup=3, steps=11, frozen_stages=k).train_step_ms
        )
        if min(frozen) < 0.85 * min(full):
            break
    assert min(frozen) < 0.85 * min(full), (full, frozen)


def test_repeat_within_loose_factor(small_net):
    """The strict 10% check is by hand: python -m nasoa.train.profile ET-NAS-A --repeat 5 --max-spread 0.1."""
    a = profile_step(small_net, batch_size=16, resolution=32, warmup=3, steps=9).train_step_ms
    b = profile_step(small_net, batch_size=16, resolution=32, warmup=3, steps=9).train_step_ms
    assert max(a, b) / min(a, b) < 4.0


TINY = ["--batch-size", "4", "--resolution", "32", "--warmup", "1", "--steps", "2", "--num-classes", "10"]


def test_cli_json(capsys):
    assert main([SMALL, "ET-NAS-A", *TINY, "--repeat", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = out["results"]
    assert [r["model"] for r in rows] == [SMALL, "ET-NAS-A"]
    for r in rows:
        assert r["train_step_ms"] > 0 and r["inference_ms"] > 0
        assert r["rounds"] == 2 and len(r["runs"]) == 2
        assert len(r["runs"][0]["train_step_ms_all"]) == 2
        assert r["spread"] >= 0


def test_cli_table_and_frozen(capsys):
    assert main([SMALL, *TINY, "--frozen-stages", "2", "--repeat", "2"]) == 0
    out = capsys.readouterr().out
    assert "step ms" in out and "spread" in out and SMALL in out


def test_cli_max_spread_flags_noise(capsys):
    assert main([SMALL, *TINY, "--repeat", "2", "--max-spread", "-1"]) == 1


def test_cli_bad_input(capsys):
    assert main(["not-a-model", *TINY]) == 2
    assert "error" in capsys.readouterr().err
    assert main([SMALL, *TINY, "--frozen-stages", "9"]) == 2
    assert main([SMALL, *TINY, "--repeat", "0"]) == 2


def test_resolve_model_builds_named_models_through_the_registry():
    net = resolve_model("ET-NAS-A", 10)
    assert str(net.arch) == ETNAS["ET-NAS-A"]
    assert resolve_model(SMALL, 7).num_classes == 7
