"""Experiment tracking: MLflow on the settings' database, plus plain SQL results tables.

The names below load their module when first used: a reader that only checks the store's state
(``mlfactory info``) imports neither MLflow nor pandas (issue #21).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlfactory._lazy import lazy_exports

if TYPE_CHECKING:
    from mlfactory.tracking._owner import (
        StaleRun,
        find_stale_runs,
        owner_tags,
        reap_stale_runs,
        run_heartbeat,
    )
    from mlfactory.tracking._provenance import dataset_fingerprint, environment_info, git_info
    from mlfactory.tracking._readonly import (
        TrackingState,
        TrackingStoreEmpty,
        TrackingStoreNotReady,
        tracking_state,
    )
    from mlfactory.tracking._results import (
        CV_FOLD_RESULTS,
        TUNING_RESULTS,
        append_rows,
        create_results_tables,
        read_table,
    )
    from mlfactory.tracking._runs import RunTerminated, tracked_run
    from mlfactory.tracking._store import (
        experiment_for,
        open_tracking,
        retry_on_locked,
        tracking_uri,
    )

_WHERE = {
    "_owner": ("StaleRun", "find_stale_runs", "owner_tags", "reap_stale_runs", "run_heartbeat"),
    "_provenance": ("dataset_fingerprint", "environment_info", "git_info"),
    "_readonly": ("TrackingState", "TrackingStoreEmpty", "TrackingStoreNotReady", "tracking_state"),
    "_results": (
        "CV_FOLD_RESULTS",
        "TUNING_RESULTS",
        "append_rows",
        "create_results_tables",
        "read_table",
    ),
    "_runs": ("RunTerminated", "tracked_run"),
    "_store": ("experiment_for", "open_tracking", "retry_on_locked", "tracking_uri"),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}

__all__ = [
    "CV_FOLD_RESULTS",
    "TUNING_RESULTS",
    "RunTerminated",
    "StaleRun",
    "TrackingState",
    "TrackingStoreEmpty",
    "TrackingStoreNotReady",
    "append_rows",
    "create_results_tables",
    "dataset_fingerprint",
    "environment_info",
    "experiment_for",
    "find_stale_runs",
    "git_info",
    "open_tracking",
    "owner_tags",
    "read_table",
    "reap_stale_runs",
    "retry_on_locked",
    "run_heartbeat",
    "tracked_run",
    "tracking_state",
    "tracking_uri",
]


__getattr__, __dir__ = lazy_exports(__name__, _MODULE_OF)
