"""The small I/O paths a new trading day runs once per ticker: the bronze read through a memory
map, the dates as a view of the date32 column, and the old blocks deleted in threads."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlfactory.data._featurize import _days, _delete_all, _read_bronze_file
from mlfactory.data._layout import BRONZE_SCHEMA
from mlfactory.exceptions import DataError
from mlfactory.storage import Location


def _bronze_table(days: list[date | None]) -> pa.Table:
    n = len(days)
    values = {
        "date": pa.array(days, pa.date32()),
        **{c: pa.array(np.arange(n, dtype=float) + 1) for c in ("open", "high", "low", "close")},
        "adj_close": pa.array(np.arange(n, dtype=float) + 0.5),
        "volume": pa.array(np.arange(n, dtype=np.int64)),
        "sector": pa.array(["S"] * n),
        "subsector": pa.array(["s"] * n),
    }
    return pa.table(values)


def test_days_are_days_since_the_epoch_for_one_chunk_several_and_with_nulls():
    one = _bronze_table([date(1970, 1, 2), date(2025, 12, 31)])
    assert _days(one).tolist() == [1, 20453]
    several = pa.concat_tables([one, _bronze_table([date(1969, 12, 31)])])
    assert several.column("date").num_chunks == 2
    assert _days(several).tolist() == [1, 20453, -1]
    assert _days(several.combine_chunks().slice(1, 2)).tolist() == [20453, -1]  # an offset
    with_null = _bronze_table([date(2000, 1, 1), None])
    assert _days(with_null)[0] == 10957  # the cast path (a view would read the null's slot)


def test_a_bronze_file_read_through_a_memory_map_equals_the_written_table(tmp_path: Path):
    table = _bronze_table([date(2025, 1, 2), date(2025, 1, 3), date(2025, 1, 6)]).cast(
        BRONZE_SCHEMA
    )
    path = tmp_path / "part-0.parquet"
    pq.write_table(table, path)
    read = _read_bronze_file(str(path), {})
    assert read.equals(table)
    path.write_bytes(b"PAR1 not a parquet file")
    with pytest.raises(DataError, match=r"cannot read bronze file .*part-0\.parquet"):
        _read_bronze_file(str(path), {})


def test_every_old_block_is_deleted_missing_ones_included(tmp_path: Path):
    paths = [tmp_path / f"part-{i}.parquet" for i in range(20)]
    for path in paths[:-1]:
        path.write_bytes(b"x")
    _delete_all([Location(str(p), str(p), {}) for p in paths])  # the last one never existed
    assert list(tmp_path.iterdir()) == []
