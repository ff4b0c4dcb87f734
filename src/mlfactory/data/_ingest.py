"""Incremental ingestion: fetch what is new for each ticker and merge it into the bronze store."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mlfactory.data._bronze import BronzeStore
from mlfactory.data._sources import NoData, PriceSource
from mlfactory.exceptions import ConfigError, DataError, ServiceUnavailable
from mlfactory.logs import get_logger
from mlfactory.settings import Settings

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["IngestReport", "TickerOutcome", "ingest"]

logger = get_logger(__name__)

Status = Literal["added", "updated", "unchanged", "failed"]
STATUSES: tuple[Status, ...] = ("added", "updated", "unchanged", "failed")


@dataclass(frozen=True)
class TickerOutcome:
    """What happened to one ticker: ``added`` (new), ``updated``, ``unchanged`` or ``failed``."""

    ticker: str
    status: Status
    rows_added: int = 0
    years_written: tuple[int, ...] = ()
    first: date | None = None
    last: date | None = None
    error: str | None = None


@dataclass
class IngestReport:
    """Outcome of one :func:`ingest` run."""

    root: Path | str
    start: date
    end: date
    outcomes: list[TickerOutcome] = field(default_factory=list)
    seconds: float = 0.0
    temp_files_removed: int | None = None  # None: nothing was written, no folder swept

    def count(self, status: Status) -> int:
        return sum(outcome.status == status for outcome in self.outcomes)

    @property
    def counts(self) -> dict[str, int]:
        return {status: self.count(status) for status in STATUSES}

    @property
    def rows_added(self) -> int:
        return sum(outcome.rows_added for outcome in self.outcomes)

    @property
    def partitions_written(self) -> int:
        return sum(len(outcome.years_written) for outcome in self.outcomes)

    @property
    def failures(self) -> list[TickerOutcome]:
        return [outcome for outcome in self.outcomes if outcome.status == "failed"]

    @property
    def all_failed(self) -> bool:
        return bool(self.outcomes) and self.count("failed") == len(self.outcomes)

    @property
    def first(self) -> date | None:
        return min((o.first for o in self.outcomes if o.first), default=None)

    @property
    def last(self) -> date | None:
        return max((o.last for o in self.outcomes if o.last), default=None)


def _any_business_day(first: date, last: date) -> bool:
    """Whether ``[first, last]`` holds a weekday (no numpy or pandas for a no-op)."""
    days = (last - first).days + 1
    return any((first + timedelta(days=d)).weekday() < 5 for d in range(max(0, min(days, 7))))


def _stored_bounds(store: BronzeStore, ticker: str) -> tuple[date | None, date | None]:
    """The ticker's first and last stored dates from the manifest (no file read); the footers
    of an older store whose manifest lacks them."""
    years = store.years(ticker)
    if not years:
        return None, None
    index = store.index()
    first = (index.get(store.partition_name(ticker, years[0])) or {}).get("first")
    last = (index.get(store.partition_name(ticker, years[-1])) or {}).get("last")
    if first and last:
        return date.fromisoformat(first), date.fromisoformat(last)
    return store.first_date(ticker), store.last_date(ticker)


def _mark_of(source: PriceSource, ticker: str) -> str | None:
    mark = getattr(source, "mark", None)
    return mark(ticker) if callable(mark) else None


def _nothing_new(previous: dict | None, mark: str | None, end: date) -> bool:
    """The source's data for a ticker is unchanged since it was read up to a date covering
    ``end``, or up to the day it was read (prices are not dated in the future)."""
    if mark is None or not isinstance(previous, dict) or previous.get("mark") != mark:
        return False
    try:
        through = date.fromisoformat(previous["through"])
        read_on = date.fromisoformat(previous["on"])
    except (KeyError, TypeError, ValueError):
        return False
    return end <= through or through >= read_on


def _ingest_one(
    store: BronzeStore,
    source: PriceSource,
    ticker: str,
    sector: str,
    subsector: str,
    start: date,
    end: date,
    marks: dict[str, dict],
    before_write: Callable[[], None] = lambda: None,
) -> TickerOutcome:
    first_stored, last = _stored_bounds(store, ticker)
    fetch_from = max(start, last + timedelta(days=1)) if last is not None else start
    if fetch_from > end or (last is not None and not _any_business_day(fetch_from, end)):
        return TickerOutcome(ticker, "unchanged", first=first_stored, last=last)
    mark = _mark_of(source, ticker)
    if last is not None and _nothing_new(marks.get(ticker), mark, end):
        return TickerOutcome(ticker, "unchanged", first=first_stored, last=last)
    import pandas as pd

    try:
        frame = source.fetch(ticker, fetch_from, end)
    except NoData:
        if last is None:
            raise
        logger.info("%s: no new rows after %s", ticker, last)
        _remember(marks, ticker, mark, end)
        return TickerOutcome(ticker, "unchanged", first=first_stored, last=last)
    frame = frame[
        (frame["Date"] >= pd.Timestamp(fetch_from)) & (frame["Date"] <= pd.Timestamp(end))
    ]
    if frame.empty and last is None:
        raise NoData(f"source returned no rows for {ticker} between {fetch_from} and {end}")
    before_write()
    result = store.write_ticker(ticker, frame, sector, subsector)
    _remember(marks, ticker, mark, end)
    status: Status = "added" if result.created else "updated" if result.changed else "unchanged"
    first_now, last_now = _stored_bounds(store, ticker)
    return TickerOutcome(
        ticker, status, result.rows_added, result.years_written, first_now, last_now
    )


def _remember(marks: dict[str, dict], ticker: str, mark: str | None, end: date) -> None:
    """Record what was read: the source's mark and the dates it covered."""
    if mark is None:
        marks.pop(ticker, None)
    else:
        marks[ticker] = {"mark": mark, "through": end.isoformat(), "on": date.today().isoformat()}


