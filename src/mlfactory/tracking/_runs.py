"""Run lifecycle: a run always ends FINISHED, FAILED or KILLED, never stuck in RUNNING."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import mlflow
from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient

from mlfactory.logs import get_logger
from mlfactory.settings import mask_secrets
from mlfactory.tracking._owner import DEFAULT_HEARTBEAT_INTERVAL, HEARTBEAT, owner_tags

__all__ = ["RunTerminated", "tracked_run"]

logger = get_logger(__name__)


class RunTerminated(BaseException):
    """Raised in the main thread when the process receives SIGTERM during a run."""


def _raise_terminated(signum: int, _frame: FrameType | None) -> None:
    raise RunTerminated(f"received signal {signum}")


@contextmanager
def tracked_run(
    client: MlflowClient,
    experiment_id: str,
    run_name: str,
    tags: dict[str, str] | None = None,
    parent_run_id: str | None = None,
    heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL,
) -> Iterator[str]:
    """Create a run, make it MLflow's active run, and always give it a final status.

    Ctrl-C and SIGTERM end it KILLED, any other exception FAILED; the exception propagates.
    The run records its owner (this process) and a heartbeat renewed every
    ``heartbeat_interval`` seconds while it is open, so that a run whose process was killed
    outright (SIGKILL, OOM killer, power loss) is recognised as stale (see ``_owner``).
    """
    tags = mask_secrets(dict(tags or {}))  # a URL's password never becomes a tag
    tags.update(owner_tags())
    if parent_run_id is not None:
        tags["mlflow.parentRunId"] = parent_run_id
    run = client.create_run(experiment_id, run_name=run_name, tags=tags)
    run_id = run.info.run_id
    HEARTBEAT.add(run_id, client, heartbeat_interval)
    previous_handler = None
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread:
        previous_handler = signal.signal(signal.SIGTERM, _raise_terminated)
    mlflow.set_tracking_uri(client.tracking_uri)
    status = RunStatus.to_string(RunStatus.FAILED)
    try:
        with mlflow.start_run(run_id=run_id, nested=parent_run_id is not None):
            try:
                yield run_id
                status = RunStatus.to_string(RunStatus.FINISHED)
            except (KeyboardInterrupt, RunTerminated):
                status = RunStatus.to_string(RunStatus.KILLED)
                raise
            finally:
                # end_run inside the context sets our status instead of MLflow's default
                mlflow.end_run(status=status)
    finally:
        HEARTBEAT.remove(run_id)
        if in_main_thread and previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)
        current = client.get_run(run_id).info.status
        if current == RunStatus.to_string(RunStatus.RUNNING):  # belt and braces
            client.set_terminated(run_id, status=status)
        logger.debug("run %s ended %s", run_id, status)
