"""Online side of nasoa: regimes and their cost, regime features, predictors, the experience store, the generator.

No Ray here: the regime service (a Ray Serve deployment) owns a :class:`RegimeGenerator` and an
:class:`ExperienceStore` and calls them from one thread.
"""

from nasoa.online.experience import EXPERIENCE_SCHEMA, SOURCES, ExperienceStore, experience_row, validate_row
from nasoa.online.features import KINDS, Featurizer, from_target, model_matrix, to_target
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
    CurveBLR,
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
    sized_to_budget,
)

__all__ = [
    "EXPERIENCE_SCHEMA",
    "KINDS",
    "PREDICTORS",
    "SCHEDULES",
    "SOURCES",
    "BayesianLinearPredictor",
    "CostModel",
    "CurveBLR",
    "DeviceCost",
    "ExperienceStore",
    "Featurizer",
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
    "from_target",
    "model_matrix",
    "num_steps",
    "predict_time_s",
    "predictor_from_state",
    "register_predictor",
    "sized_to_budget",
    "to_target",
    "validate_row",
]
