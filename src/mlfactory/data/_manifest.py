"""The store's manifest: the index of every partition, so nothing has to list the store.

Each store (bronze prices, silver features) keeps one ``_manifest.json`` at its root::

    {"format": 2, ..., "partitions": {"ticker=T/year=Y/part-0.parquet":
        {"rows": 252, "bytes": 18342, "sha256": "…", "written": "2026-12-01T21:40:06Z", …}}}

It is rewritten whole (temp file + rename locally, one PUT on S3) after the partitions it lists
were written whole, so a partition becomes visible to readers only once the manifest lists it,
and a reader that lists nothing — ``data status``, featurize's nothing-changed check, the line's
cache key (:func:`store_fingerprint`) — pays one GET however many partitions there are.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlfactory.exceptions import DataError
from mlfactory.logs import get_logger
from mlfactory.settings import Settings
from mlfactory.storage import Location, open_location, read_bytes, translated, write_bytes

__all__ = [
    "MANIFEST_FILE",
    "MANIFEST_FORMAT",
    "manifest_bytes",
    "parse_manifest",
    "partition_entry",
    "read_manifest",
    "store_fingerprint",
    "write_manifest",
]

logger = get_logger(__name__)

MANIFEST_FILE = "_manifest.json"
MANIFEST_FORMAT = 2
# The sub-stores a data root holds (see mlfactory.data._layout).
SUB_STORES = ("bronze/prices", "silver/features")


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def partition_entry(data: bytes, rows: int, **extra: Any) -> dict[str, Any]:
    """What the manifest records of one partition written as ``data``."""
    return {
        "rows": int(rows),
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "written": now_text(),
        **extra,
    }


def manifest_bytes(root: Location) -> bytes | None:
    """The manifest file at ``root`` as stored (``None`` when there is none): two reads
    that give the same bytes saw the same manifest."""
    target = root.child(MANIFEST_FILE)
    try:
        with translated(target, "reading the manifest"):
            try:
                return (
                    target.fs.cat_file(target.path, max_concurrency=1)  # one GET, no HEAD
                    if target.remote
                    else Path(target.path).read_bytes()  # no filesystem layer to import
                )
            except FileNotFoundError:
                return None
    except NotADirectoryError:
        return None


def parse_manifest(raw: bytes | None, root: Location) -> dict[str, Any] | None:
    """:func:`manifest_bytes` parsed (``None`` when absent or unparseable, with a warning)."""
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError as exc:
        logger.warning("ignoring unreadable manifest %s: %s", root.child(MANIFEST_FILE).shown, exc)
        return None
    return value if isinstance(value, dict) else None


def read_manifest(root: Location) -> dict[str, Any] | None:
    """The manifest at ``root`` (``None`` when there is none or it cannot be parsed)."""
    return parse_manifest(manifest_bytes(root), root)


def write_manifest(root: Location, payload: dict[str, Any], *, fsync: bool = False) -> None:
    """Write the manifest whole (the moment the partitions it lists become visible)."""
    # compact: a 12,000-partition store's manifest is a few MB, written at every ingest
    text = json.dumps({"format": MANIFEST_FORMAT, **payload}, separators=(",", ":"), default=str)
    write_bytes(root.child(MANIFEST_FILE), text.encode("utf-8"), fsync=fsync)


def _digest(partitions: dict[str, dict[str, Any]]) -> str:
    canonical = json.dumps(
        {name: [entry.get("bytes"), entry.get("sha256")] for name, entry in partitions.items()},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def store_fingerprint(
    url: str | Path | Location, settings: Settings | None = None
) -> tuple[str, dict[str, Any]]:
    """``(digest, stat)`` of a store from its manifest alone: one read, no listing, no data.

    ``url`` is a store with a manifest (``…/bronze/prices``, ``…/silver/features``) or a data
    root holding them (``MLFACTORY_STORE_URL``, ``HOME/data``); local or ``s3://``. The digest
    hashes every partition's name, size and SHA-256 (not the write times), so a rewrite with the
    same bytes keeps it. ``stat``: ``{"path", "partitions", "rows", "bytes", "manifests",
    "reread": 0}``. :class:`DataError` when no manifest is there (a store not written by
    mlfactory, or written before manifests listed partitions: ingest or featurize once).
    """
    root = open_location(url, settings)
    found: dict[str, dict[str, Any]] = {}
    manifests: list[str] = []
    manifest = read_manifest(root)
    if manifest is not None and isinstance(manifest.get("partitions"), dict):
        found.update(manifest["partitions"])
        manifests.append(MANIFEST_FILE)
    else:
        for sub in SUB_STORES:
            inner = read_manifest(root.child(sub))
            if inner is not None and isinstance(inner.get("partitions"), dict):
                found.update({f"{sub}/{k}": v for k, v in inner["partitions"].items()})
                manifests.append(f"{sub}/{MANIFEST_FILE}")
    if not manifests:
        raise DataError(
            f"no store manifest listing partitions at {root.shown}; expected "
            f"{MANIFEST_FILE} written by `mlfactory data ingest` or `mlfactory data featurize` "
            "(run one of them once to index a store written by an older version)"
        )
    partitions = dict(sorted(found.items()))
    stat = {
        "path": root.shown,
        "manifests": manifests,
        "partitions": len(partitions),
        "rows": sum(int(e.get("rows", 0)) for e in partitions.values()),
        "bytes": sum(int(e.get("bytes", 0)) for e in partitions.values()),
        "reread": 0,
    }
    return _digest(partitions), stat


def read_whole(location: Location) -> bytes:
    """A partition's bytes (one GET on S3)."""
    return read_bytes(location)
