"""Cache keys: a stage's resolved config, its inputs' fingerprints and the versions that matter.

A file is fingerprinted by size, modification time and SHA-256; the SHA-256 of the previous
record is reused while size and mtime are unchanged, so a "nothing changed" check does not
re-read the data. A folder (a partitioned store) is fingerprinted partition by partition, the
same way. Size and mtime are kept beside the key (``stat``), not in it: a touched file whose
bytes did not change keeps its key.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from mlfactory.exceptions import DataError

__all__ = [
    "KEYED_PARTS",
    "cache_key",
    "canonical",
    "changes",
    "fingerprint_path",
    "library_versions",
]

KEYED_PARTS = ("config", "inputs", "versions")  # what the key hashes; "stat" is kept beside it
_LIBRARIES = ("scikit-learn", "pandas", "numpy")
_CHUNK = 1 << 20


def library_versions() -> dict[str, str]:
    """mlfactory's version and those of the libraries that change results."""
    from mlfactory import __version__

    return {"mlfactory": __version__, **_installed()}


@cache
def _installed() -> dict[str, str]:
    """The libraries' versions, looked up once a process (each lookup scans the installed
    distributions: ~3 ms, seven times a line)."""
    found = {}
    for name in _LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover - they are dependencies
            found[name] = "absent"
    return found


def canonical(value: Any) -> str:
    """One text per value: sorted keys, no whitespace, anything else as its str."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def cache_key(parts: dict[str, Any]) -> str:
    return hashlib.sha256(canonical({k: parts.get(k) for k in KEYED_PARTS}).encode()).hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _file_entry(path: Path, previous: dict[str, Any] | None) -> tuple[dict[str, Any], bool]:
    """``({size, mtime_ns, sha256}, re-read?)``: the previous hash reused when the stat matches."""
    stat = path.stat()
    if (
        previous
        and previous.get("size") == stat.st_size
        and (previous.get("mtime_ns") == stat.st_mtime_ns and previous.get("sha256"))
    ):
        return dict(previous), False
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": _sha256(path)}, True


def fingerprint_path(
    path: Path, previous_stat: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    """``(content digest, stat)`` of a file or a folder of partitions.

    ``previous_stat`` is the ``stat`` this returned last time; a file whose size and mtime
    match keeps its recorded SHA-256 without being read.
    """
    if not path.exists():
        raise DataError(f"input {path} not found")
    previous = (previous_stat or {}).get("files", {}) if previous_stat else {}
    if path.is_file():
        files = {path.name: path}
    else:
        files = {
            p.relative_to(path).as_posix(): p
            for p in sorted(path.rglob("*"))
            if p.is_file() and not p.name.startswith(".")
        }
        if not files:
            raise DataError(f"input folder {path} holds no files")
    entries: dict[str, dict[str, Any]] = {}
    reread = 0
    for name, file in files.items():
        entries[name], was_read = _file_entry(file, previous.get(name))
        reread += was_read
    digest = hashlib.sha256(
        canonical({n: [e["size"], e["sha256"]] for n, e in entries.items()}).encode()
    ).hexdigest()
    return digest, {"path": str(path), "files": entries, "reread": reread}


def _flatten(value: Any, prefix: str = "", depth: int = 99) -> dict[str, str]:
    if isinstance(value, dict) and depth > 0:
        flat: dict[str, str] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key), depth - 1))
        return flat or {prefix: "{}"}
    return {prefix: canonical(value)}


def _short(text: str, limit: int = 48) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _leaves(parts: dict[str, Any]) -> dict[str, str]:
    """Settings and versions leaf by leaf; each input as a whole (a model, a file, a decision)."""
    flat = _flatten({"config": parts.get("config"), "versions": parts.get("versions")})
    flat.update(_flatten({"inputs": parts.get("inputs") or {}}, depth=2))
    return flat


def changes(current: dict[str, Any], previous: dict[str, Any], limit: int = 4) -> list[str]:
    """What differs between two key texts, in words: ``setting experiment.seed: 1 -> 2``."""
    now, before = _leaves(current), _leaves(previous)
    words = {"config": "setting", "inputs": "input", "versions": "version of"}
    found = []
    for name in sorted(set(now) | set(before), key=lambda n: (n.split(".")[0] != "inputs", n)):
        if now.get(name) == before.get(name):
            continue
        part, _, rest = name.partition(".")
        was, is_ = before.get(name, "(absent)"), now.get(name, "(absent)")
        found.append(f"{words.get(part, part)} {rest or part}: {_short(was)} -> {_short(is_)}")
    if len(found) > limit:
        found = [*found[:limit], f"and {len(found) - limit} more"]
    return found
