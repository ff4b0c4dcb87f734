"""The tickers list: which symbols to ingest, with their sector and sub-industry."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from mlfactory.exceptions import DataError
from mlfactory.logs import get_logger

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TICKER_COLUMNS", "TickerRow", "default_tickers_path", "load_tickers", "read_tickers"]

logger = get_logger(__name__)

TICKER_COLUMNS = ("ticker", "sector", "subsector")
# Accepted headers (case-insensitive), first match wins: ours, then Wikipedia's S&P 500 table.
_ALIASES = {
    "ticker": ("ticker", "symbol"),
    "sector": ("sector", "gics sector"),
    "subsector": ("subsector", "gics sub-industry", "sub-industry"),
}


def default_tickers_path() -> Path:
    """The shipped sample of ~50 S&P 500 tickers across all 11 GICS sectors (a file of the
    installed package, found without importlib.resources: ~3 ms of a no-op ingest)."""
    return Path(__file__).parents[1] / "resources" / "tickers_sp500_sample.csv"


class TickerRow(NamedTuple):
    """One ticker of a tickers file."""

    ticker: str
    sector: str = ""
    subsector: str = ""


def read_tickers(path: Path | str | None = None) -> list[TickerRow]:
    """The tickers file as rows, read with the csv module (no pandas: a no-op ingest starts
    fast). Same rules as :func:`load_tickers`."""
    source = Path(path) if path is not None else default_tickers_path()
    try:
        with open(source, encoding="utf-8-sig", newline="") as handle:
            lines = [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
    except FileNotFoundError:
        raise DataError(f"tickers file {source} not found") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read tickers file {source}: {exc}") from None
    header = lines[0] if lines else []
    lower = {str(column).strip().lower(): i for i, column in reversed(list(enumerate(header)))}
    picked: dict[str, int] = {}
    for name, aliases in _ALIASES.items():
        found = next((lower[alias] for alias in aliases if alias in lower), None)
        if found is not None:
            picked[name] = found
    if "ticker" not in picked:
        raise DataError(
            f"tickers file {source} has no ticker column "
            f"(found: {', '.join(header)}); "
            "expected 'ticker, sector, subsector' or Wikipedia's "
            "'Symbol, GICS Sector, GICS Sub-Industry'"
        )

    def cell(row: list[str], name: str) -> str:
        index = picked.get(name)
        return row[index].strip() if index is not None and index < len(row) else ""

    rows: list[TickerRow] = []
    seen: set[str] = set()
    duplicates: list[str] = []
    for line in lines[1:]:
        ticker = cell(line, "ticker").upper()
        if not ticker:
            continue
        if ticker in seen:
            duplicates.append(ticker)
            continue
        seen.add(ticker)
        rows.append(TickerRow(ticker, cell(line, "sector"), cell(line, "subsector")))
    if duplicates:
        logger.warning(
            "tickers file %s: dropped %d duplicate row(s) for %s (kept the first)",
            source,
            len(duplicates),
            ", ".join(sorted(set(duplicates))),
        )
    if not rows:
        raise DataError(f"tickers file {source} lists no tickers")
    return rows


def load_tickers(path: Path | str | None = None) -> pd.DataFrame:
    """Read a tickers CSV into columns ``ticker, sector, subsector`` (strings, one row per ticker).

    Accepts ``ticker, sector, subsector`` or Wikipedia's S&P 500 columns (``Symbol``,
    ``GICS Sector``, ``GICS Sub-Industry``); sector columns are optional (empty when absent).
    Tickers are upper-cased and stripped; duplicates are dropped (first kept) with a warning.
    """
    import pandas as pd

    rows = read_tickers(path)
    frame = pd.DataFrame(rows, columns=list(TICKER_COLUMNS))
    return frame.astype({name: "str" for name in TICKER_COLUMNS})
