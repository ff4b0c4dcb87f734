"""examples/stocks_fleet_sector.toml: one model per sector over a small synthetic feature store
(the real ingest -> featurize path), through the CLI."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from typer.testing import CliRunner

from mlfactory.cli import app
from mlfactory.data import SyntheticSource, featurize, ingest
from mlfactory.datasets import load_dataset
from mlfactory.db import get_engine
from mlfactory.db._tables import SEGMENT_RESULTS
from mlfactory.fleet import FALLBACK_KEY
from mlfactory.settings import get_settings
from mlfactory.spec import load_spec

runner = CliRunner()
EXAMPLE = Path(__file__).parents[2] / "examples" / "stocks_fleet_sector.toml"
# two sectors of two tickers (about 280 feature rows each: a model each) and one sector of one
# ticker listed later (about 55 rows: under min_rows = 250, scored by the fallback)
TICKERS = pd.DataFrame(
    {
        "ticker": ["AAA", "BBB", "CCC", "DDD", "EEE"],
        "sector": ["Tech", "Tech", "Energy", "Energy", "Utilities"],
        "subsector": ["a", "b", "c", "d", "e"],
    }
)


def _store() -> None:
    settings = get_settings()
    source = SyntheticSource(seed=3)
    start, end = date(2021, 1, 1), date(2021, 7, 20)
    report = ingest(settings, TICKERS.head(4), source, start, end)
    assert all(outcome.error is None for outcome in report.outcomes)
    report = ingest(settings, TICKERS.tail(1), source, date(2021, 5, 1), end)
    assert all(outcome.error is None for outcome in report.outcomes)
    assert featurize(settings, horizon=1, scheduler="synchronous").ok


def test_the_sector_example_trains_one_model_per_sector() -> None:
    _store()
    data = load_dataset("stocks")
    sectors = data.X["sector"].groupby(data.X["sector"]).size()
    assert set(sectors.index) == {"Tech", "Energy", "Utilities"}
    assert sectors["Tech"] >= 250 and sectors["Energy"] >= 250 and sectors["Utilities"] < 250

    shown = runner.invoke(app, ["spec", "show", str(EXAMPLE), "--json"])
    assert shown.exit_code == 0, shown.output
    plan = json.loads(shown.stdout)["segments"]
    rows = {row["segment"]: row for row in plan["segment_rows"]}
    assert plan["by"] == ["sector"] and set(rows) == {"Tech", "Energy", "Utilities"}
    assert rows["Tech"]["model"] == rows["Energy"]["model"] == "own"
    assert rows["Utilities"]["model"] == "fallback (global)"
    resolved = load_spec(EXAMPLE).resolve(get_settings())  # the split purges a few dates
    split = resolved.dataset.X["sector"].iloc[[*resolved.train_idx, *resolved.test_idx]]
    in_split = split.value_counts().to_dict()
    assert {k: r["rows"] for k, r in rows.items()} == in_split

    result = runner.invoke(app, ["train", str(EXAMPLE), "--jobs", "1"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "fleet stocks-fleet-sector: 3 segments — 2 trained" in text
    assert "1 on the fallback" in text
    with get_engine(get_settings().database_url).connect() as connection:
        table = SEGMENT_RESULTS
        recorded = pd.read_sql(sa.select(table).order_by(table.c.id), connection)
    status = dict(zip(recorded["segment"], recorded["status"], strict=True))
    assert status == {
        "Tech": "trained",
        "Energy": "trained",
        "Utilities": "fallback",
        FALLBACK_KEY: "trained",
    }
    by_key = recorded.set_index("segment")
    for sector in ("Tech", "Energy"):  # each model saw exactly its sector's rows
        seen = by_key.loc[sector, "train_rows"] + by_key.loc[sector, "test_rows"]
        assert seen == in_split[sector]
        assert by_key.loc[sector, "segment_values"] == [sector]
    fallback = by_key.loc[FALLBACK_KEY]
    assert fallback["train_rows"] + fallback["test_rows"] == sum(in_split.values())
