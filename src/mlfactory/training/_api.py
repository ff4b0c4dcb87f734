"""``train``: from a spec file to a recorded experiment, in one call."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mlfactory.settings import Settings, mask_secrets
from mlfactory.spec import load_spec
from mlfactory.spec._resolve import resolve_spec
from mlfactory.training._plan import plan_from_spec
from mlfactory.training._runner import ExperimentResult, ProgressCallback, run_experiment
from mlfactory.training._scheduler import check_scheduler

if TYPE_CHECKING:
    from mlfactory.fleet._train import FleetResult

__all__ = ["train"]


def train(
    spec_path: str | Path,
    settings: Settings,
    overrides: Sequence[str] = (),
    *,
    n_jobs: int | None = None,
    scheduler: str | None = None,
    progress: ProgressCallback | None = None,
) -> ExperimentResult | FleetResult:
    """Load and resolve the spec, run its search(es), record everything in the tracking store.

    A spec with ``[segments]`` trains a fleet instead (one model per segment, one parent run):
    the result is then a :class:`mlfactory.fleet.FleetResult`.
    """
    say = progress or (lambda _message: None)
    scheduler = check_scheduler(scheduler or settings.dask_scheduler_address)  # before any work
    spec = load_spec(spec_path, overrides)
    say(f"loading dataset {mask_secrets(spec.dataset)!r} and splitting")
    resolved = resolve_spec(spec, settings)
    if spec.segments is not None:  # a fleet: one model per segment (mlfactory.fleet)
        from mlfactory.fleet._train import train_fleet

        return train_fleet(resolved, settings, n_jobs=n_jobs, scheduler=scheduler, progress=say)
    return run_experiment(
        plan_from_spec(resolved), settings, n_jobs=n_jobs, scheduler=scheduler, progress=say
    )
