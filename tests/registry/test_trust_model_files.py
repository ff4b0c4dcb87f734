"""Model files are trusted by an exact allow-list and a recorded SHA-256, on every loading path.

A hostile but realistic MLflow user can log a run with any files and tags and register any
version. These tests play that user: a skops file whose only payload creates a marker file (the
``runstring`` gadget, an ``exec`` under the ``numpy.`` prefix the old allow-list trusted), a
version registered without mlfactory's hash, a tampered file and a tampered ONNX graph.
"""

from __future__ import annotations

import io
import json
import shutil
import threading
import zipfile
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import skops.io as sio
import yaml
from _credit_model import train_registered_credit
from typer.testing import CliRunner

from mlfactory.cli import app
from mlfactory.registry import describe_model, load_model, promote, resolve_version
from mlfactory.registry._load import download_model_dir
from mlfactory.registry._registry import ModelRef
from mlfactory.serialization import (
    TRUSTED_TYPES,
    UnsafeModelError,
    UnverifiedModelError,
    file_sha256,
    load_skops,
    untrusted_types,
)
from mlfactory.tracking import open_tracking

runner = CliRunner()
GADGET = "numpy.testing._private.utils.runstring"


def write_gadget(path: Path, marker: Path) -> Path:
    """A skops file whose root calls ``runstring(code, {})``: the code only creates ``marker``."""
    base = sio.dumps((f"open({str(marker)!r}, 'w').close()", {}))
    with zipfile.ZipFile(io.BytesIO(base)) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    schema = json.loads(files["schema.json"])
    header = {k: schema.pop(k) for k in ("protocol", "_skops_version") if k in schema}
    module, name = GADGET.rsplit(".", 1)
    gadget = {
        "__class__": name,
        "__module__": module,
        "__loader__": "ConstructorFromReduceNode",
        "content": schema,
        **header,
    }
    files["schema.json"] = json.dumps(gadget).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in files.items():
            archive.writestr(member, data)
    return path


def _local(uri: str) -> Path:
    return Path(unquote(urlparse(uri).path))


@pytest.fixture(scope="module")
def factory(tmp_path_factory):
    """A registered credit champion plus a hostile run whose model file is the gadget."""
    folder = tmp_path_factory.mktemp("trust")
    settings, result = train_registered_credit(folder, 400, "credit-trust")
    marker = folder / "PWNED"
    client = open_tracking(settings)
    legit = client.get_run(result.run_id)
    legit = client.get_run(legit.data.tags.get("mlfactory.best_run_id") or result.run_id)
    model_dir = download_model_dir(settings, legit.data.tags["mlfactory.model_uri"], folder / "dl")
    hostile_dir = folder / "hostile" / "model"
    shutil.copytree(model_dir, hostile_dir)
    write_gadget(hostile_dir / "model.skops", marker)
    # the attacker also records the gadget in MLmodel's own list of trusted types
    meta = yaml.safe_load((hostile_dir / "MLmodel").read_text())
    meta["flavors"]["sklearn"]["skops_trusted_types"] = [GADGET]
    (hostile_dir / "MLmodel").write_text(yaml.safe_dump(meta))
    run = client.create_run(legit.info.experiment_id, run_name="hostile")
    client.log_artifacts(run.info.run_id, str(hostile_dir), "model")
    sha = file_sha256(hostile_dir / "model.skops")
    for key, value in {
        "mlfactory.model_uri": f"runs:/{run.info.run_id}/model",
        "mlfactory.model_sha256": sha,
    }.items():
        client.set_tag(run.info.run_id, key, value)
    client.set_terminated(run.info.run_id)
    # ... and registers it behind mlfactory's back, with a matching hash tag
    evil = client.create_model_version(
        "credit", f"runs:/{run.info.run_id}/model", run.info.run_id, tags={"model_sha256": sha}
    )
    client.set_registered_model_alias("credit", "evil", evil.version)
    return {
        "settings": settings,
        "legit_run": legit.info.run_id,
        "hostile_run": run.info.run_id,
        "marker": marker,
        "folder": folder,
    }


@pytest.fixture
def cli_home(factory, monkeypatch):
    monkeypatch.setenv("MLFACTORY_HOME", str(factory["settings"].home))
    return factory


def _one_line_naming_gadget(result) -> None:
    assert result.exit_code != 0, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert GADGET in lines[0] and "Traceback" not in result.output


def test_prefix_gadget_is_refused_even_when_the_file_lists_it(tmp_path):
    marker = tmp_path / "marker"
    path = write_gadget(tmp_path / "model.skops", marker)
    assert untrusted_types(path) == [GADGET]
    assert GADGET not in TRUSTED_TYPES and not any(t.endswith(".*") for t in TRUSTED_TYPES)
    for recorded in (None, [GADGET]):
        with pytest.raises(UnsafeModelError, match=GADGET.replace(".", r"\.")):
            load_skops(path, file_sha256(path), recorded_types=recorded)
    assert not marker.exists()


