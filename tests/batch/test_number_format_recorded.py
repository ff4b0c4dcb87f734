"""A model remembers how its training read text as numbers: a batch whose values read either way
(``"2,718"``: 2.718 or 2718? ``"12.345"``: 12.345 or 12345?) is read as training read the column,
never by a guess that changes every score silently."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlfactory.batch import batch_predict
from mlfactory.datasets import load_dataset
from mlfactory.explain import load_explain_data, open_model
from mlfactory.registry import load_model, promote
from mlfactory.settings import load_settings
from mlfactory.training import train

SPEC = """
name = "comma"
preprocessing = "basic"
model = "LogisticRegression"
seed = 0
[dataset]
path = "{path}"
target = "bought"
[cv]
folds = 2
[search]
kind = "none"
"""


def _comma(value: float, decimals: int) -> str:
    """A number as a decimal-comma spreadsheet writes it: ``12.345,6``."""
    text = f"{value:,.{decimals}f}"
    return text.translate(str.maketrans({",": ".", ".": ","}))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    """Trained on a ``;`` decimal-comma export with a planted signal in both columns."""
    folder = tmp_path_factory.mktemp("comma")
    settings = load_settings(home=folder / ".mlfactory")
    rng = np.random.default_rng(3)
    rows = 400
    places = rng.integers(1, 4, rows)  # 1 to 3 decimals
    drawn = rng.uniform(0, 5, rows)
    ratio = np.array([round(v, int(d)) for v, d in zip(drawn, places, strict=True)])
    income = rng.uniform(1_000, 90_000, rows).round(2)
    logit = 1.2 * (ratio - 2.5) + (income - 45_000) / 20_000
    bought = rng.random(rows) < 1 / (1 + np.exp(-logit))
    frame = pd.DataFrame(
        {
            "ratio": [_comma(v, 3).rstrip("0").rstrip(",") for v in ratio],  # "2,5", "2,718"
            "income": [_comma(v, 2) for v in income],  # "12.345,67"
            "bought": np.where(bought, "yes", "no"),
        }
    )
    csv = folder / "train.csv"
    frame.to_csv(csv, sep=";", index=False)
    (folder / "comma.toml").write_text(SPEC.format(path=csv.as_posix()))
    result = train(folder / "comma.toml", settings)
    promote(settings, "comma", run_id=result.run_id)
    dataset = load_dataset({"path": str(csv), "target": "bought"})
    assert dataset.number_formats == {"ratio": "decimal comma", "income": "decimal comma"}
    return settings, folder


def _ambiguous_batch(folder, rows: int = 60) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every ratio with exactly three decimals, every income a whole number: each value reads
    as a decimal point number too. Returns (the file's rows, the numbers they mean)."""
    rng = np.random.default_rng(8)
    ratio = rng.integers(1_001, 4_999, rows) / 1000  # 1.001 .. 4.998, never a trailing 0 cut
    ratio[ratio * 1000 % 10 == 0] += 0.001
    income = rng.integers(2, 89, rows) * 1000 + rng.integers(1, 999, rows)  # 2.001 .. 89.998
    meant = pd.DataFrame({"ratio": ratio, "income": income.astype(float)})
    text = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(rows)],
            "ratio": [_comma(v, 3) for v in ratio],  # "2,718": 2.718 in this model's data
            "income": [_comma(v, 0) for v in income],  # "12.345": 12345 in this model's data
        }
    )
    assert text["ratio"].str.fullmatch(r"\d,\d{3}").all()
    assert text["income"].str.fullmatch(r"\d{1,2}\.\d{3}").all()
    return text, meant


def test_predict_reads_an_ambiguous_batch_as_training_read_the_columns(trained):
    settings, folder = trained
    text, meant = _ambiguous_batch(folder)
    source = folder / "batch.csv"
    text.to_csv(source, sep=";", index=False)
    model = load_model(settings, "comma")
    assert {c.name: c.number_format for c in model.inputs} == {
        "ratio": "decimal comma",
        "income": "decimal comma",
    }
    expected = model.model.predict_proba(meant[model.feature_names])[:, 1]
    batch_predict(
        settings, "comma", input_path=source, output_path=folder / "out", key_columns=["id"]
    )
    out = pd.read_parquet(folder / "out").set_index("id").loc[text["id"]]
    assert out["proba_yes"].to_numpy() == pytest.approx(expected, abs=1e-6)
    # what a guess made of it: thousands for "2,718", decimals for "12.345"
    guessed = model.model.predict_proba(
        meant.assign(ratio=meant["ratio"] * 1000, income=meant["income"] / 1000)
    )[:, 1]
    assert np.abs(guessed - expected).max() > 0.3


def test_explain_data_reads_an_ambiguous_file_as_training_did(trained):
    settings, folder = trained
    text, meant = _ambiguous_batch(folder, rows=40)
    source = folder / "explain.csv"
    text.assign(bought=["yes", "no"] * 20).to_csv(source, sep=";", index=False)
    X = load_explain_data(settings, open_model(settings, "comma"), str(source)).X
    assert X["ratio"].to_numpy() == pytest.approx(meant["ratio"].to_numpy())
    assert X["income"].to_numpy() == pytest.approx(meant["income"].to_numpy())
