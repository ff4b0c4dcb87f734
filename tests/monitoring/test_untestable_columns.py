"""Columns whose values changed type, and reports where nothing could be tested."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlfactory.monitoring import detect_drift


def _frames(current_x: list[object]) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(1)
    reference = pd.DataFrame({"x": rng.normal(size=300), "z": rng.normal(size=300)})
    current = pd.DataFrame({"x": current_x, "z": rng.normal(size=300)})
    return reference, current


def test_text_among_numbers_is_not_tested_on_the_numbers_left() -> None:
    reference, current = _frames(["1.5"] * 290 + ["oops"] * 10)
    report = detect_drift(reference, current)
    x = next(f for f in report.features if f.column == "x")
    assert x.status == "not testable"
    assert x.reason == "the current sample holds text, not numbers (10 of 300 values, e.g. 'oops')"
    assert report.untested is None  # z was tested: the verdict stands on it


def test_numbers_written_as_text_are_still_numbers() -> None:
    rng = np.random.default_rng(2)
    reference, current = _frames([f"{v:.6f}" for v in rng.normal(size=300)])
    x = next(f for f in detect_drift(reference, current).features if f.column == "x")
    assert x.status == "ok" and x.test == "ks"


def test_a_report_with_nothing_tested_says_why() -> None:
    reference, current = _frames(["abc"] * 300)
    current["z"] = np.nan
    report = detect_drift(reference, current)
    assert not report.tested and not report.drifted
    assert report.untested == (
        "no column could be tested (2): x: the current sample holds text, not numbers (300 of "
        "300 values, e.g. 'abc'); z: no non-null values in the current sample"
    )


def test_a_report_with_one_tested_column_has_a_verdict() -> None:
    reference, current = _frames(list(np.random.default_rng(3).normal(size=300)))
    assert detect_drift(reference, current).untested is None
