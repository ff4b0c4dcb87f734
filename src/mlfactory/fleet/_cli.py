"""What the command line prints about fleets (the commands stay thin and call these)."""

from __future__ import annotations

import math
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
        f"{summary['trained']} trained, {summary['regressed']} regressed, "
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