def test_other_callables_under_trusted_prefixes_are_refused(tmp_path):
    for name in (
        "numpy.load",
        "numpy.lib.npyio.load",
        "sklearn.utils._testing.assert_run_python_script",
        "scipy.sparse.load_npz",
        "mlfactory.cli.app",
        "builtins.exec",
        "os.system",
    ):
        base = sio.dumps(len)  # a FunctionNode; rename it to the callable
        with zipfile.ZipFile(io.BytesIO(base)) as archive:
            files = {member: archive.read(member) for member in archive.namelist()}
        schema = json.loads(files["schema.json"])
        schema["__module__"], schema["__class__"] = name.rsplit(".", 1)
        files["schema.json"] = json.dumps(schema).encode()
        path = tmp_path / f"{name}.skops"
        with zipfile.ZipFile(path, "w") as archive:
            for member, data in files.items():
                archive.writestr(member, data)
        with pytest.raises(UnsafeModelError, match=name.replace(".", r"\.")):
            load_skops(path, file_sha256(path))


def test_not_a_zip_is_one_clear_error(tmp_path):
    path = tmp_path / "model.skops"
    path.write_bytes(b"not a zip")
    with pytest.raises(UnsafeModelError, match="not a readable skops file"):
        load_skops(path, file_sha256(path))


def test_every_loading_path_refuses_the_gadget(cli_home, tmp_path):
    f = cli_home
    data = tmp_path / "rows.csv"
    data.write_text("a\n1\n")
    commands = {
        "serve": ["serve", "credit@evil", "--port", "1"],
        "predict": [
            "predict",
            "credit@evil",
            "--input",
            str(data),
            "--output",
            str(tmp_path / "o"),
        ],
        "explain version": ["explain", "credit@evil", "--no-log"],
        "explain run": ["explain", f["hostile_run"], "--no-log"],
        "promote": ["promote", f["hostile_run"], "--name", "credit"],
    }
    before = describe_model(f["settings"], "credit")
    for what, argv in commands.items():
        result = runner.invoke(app, argv)
        _one_line_naming_gadget(result)
        assert "serving" not in result.output, what  # no banner before the refusal
    after = describe_model(f["settings"], "credit")
    assert [v.version for v in after] == [v.version for v in before]  # promote registered nothing
    assert (
        resolve_version(open_tracking(f["settings"]), ModelRef("credit")).run_id == f["legit_run"]
    )
    assert not f["marker"].exists()


def test_dashboard_pages_never_load_the_gadget(cli_home):
    import warnings

    from mlfactory.dashboard import create_dashboard_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # starlette prefers httpx2; httpx works
        from fastapi.testclient import TestClient

    f = cli_home
    with TestClient(create_dashboard_app(f["settings"])) as client:
        run = f["hostile_run"]
        pages = ("/", "/models", f"/runs/{run}", "/experiments", "/experiments/credit-trust")
        for path in (*pages, f"/runs/{run}/artifacts/model/model.skops"):
            assert client.get(path).status_code < 500, path
    assert not f["marker"].exists()


def test_version_without_hash_needs_allow_unverified(cli_home, caplog):
    f = cli_home
    settings = f["settings"]
    client = open_tracking(settings)
    legit = resolve_version(client, ModelRef("credit", version="1"))
    bare = client.create_model_version("credit", legit.source, legit.run_id)  # MLflow's own way
    client.set_registered_model_alias("credit", "ui", bare.version)
    with pytest.raises(UnverifiedModelError, match="mlfactory promote"):
        load_model(settings, "credit@ui")
    caplog.set_level("WARNING")  # before the CLI below configures mlfactory's own handlers
    loaded = load_model(settings, "credit@ui", allow_unverified=True)
    assert loaded.model is not None and "unverified" in caplog.text
    result = runner.invoke(app, ["serve", "credit@ui", "--port", "1"])
    assert result.exit_code == 2 and "mlfactory promote" in result.output
    assert "--allow-unverified" in result.output and "serving" not in result.output
    # the allow-list still applies to an unverified version
    hostile = f"runs:/{f['hostile_run']}/model"
    bare_evil = client.create_model_version("credit", hostile, f["hostile_run"])
    with pytest.raises(UnsafeModelError, match=GADGET.replace(".", r"\.")):
        load_model(settings, f"credit/{bare_evil.version}", allow_unverified=True)
    assert not f["marker"].exists()


