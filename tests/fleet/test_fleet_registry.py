"""A fleet in the registry: one version = one bundle manifest, a per-segment gate at promotion,
untouched segments referenced (same file, same hash), every file verified on load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _fleet_data import fleet_frame, write_fleet
from typer.testing import CliRunner

from mlfactory.cli import app
from mlfactory.db import get_engine
from mlfactory.exceptions import ModelNotFound
from mlfactory.fleet import FALLBACK_KEY
from mlfactory.fleet._registry import load_version_manifest
from mlfactory.line import read_decisions
from mlfactory.registry import ModelRef, promote, resolve_version
from mlfactory.settings import Settings
from mlfactory.tracking import open_tracking
from mlfactory.training import train

runner = CliRunner()


def _manifest(settings: Settings, version: str, tmp_path: Path) -> dict:
    info = resolve_version(open_tracking(settings), ModelRef("regions", version=version))
    return load_version_manifest(settings, info, tmp_path / f"m{version}")


def _segment_file(settings: Settings, run_id: str, manifest: dict, key: str) -> Path:
    root = open_tracking(settings).get_run(run_id).info.artifact_uri.removeprefix("file://")
    return Path(root) / "fleet" / manifest["segments"][key]["file"]


@pytest.mark.slow
def test_promotion_gates_each_segment_and_keeps_the_old_model_by_reference(
    tmp_path: Path, settings: Settings
) -> None:
    data = tmp_path / "data"
    spec = write_fleet(data, segments=4, rows=150, tiny=20, flipped=("s00",))
    first = train(spec, settings, n_jobs=1)
    with pytest.raises(ModelNotFound, match="trained a fleet"):  # the single-model API says so
        promote(settings, "regions", run_id=first.run_id)
    result = runner.invoke(app, ["promote", first.run_id[:8], "--name", "regions"])
    assert result.exit_code == 0, result.output
    assert "version 1 (@champion)" in " ".join(result.output.split())
    v1 = _manifest(settings, "1", tmp_path)
    assert sorted(v1["segments"]) == ["s00", "s01", "s02", "s03"]
    assert {e["trained_in_version"] for e in v1["segments"].values()} == {"1"}

    # second training: s00's signal is the right way round now, s01's labels are noise
    fleet_frame(segments=4, rows=150, tiny=20, scrambled=("s01",)).to_parquet(
        data / "fleet.parquet"
    )
    second = train(spec, settings, n_jobs=1)
    manifest2 = json.loads(
        (
            _segment_file(settings, second.run_id, second.manifest, "s03").parents[1]
            / "manifest.json"
        ).read_text()
    )
    tampered = _segment_file(settings, second.run_id, manifest2, "s03")
    original = tampered.read_bytes()
    tampered.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    result = runner.invoke(app, ["promote", second.run_id[:8], "--name", "regions"])
    assert result.exit_code == 1, result.output
    assert "SHA-256" in result.output and "refusing to load a modified file" in result.output
    assert "segment 's03'" in result.output
    assert resolve_version(open_tracking(settings), ModelRef("regions")).version == "1"
    tampered.write_bytes(original)

    result = runner.invoke(app, ["promote", second.run_id[:8], "--name", "regions"])
    assert result.exit_code == 0, result.output
    assert "version 2 (@champion)" in " ".join(result.output.split())
    v2 = _manifest(settings, "2", tmp_path)
    assert v2["segments"]["s00"]["gate"] == "accepted"
    assert v2["segments"]["s00"]["trained_in_version"] == "2"
    assert v2["segments"]["s00"]["trained_in_run"] == second.run_id
    kept = v2["segments"]["s01"]  # the noise model lost: v1's model stays, referenced
    assert kept["gate"] == "kept" and kept == {**v1["segments"]["s01"], "gate": "kept"}
    assert kept["source"].startswith(f"runs:/{first.run_id}/")

    decisions = read_decisions(get_engine(settings.database_url), "regions")
    latest = decisions[0]
    assert latest["passed"] and latest["version"] == "2" and latest["champion_version"] == "1"
    rules = {r["metric"]: r for r in latest["rules"]}
    assert rules["s00"]["passed"] and "improves" in rules["s00"]["reason"]
    assert not rules["s01"]["passed"]
    assert rules[FALLBACK_KEY]["rule"] == "segment"
    assert len(decisions) == 2  # the refused (tampered) promotion decided and registered nothing

    shown = runner.invoke(app, ["models", "show", "regions"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.output.split())
    assert "fleet v2 by region: 4 segment models, 2 small segment(s) on the fallback" in text
    assert "fallback share 33.3%" in text
    counts = {}
    for entry in v2["segments"].values():
        counts[entry["trained_in_version"]] = counts.get(entry["trained_in_version"], 0) + 1
    assert f"v1: {counts.get('1', 0)}, v2: {counts['2']}" in text
