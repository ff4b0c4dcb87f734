import pytest

from mlfactory.exceptions import SpecError
from mlfactory.spec import spec_from_dict
from mlfactory.spec._resolve import resolve_spec


def _spec(param_grid):
    return spec_from_dict(
        {
            "name": "m",
            "dataset": "breast_cancer",
            "model": ["LogisticRegression", "RandomForest", "KNN"],
            "search": {"kind": "grid", "param_grid": param_grid},
        }
    )


def test_a_matrix_can_hold_one_grid_per_model():
    grids = {"LogisticRegression": {"clf__C": [0.1, 1.0]}, "RandomForest": {"clf__max_depth": [3]}}
    cells = {cell.model: cell for cell in resolve_spec(_spec(grids)).cells}
    assert cells["LogisticRegression"].param_grid == {"clf__C": [0.1, 1.0]}
    assert cells["RandomForest"].param_grid == {"clf__max_depth": [3]}
    assert cells["RandomForest"].search_source == "inline"
    assert cells["KNN"].search_source.endswith(".json")  # not listed: its shipped grid


def test_a_grid_for_one_model_is_checked_against_its_pipeline():
    with pytest.raises(SpecError, match="clf__max_depth"):
        resolve_spec(_spec({"LogisticRegression": {"clf__max_depth": [3]}}))
