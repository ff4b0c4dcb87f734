"""Scoring the file a user trained on, as they wrote it: numbers with thousands separators or a
decimal comma, ``;`` exports, text booleans, blank categories, a text label. ``predict`` and
``explain --data`` read it as training did, so the scores equal the model's on the training rows;
a value training never saw the like of is one line naming the column and the value."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlfactory.batch import batch_predict
from mlfactory.datasets import load_dataset
from mlfactory.exceptions import DataError
from mlfactory.explain import load_explain_data, open_model
from mlfactory.registry import load_model, promote
from mlfactory.settings import Settings, load_settings
from mlfactory.training import train

SPEC = """
name = "edges"
preprocessing = "basic"
model = "LogisticRegression"
seed = 0
[dataset]
path = "{path}"
target = "churn"
[cv]
folds = 2
[search]
kind = "none"
"""


def messy_frame(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    """A planted signal in ``income`` and ``member``, written the way spreadsheets write them."""
    rng = np.random.default_rng(seed)
    income = rng.lognormal(10, 0.8, size=rows)
    member = rng.random(rows) < 0.5
    plan = rng.choice(["basic", "pro", "team"], size=rows).astype(object)
    plan[rng.random(rows) < 0.1] = None  # blank cells
    logit = 1.5 * (np.log(income) - 10) / 0.8 + 1.2 * member - 0.6
    churn = rng.random(rows) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame(
        {
            "customer": [f"C{i:05d}" for i in range(rows)],
            "income": [f"{v:,.2f}" for v in income],  # "12,345.67"
            "member": np.where(member, "True", "FALSE"),
            "plan": plan,
            "churn": np.where(churn, "yes", "no"),
        }
    )


@dataclass
class Trained:
    settings: Settings
    folder: Path
    csv: Path
    frame: pd.DataFrame


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    folder = tmp_path_factory.mktemp("edges")
    settings = load_settings(home=folder / ".mlfactory")
    frame = messy_frame()
    csv = folder / "customers.csv"
    frame.to_csv(csv, index=False)
    spec = folder / "edges.toml"
    spec.write_text(SPEC.format(path=csv.as_posix()))
    result = train(spec, settings)
    promote(settings, "edges", run_id=result.run_id)
    return Trained(settings, folder, csv, frame)


def expected_proba(trained: Trained) -> np.ndarray:
    """P(yes) of the registered model on the rows as training read them."""
    dataset = load_dataset({"path": str(trained.csv), "target": "churn"})
    model = load_model(trained.settings, "edges")
    assert model.inputs and {c.name: c.type for c in model.inputs}["income"] == "double"
    return model.model.predict_proba(dataset.X[model.feature_names])[:, 1]


def scored(trained: Trained, source: Path, out: str) -> pd.DataFrame:
    batch_predict(
        trained.settings,
        "edges",
        input_path=source,
        output_path=trained.folder / out,
        key_columns=["customer"],
    )
    return pd.read_parquet(trained.folder / out).set_index("customer").loc[trained.frame.customer]


def test_predict_scores_the_training_file_as_training_read_it(trained):
    """'could not convert string to float: 12,345.67' before; then pd.NA in the blank plan
    cells: 'boolean value of NA is ambiguous'."""
    out = scored(trained, trained.csv, "same")
    assert out["proba_yes"].to_numpy() == pytest.approx(expected_proba(trained), abs=1e-6)
    assert set(out["prediction"]) == {"yes", "no"}


def test_predict_reads_a_semicolon_decimal_comma_export(trained):
    """The same rows saved by a decimal-comma spreadsheet: ``;`` between fields, ``12.345,67``."""
    swapped = trained.frame["income"].str.translate(str.maketrans({",": ".", ".": ","}))
    frame = trained.frame.assign(income=swapped, member=trained.frame["member"].str.lower())
    frame = frame.iloc[::-1]  # and the rows in another order, the columns too
    source = trained.folder / "export.csv"
    frame[["plan", "member", "churn", "income", "customer"]].to_csv(source, sep=";", index=False)
    out = scored(trained, source, "export")
    assert out["proba_yes"].to_numpy() == pytest.approx(expected_proba(trained), abs=1e-6)


def test_text_where_a_number_was_is_named(trained):
    frame = trained.frame.copy()
    frame.loc[7, "income"] = "unknown"
    source = trained.folder / "stray.csv"
    frame.to_csv(source, index=False)
    with pytest.raises(DataError, match=r"stray\.csv: column 'income' holds 'unknown' where"):
        scored(trained, source, "stray")
    assert not (trained.folder / "stray").exists()


def test_plain_numbers_past_the_sampled_rows_and_a_late_stray_value(trained, monkeypatch):
    """Numbers written plainly are parsed by the CSV reader itself (the sample of the first rows
    decides: the fast path); a stray word after the sample is still one line naming it."""
    import mlfactory.batch._batch as batch_module

    monkeypatch.setattr(batch_module, "_SAMPLE_ROWS", 50)  # the file's first 50 rows only
    dataset = load_dataset({"path": str(trained.csv), "target": "churn"})
    plain = trained.frame.assign(income=dataset.X["income"].to_numpy())  # 12345.67, no comma
    source = trained.folder / "plain.csv"
    plain.to_csv(source, index=False)
    assert batch_module._read_dtypes(load_model(trained.settings, "edges").inputs, source, ",") == {
        "income": "float64",
        "member": "object",
    }
    out = scored(trained, source, "plain")
    assert out["proba_yes"].to_numpy() == pytest.approx(expected_proba(trained), abs=1e-6)

    plain["income"] = plain["income"].astype(object)
    plain.loc[250, "income"] = "unknown"  # after the 50 sampled rows
    late = trained.folder / "late.csv"
    plain.to_csv(late, index=False)
    with pytest.raises(DataError, match=r"late\.csv: 'unknown' where the model expects a number"):
        scored(trained, late, "late")
    assert not (trained.folder / "late").exists()


def test_explain_data_reads_the_training_file(trained):
    """explain --data on the training file: exit 4 ('Cannot use median strategy with
    non-numeric data'), then on the rows without a label; now they are dropped, as in training."""
    frame = trained.frame.copy()
    frame.loc[[3, 9], "churn"] = None
    source = trained.folder / "explain.csv"
    frame.to_csv(source, index=False)
    model = open_model(trained.settings, "edges")
    data = load_explain_data(trained.settings, model, str(source))
    assert len(data.X) == len(frame) - 2 and data.X["income"].dtype == "float64"
    first = float(frame.loc[0, "income"].replace(",", ""))
    assert data.X["income"].iloc[0] == pytest.approx(first)
    assert data.X["member"].tolist() == (frame["member"] == "True").drop([3, 9]).tolist()
