"""``stocks``: the feature store (silver) as a time-ordered modelling dataset."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from mlfactory.datasets._base import Dataset
from mlfactory.datasets._roles import infer_roles, infer_task, to_plain_floats
from mlfactory.exceptions import DataError
from mlfactory.logs import get_logger
from mlfactory.settings import Settings, get_settings

__all__ = ["load_stocks"]

logger = get_logger(__name__)

TARGET = "target"
TIME_COLUMN = "date"
GROUP_COLUMN = "ticker"


def _stored_horizon(
    silver: Path | str, tickers: Sequence[str], settings: Settings | None = None
) -> int:
    """The largest label horizon recorded by ``featurize`` for the tickers (or 1): from the
    silver manifest (one read, local or object store)."""
    from mlfactory.data import silver_horizons

    found = silver_horizons(silver, settings)
    return max([1, *(found[t] for t in tickers if t in found)])


def load_stocks(
    tickers: Sequence[str] | None = None,
    start: str | None = None,
    end: str | None = None,
    *,
    horizon: int | None = None,
    settings: Settings | None = None,
) -> Dataset:
    """Features of the silver store; rows whose ``target`` is not known yet are dropped.

    Rows are ordered by date then ticker; ``date`` stays in ``X`` as the time column and the
    ticker labels ``groups``. ``horizon`` is how many days the target looks ahead (the purge gap);
    by default it is read from the silver files' metadata (1 when they do not record it).
    """
    from mlfactory.data import load_features  # lazy: the data layer pulls in Dask
    from mlfactory.data._layout import silver_features_dir

    settings = settings or get_settings()
    frame = load_features(tickers, start, end, settings=settings)
    for column in (GROUP_COLUMN, TIME_COLUMN, TARGET):
        if column not in frame.columns:
            raise DataError(
                f"feature store {silver_features_dir(settings)} has no {column!r} "
                f"column; found: {', '.join(map(str, frame.columns))}"
            )
    known = frame[frame[TARGET].notna()]
    if known.empty:
        raise DataError(
            f"no feature rows with a known target in {silver_features_dir(settings)}; "
            "ingest prices and build features first "
            "(mlfactory data ingest, then mlfactory data features)"
        )
    known = known.sort_values([TIME_COLUMN, GROUP_COLUMN], kind="stable").reset_index(drop=True)
    known[TIME_COLUMN] = pd.to_datetime(known[TIME_COLUMN])
    y = known[TARGET]
    y = y.astype(int) if pd.api.types.is_integer_dtype(y.dtype) else y.astype(float)
    groups = known[GROUP_COLUMN].astype(str).rename(GROUP_COLUMN)
    features = to_plain_floats(known.drop(columns=[TARGET, GROUP_COLUMN, TIME_COLUMN]))
    roles, unassigned = infer_roles(features)
    if unassigned:
        logger.info("stocks: columns without a role left out: %s", ", ".join(unassigned))
        features = features.drop(columns=unassigned)
    X = pd.concat([known[[TIME_COLUMN]], features], axis=1)
    if horizon is None:
        horizon = _stored_horizon(silver_features_dir(settings), groups.unique(), settings)
    logger.info(
        "loaded stocks: %d rows, %d tickers, %s to %s",
        len(X),
        groups.nunique(),
        X[TIME_COLUMN].min().date(),
        X[TIME_COLUMN].max().date(),
    )
    return Dataset(
        name="stocks",
        X=X,
        y=y.rename(TARGET),
        task=infer_task(y),
        roles=roles,
        time_column=TIME_COLUMN,
        groups=groups,
        horizon=horizon,
        description=f"Daily stock features; target looks {horizon} trading day(s) ahead.",
        source=str(silver_features_dir(settings)),
        metadata={"tickers": ",".join(sorted(groups.unique()))},
    )
