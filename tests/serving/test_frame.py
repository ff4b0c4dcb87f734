"""Request columns -> scoring frame: coercion, nulls, and errors that name the column."""

import re

import numpy as np
import pandas as pd
import pytest

from mlfactory.registry import InputColumn
from mlfactory.serving import PayloadError, build_frame

SCHEMA = [
    InputColumn("x", "double"),
    InputColumn("n", "long"),
    InputColumn("flag", "boolean"),
    InputColumn("city", "string"),
    InputColumn("opt", "double", required=False),
]


def test_forgiving_types_are_coerced_to_the_schema_dtypes():
    batch = build_frame(
        {
            "x": [1, "3.5", None, float("nan")],
            "n": [1, 2.0, "3", 4],
            "flag": [True, "false", 0, 1],
            "city": ["a", 7, None, "b"],
            "extra": [1, 2, 3, 4],
        },
        SCHEMA,
        max_rows=10,
    )
    frame = batch.frame
    assert list(frame.columns) == ["x", "n", "flag", "city", "opt"]  # schema order, extra dropped
    np.testing.assert_array_equal(frame["x"].to_numpy(), [1.0, 3.5, np.nan, np.nan])
    assert frame["x"].dtype == np.float64
    assert frame["n"].tolist() == [1, 2, 3, 4] and frame["n"].dtype == np.int64
    assert frame["flag"].tolist() == [True, False, False, True] and frame["flag"].dtype == bool
    assert frame["city"].tolist()[:2] == ["a", "7"] and pd.isna(frame["city"][2])
    assert frame["opt"].isna().all()  # optional column absent: all nulls, imputed by the model
    assert batch.ignored == ["extra"]
    assert batch.columns["x"] == [1.0, 3.5, None, None]  # JSON-safe values for the log


def test_ints_and_booleans_with_nulls():
    batch = build_frame(
        {"x": [1], "n": [None], "flag": [None], "city": [None]}, SCHEMA[:4], max_rows=5
    )
    assert batch.frame["n"].dtype == np.float64 and batch.frame["n"].isna().all()
    assert str(batch.frame["flag"].dtype) == "boolean"
    assert batch.frame["flag"].astype("float64").isna().all()


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("x", "abc", "column 'x' row 1: 'abc' is not a number (double)"),
        ("x", "inf", "column 'x' row 1: 'inf' is not a number"),
        ("n", 2.5, "column 'n' row 1: 2.5 is not an integer (long)"),
        ("flag", "maybe", "column 'flag' row 1: 'maybe' is not a boolean"),
        ("city", [1], "column 'city' row 1: [1] is not a string"),
        ("x", {"a": 1}, "column 'x' row 1"),
    ],
)
def test_wrong_types_name_column_row_and_type(column, value, expected):
    raw = {"x": [1, 2], "n": [1, 2], "flag": [True, False], "city": ["a", "b"]}
    raw[column] = [raw[column][0], value]
    with pytest.raises(PayloadError, match=re.escape(expected)) as e:
        build_frame(raw, SCHEMA, max_rows=10)
    assert e.value.status_code == 422


def test_missing_empty_too_large_and_ragged():
    full = {"x": [1.0], "n": [1], "flag": [True], "city": ["a"]}
    with pytest.raises(PayloadError, match=r"missing column\(s\) 'n' \(an integer \(long\)\)") as e:
        build_frame({k: v for k, v in full.items() if k != "n"}, SCHEMA, max_rows=10)
    assert e.value.status_code == 422
    with pytest.raises(PayloadError, match="empty batch") as e:
        build_frame({k: [] for k in full}, SCHEMA, max_rows=10)
    assert e.value.status_code == 400
    with pytest.raises(PayloadError, match="3 rows exceeds the limit of 2") as e:
        build_frame({k: v * 3 for k, v in full.items()}, SCHEMA, max_rows=2)
    assert e.value.status_code == 413
    with pytest.raises(PayloadError, match="different lengths") as e:
        build_frame({**full, "x": [1.0, 2.0]}, SCHEMA, max_rows=10)
    assert e.value.status_code == 400
