"""The user's own tables: CSV, parquet, SQLite and PostgreSQL; inferred and overridden roles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from mlfactory.datasets import Task, load_dataset
from mlfactory.exceptions import DataError, SpecError
from mlfactory.settings import get_settings


def loans(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "amount": rng.gamma(2.0, 1000.0, n),
            "term": rng.choice([12, 24, 36], n),
            "purpose": rng.choice(["car", "home", "study"], n),
            "has_guarantor": rng.random(n) < 0.3,
            "opened": pd.date_range("2023-01-01", periods=n, freq="D"),
            "default": (np.arange(n) % 3 == 0).astype(int),
            "loss": rng.normal(100.0, 10.0, n),
        }
    )


def test_csv_roles_and_task_are_inferred(tmp_path: Path) -> None:
    path = tmp_path / "loans.csv"
    loans().drop(columns=["opened", "loss"]).to_csv(path, index=False)
    data = load_dataset({"path": str(path), "target": "default"})
    assert data.name == "loans" and data.task is Task.CLASSIFICATION
    assert data.roles.numeric == ("amount", "term")
    assert data.roles.categorical == ("purpose",)
    assert data.roles.boolean == ("has_guarantor",)
    assert list(data.X.columns) == ["amount", "term", "purpose", "has_guarantor"]
    assert data.y.tolist() == loans()["default"].tolist()
    assert str(path) in data.source


def test_parquet_with_overrides_time_column_and_float_target(tmp_path: Path) -> None:
    path = tmp_path / "loans.parquet"
    loans().to_parquet(path)
    data = load_dataset(
        {
            "path": path,
            "target": "loss",
            "categorical": ["term"],
            "skewed": ["amount"],
            "time_column": "opened",
            "name": "my_loans",
        }
    )
    assert data.name == "my_loans" and data.task is Task.REGRESSION
    assert data.roles.categorical == ("term", "purpose")
    assert data.roles.numeric == ("amount", "default") and data.roles.skewed == ("amount",)
    assert data.time_column == "opened" and data.X.columns[0] == "opened"
    assert data.is_time_ordered
    forced = load_dataset({"path": path, "target": "default", "task": "regression"})
    assert forced.task is Task.REGRESSION


def test_missing_target_names_file_and_columns(tmp_path: Path) -> None:
    path = tmp_path / "loans.csv"
    loans().to_csv(path, index=False)
    with pytest.raises(DataError) as info:
        load_dataset({"path": str(path), "target": "defaulted"})
    message = str(info.value)
    assert str(path) in message and "defaulted" in message and "purpose" in message


def test_bad_specs_are_spec_errors(tmp_path: Path) -> None:
    path = tmp_path / "loans.csv"
    loans().to_csv(path, index=False)
    with pytest.raises(SpecError, match="valid fields"):
        load_dataset({"path": str(path), "target": "default", "colour": "red"})
    with pytest.raises(SpecError, match="exactly one"):
        load_dataset({"target": "default"})
    with pytest.raises(SpecError, match="classification, regression"):
        load_dataset({"path": str(path), "target": "default", "task": "ranking"})
    with pytest.raises(SpecError, match="both"):
        load_dataset(
            {"path": str(path), "target": "default", "numeric": ["term"], "categorical": ["term"]}
        )
    with pytest.raises(DataError, match=r"\.csv, \.parquet"):
        load_dataset({"path": str(tmp_path / "loans.xlsx"), "target": "default"})
    with pytest.raises(DataError, match="not found"):
        load_dataset({"path": str(tmp_path / "none.csv"), "target": "default"})


def test_rows_without_target_are_dropped(tmp_path: Path) -> None:
    frame = loans(10)
    frame["loss"] = frame["loss"].astype(float)
    frame.loc[[2, 5], "loss"] = np.nan
    path = tmp_path / "l.parquet"
    frame.to_parquet(path)
    data = load_dataset({"path": str(path), "target": "loss"})
    assert len(data.X) == 8 and data.metadata["rows_dropped_missing_target"] == "2"
    assert data.y.notna().all()


def test_sqlite_table_through_the_settings_database() -> None:
    settings = get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(settings.database_url)
    loans().drop(columns=["opened"]).to_sql("loans", engine, index=False)
    engine.dispose()
    data = load_dataset({"sql": "select * from loans where term = 12", "target": "default"})
    expected = loans().query("term == 12")
    assert len(data.X) == len(expected) and data.name == "sql"
    assert data.y.tolist() == expected["default"].tolist()
    assert "purpose" in data.roles.categorical
    with pytest.raises(DataError, match="no such table"):
        load_dataset({"sql": "select * from missing_table", "target": "default"})


@pytest.mark.postgres
def test_postgres_query_with_explicit_url(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    loans().to_sql("loans", engine, index=False)
    engine.dispose()
    data = load_dataset(
        {"sql": "select amount, purpose, has_guarantor, opened, \"default\" from loans",
         "url": postgres_url, "target": "default", "time_column": "opened"}
    )  # fmt: skip
    assert len(data.X) == 60 and data.task is Task.CLASSIFICATION
    assert data.roles.boolean == ("has_guarantor",)
    assert pd.api.types.is_datetime64_any_dtype(data.X["opened"])
    assert "postgresql" in data.source
    password = sa.engine.make_url(postgres_url).password
    if password:
        assert password not in data.source


def test_csv_time_column_text_is_parsed_and_groups_are_not_features(tmp_path: Path) -> None:
    path = tmp_path / "loans.csv"
    loans(12).to_csv(path, index=False)
    data = load_dataset(
        {"path": str(path), "target": "default", "time_column": "opened", "groups": "purpose"}
    )
    assert pd.api.types.is_datetime64_any_dtype(data.X["opened"])
    assert data.X["opened"].iloc[0] == pd.Timestamp("2023-01-01")
    assert "purpose" not in data.X.columns and "purpose" not in data.roles.all
    assert data.groups.tolist() == loans(12)["purpose"].tolist()
    assert "opened" not in data.roles.all
