"""What the command line prints about fleets (the commands stay thin and call these)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mlfactory.fleet._plan import FALLBACK_KEY

__all__ = ["print_fleet_result"]


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def print_fleet_result(result: Any, console: Console, worst: int = 5) -> None:
    """Counts by status, fleet vs fallback-only test scores, the worst segments, the run."""
    summary = result.summary()
    console.print(
        f"[bold]fleet {escape(result.experiment)}[/]: {summary['segments']} segments — "
        f"{summary['trained']} trained, {summary['reused']} reused unchanged, "
        f"{summary['regressed']} regressed, "
        f"{summary['failed']} failed, {summary['fallback']} on the fallback; "
        f"{summary['tasks']} tasks in {summary['seconds']:.1f} s",
        soft_wrap=True,
    )
    scores = Table(title="held-out test: every row routed through the fleet vs the fallback alone")
    scores.add_column("metric")
    scores.add_column("fleet", justify="right")
    scores.add_column("fallback only", justify="right")
    for metric, value in result.test_scores.items():
        scores.add_row(metric, _fmt(value), _fmt(result.fallback_scores.get(metric)))
    console.print(scores)
    table = result.table
    own = table[(table["segment"] != FALLBACK_KEY) & table["cv_mean"].notna()]
    metric = own["refit_metric"].iloc[0] if len(own) else ""
    if len(own):
        board = Table(title=f"worst segments by cv {metric}")
        for column in ("segment", "rows", f"cv {metric}", f"test {metric}", "fallback", "status"):
            board.add_column(column, overflow="ellipsis")
        for row in own.sort_values("cv_mean").head(worst).to_dict("records"):
            test = (row.get("test_metrics") or {}).get(metric)
            board.add_row(
                escape(str(row["segment"])),
                str(row["train_rows"] + row["test_rows"]),
                _fmt(row["cv_mean"]),
                _fmt(test),
                _fmt(row.get("fallback_test_score")),
                row["status"],
            )
        console.print(board)
    failed = table[table["status"] == "failed"]
    for row in failed.head(5).to_dict("records"):
        console.print(
            f"[yellow]failed[/] {escape(str(row['segment']))}: {escape(str(row['error']))}"
        )
    console.print(
        f"run: {result.run_id}   promote: mlfactory promote {result.run_id[:8]} --name NAME"
    )


def promote_fleet_command(
    settings: Any, name: str, run_id: str, alias: str, console: Console
) -> None:
    """``mlfactory promote FLEET_RUN --name NAME``: register with the per-segment gate, say what."""
    from mlfactory.fleet._registry import promote_fleet

    outcome = promote_fleet(settings, name, run_id=run_id, alias=alias)
    if outcome.registered:
        console.print(
            f"registered fleet [bold]{escape(name)}[/] version [bold]{outcome.info.version}[/] "
            f"(@{escape(alias)}) from run {run_id[:8]}: {escape(outcome.reason)}",
            soft_wrap=True,
        )
    else:
        console.print(
            f"[yellow]not registered:[/] no segment of run {run_id[:8]} passed the gate; "
            f"{escape(name)}@{escape(alias)} stays version {outcome.info.version}",
            soft_wrap=True,
        )
    console.print(f"decision {outcome.decision_id}: mlfactory models decisions {escape(name)}")


def print_fleet_summary(settings: Any, reference: str, console: Console) -> None:
    """``models show FLEET``: segments, fallback share, worst segments, where models come from."""
    from mlfactory.fleet._registry import describe_fleet

    summary = describe_fleet(settings, reference)
    trained_in = ", ".join(
        f"v{version}: {count}" for version, count in sorted(summary["trained_in_versions"].items())
    )
    console.print(
        f"[bold]fleet v{summary['version']}[/] by {escape(', '.join(summary['by']))}: "
        f"{summary['segments']} segment models, {summary['small_segments']} small segment(s) on "
        f"the fallback ({summary['fallback']}; fallback share {summary['fallback_share']:.1%}); "
        f"models trained in {trained_in}",
        soft_wrap=True,
    )
    if summary["worst"]:
        table = Table(title=f"worst segments by {summary['metric']}")
        table.add_column("segment", overflow="ellipsis")
        table.add_column(summary["metric"], justify="right")
        for row in summary["worst"]:
            table.add_row(escape(str(row["segment"])), _fmt(row[summary["metric"]]))
        console.print(table)


def print_fleet_drift(result: Any, console: Console, shown: int = 20) -> None:
    """``monitor model FLEET``: one row per segment (drifted first), then the verdict."""
    table = result.table.copy()
    order = {"drift": 0, "no drift": 1, "too few rows": 2}
    table = table.sort_values(
        ["status", "share_drifted"],
        key=lambda c: c.map(order) if c.name == "status" else -c.fillna(0),
    )
    board = Table(title=f"drift of fleet {escape(result.model)} v{result.version} by segment")
    for column in ("segment", "training rows", "traffic rows", "verdict", "share", "drifted"):
        board.add_column(column, overflow="ellipsis")
    for row in table.head(shown).to_dict("records"):
        share = row["share_drifted"]
        drifted = ", ".join(row["drifted_features"][:5])
        if drifted and row.get("worst_feature"):  # the worst column's test statistic
            drifted += f" (worst {row['worst_feature']}: {row['worst_test']} "
            drifted += f"{_fmt(row['worst_statistic'])})"
        board.add_row(
            escape(str(row["segment"])),
            str(row["reference_rows"]),
            str(row["current_rows"]),
            row["status"],
            "" if share is None or share != share else f"{share:.0%}",
            escape(drifted),
        )
    console.print(board)
    if len(table) > shown:
        console.print(f"{len(table) - shown} more segment(s)")
    judged = int((table["status"] != "too few rows").sum())
    drifted = result.drifted_segments
    verdict = (
        f"[red]drift[/] in {len(drifted)} of {judged} segment(s) judged: "
        + escape(", ".join(drifted[:10]))
        if drifted
        else f"[green]no drift[/] in {judged} segment(s) judged"
    )
    console.print(f"{verdict} ({escape(result.window)})", soft_wrap=True)


def explain_fleet_command(
    settings: Any, model: str, max_rows: int, n_repeats: int, top_k: int, seed: int,
    out: str | None, console: Console, segments: Sequence[str] = (), log_to_run: bool = False,
) -> bool:  # fmt: skip
    """``explain FLEET [--segment KEY]``: per-segment importance, or the chosen segments fully;
    ``False`` when ``model`` is not a fleet."""
    from mlfactory.exceptions import ModelNotFound
    from mlfactory.fleet._explain import explain_fleet

    try:
        result = explain_fleet(
            settings, model, segments=segments, max_rows=max_rows, n_repeats=n_repeats,
            top_k=top_k, seed=seed, out=out, log_to_run=log_to_run,
        )  # fmt: skip
    except ModelNotFound:
        return False  # not a registered model here: the single-model path says what is missing
    if result is None:
        return False
    table = result.table
    explained = table[table["status"] == "explained"]
    board = Table(title=f"fleet {escape(result.model)} v{result.version}: top features by segment")
    for column in ("segment", "rows", "top features (drop in " + result.scoring + ")"):
        board.add_column(escape(column), overflow="fold")
    for key, group in explained.groupby("segment", sort=True):
        board.add_row(
            escape(str(key)),
            str(int(group["rows"].iloc[0])),
            escape(
                ", ".join(
                    f"{f} {m:.3f}" for f, m in zip(group["feature"], group["mean"], strict=True)
                )
            ),
        )
    console.print(board)
    skipped = table[table["status"] != "explained"]["segment"].tolist()
    if skipped:
        console.print(
            f"{len(skipped)} segment(s) with too few held-out rows: "
            + escape(", ".join(skipped[:10]))
        )
    for key, explanation in result.explanations.items():
        shap = explanation.shap.mean_abs()["feature"].head(3).tolist()
        console.print(
            f"segment {escape(key)}: partial dependence of "
            f"{escape(', '.join(explanation.pdp.features))}; top |SHAP| {escape(', '.join(shap))}",
            soft_wrap=True,
        )
    console.print(f"report: {result.html}")
    console.print(f"  table: {result.file('segment_importance.csv')}")
    if log_to_run:
        console.print(f"  logged on run {result.run_id} under explain/")
    return True
