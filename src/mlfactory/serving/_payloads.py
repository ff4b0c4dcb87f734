"""MLflow's scoring protocol: ``dataframe_split``, ``dataframe_records``, ``instances``, ``inputs``.

Each format becomes ``{column: [values]}`` for :func:`mlfactory.serving._frame.build_frame`.
Malformed shapes are a 400 that says which format was expected to look like what.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from mlfactory.serving._errors import INVALID_PARAMETER_VALUE, PayloadError

__all__ = [
    "CONTENT_TYPE_CSV",
    "CONTENT_TYPE_JSON",
    "CONTENT_TYPE_PARQUET",
    "MLFLOW_FORMATS",
    "check_content_type",
    "columns_from_csv",
    "columns_from_mlflow",
    "columns_from_records",
    "json_error",
    "parse_content_type",
    "parse_json",
]

MLFLOW_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
CONTENT_TYPE_JSON = "application/json"
CONTENT_TYPE_CSV = "text/csv"
CONTENT_TYPE_PARQUET = "application/vnd.apache.parquet"  # MLflow reads it; refused here


def _unsupported(content_type: str, why: str) -> PayloadError:
    return PayloadError(f"content type {content_type[:100]!r} is not supported: {why}", 415)


def check_content_type(content_type: str) -> str:
    """The lower-case media type of ``content_type``, once its parameters pass MLflow's rule.

    No parameter but ``charset``, and that one ``utf-8`` (the service reads UTF-8 only); anything
    else is a 415, as in MLflow. Unlike MLflow, parameter names and the charset are
    case-insensitive, a charset may be quoted and an empty parameter (``application/json;``) is
    ignored (RFC 9110, 8.3.1).
    """
    mime, *parameters = (part.strip() for part in content_type.split(";"))
    unknown: list[str] = []
    for parameter in parameters:
        if not parameter:
            continue
        name, _, value = (text.strip() for text in parameter.partition("="))
        if name.lower() != "charset":
            unknown.append(name[:40])
            continue
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        if value.lower() != "utf-8":
            raise _unsupported(content_type, "the service reads UTF-8 only (charset=utf-8)")
    if unknown:
        names = ", ".join(unknown[:5])
        raise _unsupported(
            content_type, f"unrecognized parameter(s) {names}; only charset=utf-8 is accepted"
        )
    return mime.lower()


def parse_content_type(content_type: str | None) -> str:
    """The media type of an ``/invocations`` body, as MLflow's scoring server accepts it.

    ``application/json`` (also when the header is absent, or empty) or ``text/csv``, with the
    parameters :func:`check_content_type` accepts; anything else is a 415. The type is
    case-insensitive (MLflow's is not).
    """
    if content_type is None or not content_type.strip():
        return CONTENT_TYPE_JSON
    mime = check_content_type(content_type)
    if mime == CONTENT_TYPE_PARQUET:
        raise _unsupported(
            content_type,
            "Parquet bodies are not accepted (a compressed column file can expand far beyond "
            "the body limit before a row is checked); send application/json or text/csv",
        )
    if mime not in (CONTENT_TYPE_JSON, CONTENT_TYPE_CSV):
        raise _unsupported(content_type, "send application/json or text/csv")
    return mime


def json_error(exc: BaseException) -> PayloadError | None:
    """The 400 for a body that ``json.loads`` refused, or ``None`` if ``exc`` is not one of those.

    Besides syntax errors: bytes that are not UTF-8, nesting deeper than the parser's recursion
    limit, and integer literals longer than Python converts (4300 digits).
    """
    if isinstance(exc, UnicodeDecodeError):
        return PayloadError("request body is not UTF-8 text", 400)
    if isinstance(exc, json.JSONDecodeError):
        return PayloadError(
            f"request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            400,
        )
    if isinstance(exc, RecursionError):
        return PayloadError("request body is not valid JSON: JSON nested too deeply", 400)
    if isinstance(exc, ValueError):  # e.g. "Exceeds the limit (4300 digits)" of an integer
        first = str(exc).split(";")[0].split("\n")[0][:120]
        return PayloadError(f"request body is not valid JSON: {first}", 400)
    return None


def parse_json(body: bytes) -> Any:
    """Decode a UTF-8 JSON body; a 400 naming the position (or the problem) when it fails."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        error = json_error(exc)
        if error is None:  # pragma: no cover - json_error knows every ValueError
            raise
        raise error from None


def columns_from_records(records: Sequence[Any], where: str) -> dict[str, list[Any]]:
    """``[{column: value}, ...]`` -> ``{column: [values]}``; absent keys become nulls."""
    if not isinstance(records, list):
        raise PayloadError(f"{where} must be a list of records (JSON objects)", 400)
    names: dict[str, None] = {}
    for position, record in enumerate(records):
        if not isinstance(record, dict):
            raise PayloadError(
                f"{where}[{position}] must be a JSON object {{column: value}}",
                400,
                INVALID_PARAMETER_VALUE,  # MLflow: a one-column table that misses the schema
            )
        names.update(dict.fromkeys(record))
    return {name: [record.get(name) for record in records] for name in names}


def _positional_columns(schema_names: Sequence[str]) -> list[str]:
    """The columns of a ``dataframe_split`` sent without ``"columns"``: only when unambiguous.

    A model with one input column takes its rows by position (there is one order). With two or
    more, values in another order than the schema's would be scored silently as the wrong
    features, so the names are required (MLflow refuses such a body too: its columns are then
    named 0, 1, ... and miss the schema).
    """
    if len(schema_names) == 1:
        return list(schema_names)
    raise PayloadError(
        f'dataframe_split needs "columns": the model has {len(schema_names)} input columns and '
        "values are never matched to them by position; send the names (GET /model lists them)",
        400,
        INVALID_PARAMETER_VALUE,
    )


def _columns_from_split(split: Any, schema_names: Sequence[str]) -> dict[str, list[Any]]:
    if not isinstance(split, dict):
        raise PayloadError(
            'dataframe_split must be an object {"columns": [...], "data": [[...], ...]}', 400
        )
    data = split.get("data")
    if not isinstance(data, list):
        raise PayloadError('dataframe_split needs "data": a list of rows (lists of values)', 400)
    index = split.get("index")
    if index is not None and (not isinstance(index, list) or len(index) != len(data)):
        count = f"has {len(index)} labels" if isinstance(index, list) else "is not a list"
        raise PayloadError(
            f'dataframe_split "index" {count}; send one label per row of "data" '
            f"({len(data)}), or no index",
            400,
        )
    columns = split["columns"] if "columns" in split else _positional_columns(schema_names)
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise PayloadError('dataframe_split "columns" must be a list of column names', 400)
    if len(set(columns)) != len(columns):
        raise PayloadError(
            'dataframe_split "columns" has duplicate names', 400, INVALID_PARAMETER_VALUE
        )
    for position, row in enumerate(data):
        if not isinstance(row, list) or len(row) != len(columns):
            raise PayloadError(
                f"dataframe_split data[{position}] must be a list of {len(columns)} values "
                "(one per column)",
                400,
            )
    return {name: [row[i] for row in data] for i, name in enumerate(columns)}


def _columns_from_columnar(inputs: dict[str, Any], where: str) -> dict[str, list[Any]]:
    if all(not isinstance(v, list) for v in inputs.values()):
        return {name: [value] for name, value in inputs.items()}  # one record
    if not all(isinstance(v, list) for v in inputs.values()):
        raise PayloadError(f"{where} columns must all be lists of values (or all scalars)", 400)
    return {name: list(values) for name, values in inputs.items()}


def columns_from_mlflow(payload: Any, schema_names: Sequence[str]) -> dict[str, list[Any]]:
    """Columns of an MLflow scoring request (exactly one of the four format keys)."""
    if not isinstance(payload, dict):
        raise PayloadError(
            f"request body must be a JSON object with one of the keys {', '.join(MLFLOW_FORMATS)}",
            400,
        )
    keys = [key for key in MLFLOW_FORMATS if key in payload]
    if len(keys) != 1:
        shown = [key[:40] for key in list(payload)[:10]]  # keys come from the client
        found = ", ".join(shown) + (" ..." if len(payload) > 10 else "") or "(none)"
        raise PayloadError(
            f"request body must have exactly one of the keys {', '.join(MLFLOW_FORMATS)}; "
            f"found: {found}",
            400,
        )
    key = keys[0]
    value = payload[key]
    if key == "dataframe_split":
        return _columns_from_split(value, schema_names)
    if key == "dataframe_records":
        return columns_from_records(value, key)
    if isinstance(value, dict):
        return _columns_from_columnar(value, key)
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return columns_from_records(value, key)
    raise PayloadError(
        f"{key} must be a list of records or an object {{column: [values]}}; "
        "tensor (list of lists) inputs are not supported for tabular models",
        400,
        INVALID_PARAMETER_VALUE,  # MLflow: a tensor that does not fit the column schema
    )


# What pandas' read_csv (MLflow's text/csv reader) takes for a missing value.
CSV_NULLS = frozenset(
    {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN"}
    | {"<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
)


def columns_from_csv(body: bytes) -> dict[str, list[Any]]:
    """A CSV body with a header row (MLflow's ``text/csv``) -> columns of text cells.

    Empty cells (and pandas' other null markers: ``NA``, ``NaN``, ``null``...) are nulls; the
    schema converts the rest. A row with more or fewer fields than the header is a 400, as a
    ragged JSON row is; blank lines are skipped.
    """
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PayloadError("request body is not UTF-8 text", 400) from None
    reader = csv.reader(io.StringIO(text, newline=""))  # \n, \r\n or \r line ends
    rows: list[list[str]] = []
    try:
        header = next((row for row in reader if row), None)
        if header is None:
            raise PayloadError("request body is not readable CSV: no header row", 400)
        if len(set(header)) != len(header):
            raise PayloadError("CSV header has duplicate column names", 400)
        width = len(header)
        for row in reader:
            if len(row) != width:
                if not row:
                    continue
                raise PayloadError(
                    f"CSV line {reader.line_num} has {len(row)} fields; "
                    f"expected {width}, one per header column",
                    400,
                )
            rows.append(row)
    except csv.Error as exc:
        message = f"request body is not readable CSV: line {reader.line_num}: {exc}"
        raise PayloadError(message, 400) from None
    if not rows:  # MLflow: a table of no rows is not readable input (BAD_REQUEST)
        raise PayloadError("empty batch: the CSV has a header row but no data rows", 400)
    nulls = CSV_NULLS
    return {
        name: [None if cell in nulls else cell for cell in cells]
        for name, cells in zip(
            header, zip(*rows, strict=True) if rows else [()] * width, strict=True
        )
    }
