"""Explainability: permutation importance, partial dependence, SHAP, plots and HTML reports."""

from mlfactory.explain._data import ExplainData, load_explain_data, prepare_frame, sample_rows
from mlfactory.explain._importance import PermutationImportance, permutation_importance_table
from mlfactory.explain._model import ExplainModel, is_run_id, load_run_model, open_model
from mlfactory.explain._pdp import (
    PartialDependence,
    categorical_columns,
    partial_dependence_tables,
    top_pair,
)
from mlfactory.explain._plots import (
    importance_figure,
    pdp_figure,
    pdp_pair_figure,
    shap_bar_figure,
    shap_beeswarm_figure,
    shap_waterfall_figure,
)
from mlfactory.explain._record import cached_explainer, clear_explainer_cache, explain_record
from mlfactory.explain._report import (
    KERNEL_MAX_ROWS,
    PLOTS,
    ExplainReport,
    Explanation,
    explain_frame,
    explain_model,
    write_report,
)
from mlfactory.explain._shap import (
    TREE_MODELS,
    ExplainerKind,
    ShapExplainer,
    ShapValues,
    explainer_kind,
    preprocessed,
    shap_values,
)

__all__ = [
    "KERNEL_MAX_ROWS",
    "PLOTS",
    "TREE_MODELS",
    "ExplainData",
    "ExplainModel",
    "ExplainReport",
    "ExplainerKind",
    "Explanation",
    "PartialDependence",
    "PermutationImportance",
    "ShapExplainer",
    "ShapValues",
    "cached_explainer",
    "categorical_columns",
    "clear_explainer_cache",
    "explain_frame",
    "explain_model",
    "explain_record",
    "explainer_kind",
    "importance_figure",
    "is_run_id",
    "load_explain_data",
    "load_run_model",
    "open_model",
    "partial_dependence_tables",
    "pdp_figure",
    "pdp_pair_figure",
    "permutation_importance_table",
    "prepare_frame",
    "preprocessed",
    "sample_rows",
    "shap_bar_figure",
    "shap_beeswarm_figure",
    "shap_values",
    "shap_waterfall_figure",
    "top_pair",
    "write_report",
]
