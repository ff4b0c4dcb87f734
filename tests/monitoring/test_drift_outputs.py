"""HTML and JSON reports, the drift_reports table (SQLite and PostgreSQL), window tests."""

import json

import numpy as np
import pandas as pd
import pytest

from mlfactory.db import get_engine
from mlfactory.exceptions import DataError, SpecError
from mlfactory.monitoring import (
    detect_drift,
    publish_report,
    read_drift_reports,
    render_html,
    window_drift,
)
from mlfactory.settings import load_settings


def _report(n_features: int = 20, n: int = 2_000):
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(n_features - 2)})
    # clean columns: the same values shuffled (identical distributions, KS statistic 0)
    current = reference.sample(frac=1.0, random_state=1).reset_index(drop=True)
    current["x0"] += 0.5
    for frame, p in ((reference, [0.5, 0.3, 0.2]), (current, [0.2, 0.3, 0.5])):
        frame["shifted_cat"] = rng.choice(np.array(["a", "b", "c"]), n, p=p)
        frame["flat"] = 1.0
    return detect_drift(reference, current)


def test_html_is_self_contained_small_and_drifted_first():
    report = _report()
    page = render_html(report)
    assert len(page.encode()) < 1_000_000
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert page.count('<svg viewBox="0 0 ') == 19  # every testable feature ("flat" is not)
    first_section = page.index("<section>")
    assert page.index("<h3>x0 ", first_section) < page.index("<h3>x1 ", first_section)
    assert page.index("<h3>shifted_cat", first_section) < page.index("<h3>x1 ", first_section)
    assert "constant (1) in both samples" in page


def test_publish_writes_files_and_a_row_sqlite(tmp_path):
    settings = load_settings()
    report = _report(n_features=5)
    published = publish_report(settings, report, tmp_path / "out")
    document = json.loads(published.files.json.read_text())
    assert document["drifted_features"] == ["x0", "shifted_cat"]
    assert document["features"][0]["column"] == "x0"
    assert document["features"][0]["p_adjusted"] < 0.05
    rows = read_drift_reports(get_engine(settings.database_url))
    assert len(rows) == 1 and rows.loc[0, "id"] == published.report_id
    assert bool(rows.loc[0, "drifted"]) is True
    assert rows.loc[0, "share_drifted"] == pytest.approx(2 / 4)
    stored = rows.loc[0, "report"]
    assert {f["column"]: f["status"] for f in stored["features"]}["flat"] == "not testable"
    publish_report(settings, report, tmp_path / "again")
    assert len(read_drift_reports(get_engine(settings.database_url))) == 2


@pytest.mark.postgres
def test_drift_reports_rows_in_postgres(postgres_url, tmp_path):
    settings = load_settings(db_url=postgres_url)
    report = _report(n_features=4)
    report.model = "churn/3"
    first = publish_report(settings, report, tmp_path / "a")
    second = publish_report(settings, report, tmp_path / "b")
    rows = read_drift_reports(get_engine(postgres_url), model="churn/3")
    assert rows["id"].tolist() == [first.report_id, second.report_id]
    assert rows.loc[0, "n_drifted"] == 2 and rows.loc[0, "n_features"] == 4
    assert rows.loc[0, "report"]["drifted_features"] == ["x0", "shifted_cat"]
    assert rows.loc[0, "created_at"].tzinfo is not None


def _daily(shift_from: str, years: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(2)  # a clean pair is a 5% coin flip; this seed draws "ok"
    dates = pd.date_range("2018-03-01", periods=365 * years, freq="D")
    values = rng.normal(0.0, 0.01, size=len(dates))
    values[dates >= pd.Timestamp(shift_from)] *= 3.0  # volatility triples
    return pd.DataFrame({"date": dates, "returns": values})


def test_window_drift_march_to_march_finds_the_changed_year():
    table = window_drift(_daily("2020-03-01"), "returns", freq="year", anchor_month=3)
    assert table["window"].tolist() == ["2018-03..2019-02", "2019-03..2020-02", "2020-03..2021-02"]
    assert table["status"].tolist() == ["ok", "drift", "ok"]
    from scipy import stats

    frame = _daily("2020-03-01")
    a = frame.loc[(frame.date >= "2019-03-01") & (frame.date < "2020-03-01"), "returns"]
    b = frame.loc[(frame.date >= "2020-03-01") & (frame.date < "2021-03-01"), "returns"]
    expected = stats.ks_2samp(a, b)
    assert table.loc[1, "ks_statistic"] == pytest.approx(expected.statistic)
    assert table.loc[1, "p_value"] == pytest.approx(expected.pvalue)
    quarters = window_drift(
        _daily("2020-03-01", years=2), "returns", freq="quarter", anchor_month=3
    )
    assert quarters["window"].iloc[0] == "2018-03..2018-05"
    with pytest.raises(SpecError, match="expected one of year, quarter, month"):
        window_drift(_daily("2020-03-01"), "returns", freq="week")
    with pytest.raises(DataError, match="column 'nope' not found"):
        window_drift(_daily("2020-03-01"), "nope")
