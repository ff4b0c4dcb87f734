"""featurize pauses the cyclic garbage collector while it runs, and restores it."""

from __future__ import annotations

import gc
from datetime import date

import pandas as pd
import pytest

from mlfactory._gc import gc_paused
from mlfactory.data import BronzeStore, SyntheticSource, featurize, ingest
from mlfactory.exceptions import ConfigError
from mlfactory.settings import get_settings

TICKERS = pd.DataFrame({"ticker": ["A"], "sector": ["E"], "subsector": ["e"]})


@pytest.fixture(autouse=True)
def collector_on():
    gc.enable()
    yield
    gc.enable()


def test_paused_inside_restored_after_and_a_pause_before_is_kept():
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()
    gc.disable()
    with gc_paused():
        pass
    assert not gc.isenabled()


def test_featurize_runs_paused():
    store = BronzeStore.from_settings(get_settings(), fsync=False)
    report = ingest(store, TICKERS, SyntheticSource(seed=1), date(2024, 1, 2), date(2024, 3, 1))
    assert report.rows_added > 0
    seen = []
    assert featurize(progress=lambda *args: seen.append(gc.isenabled())).ok
    assert seen == [False] and gc.isenabled()
    with pytest.raises(ConfigError):  # an error restores the collector too
        featurize(scheduler="fastest")
    assert gc.isenabled()
