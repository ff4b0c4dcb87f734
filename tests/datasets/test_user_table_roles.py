"""User tables as people write them: one role per column, decided once, shown, and honest.

Files are written the way pandas (``to_csv`` with its index), spreadsheets in decimal-comma
locales (``;`` and ``,``) and parquet writers (``string`` columns) write them; everything goes
through the real CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from mlfactory.cli import app
from mlfactory.datasets import load_dataset
from mlfactory.datasets._roles import decide_roles, parse_numbers
from mlfactory.settings import load_settings
from mlfactory.tracking import open_tracking

runner = CliRunner()
SPEC = """
name = "{name}"
model = "LogisticRegression"
preprocessing = "basic"
seed = 0
{extra}
[dataset]
path = "{path}"
target = "{target}"
{dataset_extra}
[cv]
folds = 2
scoring = ["{metric}"]
[search]
kind = "none"
"""


def planted(rows: int = 600, seed: int = 0) -> pd.DataFrame:
    """Three informative features with a known logistic signal (true ROC AUC well below 1)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 3))
    logit = 1.2 * X[:, 0] - 0.8 * X[:, 1] + 0.5 * X[:, 2]
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(
        {
            "income": 1000 * (X[:, 0] + 10),
            "debt_ratio": X[:, 1],
            "age": X[:, 2] * 10 + 40,
            "default": y,
        }
    )


def write_spec(
    folder: Path,
    path: Path,
    *,
    target: str = "default",
    name: str = "roles",
    metric: str = "roc_auc",
    extra: str = "",
    dataset_extra: str = "",
) -> Path:
    spec = folder / f"{name}.toml"
    spec.write_text(
        SPEC.format(
            name=name,
            path=path.as_posix(),
            target=target,
            metric=metric,
            extra=extra,
            dataset_extra=dataset_extra,
        )
    )
    return spec


def decisions(path: Path, target: str = "default", **options) -> dict[str, tuple[str, str]]:
    dataset = load_dataset({"path": str(path), "target": target, **options})
    return {d["column"]: (d["role"], d["reason"]) for d in dataset.role_decisions}


def test_saved_pandas_index_is_dropped_and_does_not_leak_the_label(tmp_path, isolated_home):
    frame = planted().sort_values("default").reset_index(drop=True)
    path = tmp_path / "sorted.csv"
    frame.to_csv(path)  # pandas writes its index as an unnamed first column
    spec = write_spec(tmp_path, path)
    shown = runner.invoke(app, ["spec", "show", str(spec)])
    assert shown.exit_code == 0, shown.output
    assert "Unnamed: 0" in shown.output and "identifier" in shown.output
    as_json = runner.invoke(app, ["spec", "show", str(spec), "--json"])
    document = json.loads(as_json.stdout)
    assert document["roles"][1]["column"] == "Unnamed: 0" and document["resolved"]["cells"]
    trained = runner.invoke(app, ["train", str(spec)])
    assert trained.exit_code == 0, trained.output
    client = open_tracking(load_settings())
    runs = client.search_runs(
        [client.get_experiment_by_name("roles").experiment_id],
        filter_string="tags.`mlfactory.model_sha256` != ''",
    )
    auc = runs[0].data.metrics["test_roc_auc"]
    assert 0.7 < auc < 0.95, auc  # with the index as a feature it was 0.9997
    parent = client.search_runs(
        [runs[0].info.experiment_id], filter_string="params.`roles.identifier` = 'Unnamed: 0'"
    )
    assert parent, "roles.identifier param missing"
    folder = client.download_artifacts(parent[0].info.run_id, "spec", str(tmp_path / "dl"))
    roles = json.loads((Path(folder) / "roles.json").read_text())
    assert {"column": "Unnamed: 0", "role": "identifier"}.items() <= roles[1].items()
    import warnings

    from mlfactory.dashboard import create_dashboard_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # starlette prefers httpx2; httpx works
        from fastapi.testclient import TestClient
    with TestClient(create_dashboard_app(load_settings())) as web:
        page = web.get(f"/runs/{parent[0].info.run_id}").text
    assert 'id="roles"' in page and "Unnamed: 0" in page and "saved pandas index" in page


def test_row_number_id_column_is_an_index(tmp_path):
    frame = planted(100).assign(row_id=np.arange(1, 101)).sample(frac=1, random_state=0)
    path = tmp_path / "ids.csv"
    frame.to_csv(path, index=False)
    found = decisions(path)
    assert found["row_id"][0] == "identifier"
    assert found["income"][0] == "numeric"


