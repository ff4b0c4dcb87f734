"""The end-to-end demo: the factory line (``examples/credit_line.toml``) plus serving and drift.

Each stage is a plain function of the settings and a shared context; the CLI adds progress and
the summary. Rerunning the demo is safe and fast: ingestion is incremental and the line skips
every stage whose inputs did not change (the champion stays where the gate put it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlfactory.db import check_database
from mlfactory.exceptions import ConfigError
from mlfactory.settings import Settings

__all__ = ["DEMO_LINE", "DEMO_MODEL", "DemoContext", "DemoStage", "StageResult", "demo_stages"]

DEMO_MODEL = "credit"


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


def _line_file(name: str) -> Path:
    """``examples/NAME`` in a source tree; an installed package (Docker) ships the same file."""
    source = Path(__file__).resolve().parents[2] / "examples" / name
    return (
        source
        if source.is_file()
        else Path(__file__).resolve().parent / "resources" / "lines" / name
    )


def _line_words(report: Any, path: Path) -> str:
    ran = [o.stage for o in report.stages if o.status == "ran"]
    fresh = [o.stage for o in report.stages if o.status == "up to date"]
    if ran:
        done = f"ran {', '.join(ran)}" + (f"; up to date: {', '.join(fresh)}" if fresh else "")
    else:
        done = f"every stage up to date ({', '.join(fresh)})"
    gate = next((o.summary for o in report.stages if o.stage == "gate" and o.summary), "")
    return f"{path.name}: {done} in {report.seconds:.1f} s" + (f"; gate: {gate}" if gate else "")


def _stocks_line(context: DemoContext) -> StageResult:
    """The stocks line: synthetic prices -> bronze -> silver features -> next-day direction."""
    from mlfactory.line import run_line

    path = _line_file("stocks_line.toml")
    if not path.is_file():
        raise ConfigError(f"the demo's line spec {path} is missing: reinstall mlfactory")
    overrides = ("train.overrides=['search.n_iter=2', 'cv.folds=2']",) if context.quick else ()
    report = run_line(path, context.settings, overrides)
    return StageResult(
        "stocks",
        _line_words(report, path),
        {"stocks line": str(path), "bronze": str(context.settings.data_dir.resolve())},
    )


SOURCE_LINE = Path(__file__).resolve().parents[2] / "examples" / "credit_line.toml"
PACKAGED_LINE = Path(__file__).resolve().parent / "resources" / "lines" / "credit_line.toml"
DEMO_LINE = _line_file("credit_line.toml")
QUICK_OVERRIDES = (
    "data.rows=1500",
    "train.experiment.cv.folds=2",
    "gate.resamples=200",
    "explain.max_rows=200",
)


def _run_line(context: DemoContext) -> StageResult:
    from mlfactory.line import run_line

    if not DEMO_LINE.is_file():
        raise ConfigError(f"the demo's line spec {DEMO_LINE} is missing: reinstall mlfactory")
    overrides = QUICK_OVERRIDES if context.quick else ()
    report = run_line(DEMO_LINE, context.settings, overrides)
    return StageResult(
        "line",
        _line_words(report, DEMO_LINE),
        {"line spec": str(DEMO_LINE), "model": f"{DEMO_MODEL}@champion"},
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

    from mlfactory.datasets import load_dataset
    from mlfactory.serving import BackgroundServer, create_app

    X_test = load_dataset(DEMO_MODEL, settings=context.settings).X.tail(
        300 if context.quick else 2_000
    )
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
        f"served {normal} credit rows then {shifted} deliberately shifted rows on "
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


def _retrain_on_drift(context: DemoContext) -> StageResult:
    """``mlfactory run LINE --if-drift``: the drifted traffic starts the line again; the gate,
    not the drift, decides whether the new model replaces the champion."""
    from mlfactory.line import run_line
    from mlfactory.registry import ModelRef, resolve_version
    from mlfactory.tracking import open_tracking

    overrides = QUICK_OVERRIDES if context.quick else ()
    # cooldown 0: the demo retrains right after its first training; a real schedule waits
    report = run_line(
        DEMO_LINE, context.settings, overrides, if_drift=True, since="1h", cooldown="0m"
    )
    client = open_tracking(context.settings)
    served = resolve_version(client, ModelRef(DEMO_MODEL, "champion")).version
    if not report.stages:
        words = f"not retrained: {report.note}"
    else:
        decision = next((o for o in report.stages if o.stage == "gate"), None)
        verdict = decision.summary if decision is not None else "no gate"
        words = f"drift found: the line retrained ({report.seconds:.1f} s); gate: {verdict}"
    return StageResult(
        "retrain",
        f"{words}; serving {DEMO_MODEL} v{served} (a running `mlfactory serve` follows the alias)",
        {"retrain": f"mlfactory run {DEMO_LINE.name} --if-drift --since 1h"},
    )


def demo_stages() -> list[DemoStage]:
    """The stages ``mlfactory demo`` runs, in order."""
    return [
        DemoStage("store", "check the home folder and the database", _check_store),
        DemoStage("stocks", "run the stocks line (prices to gated champion)", _stocks_line),
        DemoStage("line", "run the credit line (data to gated champion)", _run_line),
        DemoStage("serve", "serve the champion, send normal then shifted traffic", _serve_traffic),
        DemoStage("monitor", "drift check of the logged traffic", _drift),
        DemoStage(
            "retrain", "the drift starts the credit line; the gate decides", _retrain_on_drift
        ),
    ]
