"""Run a line: each stage in the factory's order, skipped when its cache key matches its record.

A stage's key hashes its resolved config, the fingerprints of its inputs (data files, the
outputs of the stages before it, models by SHA-256) and the versions of mlfactory and the
libraries that change results. The newest finished record of the stage holds the key it last
ran with; equal keys mean "up to date", otherwise the differences say why it runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlfactory.exceptions import MlfactoryError, SpecError
from mlfactory.line._keys import (
    cache_key,
    canonical,
    changes,
    fingerprint_path,
    library_versions,
)
from mlfactory.line._records import (
    ChampionUnknown,
    SqlRecords,
    StageRecord,
    fail_record,
    finish_record,
    line_lock,
    start_record,
)
from mlfactory.line._spec import LineSpec, line_reports, load_line
from mlfactory.line._sqlite import NotQuick, SqliteRecords, open_records
from mlfactory.logs import get_logger
from mlfactory.settings import Settings, mask_secrets, mask_urls_in_text

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["LineReport", "StageFailed", "StageOutcome", "run_line"]

logger = get_logger(__name__)
Say = Callable[[str], None]


class StageFailed(MlfactoryError):
    """A stage of the line raised; the next run resumes there."""


@dataclass
class StageOutcome:
    stage: str
    status: str  # up to date | ran | would run | failed | not reached
    why: list[str] = field(default_factory=list)
    summary: str = ""
    seconds: float = 0.0


@dataclass
class LineReport:
    line: str
    stages: list[StageOutcome]
    seconds: float
    line_run_id: str | None = None
    note: str = ""  # --if-drift: why the line ran or did not


@dataclass
class _Context:
    line: LineSpec
    settings: Settings
    engine: Engine | None  # None: read-only, through sqlite3 (``store``), nothing may run
    force_promote: bool
    force_reason: str | None
    store: SqlRecords | SqliteRecords | None = None  # where the records are read
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    records: dict[str, StageRecord | None] = field(default_factory=dict)
    stat: dict[str, Any] = field(default_factory=dict)  # kept beside the key (file stats)
    forced: set[str] = field(default_factory=set)  # forced stages hash their files again
    client: Any = None

    def __post_init__(self) -> None:
        if self.store is None:
            assert self.engine is not None
            self.store = SqlRecords(self.engine)

    @property
    def records_store(self) -> SqlRecords | SqliteRecords:
        assert self.store is not None
        return self.store

    def tracking(self) -> Any:
        if self.client is None:
            from mlfactory.tracking import open_tracking, reap_stale_runs

            self.client = open_tracking(self.settings)
            reap_stale_runs(self.client, self.settings.stale_run_timeout, "mlfactory run")
        return self.client


# Stage configs and inputs ------------------------------------------------------------------
def _dataset_table(ctx: _Context) -> tuple[str | dict[str, Any], dict[str, Any]]:
    """The experiment's ``dataset`` and ``dataset_options`` from the line's ``[dataset]``."""
    spec = ctx.line.dataset
    if spec.name is not None:
        options = dict(spec.options)
        if isinstance(options.get("path"), str):
            options["path"] = str(ctx.line.path(options["path"]))
        return spec.name, options
    table = spec.table
    if isinstance(table.get("path"), str):
        table["path"] = str(ctx.line.path(table["path"]))
    return table, {}


def _dataset_file(ctx: _Context) -> Path | None:
    """The file or folder the dataset is read from, when it is known without reading it."""
    name, options = _dataset_table(ctx)
    if isinstance(name, dict):
        return Path(name["path"]) if "path" in name else None
    if "path" in options:
        return Path(options["path"])
    raw = ctx.settings.data_dir / "raw"
    defaults = {  # where the loaders read by default (a test holds these to the loaders' own)
        "credit": raw / "credit" / "cs-training.csv",
        "fires": raw / "fires" / "forestfires.csv",
        "adult": raw / "adult",
    }
    return defaults.get(name)


def _fingerprint_input(
    ctx: _Context, name: str | dict[str, Any], file: Path | None, before: dict[str, Any] | None
) -> tuple[str, dict[str, Any]] | None:
    """The dataset's fingerprint without reading its data, or None when it can only be read.

    The feature store (``stocks``) is fingerprinted from its manifest (one read, local or object
    store); a file or a folder by size, mtime and SHA-256 (:func:`fingerprint_path`).
    """
    if name == "stocks" and "path" not in ctx.line.dataset.options:
        from mlfactory.data import store_fingerprint
        from mlfactory.data._layout import silver_features_dir
        from mlfactory.exceptions import DataError

        try:
            return store_fingerprint(silver_features_dir(ctx.settings), ctx.settings)
        except DataError:  # a store written before manifests listed partitions
            silver = silver_features_dir(ctx.settings)
            if not isinstance(silver, Path):
                raise
            file = silver
    if file is None:
        return None
    return fingerprint_path(file, before)


def _experiment_raw(ctx: _Context) -> tuple[dict[str, Any], Path | None]:
    """The experiment spec as a raw table (overrides applied, the line's dataset in it)."""
    from mlfactory._toml import read_toml
    from mlfactory.line._spec import apply_overrides

    train = ctx.line.train
    source: Path | None = None
    if train.spec is not None:
        source = ctx.line.path(train.spec)
        if not source.exists():
            raise SpecError(f"{ctx.line.source}: field 'train.spec': {source} not found")
        raw = read_toml(source, "spec file")
    else:
        raw = dict(train.experiment or {})
        raw.setdefault("name", ctx.line.name)
    raw = apply_overrides(raw, train.overrides)
    dataset, options = _dataset_table(ctx)
    raw["dataset"] = dataset
    if options or "dataset_options" in raw:
        raw["dataset_options"] = options
    return raw, source


def _experiment(ctx: _Context) -> Any:
    from mlfactory.spec import spec_from_dict

    raw, source = _experiment_raw(ctx)
    # an inline experiment's relative grid files are read from the line file's folder
    return spec_from_dict(raw, source=source or ctx.line.source)


def _helper_files(ctx: _Context, raw: dict[str, Any], source: Path | None) -> dict[str, str]:
    """SHA-256 of the grid and search-space files the experiment names (their content, not
    their names, goes into the key: an edited grid file reruns training)."""
    import hashlib

    base = (source or ctx.line.source or Path.cwd()).parent
    search = raw.get("search") if isinstance(raw.get("search"), dict) else {}
    found: dict[str, str] = {}
    for name in ("param_grid", "distributions"):
        value = search.get(name)
        if not isinstance(value, str):
            continue
        path = _grid_file(value, base)
        if path is not None:  # else the experiment's own check reports it when it runs
            found[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _grid_file(name: str, base: Path) -> Path | None:
    """Where :func:`mlfactory.models.find_grid_file` finds a grid: as given, the spec's folder,
    then the shipped grids (looked up here without importing the model zoo)."""
    from importlib.resources import files

    shipped = Path(str(files("mlfactory").joinpath("resources", "grids")))
    path = Path(name)
    candidates = (
        [path] if path.is_absolute() else [base / path, shipped.parent / path, shipped / path]
    )
    return next((c for c in candidates if c.is_file()), None)


def _champion(ctx: _Context) -> dict[str, Any] | None:
    """The current champion's version and model SHA-256 (None when there is none).

    Read straight from MLflow's registry tables in the same database (a key check must stay
    fast: no MLflow client is opened for it); the MLflow client answers when they cannot be read.
    The gate itself loads the champion through the registry, verified.
    """
    promote = ctx.line.promote
    try:
        return ctx.records_store.champion(promote.model, promote.alias)
    except ChampionUnknown:
        if ctx.engine is None:  # read-only: the client is for the full walk
            raise NotQuick("the champion needs the MLflow client") from None
        return _champion_by_client(ctx)


def _champion_by_client(ctx: _Context) -> dict[str, Any] | None:
    from mlfactory.exceptions import ModelNotFound
    from mlfactory.registry import ModelRef, resolve_version

    promote = ctx.line.promote
    try:
        info = resolve_version(ctx.tracking(), ModelRef(promote.model, promote.alias))
    except ModelNotFound:
        return None
    return {"version": info.version, "model_sha256": info.model_sha256}


def _parts(ctx: _Context, stage: str) -> dict[str, Any]:
    """Config and inputs of ``stage`` (outputs of the stages before it must be known)."""
    line, out = ctx.line, ctx.outputs
    previous = ctx.records.get(stage)
    config: dict[str, Any]
    inputs: dict[str, Any] = {}
    if stage == "data":
        assert line.data is not None
        config = line.data.model_dump(mode="json")
        if line.data.ingest is not None and line.data.end is None:
            from datetime import date

            config["end"] = f"today ({date.today().isoformat()})"  # a new day: new prices
    elif stage == "dataset":
        name, options = _dataset_table(ctx)
        config = {"dataset": mask_secrets(name), "options": mask_secrets(options)}
        before = (previous.key_parts.get("stat") or {}).get("data") if previous else None
        found = _fingerprint_input(
            ctx, name, _dataset_file(ctx), None if stage in ctx.forced else before
        )
        if found is not None:
            inputs["data"], ctx.stat["data"] = found
        else:  # a SQL query or a bundled dataset: fingerprinted by content, when it runs
            inputs["data"] = "read at run time"
        if "data" in out:
            inputs["made_by"] = out["data"].get("files")
    elif stage == "train":
        raw, source = _experiment_raw(ctx)
        config = {"experiment": mask_secrets(raw), "spec_file": str(source) if source else None}
        inputs["dataset"] = out["dataset"]["data_sha256"]
        helpers = _helper_files(ctx, raw, source)
        if helpers:
            inputs["search_files"] = helpers
    elif stage == "gate":
        config = {
            "rules": line.gate.model_dump(mode="json"),
            "model": line.promote.model,
            "alias": line.promote.alias,
            "challenger_alias": line.promote.challenger_alias,
            "onnx": line.promote.onnx,
        }
        challenger = out["train"]["model_sha256"]
        champion = _champion(ctx)
        before = (previous.outputs or {}) if previous is not None else {}
        promoted_here = (  # the champion is the version this stage passed, for this challenger
            previous is not None
            and stage not in ctx.forced  # a forced judgement records what it judged against
            and previous.key_parts["inputs"].get("challenger") == challenger
            and bool(before.get("passed"))
            and str(before.get("version")) == str((champion or {}).get("version"))
        )
        if champion and promoted_here:
            # this challenger is the champion now (this line promoted it): the champion it
            # was judged against is the input, not itself
            champion = previous.key_parts["inputs"].get("champion")
        inputs = {
            "challenger": challenger,
            "heldout": out["train"].get("heldout_sha256"),
            "champion": champion,
        }
    elif stage == "promote":
        config = {
            "model": line.promote.model,
            "alias": line.promote.alias,
            "keep_rejected": line.promote.keep_rejected,
        }
        gate = out["gate"]
        inputs = {"decision": gate["decision_id"], "passed": gate["passed"]}
    elif stage == "explain":
        assert line.explain is not None
        config = line.explain.model_dump(mode="json")
        if not config["segments"]:  # (a fleet's) no segment named: the key it always had
            del config["segments"]
        inputs = {"champion": _champion(ctx), "heldout": out["train"].get("heldout_sha256")}
    elif stage == "batch":
        assert line.batch is not None
        config = line.batch.model_dump(mode="json")
        before = (previous.key_parts.get("stat") or {}).get("batch_input") if previous else None
        before = None if stage in ctx.forced else before
        digest, stat = fingerprint_path(line.path(line.batch.input), before)
        ctx.stat["batch_input"] = stat
        inputs = {"input": digest, "champion": _champion(ctx)}
    elif stage == "monitor":
        assert line.monitor is not None
        config = line.monitor.model_dump(mode="json")
        inputs = {"champion": _champion(ctx), "heldout": out["train"].get("heldout_sha256")}
    else:  # pragma: no cover - STAGES is fixed
        raise SpecError(f"unknown stage {stage!r}")
    parts = {"config": config, "inputs": inputs, "versions": library_versions()}
    stat = {k: v for k, v in ctx.stat.items() if _stat_owner(k) == stage}
    if stat:
        parts["stat"] = stat
    return parts


def _stat_owner(name: str) -> str:
    return {"data": "dataset", "batch_input": "batch"}[name]


# Stage bodies --------------------------------------------------------------------------------
def _run_data(ctx: _Context, say: Say) -> tuple[dict[str, Any], str]:
    data = ctx.line.data
    assert data is not None
    if data.ingest is not None:
        return _run_prices(ctx, say)
    from mlfactory.datasets import write_synthetic

    assert data.synthetic is not None
    say(f"data: writing {data.rows} synthetic {data.synthetic} rows")
    paths = write_synthetic(data.synthetic, data.rows, seed=data.seed, settings=ctx.settings)
    files = [str(p) for p in paths]
    # the files' digests: a later run notices a raw file edited or removed behind the line
    written = {f: fingerprint_path(Path(f)) for f in files}
    outputs = {
        "files": files,
        "digests": {f: digest for f, (digest, _) in written.items()},
        "stats": {f: stat for f, (_, stat) in written.items()},
    }
    return outputs, f"wrote {data.rows} synthetic {data.synthetic} rows to {files[0]}"


def _run_prices(ctx: _Context, say: Say) -> tuple[dict[str, Any], str]:
    """Ingest prices into the bronze store (only new days) and featurize changed tickers."""
    from datetime import date

    from mlfactory.data import BronzeStore, featurize, ingest, load_tickers, make_source
    from mlfactory.exceptions import DataError

    data = ctx.line.data
    assert data is not None and data.ingest is not None
    tickers = load_tickers()
    if isinstance(data.tickers, int):
        tickers = tickers.head(data.tickers)
    elif data.tickers is not None:
        wanted = {t.upper() for t in data.tickers}
        unknown = sorted(wanted - set(tickers["ticker"]))
        if unknown:
            raise SpecError(f"field 'data.tickers': unknown ticker(s) {', '.join(unknown)}")
        tickers = tickers[tickers["ticker"].isin(wanted)]
    end = data.end or date.today()
    store = BronzeStore.from_settings(ctx.settings)
    say(f"data: ingesting {len(tickers)} tickers from {data.ingest}")
    report = ingest(
        store, tickers, make_source(data.ingest), data.start, end, source_name=data.ingest
    )
    if report.count("failed") == len(tickers):
        raise DataError(f"ingestion from {data.ingest} failed for every ticker")
    say("data: featurizing")
    features = featurize(ctx.settings, tickers=list(tickers["ticker"]), horizon=data.horizon)
    if features.failures:
        raise DataError(f"featurize failed: {features.failures[0].error}")
    outputs = {
        "files": [str(store.root)],
        "tickers": len(tickers),
        "rows_added": report.rows_added,
        "featurized": len(features.written),
    }
    summary = (
        f"{len(tickers)} tickers: {report.rows_added} new price rows, "
        f"{len(features.written)} featurized, {len(features.skipped)} up to date"
    )
    return outputs, summary


def _run_dataset(ctx: _Context, say: Say) -> tuple[dict[str, Any], str]:
    from mlfactory.datasets import load_dataset
    from mlfactory.tracking import dataset_fingerprint

    name, options = _dataset_table(ctx)
    say("dataset: loading and checking")
    dataset = load_dataset(name, ctx.settings, **options)
    fingerprint = dataset_fingerprint(dataset.X, dataset.y)
    outputs = {
        "data_sha256": fingerprint["dataset_sha256"],
        "rows": len(dataset.X),
        "columns": [str(c) for c in dataset.X.columns],
        "task": dataset.task.value,
    }
    return outputs, f"{dataset.name}: {len(dataset.X)} rows, {dataset.X.shape[1]} columns"


def _run_train(ctx: _Context, say: Say) -> tuple[dict[str, Any], str]:
    from mlfactory.line._gate import heldout_sha256
    from mlfactory.spec import resolve_spec
    from mlfactory.training import plan_from_spec, run_experiment

    spec = _experiment(ctx)
    say(f"train: resolving experiment {spec.name!r}")
    resolved = resolve_spec(spec, ctx.settings)
    if spec.segments is not None:
        return _train_fleet(ctx, resolved, say)
    plan = plan_from_spec(resolved)
    result = run_experiment(plan, ctx.settings, progress=lambda m: say(f"train: {m}"))
    best_run = ctx.tracking().get_run(result.best.run_id)
    metric = result.best.outcome.refit_metric
    outputs = {
        "run_id": result.run_id,
        "best_run_id": result.best.run_id,
        "model_sha256": best_run.data.tags["mlfactory.model_sha256"],
        "experiment": result.experiment,
        "refit": metric,
        "test_scores": {k: float(v) for k, v in result.best.test_scores.items()},
        "split_sha256": plan.split_record.get("sha256"),
        "heldout_sha256": heldout_sha256(resolved.X_test, resolved.y_test),
    }
    scores = ", ".join(f"{k}={v:.4f}" for k, v in result.best.test_scores.items())
    return outputs, f"{result.best.name}: test {scores} (run {result.run_id})"


def _train_fleet(ctx: _Context, resolved: Any, say: Say) -> tuple[dict[str, Any], str]:
    """A spec with ``[segments]``: one model per segment, one parent run (mlfactory.fleet)."""
    import hashlib

    from mlfactory.fleet import train_fleet
    from mlfactory.line._gate import heldout_sha256

    result = train_fleet(resolved, ctx.settings, progress=lambda m: say(f"train: {m}"))
    files = {key: entry.get("sha256") for key, entry in result.manifest["segments"].items()}
    files["(fallback)"] = (result.manifest.get("fallback") or {}).get("sha256")
    summary = result.summary()
    outputs = {
        "fleet": True,
        "run_id": result.run_id,
        "best_run_id": result.run_id,
        # the fleet's identity: every segment file's SHA-256
        "model_sha256": hashlib.sha256(canonical(files).encode()).hexdigest(),
        "experiment": result.experiment,
        "refit": resolved.refit,
        "test_scores": {k: float(v) for k, v in result.test_scores.items()},
        "heldout_sha256": heldout_sha256(resolved.X_test, resolved.y_test),
        "segments": summary,
    }
    counts = ", ".join(f"{v} {k}" for k, v in summary.items() if k not in ("tasks", "seconds"))
    scores = ", ".join(f"{k}={v:.4f}" for k, v in result.test_scores.items())
    return outputs, f"fleet of {counts}: test {scores} (run {result.run_id})"


def _gate_fleet(ctx: _Context, say: Say) -> tuple[dict[str, Any], str]:
    """The fleet's gate is per segment: each challenger against its segment's champion model,
    on its own held-out rows; a failing segment keeps its model (mlfactory.fleet)."""
    from mlfactory.fleet import promote_fleet

    line, train = ctx.line, ctx.outputs["train"]
    if ctx.force_promote:
        raise SpecError("--force-promote is not available for a fleet: its gate is per segment")
    say("gate: judging each segment's challenger")
    result = promote_fleet(
        ctx.settings,
        line.promote.model,
        run_id=train["run_id"],
        alias=line.promote.alias,
        rules=line.gate,
        line=line.name,
    )
    outputs = {
        "fleet": True,
        "decision_id": result.decision_id,
        "passed": result.registered,
        "version": str(result.info.version),
        "accepted": len(result.accepted),
        "kept": len(result.kept),
        "reason": result.reason,
    }
    verdict = "PASS" if result.registered else "REJECT"
    return outputs, f"{verdict} v{result.info.version}: {result.reason}"


def _registered_challenger(ctx: _Context, run_id: str) -> Any:
    """The version registered from ``run_id`` (registered now, as challenger, when absent)."""
    from mlfactory.registry import ModelRef, promote, resolve_version

    client = ctx.tracking()
    promote_spec = ctx.line.promote
    best = ctx.outputs["train"].get("best_run_id", run_id)
    try:
        versions = client.search_model_versions(f"name = '{promote_spec.model}'")
    except Exception:  # no such model yet
        versions = []
    for version in versions:
        if (
            version.run_id in (run_id, best)
            and version.tags.get("model_sha256") == (ctx.outputs["train"]["model_sha256"])
        ):
            client.set_registered_model_alias(
                promote_spec.model, promote_spec.challenger_alias, version.version
            )
            return resolve_version(client, ModelRef(promote_spec.model, version=version.version))
    return promote(
        ctx.settings,
        promote_spec.model,
        run_id=run_id,
        alias=promote_spec.challenger_alias,
        compile_onnx=promote_spec.onnx,
    )


def _run_gate(ctx: _Context, say: Say) -> tuple[dict[str, Any], str]:
    from mlfactory.exceptions import ModelNotFound
    from mlfactory.line._gate import check_metric, evaluate_gate, save_decision
    from mlfactory.registry import ModelRef, load_model
    from mlfactory.spec import resolve_spec

    if ctx.outputs["train"].get("fleet"):
        return _gate_fleet(ctx, say)
    line, client = ctx.line, ctx.tracking()
    model = line.promote.model
    train = ctx.outputs["train"]
    primary = line.gate.primary or train["refit"]
    check_metric(primary, "gate.primary")
    for metric in [*line.gate.guards, *(line.gate.floors or {})]:
        check_metric(metric, "gate.guards/floors")
    say("gate: registering the challenger")
    info = _registered_challenger(ctx, train["run_id"])
    challenger = load_model(ctx.settings, ModelRef(model, version=info.version))
    try:
        champion = load_model(ctx.settings, ModelRef(model, line.promote.alias))
    except ModelNotFound:
        champion = None
    if champion is not None and champion.info.version == challenger.info.version:
        champion = None  # pragma: no cover - the gate's key prevents judging a model by itself
    say("gate: re-scoring the held-out rows")
    resolved = resolve_spec(_experiment(ctx), ctx.settings)
    X, y = resolved.X_test, resolved.y_test
    _check_same_rows(X, y, train)
    decision = evaluate_gate(line.gate, primary, challenger, champion, X, y, model=model)
    if ctx.force_promote:
        decision.forced = True
        decision.force_reason = ctx.force_reason
        if not decision.passed:
            decision.reason = f"forced ({ctx.force_reason}); the gate said: {decision.reason}"
            decision.passed = True
    save_decision(ctx.engine, decision, line.name)
    for key, value in decision.tags().items():
        client.set_model_version_tag(model, decision.version, key, value)
    outputs = {
        "decision_id": decision.id,
        "passed": decision.passed,
        "version": decision.version,
        "champion_version": decision.champion_version,
        "reason": decision.reason,
        "heldout_sha256": decision.heldout_sha256,
    }
    verdict = "PASS" if decision.passed else "REJECT"
    return outputs, f"{verdict} v{decision.version}: {decision.reason}"


def _check_same_rows(X: Any, y: Any, train: dict[str, Any]) -> None:
    """The rows cut again for the gate must be the challenger's own test rows, byte for byte."""
    from mlfactory.exceptions import DataError
    from mlfactory.line._gate import heldout_sha256

    sha = heldout_sha256(X, y)
    if train.get("heldout_sha256") and sha != train["heldout_sha256"]:
        raise DataError(
            f"the held-out rows cut for the gate (sha256 {sha[:12]}) are not the challenger's "
            f"test rows (sha256 {train['heldout_sha256'][:12]}): the data changed after "
            "training; run the line again with --from dataset"
        )


def _run_promote(ctx: _Context, say: Say) -> tuple[dict[str, Any], str]:
    gate, spec = ctx.outputs["gate"], ctx.line.promote
    if gate.get("fleet"):  # the per-segment gate registered the bundle and moved the alias
        if not gate["passed"]:
            return (
                {"promoted": False, "version": gate["version"], "alias": None},
                f"not promoted: no segment passed; {spec.model} v{gate['version']} stays "
                f"@{spec.alias}",
            )
        return (
            {"promoted": True, "version": gate["version"], "alias": spec.alias},
            f"{spec.model} v{gate['version']} is now @{spec.alias} ({gate['accepted']} "
            f"segment model(s) new, {gate['kept']} kept)",
        )
    client = ctx.tracking()
    if not gate["passed"]:
        if not spec.keep_rejected:
            client.delete_model_version(spec.model, gate["version"])
            return (
                {"promoted": False, "version": gate["version"], "alias": None},
                f"not promoted: v{gate['version']} removed (keep_rejected = false; its decision "
                "stays recorded); the champion does not move",
            )
        return (
            {"promoted": False, "version": gate["version"], "alias": spec.challenger_alias},
            f"not promoted: v{gate['version']} stays @{spec.challenger_alias}; the champion "
            "does not move",
        )
    say(f"promote: moving @{spec.alias}")
    client.set_registered_model_alias(spec.model, spec.alias, gate["version"])
    try:
        current = client.get_model_version_by_alias(spec.model, spec.challenger_alias)
        if str(current.version) == str(gate["version"]):
            client.delete_registered_model_alias(spec.model, spec.challenger_alias)
    except Exception:  # no challenger alias: nothing to clear
        pass
    return (
        {"promoted": True, "version": gate["version"], "alias": spec.alias},
        f"{spec.model} v{gate['version']} is now @{spec.alias}",
    )


def _explain_fleet(ctx: _Context, say: Say) -> tuple[dict[str, Any], str]:
    """A fleet's champion: every segment model's importance on its own held-out rows, and the
    ``[explain] segments`` fully (partial dependence, SHAP), as one report."""
    from mlfactory.fleet import explain_fleet

    spec, explain = ctx.line.promote, ctx.line.explain
    assert explain is not None
    say("explain: each segment's model on its own held-out rows")
    folder = str(line_reports(ctx.settings, ctx.line.name, "explain"))
    common = {"max_rows": explain.max_rows, "n_repeats": explain.n_repeats, "top_k": explain.top_k}
    reference = f"{spec.model}@{spec.alias}"
    result = explain_fleet(ctx.settings, reference, out=folder, log_to_run=True, **common)
    if result is None:
        raise SpecError(f"{reference} is not a fleet, though the line's experiment trains one")
    explained = result.table[result.table["status"] == "explained"]
    outputs: dict[str, Any] = {
        "report": str(result.html),
        "segments_explained": int(explained["segment"].nunique()),
    }
    if explain.segments:
        say(f"explain: partial dependence and SHAP of {', '.join(explain.segments)}")
        full = explain_fleet(
            ctx.settings, reference, segments=explain.segments, out=f"{folder}/detail", **common
        )
        assert full is not None
        outputs["segments_report"] = str(full.html)
    top = explained[explained["rank"] == 1]["feature"].value_counts()
    outputs["top_feature"] = str(top.index[0]) if len(top) else None
    summary = f"{outputs['segments_explained']} segment model(s) explained"
    if len(top):
        summary += f"; most often first: {top.index[0]} ({int(top.iloc[0])} segment(s))"
    return outputs, f"{summary}; report {result.html}"


def _run_explain(ctx: _Context, say: Say) -> tuple[dict[str, Any], str]:
    from mlfactory.explain import explain_model

    if ctx.outputs["train"].get("fleet"):
        return _explain_fleet(ctx, say)
    spec, explain = ctx.line.promote, ctx.line.explain
    assert explain is not None
    say("explain: permutation importance, partial dependence, SHAP")
    report = explain_model(
        ctx.settings,
        f"{spec.model}@{spec.alias}",
        max_rows=explain.max_rows,
        n_repeats=explain.n_repeats,
        top_k=explain.top_k,
        out=line_reports(ctx.settings, ctx.line.name, "explain"),
        progress=lambda m: say(f"explain: {m}"),
    )
    top = str(report.explanation.importance.table.iloc[0]["feature"])
    outputs = {"report": str(report.html), "top_feature": top}
    return outputs, f"top feature {top}; report {report.html}"


def _run_batch(ctx: _Context, say: Say) -> tuple[dict[str, Any], str]:
    from mlfactory.batch import batch_predict

    batch, spec = ctx.line.batch, ctx.line.promote
    assert batch is not None
    say("batch: scoring with the champion")
    report = batch_predict(
        ctx.settings,
        f"{spec.model}@{spec.alias}",
        input_path=ctx.line.path(batch.input),
        output_path=ctx.line.path(batch.output) if batch.output is not None else None,
        table=batch.table,
        db_url=batch.url,
        key_columns=batch.key_columns,
        overwrite=batch.output is not None,
    )
    outputs = {"output": report.output, "rows": report.rows, "version": report.version}
    return outputs, f"{report.rows} rows scored by v{report.version} into {report.output}"


def _monitor_fleet(ctx: _Context, say: Say) -> tuple[dict[str, Any], str]:
    """A fleet's baseline: each segment's training sample against its own held-out rows."""
    from mlfactory.fleet._monitor import fleet_baseline, publish_fleet_drift

    spec = ctx.line.promote
    say("monitor: drift baseline of each segment of the champion")
    result = fleet_baseline(ctx.settings, f"{spec.model}@{spec.alias}")
    if result is None:
        raise SpecError(f"{spec.model}@{spec.alias} is not a fleet, though the line trains one")
    folder = line_reports(ctx.settings, ctx.line.name, "baseline")
    published = publish_fleet_drift(ctx.settings, result, folder)
    judged = int((result.table["status"] != "too few rows").sum())
    drifted = result.drifted_segments
    verdict = f"drift in {len(drifted)} of {judged} segment(s)" if drifted else "no drift"
    outputs = {
        "report_id": published.report_id,
        "drifted": bool(drifted),
        "drifted_segments": drifted,
        "segments_judged": judged,
    }
    return outputs, (
        f"baseline of v{result.version}: {verdict} (report #{published.report_id}, "
        f"{judged} segment(s) judged)"
    )


def _run_monitor(ctx: _Context, say: Say) -> tuple[dict[str, Any], str]:
    from mlfactory.monitoring import detect_drift, load_reference_sample, publish_report
    from mlfactory.registry import ModelRef, resolve_version
    from mlfactory.spec import resolve_spec

    if ctx.outputs["train"].get("fleet"):
        return _monitor_fleet(ctx, say)
    spec = ctx.line.promote
    info = resolve_version(ctx.tracking(), ModelRef(spec.model, spec.alias))
    say("monitor: drift baseline of the champion")
    reference = load_reference_sample(ctx.settings, info.run_id)
    resolved = resolve_spec(_experiment(ctx), ctx.settings)
    columns = [c for c in resolved.X_test.columns if c in reference.columns]
    report = detect_drift(
        reference[columns], resolved.X_test[columns], names=("training sample", "held-out")
    )
    folder = line_reports(ctx.settings, ctx.line.name, "baseline")
    published = publish_report(ctx.settings, report, folder)
    verdict = "drift" if report.drifted else "no drift"
    outputs = {"report_id": published.report_id, "drifted": bool(report.drifted)}
    return outputs, f"baseline of v{info.version}: {verdict} (report #{published.report_id})"


_BODIES: dict[str, Callable[[_Context, Say], tuple[dict[str, Any], str]]] = {
    "data": _run_data,
    "dataset": _run_dataset,
    "train": _run_train,
    "gate": _run_gate,
    "promote": _run_promote,
    "explain": _run_explain,
    "batch": _run_batch,
    "monitor": _run_monitor,
}


# The line ------------------------------------------------------------------------------------
def _check_stage(name: str | None, option: str, line: LineSpec) -> None:
    if name is not None and name not in line.stages():
        raise SpecError(f"{option} {name!r}: expected one of this line's stages: "
                        f"{', '.join(line.stages())}")  # fmt: skip


def _line_run(ctx: _Context, dry_run: bool) -> str | None:
    """The line's MLflow parent run (created once a stage runs), owned by this process with a
    heartbeat until :func:`_end_line_run`, so that a killed line's run shows as stale."""
    from mlfactory.tracking import experiment_for, owner_tags
    from mlfactory.tracking._owner import HEARTBEAT

    if dry_run:
        return None
    client = ctx.tracking()
    experiment = experiment_for(client, f"line-{ctx.line.name}", ctx.settings)
    tags = {
        "mlfactory.role": "line",
        "mlfactory.line": ctx.line.name,
        "mlfactory.line_spec": str(ctx.line.source or ""),
        **owner_tags(),
    }
    run = client.create_run(experiment, run_name=f"line {ctx.line.name}", tags=tags)
    HEARTBEAT.add(run.info.run_id, client, ctx.settings.heartbeat_interval)
    return run.info.run_id


def _check_explain_segments(ctx: _Context) -> None:
    """``[explain] segments`` names segments of a fleet: refused, before anything runs, when
    the line's experiment trains one model (a TOML read, only when the field is set)."""
    explain = ctx.line.explain
    if explain is None or not explain.segments:
        return
    raw, _ = _experiment_raw(ctx)
    if not raw.get("segments"):
        raise SpecError(
            f"{ctx.line.source}: field 'explain.segments': the experiment trains one model, not "
            "a fleet ([segments]); remove it"
        )


_RETRAIN_STAGES = ("data", "dataset", "train", "gate", "promote")


def run_line(
    path: str | Path,
    settings: Settings,
    overrides: Sequence[str] = (),
    *,
    dry_run: bool = False,
    force: Sequence[str] = (),
    from_stage: str | None = None,
    force_promote: bool = False,
    reason: str | None = None,
    wait_s: float = 0.0,
    if_drift: bool = False,
    since: str = "24h",
    cooldown: str = "24h",
    progress: Say | None = None,
) -> LineReport:
    """Run (or with ``dry_run`` only judge) every stage of the line spec at ``path``.

    With ``if_drift`` the line runs only when the champion's prediction log over ``since``
    drifted and the last retrain is older than ``cooldown`` (see :mod:`mlfactory.line._drift`).
    """
    say = progress or (lambda _message: None)
    started = time.perf_counter()
    line = load_line(path, overrides)
    for name in force:
        _check_stage(name, "--force", line)
    _check_stage(from_stage, "--from", line)
    if force_promote and not (reason or "").strip():
        raise SpecError('--force-promote needs --reason "why" (it is recorded)')
    if not (if_drift or force or from_stage is not None or force_promote):
        quick = _quick_walk(line, settings, dry_run=dry_run, say=say)
        if quick is not None:
            return LineReport(line.name, quick, time.perf_counter() - started)
    from mlfactory.db import get_engine

    engine = get_engine(settings.database_url)
    note = ""
    if if_drift:
        from mlfactory.line._drift import drift_trigger

        say("checking the champion's traffic for drift")
        trigger = drift_trigger(line, settings, engine, since, cooldown)
        if not trigger.run:
            return LineReport(line.name, [], time.perf_counter() - started, note=trigger.reason)
        note = trigger.reason
        # retrain from the first stage and judge; what follows (explain, batch, monitor) runs
        # by its key: again only when the gate moved the champion
        force = (*force, *(s for s in line.stages() if s in _RETRAIN_STAGES))
    ctx = _Context(line, settings, engine, force_promote, reason)
    _check_explain_segments(ctx)
    if dry_run:
        from mlfactory.db import ensure_schema

        ensure_schema(engine)
        outcomes = _walk(ctx, set(force), from_stage, dry_run=True, say=say, run_id=None)
        return LineReport(line.name, outcomes, time.perf_counter() - started, note=note)
    with line_lock(engine, line.name, wait_s):
        holder: dict[str, str | None] = {"run_id": None}
        try:
            outcomes = _walk(ctx, set(force), from_stage, dry_run=False, say=say, run_id=holder)
        except BaseException:
            _end_line_run(ctx, holder["run_id"], "FAILED")
            raise
        _end_line_run(ctx, holder["run_id"], "FINISHED")
    seconds = time.perf_counter() - started
    return LineReport(line.name, outcomes, seconds, holder["run_id"], note)


def _quick_walk(
    line: LineSpec, settings: Settings, *, dry_run: bool, say: Say
) -> list[StageOutcome] | None:
    """The outcomes of a line with nothing to do (or of a dry run), read through ``sqlite3``
    without SQLAlchemy; None when the line must be walked through SQLAlchemy: a stage must run,
    the database is not a local SQLite file at the schema's head, the lock is held, or the
    champion can only be read with the MLflow client. Takes no lock: it writes nothing."""
    store = open_records(settings.database_url, line.name)
    if store is None:
        return None
    ctx = _Context(line, settings, None, False, None, store=store)
    try:
        _check_explain_segments(ctx)
        outcomes = _walk(ctx, set(), None, dry_run=True, say=say, run_id=None)
    except NotQuick:
        return None
    except MlfactoryError:
        if dry_run:
            raise
        return None  # a stage fails: the full walk records it
    finally:
        store.close()
    if not dry_run and any(o.status != "up to date" for o in outcomes):
        return None
    return outcomes


def _end_line_run(ctx: _Context, run_id: str | None, status: str) -> None:
    if run_id is not None:  # a line where nothing ran opened no run (and imports no MLflow)
        from mlfactory.tracking._owner import HEARTBEAT

        HEARTBEAT.remove(run_id)
        ctx.tracking().set_terminated(run_id, status)


def _walk(
    ctx: _Context,
    force: set[str],
    from_stage: str | None,
    *,
    dry_run: bool,
    say: Say,
    run_id: dict[str, str | None] | None,
) -> list[StageOutcome]:
    line = ctx.line
    stages = line.stages()
    forced = set(force)
    if from_stage is not None:
        forced |= set(stages[stages.index(from_stage) :])
    if ctx.force_promote:
        forced |= {"gate", "promote"}
    ctx.forced = forced
    outcomes: list[StageOutcome] = []
    blocked: str | None = None  # dry run: the first stage that would run
    for stage in stages:
        ctx.records[stage] = ctx.records_store.latest(line.name, stage)
        if blocked is not None:
            outcomes.append(StageOutcome(stage, "would run", [f"after {blocked}, which would run"]))
            continue
        began = time.perf_counter()
        try:
            parts = _parts(ctx, stage)
        except MlfactoryError as exc:  # an input is missing or unreadable: the stage fails
            if dry_run:
                raise
            record = start_record(ctx.engine, line.name, stage, "-", {}, None)
            fail_record(ctx.engine, record, str(exc))
            raise StageFailed(
                f"stage {stage!r} of line {line.name!r} failed: {exc}; "
                "the next `mlfactory run` resumes at this stage"
            ) from None
        key = cache_key(parts)
        previous = ctx.records[stage]
        if previous is None:
            why = ["never ran" if not _ever_failed(ctx, stage) else "its last run failed"]
        elif previous.cache_key != key:
            why = changes(parts, previous.key_parts) or ["its key changed"]
        elif stage in forced:
            why = ["forced (--force/--from/--force-promote)"]
        elif gone := _outputs_gone(stage, previous.outputs or {}):
            why = gone
        else:
            assert previous.outputs is not None
            ctx.outputs[stage] = previous.outputs
            when = f"{previous.finished_at:%Y-%m-%d %H:%M:%S}" if previous.finished_at else "?"
            why = [f"inputs and settings as in its run of {when} (key {key[:12]})"]
            outcomes.append(StageOutcome(stage, "up to date", why, "", time.perf_counter() - began))
            continue
        if dry_run:
            outcomes.append(StageOutcome(stage, "would run", why))
            blocked = stage
            continue
        if run_id is not None and run_id["run_id"] is None:
            run_id["run_id"] = _line_run(ctx, dry_run)
        line_run = run_id["run_id"] if run_id else None
        record = start_record(ctx.engine, line.name, stage, key, parts, line_run)
        say(f"{stage}: running ({'; '.join(why)})")
        try:
            outputs, summary = _BODIES[stage](ctx, say)
        except BaseException as exc:
            message = mask_urls_in_text(str(exc).strip().splitlines()[0] if str(exc) else "")
            text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
            fail_record(ctx.engine, record, text)
            _tag(ctx, line_run, stage, key, "failed", text)
            if isinstance(exc, Exception):
                raise StageFailed(
                    f"stage {stage!r} of line {line.name!r} failed: {message or text}; "
                    "the next `mlfactory run` resumes at this stage"
                ) from exc
            raise
        finish_record(ctx.engine, record, outputs)
        ctx.outputs[stage] = outputs
        _tag(ctx, line_run, stage, key, "ran", summary)
        outcomes.append(StageOutcome(stage, "ran", why, summary, time.perf_counter() - began))
    return outcomes


def _outputs_gone(stage: str, outputs: dict[str, Any]) -> list[str]:
    """Why a stage with an unchanged key must run again: what it wrote is gone or altered.

    Its key says its inputs are as before; this checks what it left behind (DVC checks a
    stage's outputs the same way), so a removed report or an edited raw file is remade.
    """
    why: list[str] = []
    if stage == "data":
        digests, stats = outputs.get("digests") or {}, outputs.get("stats") or {}
        for name in outputs.get("files") or []:
            path = Path(name)
            if "://" in name:  # an object store: its own manifest says what changed
                continue
            if not path.exists():
                why.append(f"output {name} is missing")
            elif name in digests and fingerprint_path(path, stats.get(name))[0] != digests[name]:
                why.append(f"output {name} changed since this stage wrote it")
    elif stage == "explain":
        report = outputs.get("report")
        if report and "://" not in str(report) and not Path(report).is_file():
            why.append(f"output {report} is missing")
    elif stage == "batch":
        target = outputs.get("output")
        if target and "://" not in str(target) and not Path(str(target)).exists():
            why.append(f"output {target} is missing")
    return why


def _ever_failed(ctx: _Context, stage: str) -> bool:
    return ctx.records_store.ever_failed(ctx.line.name, stage)


def _tag(ctx: _Context, run_id: str | None, stage: str, key: str, status: str, text: str) -> None:
    """The stage's key, status and summary as tags (and its key as a param) of the line's run."""
    if run_id is None:
        return
    client = ctx.tracking()
    client.set_tag(run_id, f"line.{stage}.status", status)
    client.set_tag(run_id, f"line.{stage}.summary", mask_urls_in_text(text)[:4_000])
    client.log_param(run_id, f"line.{stage}.cache_key", key)
