"""The tickers list: which symbols to ingest, with their sector and sub-industry."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd

from mlfactory.exceptions import DataError
from mlfactory.logs import get_logger

__all__ = ["TICKER_COLUMNS", "default_tickers_path", "load_tickers"]

logger = get_logger(__name__)

TICKER_COLUMNS = ("ticker", "sector", "subsector")
# Accepted headers (case-insensitive), first match wins: ours, then Wikipedia's S&P 500 table.
_ALIASES = {
    "ticker": ("ticker", "symbol"),
    "sector": ("sector", "gics sector"),
    "subsector": ("subsector", "gics sub-industry", "sub-industry"),
}


def default_tickers_path() -> Path:
    """The shipped sample of ~50 S&P 500 tickers across all 11 GICS sectors."""
    return Path(str(resources.files("mlfactory") / "resources" / "tickers_sp500_sample.csv"))


def load_tickers(path: Path | str | None = None) -> pd.DataFrame:
    """Read a tickers CSV into columns ``ticker, sector, subsector`` (strings, one row per ticker).

    Accepts ``ticker, sector, subsector`` or Wikipedia's S&P 500 columns (``Symbol``,
    ``GICS Sector``, ``GICS Sub-Industry``); sector columns are optional (empty when absent).
    Tickers are upper-cased and stripped; duplicates are dropped (first kept) with a warning.
    """
    source = Path(path) if path is not None else default_tickers_path()
    try:
        raw = pd.read_csv(source, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise DataError(f"tickers file {source} not found") from None
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"cannot read tickers file {source}: {exc}") from None
    lower = {str(column).strip().lower(): column for column in raw.columns}
    picked: dict[str, str] = {}
    for name, aliases in _ALIASES.items():
        found = next((lower[alias] for alias in aliases if alias in lower), None)
        if found is not None:
            picked[name] = found
    if "ticker" not in picked:
        raise DataError(
            f"tickers file {source} has no ticker column "
            f"(found: {', '.join(map(str, raw.columns))}); "
            "expected 'ticker, sector, subsector' or Wikipedia's "
            "'Symbol, GICS Sector, GICS Sub-Industry'"
        )
    frame = pd.DataFrame(
        {
            name: raw[picked[name]].astype(str).str.strip() if name in picked else ""
            for name in TICKER_COLUMNS
        },
        index=raw.index,
    )
    frame["ticker"] = frame["ticker"].str.upper()
    frame = frame[frame["ticker"] != ""]
    duplicated = frame["ticker"].duplicated()
    if duplicated.any():
        names = sorted(set(frame.loc[duplicated, "ticker"]))
        logger.warning(
            "tickers file %s: dropped %d duplicate row(s) for %s (kept the first)",
            source,
            int(duplicated.sum()),
            ", ".join(names),
        )
        frame = frame[~duplicated]
    if frame.empty:
        raise DataError(f"tickers file {source} lists no tickers")
    return frame.reset_index(drop=True).astype({name: "str" for name in TICKER_COLUMNS})
