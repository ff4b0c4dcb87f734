"""The per-request path's shortcuts change no answer: short numeric columns skip numpy with the
same values and the same refusals, the scoring route is matched first, FastAPI's native
OpenTelemetry check is off."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlfactory.serving import _frame, create_app
from mlfactory.settings import load_settings

VALUES = [
    [1.5],
    [3],
    [-0.0],
    [None],
    [float("nan")],
    [1, None, 2.5, float("nan")],
    [2**1023 - 1],
    [-(2**1023) + 1],
    [1e308],
    [5e-324],
]
REFUSED = [[float("inf")], [float("-inf")], [True], ["2.5"], [10**400], [[1.0]], [{"a": 1}]]


def _numpy_only(values: list) -> list | None:
    """What the column conversion gave before the shortcut: one numpy call."""
    try:
        array = np.array(values, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        return None
    if array.ndim != 1 or np.isinf(array).any():
        return None
    return [None if x != x else x for x in array.tolist()]


@pytest.mark.parametrize("values", VALUES)
def test_short_number_columns_convert_without_numpy(values, monkeypatch) -> None:
    expected = _numpy_only(values)
    assert expected is not None

    class NoNumpy:
        def __getattr__(self, name: str):
            raise AssertionError(f"numpy.{name} used for {values!r}")

    monkeypatch.setattr(_frame, "np", NoNumpy())
    got = _frame._floats_at_once(values)
    assert got == expected
    assert [type(v) for v in got] == [type(v) for v in expected]


@pytest.mark.parametrize("values", REFUSED)
def test_what_the_shortcut_does_not_take_goes_the_way_it_went(values) -> None:
    """Strings, booleans, infinities and huge ints are left to numpy (or the cell-by-cell path
    and its one-line error), exactly as before."""
    assert _frame._plain_floats(values) is None
    assert _frame._floats_at_once(values) == _numpy_only(values)


def test_scoring_is_the_first_route_and_native_telemetry_is_off(tmp_path: Path) -> None:
    app = create_app(load_settings(home=tmp_path / ".mlfactory"), "credit/1")
    assert app.router.routes[0].path == "/invocations"
    paths = [getattr(r, "path", None) for r in app.router.routes]
    assert {"/health", "/ready", "/model", "/metrics", "/docs"} <= set(paths)
    assert len(paths) == len(set(paths))
    assert not any(app._telemetry[k] for k in ("tracing", "metrics", "logs"))
