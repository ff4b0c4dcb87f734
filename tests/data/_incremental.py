"""Two tickers whose first days sit at a year's end, for the incremental silver tests.

A starts with 3 days of 2021 (fewer than the 20-day window looks back); B with 2 days of 2022
(fewer than the 5 days the target looks ahead), so context rows span several year files.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from mlfactory.data import BronzeStore, SyntheticSource, ingest

TICKERS = pd.DataFrame({"ticker": ["A", "B"], "sector": ["E", "F"], "subsector": ["e", "f"]})
STARTS = {"A": date(2021, 12, 29), "B": date(2022, 12, 29)}
WINDOWS, HORIZON = (3, 20), 5


def ingest_until(bronze: Path, end: date) -> None:
    """Every ticker's synthetic days from its start up to ``end`` (those already there kept)."""
    store = BronzeStore(bronze, fsync=False)
    for ticker, start in STARTS.items():
        if end >= start:
            row = TICKERS[TICKERS["ticker"] == ticker]
            assert not ingest(store, row, SyntheticSource(seed=3), start, end).failures
