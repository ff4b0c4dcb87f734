"""``mlfactory run LINE --if-drift``: start the line only when the champion's traffic drifted.

One idempotent command for cron or an orchestrator. The cooldown is checked first, against the
newest finished ``train`` record of the line in the database, so no state lives on one machine.
Then the champion's prediction log over the window is compared with its training sample
(:func:`mlfactory.monitoring.monitor_model`), and the report is published (``drift_reports``).
Drift reruns the line from its first stage through the gate and promote (explain, batch and monitor
follow by their keys, so only when the champion moved); it never promotes by itself: the gate
decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mlfactory.db._tables import LINE_STAGE_RECORDS
from mlfactory.exceptions import DataError
from mlfactory.line._spec import LineSpec, line_reports
from mlfactory.settings import Settings

__all__ = ["DriftTrigger", "drift_trigger"]


@dataclass(frozen=True)
class DriftTrigger:
    run: bool
    reason: str
    report_id: int | None = None


def _last_retrain(engine: Engine, line: str) -> datetime | None:
    table = LINE_STAGE_RECORDS
    query = sa.select(sa.func.max(table.c.finished_at)).where(
        table.c.line == line, table.c.stage == "train", table.c.status == "finished"
    )
    try:
        with engine.connect() as connection:
            found = connection.execute(query).scalar()
    except sa.exc.SQLAlchemyError:  # no table yet: the line never ran
        return None
    if found is not None and found.tzinfo is None:  # SQLite gives back naive UTC
        found = found.replace(tzinfo=UTC)
    return found


def drift_trigger(
    line: LineSpec, settings: Settings, engine: Engine, since: str, cooldown: str
) -> DriftTrigger:
    """Whether drift (and the cooldown) let the line run now, and why in words."""
    from mlfactory.exceptions import ModelNotFound
    from mlfactory.monitoring import monitor_model, parse_time, publish_report

    now = datetime.now(UTC)
    wait_until = parse_time(cooldown, now)
    assert wait_until is not None
    delay = now - wait_until
    last = _last_retrain(engine, line.name)
    if last is not None and now - last < delay:
        return DriftTrigger(
            False,
            f"cooldown: the line last retrained at {last:%Y-%m-%d %H:%M:%S} UTC; the next "
            f"retrain may start after {last + delay:%Y-%m-%d %H:%M:%S} UTC",
        )
    reference = f"{line.promote.model}@{line.promote.alias}"
    try:
        fleet = _fleet_trigger(line, settings, reference, since)
        if fleet is not None:  # a fleet: drift found segment by segment
            return fleet
        report = monitor_model(settings, reference, since=since)
    except ModelNotFound:
        return DriftTrigger(True, f"no champion {reference} yet: the line runs to make one")
    except DataError as exc:  # nothing logged in the window: nothing to judge
        return DriftTrigger(False, f"no drift check possible: {exc}")
    folder = line_reports(settings, line.name, "drift")
    published = publish_report(settings, report, folder)
    if report.untested is not None:
        return DriftTrigger(
            False,
            f"no drift check possible: {report.untested} (drift report "
            f"#{published.report_id}): the line does not run",
            published.report_id,
        )
    drifted = ", ".join(report.drifted_features) or "none"
    if not report.drifted:
        return DriftTrigger(
            False,
            f"no drift in the champion's last {since} ({report.n_current} logged rows; drift "
            f"report #{published.report_id}): the line does not run",
            published.report_id,
        )
    return DriftTrigger(
        True,
        f"drift in the champion's last {since} (features {drifted}; drift report "
        f"#{published.report_id}): the line runs from its first stage; the gate decides",
        published.report_id,
    )


def _fleet_trigger(
    line: LineSpec, settings: Settings, reference: str, since: str
) -> DriftTrigger | None:
    """The trigger of a fleet champion (``None`` for one model): each segment's traffic against
    its training rows, the fleet report published; any drifted segment runs the line."""
    from mlfactory.fleet._monitor import monitor_fleet, publish_fleet_drift

    result = monitor_fleet(settings, reference, since=since)
    if result is None:
        return None
    published = publish_fleet_drift(settings, result, line_reports(settings, line.name, "drift"))
    drifted = result.drifted_segments
    if not drifted:
        return DriftTrigger(
            False,
            f"no drift in any segment of the champion's last {since} (drift report "
            f"#{published.report_id}): the line does not run",
            published.report_id,
        )
    return DriftTrigger(
        True,
        f"drift in the champion's last {since} (segments {', '.join(drifted[:10])}; drift report "
        f"#{published.report_id}): the line runs from its first stage; the gate decides",
        published.report_id,
    )
