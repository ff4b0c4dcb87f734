"""Files of a run's artifact directory, with no way out of it (no path traversal)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from mlfactory.exceptions import ModelNotFound

__all__ = ["artifact_dir", "list_artifact_files", "resolve_artifact"]

MAX_LISTED = 300


def artifact_dir(artifact_uri: str) -> Path | None:
    """The local folder behind a ``file:`` (or plain path) artifact URI; ``None`` if remote."""
    parsed = urlparse(artifact_uri)
    if parsed.scheme == "file":
        return Path(url2pathname(unquote(parsed.path)))
    if parsed.scheme == "" and artifact_uri:
        return Path(artifact_uri)
    return None


def resolve_artifact(artifact_uri: str, relative: str) -> Path:
    """The file ``relative`` inside the run's artifact folder.

    Raises :class:`ModelNotFound` for a remote store, a missing file, a folder, or any path that
    resolves outside the run's folder (``..``, absolute paths, symbolic links leading out).
    """
    root = artifact_dir(artifact_uri)
    if root is None:
        raise ModelNotFound(f"artifacts at {artifact_uri!r} are not on this machine's disk")
    if "\x00" in relative:  # no file name holds a NUL byte (and the OS calls refuse one)
        raise ModelNotFound(f"artifact {relative!r} not found in the run's artifact folder")
    try:
        base = root.resolve()
        candidate = (base / relative).resolve()
        inside = candidate.is_relative_to(base) and candidate != base
        found = inside and candidate.is_file()
    except (OSError, ValueError):  # a name too long, a loop of links...: nothing to serve
        inside, found = True, False
    if not inside:
        raise ModelNotFound(f"artifact {relative!r} is outside the run's artifact folder")
    if not found:
        raise ModelNotFound(f"artifact {relative!r} not found in the run's artifact folder")
    return candidate


def list_artifact_files(artifact_uri: str, limit: int = MAX_LISTED) -> list[str]:
    """Relative paths of the files in the run's artifact folder (sorted, at most ``limit``)."""
    root = artifact_dir(artifact_uri)
    if root is None or not root.is_dir():
        return []
    base = root.resolve()
    files = []
    for path in sorted(base.rglob("*")):
        if path.is_file() and path.resolve().is_relative_to(base):
            files.append(path.relative_to(base).as_posix())
            if len(files) >= limit:
                break
    return files
