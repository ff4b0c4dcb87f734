"""Who owns a RUNNING run, whether it is still alive, and reaping the runs whose owner is gone.

Every run mlfactory opens records its owner as tags: host name, a machine identity (Linux boot id
and PID namespace), process id and the process's start time (clock ticks since boot, so a reused
pid is told apart), plus a heartbeat (``mlfactory.heartbeat``, UTC) that a daemon thread renews
every ``MLFACTORY_HEARTBEAT_INTERVAL`` seconds while the run is open.

A RUNNING run is *stale* when its owner is gone: on the same machine, its process is not alive or
the pid now belongs to another process; seen from another machine, its heartbeat is older than
``MLFACTORY_STALE_RUN_TIMEOUT``. Readers only show that (:func:`staleness` reads tags, writes
nothing); writers (``train``, ``promote``, ``runs reap``) mark such runs FAILED with
:func:`reap_stale_runs`, tagging why (``mlfactory.stale_reason``). Runs without owner tags (made by
another tool or an older mlfactory) are never judged.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from mlfactory.logs import get_logger

if TYPE_CHECKING:  # MLflow (~2 s) is imported by the functions that use a client
    from mlflow.tracking import MlflowClient

__all__ = [
    "DEFAULT_HEARTBEAT_INTERVAL",
    "DEFAULT_STALE_RUN_TIMEOUT",
    "HEARTBEAT_TAG",
    "STALE_REASON_TAG",
    "StaleRun",
    "owner_tags",
    "reap_stale_runs",
    "run_heartbeat",
    "staleness",
]

logger = get_logger(__name__)

DEFAULT_HEARTBEAT_INTERVAL = 30.0  # seconds
DEFAULT_STALE_RUN_TIMEOUT = 300.0  # seconds without a heartbeat, seen from another machine
OWNER_HOST = "mlfactory.owner.host"
OWNER_MACHINE = "mlfactory.owner.machine"
OWNER_PID = "mlfactory.owner.pid"
OWNER_START = "mlfactory.owner.start_ticks"
HEARTBEAT_TAG = "mlfactory.heartbeat"
STALE_REASON_TAG = "mlfactory.stale_reason"
RUNNING = "RUNNING"  # RunStatus.to_string(RunStatus.RUNNING), without importing MLflow (~2 s)
FAILED = "FAILED"


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


@lru_cache(maxsize=1)
def machine_id() -> str:
    """This kernel boot and PID namespace (pids compare only within one); else the host name."""
    boot = _read("/proc/sys/kernel/random/boot_id")
    try:
        namespace = str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        namespace = ""
    return f"{boot}:{namespace}" if boot else socket.gethostname()


def process_start(pid: int) -> str | None:
    """Start time of ``pid`` in clock ticks since boot ('' where /proc is absent); ``None`` when
    the process does not exist or is a zombie (killed, not yet waited for)."""
    stat = _read(f"/proc/{pid}/stat")
    if stat:
        fields = stat[stat.rfind(")") + 2 :].split()
        return None if fields[0] in ("Z", "X") else fields[19]
    if Path("/proc/self/stat").exists():
        return None  # Linux without this pid: gone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return ""
    return ""


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def owner_tags() -> dict[str, str]:
    """Tags naming this process as a run's owner, with a first heartbeat."""
    pid = os.getpid()
    return {
        OWNER_HOST: socket.gethostname(),
        OWNER_MACHINE: machine_id(),
        OWNER_PID: str(pid),
        OWNER_START: process_start(pid) or "",
        HEARTBEAT_TAG: now_text(),
    }


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def staleness(
    status: str, tags: dict[str, str], timeout: float, now: datetime | None = None
) -> str | None:
    """Why a run is stale (one line), or ``None`` when it is not RUNNING, alive, or unowned."""
    if status != RUNNING or OWNER_PID not in tags:
        return None
    host = tags.get(OWNER_HOST, "?")
    pid = tags[OWNER_PID]
    if tags.get(OWNER_MACHINE) == machine_id() and host == socket.gethostname():
        try:
            started = process_start(int(pid))
        except ValueError:
            started = None
        if started is None:
            return f"its process {pid} on {host} is gone"
        recorded = tags.get(OWNER_START, "")
        if recorded and started and started != recorded:
            return f"its process {pid} on {host} is gone (the pid now belongs to another process)"
        return None
    beat = _parse_time(tags.get(HEARTBEAT_TAG))
    if beat is None:
        return f"its owner (process {pid} on {host}) never sent a heartbeat"
    age = ((now or datetime.now(UTC)) - beat).total_seconds()
    if age > timeout:
        return (
            f"no heartbeat from its process {pid} on {host} for {age:.0f} s "
            f"(MLFACTORY_STALE_RUN_TIMEOUT = {timeout:g} s)"
        )
    return None