def test_decimal_comma_spreadsheet_export_reads_as_numbers(tmp_path, isolated_home):
    frame = planted()
    path = tmp_path / "excel.csv"
    frame.to_csv(path, sep=";", decimal=",", index=False)
    found = decisions(path)
    assert (
        found["debt_ratio"] == ("numeric", "float64 column") or found["debt_ratio"][0] == "numeric"
    )
    dataset = load_dataset({"path": str(path), "target": "default"})
    np.testing.assert_allclose(dataset.X["debt_ratio"], frame["debt_ratio"], rtol=1e-12)
    # the same numbers as quoted text in a comma-separated file: decimal comma, reported
    text = frame.assign(debt_ratio=frame["debt_ratio"].map(lambda v: f"{v:.6f}".replace(".", ",")))
    quoted = tmp_path / "quoted.csv"
    text.to_csv(quoted, index=False)
    role, reason = decisions(quoted)["debt_ratio"]
    assert role == "numeric" and "decimal comma" in reason
    spec = write_spec(tmp_path, quoted, name="comma")
    assert runner.invoke(app, ["train", str(spec)]).exit_code == 0


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([" 1.5", "2.25 ", "-3"], [1.5, 2.25, -3.0]),
        (["1,5", "2,25", "-3"], [1.5, 2.25, -3.0]),
        (["1,234.5", "12,345,678", "7"], [1234.5, 12345678.0, 7.0]),
        (["1.234,5", "12.345.678", "7"], [1234.5, 12345678.0, 7.0]),
        (["1 234,5", "2", None], [1234.5, 2.0, np.nan]),
        (["1,234", "5,678"], [1234.0, 5678.0]),
        (["3,5", "1,234"], [3.5, 1.234]),
        (["1e3", "2.5E-1", "NA"], [1000.0, 0.25, np.nan]),
    ],
)
def test_numbers_as_text(values, expected):
    parsed = parse_numbers(pd.Series(values, dtype=object))
    assert parsed is not None
    np.testing.assert_allclose(parsed[0].to_numpy(), expected)


@pytest.mark.parametrize("values", [["a", "1"], ["1.2.3", "4"], ["12-01", "3"], ["", ""]])
def test_text_that_is_not_numbers(values):
    assert parse_numbers(pd.Series(values, dtype=object)) is None


def test_parquet_string_columns_of_numbers_are_numeric(tmp_path):
    frame = planted()
    frame["income"] = frame["income"].map(lambda v: f"{v:.2f}").astype("string")
    frame["age"] = frame["age"].round(1).astype(str)
    path = tmp_path / "strings.parquet"
    frame.to_parquet(path)
    found = decisions(path)
    assert found["income"][0] == "numeric" and found["age"][0] == "numeric"
    dataset = load_dataset({"path": str(path), "target": "default"})
    assert dataset.roles.numeric == ("income", "debt_ratio", "age")
    assert dataset.roles.categorical == ()


def test_identifier_text_dropped_unless_listed(tmp_path):
    frame = planted(200).assign(
        customer=[f"C{i:05d}" for i in range(200)],
        region=np.random.default_rng(1).choice(["north", "south", "east"], 200),
        updated=pd.date_range("2024-01-01", periods=200, freq="D").astype(str),
        constant="same",
    )
    path = tmp_path / "customers.csv"
    frame.to_csv(path, index=False)
    found = decisions(path)
    assert found["customer"][0] == "identifier" and "200 distinct" in found["customer"][1]
    assert found["region"][0] == "categorical"
    assert found["updated"][0] == "datetime"
    assert found["constant"][0] == "constant"
    listed = decisions(path, roles={"categorical": ["customer"], "drop": ["region"]})
    assert listed["customer"][0] == "categorical" and listed["region"][0] == "excluded"


def test_binary_target_with_missing_values_is_classification(tmp_path):
    frame = planted(300).astype({"default": "float64"})
    frame.loc[::10, "default"] = np.nan
    path = tmp_path / "gaps.csv"
    frame.to_csv(path, index=False)
    dataset = load_dataset({"path": str(path), "target": "default"})
    assert dataset.task == "classification" and len(dataset.y) == 270
    assert sorted(dataset.y.unique()) == [0, 1] and dataset.y.dtype == "int64"
    assert "30 rows with a missing target dropped" in dataset.role_decisions[0]["reason"]


def test_top_level_task_is_honoured(tmp_path, isolated_home):
    frame = planted(200).assign(score=np.random.default_rng(2).integers(0, 5, 200))
    path = tmp_path / "score.csv"
    frame.to_csv(path, index=False)
    spec_text = write_spec(
        tmp_path, path, target="score", metric="r2", extra='task = "regression"', name="score"
    ).read_text()
    spec = tmp_path / "score.toml"
    spec.write_text(spec_text.replace('"LogisticRegression"', '"Ridge"'))
    shown = runner.invoke(app, ["spec", "show", str(spec)])
    assert shown.exit_code == 0, shown.output
    assert "regression" in shown.output


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (planted(50).assign(default=1), "has one class"),
        (planted(3), "too small"),
        (planted(50).assign(default=np.nan), "missing in every one of 50 rows"),
        (
            pd.DataFrame({"id": [f"x{i}" for i in range(60)], "default": [0, 1] * 30}),
            "no usable feature columns",
        ),
        (planted(60).assign(default=[0] * 58 + [1, 1]), "test split of 'bad' has one class"),
    ],
)
def test_degenerate_data_fails_early_with_one_line(tmp_path, isolated_home, frame, message):
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    spec = write_spec(tmp_path, path)
    result = runner.invoke(app, ["train", str(spec)])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.output
    assert "Traceback" not in result.output
    assert not (isolated_home / "mlflow.db").exists() or not open_tracking(
        load_settings()
    ).search_runs(
        [e.experiment_id for e in open_tracking(load_settings()).search_experiments()]
    )  # no run left behind, FAILED or otherwise


def test_decide_roles_conflicting_overrides():
    from mlfactory.exceptions import SpecError

    with pytest.raises(SpecError, match="both numeric and drop"):
        decide_roles(pd.DataFrame({"a": [1, 2]}), numeric=["a"], drop=["a"])
