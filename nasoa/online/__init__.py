"""Online side of nasoa: regimes and their cost, regime features, predictors, the experience store, the generator.

No Ray here: the regime service (a Ray Serve deployment) owns a :class:`RegimeGenerator` and an
:class:`ExperienceStore` and calls them from one thread.
"""

from nasoa.online.experience import EXPERIENCE_SCHEMA, SOURCES, ExperienceStore, experience_row, validate_row
from nasoa.online.features import FEATURE_NAMES, KINDS, feature_matrix, model_matrix, regime_features
from nasoa.online.generator import (
    LearnReport,
    NoFeasibleRegime,
    RegimeAnswer,
    RegimeGenerator,
    RegimeOption,
    as_task_meta,
)
from nasoa.online.predictor import (
    PREDICTORS,
    BayesianLinearPredictor,
    KNNPredictor,
    MeanPredictor,
    MeanVar,
    Predictor,
    create_predictor,
    predictor_from_state,
    register_predictor,
)
from nasoa.online.regime import (
    SCHEDULES,
    CostModel,
    DeviceCost,
    Footprint,
    Regime,
    RegimeSpace,
    num_steps,
    predict_time_s,
)

__all__ = [
    "EXPERIENCE_SCHEMA",
    "FEATURE_NAMES",
    "KINDS",
    "PREDICTORS",
    "SCHEDULES",
    "SOURCES",
    "BayesianLinearPredictor",
    "CostModel",
    "DeviceCost",
    "ExperienceStore",
    "Footprint",
    "KNNPredictor",
    "LearnReport",
    "MeanPredictor",
    "MeanVar",
    "NoFeasibleRegime",
    "Predictor",
    "Regime",
    "RegimeAnswer",
    "RegimeGenerator",
    "RegimeOption",
    "RegimeSpace",
    "as_task_meta",
    "create_predictor",
    "experience_row",
    "feature_matrix",
    "model_matrix",
    "num_steps",
    "predict_time_s",
    "predictor_from_state",
    "regime_features",
    "register_predictor",
    "validate_row",
]
