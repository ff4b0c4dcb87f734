"""A user's own messy table on day one: text labels, numbers written as text, and the model
scoring the very file it was trained on. Every case has a planted signal or a known answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, precision_score, recall_score
from sklearn.model_selection import StratifiedKFold

from mlfactory.spec._metrics import positive_class, scorer_for
from mlfactory.training._search import SearchConfig, run_search, score_on


def planted_text_labels(rows: int = 300, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"x": rng.normal(size=rows), "noise": rng.normal(size=rows)})
    y = pd.Series(np.where(X["x"] + 0.5 * rng.normal(size=rows) > 0, "yes", "no"), name="churn")
    return X, y


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (["no", "yes"], "yes"),
        (["good", "bad"], "good"),
        ([0, 1], None),  # scikit-learn's default pos_label=1
        ([True, False], None),
        ([1, 2], None),  # 1 is a label: unchanged
        (["a", "b", "c"], None),  # multiclass: the _macro metrics need no positive class
    ],
)
def test_positive_class_of_text_labels(labels, expected):
    assert positive_class(pd.Series(labels * 3)) == expected


def test_text_labels_train_with_every_default_binary_metric():
    """'no'/'yes' targets failed every binary metric ('pos_label=1 is not a valid label'), so
    training ended 'every candidate failed: fit failed on some folds'."""
    X, y = planted_text_labels()
    config = SearchConfig(kind="none", scoring=("neg_log_loss", "roc_auc", "f1", "precision"))
    cv = StratifiedKFold(2, shuffle=True, random_state=0)
    outcome = run_search(LogisticRegression(), X, y, cv, config)
    assert (outcome.candidates["status"] == "ok").all()
    assert outcome.best_scores["roc_auc"] > 0.9  # planted: x decides the label
    model = outcome.best_estimator
    scores = score_on(model, X, y, ["f1", "precision", "recall"])
    predicted = model.predict(X)
    assert scores["f1"] == pytest.approx(f1_score(y, predicted, pos_label="yes"))
    assert scores["precision"] == pytest.approx(precision_score(y, predicted, pos_label="yes"))
    assert scores["recall"] == pytest.approx(recall_score(y, predicted, pos_label="yes"))
    assert scorer_for("neg_brier_score", y)(model, X, y) < 0


def test_a_metric_that_cannot_be_computed_is_named():
    """A fit that works but scores NaN said 'fit failed on some folds'; now the metric is named."""
    X, y = planted_text_labels()
    config = SearchConfig(kind="none", scoring=("neg_log_loss", "f1_samples"))
    cv = StratifiedKFold(2, shuffle=True, random_state=0)
    with pytest.raises(Exception, match=r"metric 'f1_samples' cannot be computed: .*multilabel"):
        run_search(LogisticRegression(), X, y, cv, config)


def test_constant_column_reason_shows_the_value_as_written():
    """The reason read 'one value only (np.int64(7))'."""
    from mlfactory.datasets._roles import decide_roles

    frame = pd.DataFrame({"const": [7] * 30, "x": np.arange(30.0) / 3})
    reasons = {d.column: d.reason for d in decide_roles(frame).decisions}
    assert reasons["const"] == "one value only (7)"


def test_spec_show_roles_title_names_the_override_table(tmp_path):
    """Rich read '[dataset.roles]' as markup: the title said 'override with )'."""
    from typer.testing import CliRunner

    from mlfactory.cli import app

    X, y = planted_text_labels(60)
    X.assign(churn=y).to_csv(tmp_path / "t.csv", index=False)
    spec = tmp_path / "s.toml"
    spec.write_text('name = "t"\nmodel = "LogisticRegression"\n[dataset]\npath = "t.csv"\n'
                    'target = "churn"\n[cv]\nfolds = 2\n[search]\nkind = "none"\n')  # fmt: skip
    shown = CliRunner().invoke(app, ["spec", "show", str(spec)], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    assert "column roles (override with [dataset.roles])" in shown.output


def test_a_numeric_column_with_a_few_stray_words_is_said_loudly(tmp_path, caplog) -> None:
    """'age' with two 'unknown' and one 'n.a' becomes 64 categories: not silently."""
    import logging

    from mlfactory.datasets import load_dataset
    from mlfactory.datasets._roles import decide_roles

    rng = np.random.default_rng(0)
    age = [str(int(a)) for a in rng.integers(18, 80, 300)]
    age[3] = age[9] = "unknown"
    age[20] = "n.a"
    frame = pd.DataFrame({"age": age, "plan": rng.choice(["a", "b"], 300)})
    reasons = {row["column"]: row["reason"] for row in decide_roles(frame).table()}
    assert reasons["age"].endswith(
        "mostly numbers (99%): 'unknown' (2), 'n.a' (1) are not numbers, so every value is a "
        "category; blank those cells to use it as a number"
    )
    assert "mostly numbers" not in reasons["plan"]
    frame["y"] = rng.integers(0, 2, 300)
    path = tmp_path / "ages.csv"
    frame.to_csv(path, index=False)
    with caplog.at_level(logging.WARNING, logger="mlfactory"):
        load_dataset({"path": str(path), "target": "y"})
    warned = [r.getMessage() for r in caplog.records if "mostly numbers" in r.getMessage()]
    assert len(warned) == 1 and "column 'age'" in warned[0], warned
    # the planted fix: blank cells make it a number again
    frame.loc[[3, 9, 20], "age"] = ""
    reasons = {row["column"]: row["role"] for row in decide_roles(frame.drop(columns="y")).table()}
    assert reasons["age"] == "numeric"


def test_currency_and_percent_signs_on_every_value_are_numbers_as_written() -> None:
    """'$73,369' and '14.2%' were identifiers, dropped; the number as written (never / 100)."""
    from mlfactory._conform import conform_inputs
    from mlfactory.datasets._roles import decide_roles, parse_numbers
    from mlfactory.schema import InputColumn

    rng = np.random.default_rng(4)
    income = rng.integers(20_000, 200_000, 60)
    rate = rng.integers(0, 300, 60) / 10
    frame = pd.DataFrame(
        {
            "income": [f"${v:,}" for v in income],
            "rate": [f"{v}%" for v in rate],
            "eur": [f"-€{v:,.2f}".replace(",", " ").replace(".", ",") for v in rate],
            "mixed": [f"${v}" if i % 2 else str(v) for i, v in enumerate(income)],
        }
    )
    inference = decide_roles(frame)
    roles = {d.column: (d.role, d.reason) for d in inference.decisions}
    assert roles["income"] == (
        "numeric",
        "text read as numbers (decimal point, currency sign removed)",
    )
    assert roles["rate"][0] == "numeric" and "percent sign removed" in roles["rate"][1]
    assert roles["eur"][0] == "numeric"
    assert roles["mixed"][0] != "numeric"  # a sign on some values only is not the column's unit
    assert inference.X["income"].tolist() == income.astype(float).tolist()
    assert inference.X["rate"].to_numpy() == pytest.approx(rate)
    assert inference.X["eur"].to_numpy() == pytest.approx(-rate)
    # rows to score written the same way convert alike
    inputs = [InputColumn("income", "double"), InputColumn("rate", "double")]
    scored = conform_inputs(frame[["income", "rate"]], inputs, "input x.csv")
    assert scored["income"].tolist() == income.astype(float).tolist()
    assert parse_numbers(pd.Series(["12%", "abc%"])) is None