def ingest(
    target: Settings | BronzeStore | Path | str,
    tickers: pd.DataFrame | Iterable[Any],
    source: PriceSource,
    start: date,
    end: date,
    progress: Callable[[TickerOutcome], None] | None = None,
    *,
    source_name: str | None = None,
) -> IngestReport:
    """Bring every ticker of ``tickers`` (columns ``ticker, sector, subsector``, or rows with
    those attributes such as :func:`read_tickers`'s) up to ``end``.

    Per ticker only the days after its newest stored date (from the manifest) are fetched (from
    ``start`` for a new ticker) and merged into the year partitions they fall in; nothing new
    means nothing written. A source with a ``mark(ticker)`` (the csv files' size and mtime) is
    not read again while the mark is the one recorded when it was last read up to that day.
    A failing ticker (source error, empty answer, unreadable file) is recorded in the report and
    the run goes on; a :class:`ConfigError` (e.g. the yfinance package missing) stops the run.
    ``progress`` is called after each ticker. Stale temp files of a killed run are removed
    first, and the ingest time is recorded in the store's manifest.
    """
    if start > end:
        raise ConfigError(f"ingest start {start} is after end {end}; expected start <= end")
    if hasattr(tickers, "itertuples"):  # a DataFrame (load_tickers)
        if "ticker" not in tickers.columns:
            raise DataError(
                f"tickers frame has columns {list(tickers.columns)}; "
                "expected ticker, sector, subsector"
            )
        rows = list(tickers.itertuples(index=False))
    else:  # rows with .ticker (read_tickers): no pandas needed
        rows = list(tickers)
    if isinstance(target, BronzeStore):
        store = target
    elif isinstance(target, Settings):
        store = BronzeStore.from_settings(target)
    elif isinstance(target, str) and "://" in target:
        store = BronzeStore(target)
    else:
        store = BronzeStore(target)
    report = IngestReport(store.root, start, end)
    started = time.perf_counter()

    def sweep() -> None:  # before the first write: a run with nothing new lists no folder
        if report.temp_files_removed is None:
            report.temp_files_removed = store.clean_temp_files()

    with store.writer_lock(), store.deferred_manifest():
        store._index_unlisted()  # an older store: its partitions enter the manifest once
        marks = dict(store.recorded().get("marks") or {})
        for row in rows:
            ticker = str(row.ticker)
            sector = str(getattr(row, "sector", "") or "")
            subsector = str(getattr(row, "subsector", "") or "")
            try:
                outcome = _ingest_one(
                    store, source, ticker, sector, subsector, start, end, marks, sweep
                )
            except (ConfigError, ServiceUnavailable):
                raise  # a misconfigured source or an unreachable store fails every ticker
            except Exception as exc:  # one bad ticker never stops the run
                message = str(exc) if isinstance(exc, DataError) else f"{type(exc).__name__}: {exc}"
                logger.warning("%s failed: %s", ticker, message)
                outcome = TickerOutcome(ticker, "failed", error=message)
            report.outcomes.append(outcome)
            if progress is not None:
                progress(outcome)
        report.seconds = time.perf_counter() - started
        store.record_ingest(
            {
                "source": source_name or type(source).__name__,
                "start": start.isoformat(),
                "end": end.isoformat(),
                "tickers": len(report.outcomes),
                **report.counts,
                "rows_added": report.rows_added,
                "seconds": round(report.seconds, 3),
                **({"marks": dict(sorted(marks.items()))} if marks else {}),
            }
        )
    return report
