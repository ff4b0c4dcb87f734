"""The model zoo: estimators by name and task, shipped parameter grids and search spaces.

The names below load their module when first used: listing the zoo and its grid files
(``mlfactory spec models``) imports neither scikit-learn (loaded when a model is built) nor the
search-space stack (numpy, scipy, Optuna) of :mod:`mlfactory.models._distributions` (issue #21).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlfactory._lazy import lazy_exports

if TYPE_CHECKING:
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

_WHERE = {
    "_distributions": (
        "CategoricalParam",
        "FloatParam",
        "IntParam",
        "SearchSpace",
        "parse_distributions",
        "to_optuna_distributions",
        "to_scipy_distributions",
    ),
    "_grids": (
        "ParamGrid",
        "default_distributions_path",
        "default_grid_path",
        "find_grid_file",
        "grids_dir",
        "load_grid",
        "load_json_file",
    ),
    "_zoo": ("MODELS", "ModelEntry", "build_model", "get_model_entry", "list_models"),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}

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


__getattr__, __dir__ = lazy_exports(__name__, _MODULE_OF)
