"""The generator learns on a simulator whose tasks have a hidden difficulty and a hidden affinity to each model.

Regret is the oracle's true top-1 (the best candidate of the grid, sized to the budget) minus the pick's; the plain
default is the fallback regime (resnet18, lr 0.01, nothing frozen, batch 32) sized to the same budget.
"""

from dataclasses import replace

import numpy as np
import pytest

from .fakes import generator, past_rows, run, sim_task, true_accuracy

BUDGETS = (8.0, 32.0)


def evaluate(g, tasks, probes=True, seed=1):
    """Mean regret of the picks, their mean gain over the default, mean |predicted - true| of the picks."""
    rng = np.random.default_rng(seed)
    regret, gain, error = [], [], []
    for task in tasks:
        scores = task.probes(rng) if probes else None
        for budget in BUDGETS:
            answer = g.propose(task.meta, budget, probes=scores)
            steps, _ = g.sized(task.meta, budget)
            n = task.meta.num_train
            oracle = max(true_accuracy(task, g.regime_at(i, int(steps[i]), n)) for i in np.flatnonzero(steps >= 1))
            fb = g.fallback_index
            default = true_accuracy(task, g.regime_at(fb, int(steps[fb]), n))
            pick = true_accuracy(task, answer.regime)
            regret.append(oracle - pick)
            gain.append(pick - default)
            error.append(abs(answer.predicted_accuracy - pick))
    return float(np.mean(regret)), float(np.mean(gain)), float(np.mean(error))


@pytest.fixture(scope="module")
def world():
    rng = np.random.default_rng(0)
    return [sim_task(rng, f"past{i}") for i in range(16)], [sim_task(rng, f"new{i}") for i in range(8)]


def test_regret_drops_as_experience_grows_and_beats_the_default(world):
    past, held_out = world
    results = {}
    for n in (0, 2, 16):
        g = generator()
        if n:
            g.fit(past_rows(g, past[:n]))
        results[n] = evaluate(g, held_out)
    print({n: tuple(round(v, 3) for v in r) for n, r in results.items()})
    (r0, g0, _), (r2, _, _), (r16, g16, e16) = results[0], results[2], results[16]
    assert g0 == pytest.approx(0.0, abs=1e-9)  # no experience: the fallback, exactly the default
    assert r16 < 0.5 * r0 and r16 <= r2 + 0.01
    assert g16 > 0.03 and e16 < 0.05


def test_without_probes_experience_still_beats_the_default(world):
    past, held_out = world
    g = generator()
    g.fit(past_rows(g, past))
    regret, gain, _ = evaluate(g, held_out, probes=False)
    print(f"no probes: regret {regret:.3f}, gain over the default {gain:+.3f}")
    assert gain > 0.0


def test_a_tasks_first_feedback_moves_its_next_prediction(world):
    """Learning from the stream: after one run of a new task, the next prediction on it is closer to the truth."""
    past, held_out = world
    g = generator()
    g.fit(past_rows(g, past[:4]))
    rng = np.random.default_rng(3)
    before, after = [], []
    for task in held_out:
        probes = task.probes(rng)
        first = g.propose(task.meta, BUDGETS[0], top_k=0, probes=probes)
        g.learn(run(task, first.regime, rng, BUDGETS[0]) | {"probes": probes})
        second = g.propose(task.meta, BUDGETS[1], top_k=0, probes=probes)
        truth = true_accuracy(task, second.regime)
        unseen = replace(task.meta, name=f"unseen-{task.meta.name}")  # the same task, as if new to the generator
        before.append(abs(g.score(unseen, second.regime, probes).predicted_accuracy - truth))
        after.append(abs(g.score(task.meta, second.regime, probes).predicted_accuracy - truth))
    print(f"|predicted - true| on a new task's second budget: {np.mean(before):.3f} unseen, {np.mean(after):.3f}")
    assert np.mean(after) < np.mean(before)
