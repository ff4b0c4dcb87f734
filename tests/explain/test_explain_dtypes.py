"""Explanations of models trained on integer, boolean and categorical columns, every zoo family.

scikit-learn's partial dependence refuses integer columns; mlfactory hands it a float copy with
an integer-valued grid. The right answer is known: partial dependence at ``v`` is the model's
average output with the column set to ``v`` on every row, computed here by hand.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits
from typer.testing import CliRunner

from mlfactory.cli import app
from mlfactory.datasets._base import ColumnRoles, Task
from mlfactory.explain import (
    ExplainModel,
    explain_frame,
    load_explain_data,
    open_model,
    partial_dependence_tables,
)
from mlfactory.models import list_models
from mlfactory.registry import promote
from mlfactory.serving import create_app
from mlfactory.settings import get_settings
from mlfactory.spec._schema import make_pipeline

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette prefers httpx2; httpx still works
    from fastapi.testclient import TestClient

SPEC = """
name = "ints"
dataset = {path = "x.csv", target = "y"}
model = "LogisticRegression"
seed = 0
[cv]
folds = 2
scoring = ["roc_auc", "accuracy"]
[search]
kind = "none"
"""


def _table(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """int64 counts, a boolean flag and a text category; the label depends on ``a``, ``b``, flag."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "a": rng.integers(0, 10, n),
            "b": rng.integers(0, 40, n),
            "flag": rng.random(n) < 0.5,
            "color": rng.choice(["red", "green", "blue"], n),
        }
    )
    logit = 0.8 * (frame["a"] - 5) - 0.05 * (frame["b"] - 20) + 0.7 * frame["flag"]
    frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


def _by_hand(pipeline, X: pd.DataFrame, column: str, value) -> float:
    """Partial dependence by its definition: set the column on every row, average P(class 1)."""
    return float(pipeline.predict_proba(X.assign(**{column: value}))[:, 1].mean())


def test_explain_cli_on_a_model_trained_on_an_int64_csv(tmp_path):
    frame = _table()
    frame.to_csv(tmp_path / "x.csv", index=False)
    assert str(pd.read_csv(tmp_path / "x.csv")["a"].dtype) == "int64"
    (tmp_path / "ints.toml").write_text(SPEC)
    runner = CliRunner()
    trained = runner.invoke(app, ["train", str(tmp_path / "ints.toml")])
    assert trained.exit_code == 0, trained.output
    run_id = re.findall(r"[0-9a-f]{32}", trained.output)[-1]

    out = tmp_path / "report"
    explained = runner.invoke(
        app, ["explain", run_id, "--n-repeats", "2", "--top-k", "4", "--out", str(out)]
    )
    assert explained.exit_code == 0, explained.output
    assert (out / "report.html").is_file() and (out / "pdp.png").is_file()

    one_way = pd.read_csv(out / "pdp_one_way.csv")
    settings = get_settings()
    model = open_model(settings, run_id)
    data = load_explain_data(settings, model, None)  # the same held-out rows, all of them
    assert str(data.X["a"].dtype) == "int64"  # the model's input is left as it was
    for column in ("a", "b"):
        block = one_way[one_way["feature"] == column]
        if block.empty:
            continue
        values = block["value"].to_numpy(dtype=float)
        assert np.array_equal(values, np.round(values))  # an integer-valued grid
        expected = [_by_hand(model.pipeline, data.X, column, int(v)) for v in values]
        np.testing.assert_allclose(block["average"], expected, rtol=0, atol=1e-9)
    assert "a" in set(one_way["feature"])  # the strongest signal is among the top features

    # and the prediction service explains the same model from a JSON record
    promote(settings, "ints", run_id=run_id)
    with TestClient(create_app(settings, "ints", log_predictions=False)) as client:
        record = {"a": 7, "b": 12, "flag": True, "color": "red"}
        response = client.post("/explain", json=record, params={"top_k": 2})
    assert response.status_code == 200, response.text
    body = response.json()
    total = body["base_value"] + sum(c["contribution"] for c in body["contributions"])
    assert total + body["rest"] == pytest.approx(body["model_output"], abs=1e-9)


def test_partial_dependence_of_integer_boolean_and_categorical_columns():
    frame = _table(400, seed=1)
    frame["code"] = np.random.default_rng(2).integers(1, 4, len(frame))  # integer categories
    frame["level"] = pd.array(frame["b"].where(frame["b"] % 7 != 0), dtype="Int64")  # with NA
    X, y = frame.drop(columns="y"), frame["y"]
    roles = ColumnRoles(
        numeric=("a", "b", "level"), boolean=("flag",), categorical=("color", "code")
    )
    pipeline = make_pipeline("basic", "LogisticRegression", Task.CLASSIFICATION, roles, X, 0)
    pipeline.fit(X, y)
    features = ["a", "b", "level", "flag", "color", "code"]
    result = partial_dependence_tables(pipeline, X, features, pair=("a", "b"))

    table = result.one_way
    grid = {f: table.loc[table["feature"] == f, "value"].tolist() for f in features}
    assert grid["a"] == list(range(10))  # few values: every one of them
    assert len(grid["b"]) == 20 and all(float(v).is_integer() for v in grid["b"])
    assert all(float(v).is_integer() for v in grid["level"])  # missing values left out
    assert grid["flag"] == [False, True]
    assert grid["color"] == ["blue", "green", "red"]
    assert grid["code"] == [1, 2, 3]  # one-hot encoded integers are categories
    assert set(result.categorical) == {"flag", "color", "code"}
    for feature in features:
        block = result.one_way[result.one_way["feature"] == feature]
        expected = [_by_hand(pipeline, X, feature, v) for v in block["value"]]
        np.testing.assert_allclose(block["average"], expected, rtol=0, atol=1e-9)
    for row in result.two_way.sample(5, random_state=0).itertuples(index=False):
        both = X.assign(a=int(row.value_x), b=int(row.value_y))
        assert row.average == pytest.approx(pipeline.predict_proba(both)[:, 1].mean(), abs=1e-9)
    assert X["a"].dtype == np.int64  # the caller's frame is untouched


ZOO = [(task, name) for task in Task for name in list_models(task)]


@pytest.mark.parametrize(("task", "name"), ZOO, ids=[f"{t.value}-{n}" for t, n in ZOO])
def test_every_zoo_family_explains_int_bool_and_categorical_columns(task, name):
    frame = _table(160, seed=3)
    X = frame.drop(columns="y")
    y = frame["y"] if task is Task.CLASSIFICATION else 2.0 * frame["a"] - 0.1 * frame["b"]
    roles = ColumnRoles(numeric=("a", "b"), boolean=("flag",), categorical=("color",))
    with threadpool_limits(1):  # tiny data: threads only add overhead on a busy machine
        pipeline = make_pipeline("basic", name, task, roles, X, 0).fit(X, y)
        classes = list(pipeline.classes_) if task is Task.CLASSIFICATION else []
        model = ExplainModel(pipeline, "0" * 32, name, list(X.columns), classes)
        e = explain_frame(model, X, y, max_rows=40, n_repeats=1, top_k=4)
    assert set(e.importance.table["feature"]) == set(X.columns)
    ints = e.pdp.one_way[e.pdp.one_way["feature"].isin(["a", "b"])]
    assert not ints.empty and np.array_equal(ints["value"], np.round(ints["value"].astype(float)))
    shap = e.shap
    np.testing.assert_allclose(
        shap.base_value + shap.values.sum(axis=1), shap.output, rtol=0, atol=1e-6
    )