def test_tampered_run_model_is_not_promoted(cli_home):
    f = cli_home
    settings = f["settings"]
    client = open_tracking(settings)
    run = client.get_run(f["legit_run"])
    # a copy of the legit run whose model file is changed after logging
    copy = client.create_run(run.info.experiment_id, run_name="tampered")
    folder = download_model_dir(settings, run.data.tags["mlfactory.model_uri"], f["folder"] / "t")
    (folder / "model.skops").write_bytes((folder / "model.skops").read_bytes() + b"\0")
    client.log_artifacts(copy.info.run_id, str(folder), "model")
    client.set_tag(copy.info.run_id, "mlfactory.model_uri", f"runs:/{copy.info.run_id}/model")
    client.set_tag(
        copy.info.run_id, "mlfactory.model_sha256", run.data.tags["mlfactory.model_sha256"]
    )
    client.set_terminated(copy.info.run_id)
    versions = len(describe_model(settings, "credit"))
    with pytest.raises(UnsafeModelError, match="SHA-256"):
        promote(settings, "credit", run_id=copy.info.run_id)
    assert len(describe_model(settings, "credit")) == versions
    assert resolve_version(client, ModelRef("credit")).run_id == f["legit_run"]


def test_alias_moves_only_after_every_tag_is_written(cli_home):
    f = cli_home
    settings = f["settings"]
    client = open_tracking(settings)
    start = int(resolve_version(client, ModelRef("credit")).version)
    seen: list[dict[str, str]] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            try:
                info = resolve_version(client, ModelRef("credit", alias="staged"))
            except Exception:
                continue
            if int(info.version) > start:
                seen.append(dict(info.tags))

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        promote(settings, "credit", run_id=f["legit_run"], alias="staged")
    finally:
        done.set()
        poller.join(timeout=10)
    final = resolve_version(client, ModelRef("credit", alias="staged"))
    assert "onnx_status" in final.tags and final.model_sha256
    assert all("onnx_status" in tags and tags.get("model_sha256") for tags in seen)


def test_tampered_onnx_graph_falls_back_to_sklearn(cli_home):
    from mlfactory.serving._onnx import build_predictor

    f = cli_home
    settings = f["settings"]
    loaded = load_model(settings, "credit/1", cache_dir=f["folder"] / "onnx-check")
    assert loaded.info.tags.get("onnx_status") == "ok", loaded.info.tags
    client = open_tracking(settings)
    artifact = loaded.info.tags["onnx_artifact"]
    graph = _local(client.get_run(loaded.info.run_id).info.artifact_uri) / artifact
    original = graph.read_bytes()
    try:
        graph.write_bytes(original + b"\0")
        predictor = build_predictor(settings, loaded)
        assert type(predictor).__name__ == "SklearnPredictor"
        assert "does not match its recorded SHA-256" in getattr(predictor, "reason", "")
    finally:
        graph.write_bytes(original)
    assert type(build_predictor(settings, loaded)).__name__ == "OnnxPredictor"


def test_non_numeric_metric_tag_is_shown_as_text(cli_home):
    f = cli_home
    client = open_tracking(f["settings"])
    client.set_model_version_tag("credit", "1", "metric.test_roc_auc_note", "high, trust me")
    versions = describe_model(f["settings"], "credit")
    one = next(v for v in versions if v.version == "1")
    assert one.tags["metric.test_roc_auc_note"] == "high, trust me"
    assert "test_roc_auc_note" not in one.metrics
    shown = runner.invoke(app, ["models", "show", "credit"])
    assert shown.exit_code == 0, shown.output


def test_a_run_tag_cannot_point_the_loader_at_any_folder(cli_home, tmp_path):
    f = cli_home
    client = open_tracking(f["settings"])
    run = client.create_run(client.get_run(f["legit_run"]).info.experiment_id, run_name="elsewhere")
    outside = tmp_path / "outside"
    shutil.copytree(
        download_model_dir(f["settings"], f"runs:/{f['hostile_run']}/model", tmp_path / "d"),
        outside,
    )
    client.set_tag(run.info.run_id, "mlfactory.model_uri", outside.as_uri())
    client.set_tag(run.info.run_id, "mlfactory.model_sha256", file_sha256(outside / "model.skops"))
    client.set_terminated(run.info.run_id)
    result = runner.invoke(app, ["explain", run.info.run_id, "--no-log"])
    assert result.exit_code != 0 and "outside MLflow's stores" in result.output
    with pytest.raises(UnsafeModelError, match="outside MLflow's stores"):
        promote(f["settings"], "credit", run_id=run.info.run_id)
    assert not f["marker"].exists()


def test_a_zip_bomb_schema_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "bomb.skops"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("schema.json", b" " * (65 << 20))  # 65 MiB of spaces, ~65 KB zipped
    assert path.stat().st_size < 1 << 20
    with pytest.raises(UnsafeModelError, match=r"schema\.json"):
        load_skops(path, file_sha256(path))
