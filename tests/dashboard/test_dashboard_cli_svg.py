"""The ``dashboard`` command's guard and help, and the server-side SVG chart."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import typer
from typer.testing import CliRunner

from mlfactory.cli._common import MlfactoryGroup
from mlfactory.cli._dashboard import dashboard_command
from mlfactory.dashboard import line_chart
from mlfactory.dashboard._svg import BOTTOM, HEIGHT, TOP

runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer(cls=MlfactoryGroup)
    app.command("dashboard")(dashboard_command)

    @app.command("other")
    def _other() -> None:  # a second command keeps "dashboard" a subcommand
        pass

    return app


def test_non_loopback_bind_needs_an_api_key():
    result = runner.invoke(_app(), ["dashboard", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "refusing to bind 0.0.0.0" in result.output and "MLFACTORY_API_KEY" in result.output


def test_help_lists_the_options():
    result = runner.invoke(_app(), ["dashboard", "--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--mlflow-url", "8050", "127.0.0.1"):
        assert option in result.output


def test_line_chart_places_points_by_value_and_marks_the_threshold():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    times = [start + timedelta(hours=h) for h in range(3)]
    svg = line_chart(times, [0.0, 0.5, 1.0], threshold=0.25, title="t")
    ys = [float(y) for y in re.findall(r'<circle cx="[\d.]+" cy="([\d.]+)"', svg)]
    bottom, top = HEIGHT - BOTTOM, TOP
    assert ys == pytest.approx([bottom, (bottom + top) / 2, top], abs=0.05)
    threshold = float(re.search(r'y1="([\d.]+)"[^>]*class="threshold"', svg).group(1))
    assert threshold == pytest.approx(bottom - 0.25 * (bottom - top), abs=0.05)
    assert "2026-01-01 00:00" in svg and "2026-01-01 02:00" in svg
    assert svg.startswith("<svg") and "<script" not in svg


def test_line_chart_single_point_and_escaping():
    svg = line_chart([datetime(2026, 1, 1)], [0.3], title="<model & co>")
    assert svg.count("<circle") == 1 and "<polyline" not in svg
    assert "&lt;model &amp; co&gt;" in svg
    with pytest.raises(ValueError, match="2 times but 1 values"):
        line_chart([datetime(2026, 1, 1)] * 2, [0.3])
