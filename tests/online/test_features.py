import numpy as np

from nasoa.data.meta import TaskMeta
from nasoa.online import FEATURE_NAMES, KINDS, Regime, feature_matrix, model_matrix, regime_features
from nasoa.online.features import MODEL_FEATURE_NAMES

from .fakes import DEVICE, ENTRIES

TASK = TaskMeta(num_classes=10, num_train=500, resolution=32, channels=3)


def test_names_and_shapes():
    assert len(FEATURE_NAMES) == len(set(FEATURE_NAMES)) == 18 + len(KINDS)
    m = model_matrix(ENTRIES)
    assert m.shape == (3, len(MODEL_FEATURE_NAMES))
    x = feature_matrix(TASK, m, [0.01, 0.1, 0.03], [0, 2, 4], [16, 32, 64], [1, 2, 3], [2.0, 5.0, 12.0])
    assert x.shape == (3, len(FEATURE_NAMES)) and np.isfinite(x).all()


def test_values():
    entry = ENTRIES[2]
    r = Regime(entry.key, 0.01, 2, 32, 3)
    step = entry.step_ms(DEVICE, 32, 2, resolution=32)
    x = dict(zip(FEATURE_NAMES, regime_features(TASK, entry, r, step)))
    assert x["log_num_classes"] == np.log(10) and x["log_num_train"] == np.log(500)
    assert x["frozen_fraction"] == 0.5 and x["epochs"] == 3
    assert x["log_steps"] == np.log(3 * 16)
    assert np.isclose(x["log_images_seen_per_image"], np.log(3 * 16 * 32 / 500))
    assert np.isclose(x["log_train_s"], np.log(48 * step / 1000))
    assert x["kind_reference"] == 1.0 and x["kind_etnas"] == 0.0
    assert x["log_resolution_ratio"] == 0.0 and x["zoo_top1"] == entry.top1


def test_regime_features_match_the_generator_grid(generator):
    times, X = generator.candidates(TASK)
    for i in (0, 17, generator.num_candidates - 1):
        r = generator.regime_at(i)
        entry = generator.all_entries[r.model]
        step = entry.step_ms(DEVICE, r.batch_size, r.frozen_stages, resolution=TASK.resolution)
        np.testing.assert_allclose(X[i], regime_features(TASK, entry, r, step), rtol=1e-12)
