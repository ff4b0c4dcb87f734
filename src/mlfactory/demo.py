"""The end-to-end demo: every stage of the factory on embedded defaults.

Each stage is a plain function of the settings and a shared context; the CLI adds progress and
the summary. Rerunning the demo is safe: ingestion is incremental, files are rewritten atomically,
new runs and model versions are added and the ``champion`` alias moves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from mlfactory.db import check_database
from mlfactory.exceptions import ConfigError, DataError
from mlfactory.settings import Settings

__all__ = ["DEMO_MODEL", "DemoContext", "DemoStage", "StageResult", "demo_stages"]

DEMO_MODEL = "credit"
DEMO_EXPERIMENT = "credit-demo"


@dataclass
class StageResult:
    name: str
    summary: str
    paths: dict[str, str] = field(default_factory=dict)


@dataclass
class DemoContext:
    """What the stages pass on to each other."""

    settings: Settings
    quick: bool
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoStage:
    name: str
    description: str
    run: Callable[[DemoContext], StageResult]


def _check_store(context: DemoContext) -> StageResult:
    settings = context.settings
    settings.ensure_dirs()
    status = check_database(settings.database_url)
    if not status.reachable:
        raise ConfigError(f"database {status.url} is unreachable: {status.detail}")
    return StageResult(
        "store",
        f"home {settings.home.resolve()}; database {status.url} ({status.detail})",
        {"home": str(settings.home.resolve())},
    )


def _prices_and_features(context: DemoContext) -> StageResult:
    from mlfactory.data import BronzeStore, featurize, ingest, load_tickers, make_source

    tickers = load_tickers()
    start, end = date(2015, 1, 1), date(2025, 12, 31)
    if context.quick:
        tickers, start = tickers.head(8), date(2023, 1, 1)
    store = BronzeStore.from_settings(context.settings)
    report = ingest(store, tickers, make_source("synthetic"), start, end, source_name="synthetic")
    if report.count("failed") == len(tickers):
        raise DataError("the demo's synthetic ingestion failed for every ticker")
    features = featurize(context.settings, tickers=list(tickers["ticker"]))
    if features.failures:
        raise DataError(f"featurize failed: {features.failures[0].error}")
    status = store.status()
    return StageResult(
        "data",
        f"{len(tickers)} tickers ({report.rows_added} new rows, "
        f"{len(features.written)} featurized, {len(features.skipped)} up to date); "
        f"bronze store: {status.rows} rows in {status.partitions} partitions, "
        f"{status.first} to {status.last}",
        {"bronze": str(store.root.resolve())},
    )


def _credit_spec(quick: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": DEMO_EXPERIMENT,
        "description": "demo: 2 recipes x 2 models, grid search on synthetic credit data",
        "dataset": "credit",
        "preprocessing": ["basic", "power"],
        "model": ["LogisticRegression", "RandomForest"],
        "seed": 42,
        "test_size": 0.25,
        "cv": {"folds": 3, "scoring": ["roc_auc", "neg_log_loss", "accuracy", "f1"]},
        "search": {"kind": "grid", "refit": "roc_auc"},
    }
    spec["search"]["param_grid"] = {
        "LogisticRegression": {"clf__C": [0.01, 0.1, 1.0, 10.0]},
        "RandomForest": {
            "clf__n_estimators": [100],
            "clf__max_depth": [6, 10],
            "clf__min_samples_leaf": [5],
        },
    }
    if quick:
        spec["cv"]["folds"] = 2
        spec["search"]["param_grid"] = {
            "LogisticRegression": {"clf__C": [0.1, 1.0]},
            "RandomForest": {"clf__n_estimators": [20], "clf__max_depth": [4, 8]},
        }
    return spec


def _train_credit(context: DemoContext) -> StageResult:
    from mlfactory.datasets import write_synthetic
    from mlfactory.spec import spec_from_dict
    from mlfactory.spec._resolve import resolve_spec
    from mlfactory.training import plan_from_spec, run_experiment

    rows = 3_000 if context.quick else 30_000
    (path,) = write_synthetic("credit", rows, settings=context.settings, seed=7)
    resolved = resolve_spec(spec_from_dict(_credit_spec(context.quick)), context.settings)
    context.values["resolved"] = resolved
    result = run_experiment(plan_from_spec(resolved), context.settings, n_jobs=-1)
    context.values["experiment"] = result
    auc = result.best.test_scores["roc_auc"]
    return StageResult(
        "train",
        f"{len(result.cells)} pipelines tuned on {rows} rows; best {result.best.name} "
        f"test ROC AUC {auc:.3f} (run {result.run_id})",
        {"credit data": str(path), "experiment": DEMO_EXPERIMENT},
    )


def _promote(context: DemoContext) -> StageResult:
    from mlfactory.registry import promote

    result = context.values["experiment"]
    info = promote(context.settings, DEMO_MODEL, run_id=result.run_id)
    context.values["version"] = info
    return StageResult(
        "promote",
        f"{DEMO_MODEL} version {info.version} is now @champion ({result.best.name})",
        {"model": f"{DEMO_MODEL}@champion"},
    )


def _explain(context: DemoContext) -> StageResult:
    from mlfactory.explain import explain_model

    report = explain_model(
        context.settings,
        f"{DEMO_MODEL}@champion",
        max_rows=200 if context.quick else 1_000,
        n_repeats=3 if context.quick else 5,
        out=context.settings.reports_dir / "explain" / DEMO_MODEL,
    )
    top = report.explanation.importance.table.iloc[0]["feature"]
    return StageResult(
        "explain",
        f"permutation importance, partial dependence and SHAP; top feature {top}",
        {"explain report": str(report.html.resolve())},
    )


def shifted_sample(X: Any, seed: int = 0) -> Any:
    """A deliberately drifted copy of credit rows: more utilisation, younger, lower incomes."""
    import numpy as np

    rng = np.random.default_rng(seed)
    shifted = X.copy()
    shifted["revolving_unsecured_line_utilization"] = shifted[
        "revolving_unsecured_line_utilization"
    ] * 2.5 + rng.uniform(0, 0.3, len(X))
    shifted["age"] = (shifted["age"] - 12).clip(lower=21)
    shifted["monthly_income"] = shifted["monthly_income"] * 0.6
    return shifted


def _send(url: str, frame: Any, batch: int = 50) -> int:
    import json

    import httpx

    sent = 0
    with httpx.Client(base_url=url, timeout=30) as client:
        for start in range(0, len(frame), batch):
            chunk = frame.iloc[start : start + batch]
            split = json.loads(chunk.to_json(orient="split", index=False))  # NaN -> null
            response = client.post("/invocations", json={"dataframe_split": split})
            response.raise_for_status()
            sent += len(chunk)
    return sent


def _serve_traffic(context: DemoContext) -> StageResult:
    import httpx

    from mlfactory.serving import BackgroundServer, create_app

    resolved = context.values["resolved"]
    X_test = resolved.X_test.head(300 if context.quick else 2_000)
    app = create_app(
        context.settings, f"{DEMO_MODEL}@champion", onnx=True, log_flush_interval_s=0.2
    )
    with BackgroundServer(app) as server:
        inference = httpx.get(f"{server.url}/model", timeout=30).json()["inference"]
        normal = _send(server.url, X_test)
        shifted = _send(server.url, shifted_sample(X_test))
    context.values["traffic"] = (normal, shifted)
    return StageResult(
        "serve",
        f"served {normal} held-out rows then {shifted} deliberately shifted rows on "
        f"{server.url} ({inference} inference); every prediction logged in prediction_requests",
        {"serve": f"mlfactory serve {DEMO_MODEL}@champion"},
    )


def _drift(context: DemoContext) -> StageResult:
    from mlfactory.monitoring import monitor_model, publish_report

    report = monitor_model(context.settings, f"{DEMO_MODEL}@champion", since="1h")
    published = publish_report(
        context.settings, report, context.settings.reports_dir / "drift" / DEMO_MODEL
    )
    verdict = "DRIFT" if report.drifted else "no drift"
    drifted = ", ".join(report.drifted_features) or "none"
    return StageResult(
        "monitor",
        f"{verdict} over the last hour's {report.n_current} logged rows vs the training sample: "
        f"drifted features {drifted} (report #{published.report_id})",
        {"drift report": str(published.files.html.resolve())},
    )


def demo_stages() -> list[DemoStage]:
    """The stages ``mlfactory demo`` runs, in order."""
    return [
        DemoStage("store", "check the home folder and the database", _check_store),
        DemoStage("data", "ingest synthetic prices, build features", _prices_and_features),
        DemoStage("train", "synthetic credit data, 2x2 matrix with grid search", _train_credit),
        DemoStage("promote", "register the best pipeline as champion", _promote),
        DemoStage("explain", "explain the champion (HTML report)", _explain),
        DemoStage("serve", "serve the champion, send normal then shifted traffic", _serve_traffic),
        DemoStage("monitor", "drift check of the logged traffic", _drift),
    ]
