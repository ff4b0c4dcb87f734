"""mlfactory.data._arrow agrees with pyarrow's own conversions, and featurize needs no pandas."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mlfactory.data._arrow import (
    date_days,
    flag_array,
    float_array,
    float_values,
    index_array,
    null_mask,
    repeated_strings,
)

RNG = np.random.default_rng(5)


def test_float_array_is_pa_array_from_pandas():
    values = RNG.normal(size=200)
    values[RNG.random(200) < 0.2] = np.nan
    built = float_array(values)
    assert built.equals(pa.array(values, type=pa.float64(), from_pandas=True))
    assert built.null_count == int(np.isnan(values).sum()) > 0
    assert float_array(np.arange(3.0)).null_count == 0
    assert float_array(np.empty(0)).equals(pa.array([], pa.float64()))


def test_flag_array_is_pa_array_with_a_mask():
    values = RNG.integers(0, 2, 50).astype(np.int8)
    missing = RNG.random(50) < 0.3
    assert flag_array(values, missing).equals(pa.array(values, type=pa.int8(), mask=missing))


def test_strings_and_indices():
    built = repeated_strings(["AB", "", "é"], [2, 3, 1])
    assert built.to_pylist() == ["AB", "AB", "", "", "", "é"]
    assert repeated_strings([], []).to_pylist() == []
    assert index_array(np.array([3, 1, 2], dtype=np.int32)).to_pylist() == [3, 1, 2]


@pytest.mark.parametrize("offset", [0, 3, 13])
def test_values_of_sliced_chunked_columns_with_nulls(offset):
    """Slices start inside a validity byte; chunks join; nulls become NaN."""
    values = [None if i % 7 == 0 else float(i) for i in range(40)]
    column = pa.chunked_array([pa.array(values[:25]), pa.array(values[25:])]).slice(offset, 30)
    expected = column.to_numpy()  # pyarrow: nulls as NaN
    np.testing.assert_array_equal(float_values(column), expected)
    chunk = column.chunk(0)
    np.testing.assert_array_equal(null_mask(chunk), chunk.is_null().to_numpy(zero_copy_only=False))
    assert float_values(pa.chunked_array([], pa.float64())).shape == (0,)
    assert float_values(pa.array([1, 2], pa.int64())).dtype == np.float64  # cast first


def test_date_days():
    days = pa.chunked_array([pa.array([date(1970, 1, 2), date(2024, 2, 29)]).slice(1)] * 2)
    assert date_days(days).tolist() == [19782, 19782]
    with pytest.raises(ValueError, match="date32 column without nulls"):
        date_days(pa.array([date(2024, 1, 1), None]))


def test_featurize_and_a_new_day_import_no_pandas(tmp_path):
    """pa.array and Array.to_numpy import pandas (0.25 s): featurize (and so each of its
    worker processes) uses neither, for a full build as for a new day."""
    setup = textwrap.dedent(
        f"""
        import sys
        from datetime import date
        import pandas as pd
        from mlfactory.settings import load_settings
        from mlfactory.data import BronzeStore, SyntheticSource, ingest

        store = BronzeStore.from_settings(load_settings(home={str(tmp_path)!r}), fsync=False)
        tickers = pd.DataFrame({{"ticker": ["A", "B"], "sector": ["E", "F"],
                                "subsector": ["e", "f"]}})
        end = date.fromisoformat(sys.argv[1])
        ingest(store, tickers, SyntheticSource(seed=1), date(2022, 1, 3), end)
        """
    )
    check = textwrap.dedent(
        f"""
        import json, sys
        from mlfactory.settings import load_settings
        from mlfactory.data import featurize
        report = featurize(load_settings(home={str(tmp_path)!r}), scheduler="synchronous")
        print(json.dumps([len(report.written), len(report.appended), "pandas" in sys.modules]))
        """
    )
    (tmp_path / "setup.py").write_text(setup)
    (tmp_path / "check.py").write_text(check)

    def run(script: str, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, tmp_path / script, *args], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""

    run("setup.py", "2023-12-27")
    assert json.loads(run("check.py")) == [2, 0, False]  # a full build
    run("setup.py", "2023-12-28")
    assert json.loads(run("check.py")) == [2, 2, False]  # the new day appended to the delta


def test_featurize_allocates_from_jemalloc_unless_a_pool_was_chosen(monkeypatch):
    from mlfactory.data import BronzeStore, SyntheticSource, featurize, ingest
    from mlfactory.settings import get_settings

    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    store = BronzeStore.from_settings(get_settings(), fsync=False)
    tickers = pd.DataFrame({"ticker": ["A"], "sector": ["E"], "subsector": ["e"]})
    ingest(store, tickers, SyntheticSource(seed=1), date(2024, 1, 2), date(2024, 2, 1))
    before = pa.default_memory_pool().backend_name
    seen = []

    def pool_now(*args) -> None:
        seen.append(pa.default_memory_pool().backend_name)

    assert featurize(progress=pool_now, force=True).ok
    has_jemalloc = "jemalloc" in pa.supported_memory_backends()  # pyarrow's Linux wheels have it
    assert seen == ["jemalloc" if has_jemalloc else before]
    assert pa.default_memory_pool().backend_name == before
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "system")  # the user's choice stands
    seen.clear()
    assert featurize(progress=pool_now, force=True).ok
    assert seen == [before]
