"""Figures of explanations: built from the tables in ``_importance``, ``_pdp`` and ``_shap``.

Importance and partial-dependence figures are plain ``matplotlib.figure.Figure`` objects (no
pyplot state). SHAP's own plots draw through pyplot: they run on the non-interactive Agg backend
(selected inside :func:`_pyplot_figure`, never at import) and their figure is closed in pyplot
before it is returned, so nothing accumulates; the returned figure can still be saved.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from matplotlib.figure import Figure
from sklearn.inspection import PartialDependenceDisplay
from sklearn.utils import Bunch

from mlfactory.exceptions import DataError
from mlfactory.explain._importance import PermutationImportance
from mlfactory.explain._pdp import PartialDependence
from mlfactory.explain._shap import ShapValues

__all__ = [
    "importance_figure",
    "pdp_figure",
    "pdp_pair_figure",
    "shap_bar_figure",
    "shap_beeswarm_figure",
    "shap_waterfall_figure",
]

_NO_DECILES = np.array([])


def importance_figure(result: PermutationImportance, top_k: int = 15) -> Figure:
    """Box plot of the score drop over the repeats, most important feature on top."""
    features = result.top(top_k)[::-1]
    data = [
        result.repeats.loc[result.repeats["feature"] == f, "importance"].to_numpy()
        for f in features
    ]
    figure = Figure(figsize=(7, 0.4 * len(features) + 1.6), layout="constrained")
    ax = figure.add_subplot()
    ax.boxplot(data, orientation="horizontal", tick_labels=features)
    ax.axvline(0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xlabel(f"drop in {result.scoring} when shuffled ({result.n_repeats} repeats)")
    ax.set_title("Permutation importance")
    return figure


def _one_way_bunches(result: PartialDependence) -> list[Bunch]:
    bunches = []
    for feature in result.features:
        block = result.one_way[result.one_way["feature"] == feature]
        average = block["average"].to_numpy()[None]
        bunches.append(Bunch(grid_values=[block["value"].to_numpy()], average=average))
    return bunches


def pdp_figure(result: PartialDependence, n_cols: int = 3) -> Figure:
    """One-way partial dependence of each feature in a grid (deciles as ticks)."""
    if not result.features:
        raise DataError("no features for the partial dependence figure")
    names = list(result.features)
    display = PartialDependenceDisplay(
        _one_way_bunches(result),
        features=[(i,) for i in range(len(names))],
        feature_names=names,
        target_idx=0,
        deciles={i: result.deciles.get(n, _NO_DECILES) for i, n in enumerate(names)},
        kind="average",
        is_categorical=[(n in result.categorical,) for n in names],
    )
    rows = int(np.ceil(len(names) / n_cols))
    figure = Figure(figsize=(4 * min(n_cols, len(names)), 3.2 * rows + 0.6), layout="constrained")
    display.plot(ax=figure.add_subplot(), n_cols=n_cols)
    figure.suptitle(f"Partial dependence: {result.output}")
    return figure


def pdp_pair_figure(result: PartialDependence) -> Figure:
    """Two-way partial dependence of the top pair (contours, or a heat map for categories)."""
    if result.pair is None or result.two_way is None:
        raise DataError("no feature pair for the two-way partial dependence figure")
    x, y = result.pair
    table = result.two_way
    grid_x = table["value_x"].drop_duplicates().to_numpy()
    grid_y = table["value_y"].drop_duplicates().to_numpy()
    surface = table["average"].to_numpy().reshape(len(grid_x), len(grid_y))
    display = PartialDependenceDisplay(
        [Bunch(grid_values=[grid_x, grid_y], average=surface[None])],
        features=[(0, 1)],
        feature_names=[x, y],
        target_idx=0,
        deciles={i: result.deciles.get(n, _NO_DECILES) for i, n in enumerate((x, y))},
        kind="average",
        is_categorical=[(x in result.categorical, y in result.categorical)],
    )
    figure = Figure(figsize=(6.5, 5.2), layout="constrained")
    display.plot(ax=figure.add_subplot())
    figure.suptitle(f"Partial dependence of {result.output}\non {x} and {y}", fontsize=11)
    return figure


@contextmanager
def _pyplot_figure(width: float, height: float) -> Iterator[Figure]:
    """A fresh current pyplot figure on the Agg backend, closed in pyplot afterwards."""
    import matplotlib

    if matplotlib.get_backend().lower() != "agg":
        matplotlib.use("Agg")  # SHAP plots use pyplot; Agg never opens a window
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=(width, height))
    try:
        yield figure
    finally:
        plt.close(figure)


def _explanation(shap_result: ShapValues, rows: list[int] | None = None):
    import shap

    values = shap_result.values.to_numpy()
    data = shap_result.data.to_numpy()
    if rows is not None:
        values, data = values[rows], data[rows]
    return shap.Explanation(
        values=values,
        base_values=np.full(len(values), shap_result.base_value),
        data=data,
        feature_names=list(shap_result.values.columns),
    )


def _scale_label(shap_result: ShapValues) -> str:
    cls = f" of class {shap_result.class_label}" if shap_result.class_label is not None else ""
    return f"SHAP value ({shap_result.scale}{cls})"


def shap_waterfall_figure(
    shap_result: ShapValues, row: int = 0, max_display: int = 12, title: str | None = None
) -> Figure:
    """How one row's features move the output from the base value to the prediction."""
    import shap

    if not 0 <= row < len(shap_result.values):
        raise DataError(f"row {row} out of range: {len(shap_result.values)} rows explained")
    with _pyplot_figure(9, 6) as figure:
        shap.plots.waterfall(_explanation(shap_result)[row], max_display=max_display, show=False)
        label = shap_result.values.index[row]
        figure.suptitle(title or f"SHAP waterfall, row {label} ({shap_result.scale})")
        figure.tight_layout()
    return figure


def shap_beeswarm_figure(shap_result: ShapValues, max_display: int = 12) -> Figure:
    """Every row's SHAP value per feature, coloured by the feature's value."""
    import shap

    with _pyplot_figure(8, 6) as figure:
        ax = figure.add_subplot()
        shap.plots.beeswarm(
            _explanation(shap_result), max_display=max_display, ax=ax, plot_size=None, show=False
        )
        ax.set_xlabel(_scale_label(shap_result))
        figure.tight_layout()
    return figure


def shap_bar_figure(shap_result: ShapValues, max_display: int = 12) -> Figure:
    """Mean |SHAP| per feature: global importance on the model-output scale."""
    table = shap_result.mean_abs().head(max_display)[::-1]
    figure = Figure(figsize=(7, 0.35 * len(table) + 1.6), layout="constrained")
    ax = figure.add_subplot()
    ax.barh(table["feature"], table["mean_abs_shap"], color="#1f77b4")
    ax.set_xlabel(f"mean |{_scale_label(shap_result)}|")
    ax.set_title(f"Mean |SHAP| ({len(shap_result.values)} rows)")
    return figure
