"""Price sources: where daily OHLCV rows come from, behind one small interface.

Every source answers ``fetch(ticker, start, end)`` (both ends inclusive) with a DataFrame of
:data:`~mlfactory.data._layout.SOURCE_COLUMNS` (yfinance's vocabulary), one row per trading day,
sorted by ``Date``. A range that holds no rows raises :class:`NoData` (a :class:`DataError`), so an
empty answer can never become an empty file.

Sources: ``synthetic`` (deterministic geometric Brownian motion, the default), ``csv`` (a folder of
``<TICKER>.csv`` files) and ``yfinance`` (Yahoo Finance, optional extra ``mlfactory[yfinance]``).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

from mlfactory.data._layout import SOURCE_COLUMNS
from mlfactory.data._lazy import lazy_module
from mlfactory.exceptions import ConfigError, DataError
from mlfactory.logs import get_logger

np = lazy_module("numpy")  # imported when first used
pd = lazy_module("pandas")

__all__ = [
    "SOURCES",
    "CsvSource",
    "NoData",
    "PriceSource",
    "SourceName",
    "SourceSpec",
    "SyntheticSource",
    "YFinanceSource",
    "make_source",
    "normalise_source_frame",
    "normalise_yfinance_frame",
    "with_retries",
]

logger = get_logger(__name__)

T = TypeVar("T")
PRICE_COLUMNS = ("Open", "High", "Low", "Close", "Adj Close")


class NoData(DataError):
    """A source has no rows for a ticker in the requested date range."""


@runtime_checkable
class PriceSource(Protocol):
    """Anything that returns daily OHLCV rows for one ticker and an inclusive date range."""

    def fetch(self, ticker: str, start: date, end: date) -> pd.DataFrame:
        """Rows of ``SOURCE_COLUMNS`` with ``start <= Date <= end``; :class:`NoData` if none."""
        ...


# --------------------------------------------------------------------------------------------
# Validation shared by every source
# --------------------------------------------------------------------------------------------
def normalise_source_frame(
    frame: pd.DataFrame, where: str, start: date | None = None, end: date | None = None
) -> pd.DataFrame:
    """Check and coerce a source answer to the source contract; ``where`` names it in errors.

    Keeps exactly ``SOURCE_COLUMNS`` (``Date`` as naive ``datetime64[ns]``, prices ``float64``,
    ``Volume`` ``int64``), drops rows without a close price, keeps the last row of a repeated date,
    sorts by date and trims to ``[start, end]``. Raises :class:`DataError` for missing columns or
    values that are not numbers/dates, and :class:`NoData` when no row is left.
    """
    missing = [column for column in SOURCE_COLUMNS if column not in frame.columns]
    if missing:
        raise DataError(
            f"{where}: missing column(s) {', '.join(missing)}; "
            f"expected columns: {', '.join(SOURCE_COLUMNS)}"
        )
    if _meets_contract(frame, start, end):  # a source's own answer: nothing to coerce
        out = frame.loc[:, list(SOURCE_COLUMNS)].reset_index(drop=True)
        if out["Date"].dtype != "datetime64[ns]":
            out["Date"] = out["Date"].astype("datetime64[ns]")
        return out
    out = frame.loc[:, list(SOURCE_COLUMNS)].copy()
    try:
        dates = pd.to_datetime(out["Date"])
        if isinstance(dates.dtype, pd.DatetimeTZDtype):
            dates = dates.dt.tz_localize(None)
        out["Date"] = dates.dt.normalize().astype("datetime64[ns]")
        for column in PRICE_COLUMNS:
            out[column] = pd.to_numeric(out[column]).astype("float64")
        volume = pd.to_numeric(out["Volume"]).astype("float64")
    except (ValueError, TypeError) as exc:
        raise DataError(
            f"{where}: cannot read dates/numbers ({exc}); expected Date as YYYY-MM-DD and "
            f"numeric {', '.join(SOURCE_COLUMNS[1:])}"
        ) from None
    out["Volume"] = volume.fillna(0).round().astype("int64")
    out = out[out["Close"].notna() & out["Date"].notna()]
    if start is not None:
        out = out[out["Date"] >= pd.Timestamp(start)]
    if end is not None:
        out = out[out["Date"] <= pd.Timestamp(end)]
    out = out.drop_duplicates("Date", keep="last").sort_values("Date").reset_index(drop=True)
    if out.empty:
        raise NoData(f"{where}: no rows between {start or 'the beginning'} and {end or 'the end'}")
    return out


_DAY_NS = 86_400_000_000_000


def _meets_contract(frame: pd.DataFrame, start: date | None, end: date | None) -> bool:
    """Whether the frame already holds what :func:`normalise_source_frame` returns, but for
    the unit of its naive dates (checked with numpy: a day's ingest of 500 tickers coerced
    500 one-row frames through pandas)."""
    dates = frame["Date"]
    if (
        frame.empty
        or dates.dtype.kind != "M"
        or isinstance(dates.dtype, pd.DatetimeTZDtype)  # made naive by the long path
        or frame["Volume"].dtype != "int64"
        or any(frame[column].dtype != "float64" for column in PRICE_COLUMNS)
    ):
        return False
    days = dates.to_numpy().astype("datetime64[ns]").view("int64")
    if (days == np.iinfo(np.int64).min).any() or (days % _DAY_NS).any():
        return False  # a missing date, or a time of day
    if len(days) > 1 and not (np.diff(days) > 0).all():
        return False  # unsorted or repeated dates
    if np.isnan(frame["Close"].to_numpy()).any():
        return False
    if start is not None and days[0] < pd.Timestamp(start).value:
        return False
    return end is None or days[-1] <= pd.Timestamp(end).value


# --------------------------------------------------------------------------------------------
# synthetic
# --------------------------------------------------------------------------------------------
SYNTHETIC_ORIGIN = date(2000, 1, 3)
SYNTHETIC_DEFAULT_END = date(2025, 12, 31)


def _ticker_seed(ticker: str, seed: int) -> int:
    digest = hashlib.sha256(f"{seed}:{ticker}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


class SyntheticSource:
    """Deterministic geometric-Brownian-motion prices on business days since 2000-01-03.

    Each ticker has its own stream, seeded by a SHA-256 of ``seed:ticker``; the whole path is
    generated from the fixed origin and then sliced, so fetching ``[a, c]`` equals fetching
    ``[a, b]`` then ``(b, c]``, and the same call always returns the same prices.
    """

    origin = SYNTHETIC_ORIGIN

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fetch(self, ticker: str, start: date, end: date) -> pd.DataFrame:
        days = pd.bdate_range(self.origin, end)
        first = int(days.searchsorted(pd.Timestamp(start)))
        if first >= len(days):
            raise NoData(f"synthetic source, ticker {ticker}: no business days in {start}..{end}")
        return self._path(ticker, days).iloc[first:].reset_index(drop=True)

    def _path(self, ticker: str, days: pd.DatetimeIndex) -> pd.DataFrame:
        n = len(days)
        rng = np.random.default_rng(_ticker_seed(ticker, self.seed))
        # Ticker parameters first, then one row-major (n, 5) block: a prefix of days always
        # draws the same numbers, which makes slicing consistent.
        start_price = float(np.exp(rng.uniform(np.log(10.0), np.log(500.0))))
        sigma = float(rng.uniform(0.01, 0.03))
        drift = float(rng.uniform(-0.0001, 0.0006))
        payout = float(rng.uniform(0.0, 0.03))
        base_volume = float(rng.uniform(np.log(2e5), np.log(2e7)))
        z = rng.standard_normal((n, 5))

        log_close = np.log(start_price) + np.cumsum(drift - 0.5 * sigma**2 + sigma * z[:, 0])
        close = np.exp(log_close)
        previous = np.concatenate(([start_price], close[:-1]))
        open_ = previous * np.exp(0.3 * sigma * z[:, 1])
        high = np.maximum(open_, close) * np.exp(0.5 * sigma * np.abs(z[:, 2]))
        low = np.minimum(open_, close) * np.exp(-0.5 * sigma * np.abs(z[:, 3]))
        years = np.arange(n) / 252.0
        factor = np.exp(payout * (years - 26.0))  # slowly drifting adjustment factor
        volume = np.exp(base_volume + 0.4 * z[:, 4]).round().astype("int64") + 1
        return pd.DataFrame(
            {
                "Date": days.astype("datetime64[ns]"),
                "Open": open_.round(4),
                "High": high.round(4),
                "Low": low.round(4),
                "Close": close.round(4),
                "Adj Close": (close * factor).round(4),
                "Volume": volume,
            }
        )


# --------------------------------------------------------------------------------------------
# csv
# --------------------------------------------------------------------------------------------
class CsvSource:
    """A folder of per-ticker files ``<folder>/<TICKER>.csv`` with the source columns."""

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)

    def path_for(self, ticker: str) -> Path:
        return self.folder / f"{ticker}.csv"

    def mark(self, ticker: str) -> str | None:
        """The file's size and modification time: ingest skips a file whose mark it has read
        (no data read); ``None`` when the file is missing."""
        try:
            stat = self.path_for(ticker).stat()
        except OSError:
            return None
        return f"{stat.st_size}:{stat.st_mtime_ns}"

    def fetch(self, ticker: str, start: date, end: date) -> pd.DataFrame:
        path = self.path_for(ticker)
        if not path.is_file():
            raise DataError(
                f"csv source: file {path} not found; expected one file <TICKER>.csv per ticker "
                f"in {self.folder} with columns {', '.join(SOURCE_COLUMNS)}"
            )
        from mlfactory._tables import read_table_file

        frame = read_table_file(path, "csv source file")
        return normalise_source_frame(frame, f"csv source file {path}", start, end)


# --------------------------------------------------------------------------------------------
# yfinance
# --------------------------------------------------------------------------------------------
def with_retries(
    call: Callable[[], T],
    *,
    attempts: int = 4,
    base_delay: float = 1.0,
    retry_on: tuple[type[BaseException], ...] = (OSError,),
    sleep: Callable[[float], Any] = time.sleep,
    what: str = "request",
) -> T:
    """Run ``call``; on an error in ``retry_on`` wait ``base_delay * 2**k`` and try again.

    After ``attempts`` failures the last error is raised. ``sleep`` is injectable for tests.
    """
    if attempts < 1:
        raise ConfigError(f"retry attempts must be >= 1, got {attempts}")
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except retry_on as exc:
            if attempt == attempts:
                raise
            delay = base_delay * 2 ** (attempt - 1)
            logger.warning(
                "%s failed (%s), attempt %d/%d; retrying in %.1f s",
                what,
                exc,
                attempt,
                attempts,
                delay,
            )
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def normalise_yfinance_frame(
    frame: pd.DataFrame | None, ticker: str, start: date | None = None, end: date | None = None
) -> pd.DataFrame:
    """Turn a ``yf.download`` answer (multi-index columns, Date index) into the source contract.

    The price level of a ``(Price, Ticker)`` column index is kept; an empty or ``None`` answer
    raises :class:`NoData` (Yahoo answers empty for unknown tickers and many network problems).
    """
    where = f"yfinance, ticker {ticker}"
    if frame is None or frame.empty:
        raise NoData(f"{where}: empty answer (unknown ticker, no trading days or network error)")
    out = frame.copy()
    if isinstance(out.columns, pd.MultiIndex):
        level = next(
            (
                i
                for i in range(out.columns.nlevels)
                if set(PRICE_COLUMNS) & set(out.columns.get_level_values(i))
            ),
            None,
        )
        if level is None:
            raise DataError(
                f"{where}: no price level in columns {list(out.columns)}; "
                f"expected {', '.join(SOURCE_COLUMNS[1:])}"
            )
        keep = np.ones(len(out.columns), dtype=bool)
        for i in range(out.columns.nlevels):
            values = out.columns.get_level_values(i)
            if i != level and ticker in set(values):
                keep &= np.asarray(values == ticker)
        out = out.loc[:, keep]
        out.columns = out.columns.get_level_values(level)
        if out.columns.duplicated().any():
            raise DataError(
                f"{where}: answer holds several tickers and none is {ticker!r}: "
                f"{sorted(set(frame.columns.droplevel(level)))}"
            )
    if "Date" not in out.columns:
        out = out.rename_axis("Date").reset_index()
    return normalise_source_frame(out, where, start, end)


class YFinanceSource:
    """Yahoo Finance through ``yfinance`` (optional extra), with retries on network errors."""

    def __init__(
        self,
        attempts: int = 4,
        base_delay: float = 2.0,
        sleep: Callable[[float], Any] = time.sleep,
        download: Callable[..., pd.DataFrame] | None = None,
    ) -> None:
        self.attempts = attempts
        self.base_delay = base_delay
        self.sleep = sleep
        self._download = download

    def _downloader(self) -> Callable[..., pd.DataFrame]:
        if self._download is None:
            try:
                import yfinance as yf
            except ImportError:
                raise ConfigError(
                    "the yfinance source needs the optional package yfinance: "
                    "pip install 'mlfactory[yfinance]'"
                ) from None
            self._download = yf.download
        return self._download

    def fetch(self, ticker: str, start: date, end: date) -> pd.DataFrame:
        download = self._downloader()
        exclusive_end = end + pd.Timedelta(days=1)  # yfinance's end is exclusive

        def call() -> pd.DataFrame:
            return download(
                ticker,
                start=start.isoformat(),
                end=exclusive_end.isoformat(),
                auto_adjust=False,
                progress=False,
            )

        answer = with_retries(
            call,
            attempts=self.attempts,
            base_delay=self.base_delay,
            retry_on=(OSError, TimeoutError, ConnectionError),
            sleep=self.sleep,
            what=f"yfinance download of {ticker}",
        )
        return normalise_yfinance_frame(answer, ticker, start, end)


# --------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------
class SourceName(StrEnum):
    """Names of the price sources (``--source``)."""

    synthetic = "synthetic"
    yfinance = "yfinance"
    csv = "csv"


@dataclass(frozen=True)
class SourceSpec:
    """A registered source: how to build it, what it is, and its default end date."""

    name: SourceName
    factory: Callable[..., PriceSource]
    description: str
    default_end: Callable[[], date]


def _make_csv(csv_dir: Path | str | None = None, **_: Any) -> PriceSource:
    if csv_dir is None:
        raise ConfigError(
            "the csv source needs a folder of <TICKER>.csv files (--csv-dir / csv_dir)"
        )
    folder = Path(csv_dir)
    if not folder.is_dir():
        raise ConfigError(f"csv source folder {folder} does not exist or is not a folder")
    return CsvSource(folder)


SOURCES: dict[SourceName, SourceSpec] = {
    SourceName.synthetic: SourceSpec(
        SourceName.synthetic,
        lambda seed=0, **_: SyntheticSource(seed=seed),
        "deterministic GBM prices on business days since 2000-01-03 (no network)",
        lambda: SYNTHETIC_DEFAULT_END,
    ),
    SourceName.yfinance: SourceSpec(
        SourceName.yfinance,
        lambda attempts=4, **_: YFinanceSource(attempts=attempts),
        "Yahoo Finance via yfinance (pip install 'mlfactory[yfinance]', needs internet)",
        date.today,
    ),
    SourceName.csv: SourceSpec(
        SourceName.csv,
        _make_csv,
        "your own files: <csv_dir>/<TICKER>.csv with columns " + ", ".join(SOURCE_COLUMNS),
        date.today,
    ),
}


def make_source(name: str | SourceName, **options: Any) -> PriceSource:
    """Build the source registered under ``name`` (options: ``seed``, ``csv_dir``, ``attempts``)."""
    try:
        key = SourceName(name)
    except ValueError:
        raise ConfigError(
            f"unknown price source {name!r}; expected one of: {', '.join(s.value for s in SOURCES)}"
        ) from None
    return SOURCES[key].factory(**options)
