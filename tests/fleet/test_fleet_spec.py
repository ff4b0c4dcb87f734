"""``[segments]`` in an experiment spec: validation that names the field, and ``spec show``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _fleet_data import write_fleet
from typer.testing import CliRunner

from mlfactory.cli import app
from mlfactory.exceptions import SpecError
from mlfactory.spec import load_spec

runner = CliRunner()


def _spec(tmp_path: Path) -> Path:
    return write_fleet(tmp_path / "data", segments=4, rows=150, tiny=20)


def test_segments_are_read_with_defaults(tmp_path: Path) -> None:
    spec = load_spec(_spec(tmp_path), ["segments.by=region"])
    assert spec.segments is not None
    assert spec.segments.by == ["region"]  # one name is a list of one
    assert spec.segments.fallback == "global"


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("segments.min_rows=1", "segments.min_rows"),
        ('segments.fallback="nearest"', "segments.fallback"),
        ("segments.by=[]", "segments.by"),
        ('segments.by=["region", "region"]', "segments.by"),
        ("segments.colour=1", "segments.colour"),
        ('preprocessing=["basic", "power"]', "segments"),
    ],
)
def test_a_wrong_segments_field_is_named(tmp_path: Path, override: str, field: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(_spec(tmp_path), [override])
    message = str(caught.value)
    assert f"'{field}'" in message and "\n" not in message
    if field == "segments.colour":
        assert "by, min_rows, fallback, pack_rows" in message


def test_an_unknown_segment_column_is_named_when_data_is_read(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    result = runner.invoke(app, ["spec", "show", str(spec), "--set", 'segments.by=["country"]'])
    assert result.exit_code == 2, result.output
    assert "segments.by" in result.output and "'country'" in result.output
    assert "region" in result.output  # the columns it does have


def test_spec_show_lists_segments_sizes_and_fallback(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    result = runner.invoke(app, ["spec", "show", str(spec)], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "segments by region: 6 (4 with their own model, 2 below min_rows=100" in result.output
    lines = {line.split("│")[1].strip(): line for line in result.output.splitlines() if "│" in line}
    assert "150" in lines["s00"] and "own" in lines["s00"]
    assert "20" in lines["tiny1"] and "fallback (global)" in lines["tiny1"]

    result = runner.invoke(app, ["spec", "show", str(spec), "--json"])
    assert result.exit_code == 0, result.output
    segments = json.loads(result.stdout)["segments"]
    assert segments["segments"] == 6 and segments["fallback_segments"] == 2
    assert segments["fallback_rows"] == 40
    by_key = {row["segment"]: row for row in segments["segment_rows"]}
    assert by_key["s03"]["rows"] == 150
    assert by_key["s03"]["train_rows"] + by_key["s03"]["test_rows"] == 150
    assert by_key["tiny0"]["model"] == "fallback (global)"
