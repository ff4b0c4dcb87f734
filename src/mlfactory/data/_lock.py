"""One writer at a time per store: an ingest on bronze, a featurize on silver.

Locally the lock is an advisory ``flock`` on ``ROOT/.lock`` (released by the OS even if the
process is killed). On an object store it is a ``.lock`` object created only if absent (a
conditional PUT) naming its holder, deleted at the end; a lock left by a process of this host
that is gone is taken over, one of another host is named in the refusal, to delete. Readers
never take it: they read what the store's manifest lists.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlfactory.exceptions import DataError
from mlfactory.logs import get_logger
from mlfactory.storage import Location, delete, read_bytes, storage_error

__all__ = ["LOCK_FILE", "writer_lock"]

logger = get_logger(__name__)

LOCK_FILE = ".lock"


def _gone(holder: dict[str, Any]) -> bool:
    """Whether the process holding a lock is known to be gone (only knowable on this host)."""
    if holder.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(holder.get("pid", 0)), 0)
    except ProcessLookupError:
        return True
    except (OSError, ValueError, TypeError):
        return False
    return False


@contextlib.contextmanager
def writer_lock(root: Location, work: str) -> Iterator[None]:
    """Hold ``root``'s exclusive writer lock for ``work`` (``"ingest"``, ``"featurize"``):
    a second writer is refused with a :class:`DataError` naming it."""
    if root.remote:
        with _object_lock(root, work):
            yield
        return
    folder = Path(root.path)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory lock, single writer assumed
        yield
        return
    with open(folder / LOCK_FILE, "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataError(
                f"another {work} is writing to {folder}; wait for it to finish"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _object_lock(root: Location, work: str) -> Iterator[None]:
    lock = root.child(LOCK_FILE)
    holder = {
        "work": work,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    payload = json.dumps(holder).encode()
    held = False
    for _attempt in range(3):
        try:
            lock.fs.pipe_file(lock.path, payload, mode="create")
            held = True
            break
        except FileExistsError:
            try:
                other = json.loads(read_bytes(lock))
            except (DataError, ValueError):
                continue  # released meanwhile, or unreadable: try again
            if not _gone(other):
                raise DataError(
                    f"another {other.get('work', work)} is writing to {root.shown} (host "
                    f"{other.get('host')}, pid {other.get('pid')}, since "
                    f"{other.get('started')}); wait for it to finish, or delete {lock.shown} "
                    "if that process is gone"
                ) from None
            logger.warning("taking over the lock of a gone %s: %s", other.get("work", work), other)
            delete(lock)
        except Exception as exc:
            if "NotImplemented" in str(exc):  # a store without conditional writes
                logger.warning("%s: conditional writes unsupported, no writer lock", root.shown)
                break
            raise storage_error(exc, lock, "taking the writer lock") from exc
    else:
        raise DataError(f"cannot take the writer lock {lock.shown}; try again")
    try:
        yield
    finally:
        if held:
            delete(lock)