@dataclass(frozen=True)
class StaleRun:
    run_id: str
    experiment_id: str
    name: str
    reason: str


def find_stale_runs(client: MlflowClient, timeout: float) -> list[StaleRun]:
    """RUNNING runs whose owner is gone, in every experiment (reads only)."""
    from mlflow.entities import ViewType

    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    found: list[StaleRun] = []
    for start in range(0, len(experiments), 100):
        token = None
        while True:
            page = client.search_runs(
                experiments[start : start + 100],
                filter_string=f"attributes.status = '{RUNNING}'",
                run_view_type=ViewType.ALL,
                max_results=1000,
                page_token=token,
            )
            for run in page:
                reason = staleness(run.info.status, run.data.tags, timeout)
                if reason:
                    found.append(
                        StaleRun(run.info.run_id, run.info.experiment_id, run.info.run_name, reason)
                    )
            token = page.token
            if not token:
                break
    return found


def reap_stale_runs(client: MlflowClient, timeout: float, by: str) -> list[StaleRun]:
    """Mark every stale run FAILED, with ``mlfactory.stale_reason`` saying why and by whom.

    The end time is the run's last heartbeat (when it was last known alive).
    """
    reaped = []
    for stale in find_stale_runs(client, timeout):
        run = client.get_run(stale.run_id)
        if run.info.status != RUNNING:  # another writer got there first
            continue
        beat = _parse_time(run.data.tags.get(HEARTBEAT_TAG))
        end_ms = int(beat.timestamp() * 1000) if beat else None
        if end_ms is not None and end_ms < (run.info.start_time or 0):
            end_ms = run.info.start_time
        client.set_tag(
            stale.run_id, STALE_REASON_TAG, f"{stale.reason}; marked FAILED by {by} at {now_text()}"
        )
        client.set_terminated(stale.run_id, status=FAILED, end_time=end_ms)
        logger.warning("run %s (%s) marked FAILED: %s", stale.run_id, stale.name, stale.reason)
        reaped.append(stale)
    return reaped


class _Heartbeat:
    """One daemon thread per process renewing the heartbeat tag of every open run it owns."""

    def __init__(self) -> None:
        self._runs: dict[str, MlflowClient] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.interval = DEFAULT_HEARTBEAT_INTERVAL

    def add(self, run_id: str, client: MlflowClient, interval: float) -> None:
        with self._lock:
            self._runs[run_id] = client
            if interval < self.interval or len(self._runs) == 1:
                self.interval = interval
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="mlfactory-heartbeat", daemon=True
                )
                self._thread.start()
            else:
                self._wake.set()

    def remove(self, run_id: str) -> None:
        with self._lock:
            self._runs.pop(run_id, None)

    def _loop(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            with self._lock:
                runs = dict(self._runs)
                if not runs:
                    self._thread = None
                    return
            stamp = now_text()
            for run_id, client in runs.items():
                try:
                    client.set_tag(run_id, HEARTBEAT_TAG, stamp)
                except Exception as exc:  # a busy database: the next beat tries again
                    logger.debug("heartbeat of run %s not recorded: %s", run_id, exc)


HEARTBEAT = _Heartbeat()


@contextmanager
def run_heartbeat(
    client: MlflowClient, run_id: str, interval: float = DEFAULT_HEARTBEAT_INTERVAL
) -> Iterator[None]:
    """Renew the heartbeat of ``run_id`` while the block runs.

    For a run created outside :func:`~mlfactory.tracking.tracked_run`: give it
    :func:`owner_tags` at creation, then hold it open inside this block.
    """
    HEARTBEAT.add(run_id, client, interval)
    try:
        yield
    finally:
        HEARTBEAT.remove(run_id)
