"""``mlfactory runs gc``: result rows of runs that MLflow no longer has are removed.

``tuning_results`` and ``cv_fold_results`` keep one row per candidate/fold/metric of a run, keyed
by the MLflow run id. When that run is deleted (``MlflowClient.delete_run``, the UI, ``mlflow runs
delete``, or its whole experiment deleted) or is gone for good (``mlflow gc``), its rows would
linger and still show up in SQL queries. :func:`collect_result_rows` finds the run ids of those
tables that MLflow no longer has as an active run in an active experiment and deletes their rows
from both tables in one transaction (all or nothing); ``dry_run`` only counts them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa
from mlflow.entities import LifecycleStage, ViewType
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from mlfactory.db import CV_FOLD_RESULTS, TUNING_RESULTS, get_engine
from mlfactory.settings import Settings

__all__ = ["ResultsGc", "collect_result_rows", "live_run_ids"]

TABLES = (TUNING_RESULTS, CV_FOLD_RESULTS)
_BATCH = 100  # run ids per MLflow search / per SQL IN list
_PLAIN_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")


@dataclass
class ResultsGc:
    """What a gc found (and, unless ``dry_run``, removed)."""

    runs_checked: int
    gone_runs: list[str]
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows (to be) removed
    dry_run: bool = False

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    def summary(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        tables = " and ".join(f"{count} {table} row(s)" for table, count in self.rows.items())
        return (
            f"checked {self.runs_checked} run(s) with result rows: {len(self.gone_runs)} deleted "
            f"or gone in MLflow; {verb} {tables}"
        )


def _chunks(items: list[str], size: int = _BATCH) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def live_run_ids(client: MlflowClient, run_ids: Iterable[str]) -> set[str]:
    """The ids among ``run_ids`` that MLflow has as active runs of active experiments."""
    wanted = sorted(set(run_ids))
    experiments = {}
    token = None
    while True:
        page = client.search_experiments(view_type=ViewType.ALL, max_results=1000, page_token=token)
        experiments.update({e.experiment_id: e.lifecycle_stage for e in page})
        token = page.token
        if not token:
            break
    active_experiments = {e for e, stage in experiments.items() if stage == LifecycleStage.ACTIVE}
    if not active_experiments:
        return set()
    live: set[str] = set()
    plain = [run_id for run_id in wanted if _PLAIN_ID.fullmatch(run_id)]
    for batch in _chunks(plain):
        ids = ", ".join(f"'{run_id}'" for run_id in batch)
        runs = client.search_runs(
            sorted(active_experiments),
            filter_string=f"attributes.run_id IN ({ids})",
            run_view_type=ViewType.ACTIVE_ONLY,
            max_results=len(batch),
        )
        live.update(run.info.run_id for run in runs)
    for run_id in (r for r in wanted if not _PLAIN_ID.fullmatch(r)):  # cannot be quoted: ask
        try:
            run = client.get_run(run_id)
        except MlflowException:
            continue
        if (
            run.info.lifecycle_stage == LifecycleStage.ACTIVE
            and run.info.experiment_id in active_experiments
        ):
            live.add(run_id)
    return live


def collect_result_rows(
    settings: Settings, client: MlflowClient, *, dry_run: bool = False
) -> ResultsGc:
    """Delete (or with ``dry_run`` count) the result rows of runs MLflow no longer has."""
    engine = get_engine(settings.database_url)
    existing = [t for t in TABLES if sa.inspect(engine).has_table(t.name)]
    with engine.begin() as connection:  # one transaction: both tables, or neither
        run_ids: set[str] = set()
        for table in existing:
            run_ids.update(connection.execute(sa.select(table.c.run_id).distinct()).scalars())
        gone = sorted(run_ids - live_run_ids(client, run_ids)) if run_ids else []
        report = ResultsGc(len(run_ids), gone, {t.name: 0 for t in TABLES}, dry_run)
        for table in existing:
            for batch in _chunks(gone):
                where = table.c.run_id.in_(batch)
                if dry_run:
                    count = connection.execute(
                        sa.select(sa.func.count()).select_from(table).where(where)
                    )
                    report.rows[table.name] += int(count.scalar_one())
                else:
                    result = connection.execute(table.delete().where(where))
                    report.rows[table.name] += int(result.rowcount)
    return report
