import pytest

from nasoa.search.archive import ParetoArchive
from nasoa.search.evaluator import LocalArchiveStore, LocalEvaluator
from nasoa.search.loop import LevelSettings, SearchResult, SearchSettings, best_blocks, run_level, run_search
from nasoa.search.space import BlockSpace, MacroSpace
from nasoa.space.operators import RESNET50_MACRO, SpaceLimits

from .fakes import BitSpace, fake_evaluate, fake_evaluate_bits

LIMITS = SpaceLimits(max_layers=4, min_depth=6, max_depth=12, stem_widths=(16,))


def spaces():
    common = dict(limits=LIMITS, stem_width=16, max_params=2_000_000, resolution=32)
    return BlockSpace(macro=RESNET50_MACRO, **common), MacroSpace(**common)


def search(run_dir, seed=0, fail_every=0, evaluate=None, algorithm="nsga2"):
    store = LocalArchiveStore(run_dir)
    evaluator = LocalEvaluator(evaluate or (lambda c: fake_evaluate(c, fail_every)), store)
    block, macro = spaces()
    settings = SearchSettings(algorithm, seed, 3, LevelSettings(6, 3), LevelSettings(6, 2))
    result = run_search(block, macro, settings, evaluator, store)
    return result, store


def test_seeded_search_is_reproducible():
    a, _ = search(None, seed=3)
    b, _ = search(None, seed=3)
    c, _ = search(None, seed=4)
    assert a.proposals == b.proposals
    assert a.proposals != c.proposals
    assert len(a.proposals["block"]) == 18 and len(a.proposals["macro"]) == 12


def test_archive_and_front_obey_the_definitions(tmp_path):
    result, store = search(tmp_path, fail_every=7)
    archive = ParetoArchive.load(tmp_path)
    assert len(archive) == len(set(result.evaluated)) == len(result.evaluated)
    assert any(not r.ok for r in archive.records)
    front_ids = {r.archid for r in archive.front()}
    for f in archive.front():
        for r in archive.records:
            if r.ok:
                assert not (
                    r.accuracy >= f.accuracy
                    and r.train_step_ms <= f.train_step_ms
                    and r.archid != f.archid
                    and (r.accuracy > f.accuracy or r.train_step_ms < f.train_step_ms)
                )
    assert front_ids and all(archive.get(a).ok for a in front_ids)
    assert {r.level for r in archive.records} == {"block", "macro"}


def test_resume_replays_without_evaluating_archived_candidates(tmp_path):
    full, _ = search(None)
    calls = []

    def crash_after_ten(candidate):
        if len(calls) == 10:
            raise KeyboardInterrupt("killed mid-generation")
        calls.append(candidate.archid)
        return fake_evaluate(candidate)

    with pytest.raises(KeyboardInterrupt):
        search(tmp_path, evaluate=crash_after_ten)
    assert len(ParetoArchive.load(tmp_path)) == 10
    second = []
    resumed, store = search(tmp_path, evaluate=lambda c: second.append(c.archid) or fake_evaluate(c))
    assert not set(second) & set(calls)
    assert resumed.proposals == full.proposals
    assert len(store.snapshot()) == len(full.evaluated)


def test_best_blocks_are_distinct_front_members():
    _, store = search(None)
    best = best_blocks(list(store.snapshot().records), "block", 3)
    assert 1 <= len(best) <= 3
    assert len({r.encoding.split("_")[0] for r in best}) == len(best)


def test_failures_do_not_stop_the_search():
    result, store = search(None, fail_every=3)
    assert sum(r.failed for r in result.reports) > 0
    assert result.reports[-1].level == "macro"


def run_fake(seed, algorithm="nsga2", generations=6):
    store = LocalArchiveStore(None)
    result = SearchResult()
    run_level(
        BitSpace(),
        LevelSettings(8, generations),
        LocalEvaluator(fake_evaluate_bits, store),
        store,
        seed,
        result,
        algorithm=algorithm,
    )
    return result, store


def test_a_fake_search_space_drives_the_loop_reproducibly():
    a, store = run_fake(0)
    b, _ = run_fake(0)
    assert a.proposals == b.proposals and a.proposals["bits"] != run_fake(1)[0].proposals["bits"]
    assert len(a.reports) == 6 and all(r.level == "bits" for r in a.reports)
    records = store.snapshot().records
    assert all(len(r.encoding) == BitSpace.length and set(r.encoding) <= {"0", "1"} for r in records)
    assert a.reports[-1].hypervolume >= a.reports[0].hypervolume


def test_nsga2_beats_random_search_on_the_fake_space():
    best = {}
    for algorithm in ("nsga2", "random"):
        hv = [run_fake(seed, algorithm, generations=8)[0].reports[-1].hypervolume for seed in range(5)]
        best[algorithm] = sum(hv) / len(hv)
    assert best["nsga2"] > best["random"], best


def test_random_search_runs_both_levels():
    result, store = search(None, algorithm="random")
    assert {r.level for r in store.snapshot().records} == {"block", "macro"}
    assert len(result.proposals["block"]) == 18


def test_unknown_algorithm_names_the_known_ones():
    with pytest.raises(ValueError, match="nsga2"):
        SearchSettings(algorithm="nsgaii")
