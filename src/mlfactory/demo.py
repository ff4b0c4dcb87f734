"""The end-to-end demo: every stage of the factory on embedded defaults.

Each stage is a plain function of the settings; the CLI adds progress and the summary.
Stages are added here as the parts of the factory land.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mlfactory.db import check_database
from mlfactory.exceptions import ConfigError
from mlfactory.settings import Settings

__all__ = ["DemoStage", "StageResult", "demo_stages"]


@dataclass
class StageResult:
    name: str
    summary: str
    paths: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoStage:
    name: str
    run: Callable[[Settings, bool], StageResult]


def _check_store(settings: Settings, quick: bool) -> StageResult:
    settings.ensure_dirs()
    status = check_database(settings.database_url)
    if not status.reachable:
        raise ConfigError(f"database {status.url} is unreachable: {status.detail}")
    return StageResult(
        "store",
        f"home {settings.home.resolve()}, database {status.url} ({status.detail})",
        {"home": str(settings.home.resolve())},
    )


def demo_stages() -> list[DemoStage]:
    """The stages ``mlfactory demo`` runs, in order."""
    return [DemoStage("store", _check_store)]
