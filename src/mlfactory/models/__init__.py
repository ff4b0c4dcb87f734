"""The model zoo: estimators by name and task, shipped parameter grids and search spaces."""

from mlfactory.models._distributions import (
    CategoricalParam,
    FloatParam,
    IntParam,
    SearchSpace,
    parse_distributions,
    to_optuna_distributions,
    to_scipy_distributions,
)
from mlfactory.models._grids import (
    ParamGrid,
    default_distributions_path,
    default_grid_path,
    find_grid_file,
    grids_dir,
    load_grid,
    load_json_file,
)
from mlfactory.models._zoo import MODELS, ModelEntry, build_model, get_model_entry, list_models

__all__ = [
    "MODELS",
    "CategoricalParam",
    "FloatParam",
    "IntParam",
    "ModelEntry",
    "ParamGrid",
    "SearchSpace",
    "build_model",
    "default_distributions_path",
    "default_grid_path",
    "find_grid_file",
    "get_model_entry",
    "grids_dir",
    "list_models",
    "load_grid",
    "load_json_file",
    "parse_distributions",
    "to_optuna_distributions",
    "to_scipy_distributions",
]
