"""MLflow scoring-protocol conformance: the same requests to ``mlflow models serve`` and to
``mlfactory serve``, same registered model, answers side by side.

    .venv/bin/python benchmarks/mlflow_conformance.py            # prints the markdown table

The cases follow MLflow's own ``tests/pyfunc/test_scoring_server.py`` and the server it tests
(``mlflow/pyfunc/scoring_server``): the probes (``/ping``, ``/health``, ``/version``), the four
JSON formats, ``params``, CSV, content types and their parameters, malformed bodies and bodies
that do not fit the model's schema. A case is **same** when both servers answer the same HTTP
status and, for a 200, the same predictions (``/version``: the same text), and, when MLflow's
error body has an ``error_code``, mlfactory's has the same one. Every case that is not the same
must be listed in :data:`DOCUMENTED` with the reason (the table in ``docs/serving.md``);
``tests/serving/test_mlflow_conformance.py`` runs these cases against both servers and fails on
any other difference.

The model: the credit pipeline (``power`` + LogisticRegression, 13 columns: doubles and
booleans, two of them optional) registered as ``credit-conformance`` version 1 under
``benchmarks/_work/conformance/`` (built once). ``mlflow models serve --env-manager local``
serves ``models:/credit-conformance/1`` from the same store; ``mlfactory serve`` the same version.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

__all__ = [
    "CASES",
    "DOCUMENTED",
    "Answer",
    "Case",
    "Row",
    "compare",
    "markdown",
    "serve_mlflow",
]

JSON = "application/json"


@dataclass(frozen=True)
class Sample:
    """The rows every case builds its body from (model input columns, in the schema's order)."""

    frame: pd.DataFrame

    @property
    def columns(self) -> list[str]:
        return list(self.frame.columns)

    @property
    def records(self) -> list[dict[str, Any]]:
        return [
            {k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
            for row in self.frame.astype(object).to_dict(orient="records")
        ]

    @property
    def rows(self) -> list[list[Any]]:
        return [[record[c] for c in self.columns] for record in self.records]

    def record(self, **changes: Any) -> dict[str, Any]:
        return {**self.records[0], **changes}

    def without(self, name: str) -> dict[str, Any]:
        return {k: v for k, v in self.records[0].items() if k != name}


Body = Callable[[Sample], bytes | str | dict | list | int | None]


@dataclass(frozen=True)
class Case:
    name: str
    body: Body = lambda s: None
    content_type: str | None = JSON
    method: str = "POST"
    path: str = "/invocations"

    def request(self, sample: Sample) -> tuple[bytes, dict[str, str]]:
        body = self.body(sample)
        if body is None:
            content = b""
        elif isinstance(body, bytes):
            content = body
        elif isinstance(body, str):
            content = body.encode()
        else:
            content = json.dumps(body).encode()
        headers = {} if self.content_type is None else {"Content-Type": self.content_type}
        return content, headers


def _records(s: Sample, **extra: Any) -> dict:
    return {"dataframe_records": s.records, **extra}


def _split(s: Sample, **extra: Any) -> dict:
    return {"dataframe_split": {"columns": s.columns, "data": s.rows, **extra}}


def _json_with_literal(s: Sample, column: str, literal: str) -> str:
    """A records body whose ``column`` is the JSON literal ``literal`` (NaN, Infinity, 9999...)."""
    marker = "__LITERAL__"
    text = json.dumps({"dataframe_records": [s.record(**{column: marker})]})
    return text.replace(json.dumps(marker), literal)


def _csv(s: Sample) -> str:
    return s.frame.to_csv(index=False)


def _parquet(s: Sample) -> bytes:
    buffer = io.BytesIO()
    s.frame.to_parquet(buffer)
    return buffer.getvalue()


def _mlflow_client_body(s: Sample) -> str:
    from mlflow.utils.proto_json_utils import dump_input_data

    return dump_input_data(s.frame)  # what ScoringServerClient.invoke sends


def _many_rows(s: Sample) -> dict:
    rows = s.rows
    return {"dataframe_split": {"columns": s.columns, "data": (rows * 10_001)[:10_001]}}


CASES: list[Case] = [
    # probes and routes
    Case("GET /ping", method="GET", path="/ping", content_type=None),
    Case("GET /health", method="GET", path="/health", content_type=None),
    Case("GET /version", method="GET", path="/version", content_type=None),
    Case("HEAD /ping", method="HEAD", path="/ping", content_type=None),
    Case("GET /invocations", method="GET", content_type=None),
    Case("GET unknown route", method="GET", path="/no-such-route", content_type=None),
    # the four formats, params, the MLflow client's body
    Case("dataframe_split", _split),
    Case("dataframe_split with index", lambda s: _split(s, index=list(range(len(s.rows))))),
    Case("dataframe_records", _records),
    Case("instances: records", lambda s: {"instances": s.records}),
    Case("inputs: columns", lambda s: {"inputs": s.frame.astype(object).to_dict(orient="list")}),
    Case("inputs: records", lambda s: {"inputs": s.records}),
    Case("inputs: one record of scalars", lambda s: {"inputs": s.records[0]}),
    Case("params ignored", lambda s: _records(s, params={"threshold": 0.3})),
    Case("params not an object", lambda s: _records(s, params=5)),
    Case("other top-level key ignored", lambda s: _records(s, comment="x")),
    Case("ScoringServerClient body", _mlflow_client_body),
    Case("NaN literal (null)", lambda s: _json_with_literal(s, "age", "NaN")),
    Case("extra column ignored", lambda s: {"dataframe_records": [s.record(zzz=1)]}),
    Case("numeric string", lambda s: {"dataframe_records": [s.record(age="45")]}),
    Case("boolean as string", lambda s: {"dataframe_records": [s.record(high_debt_ratio="true")]}),
    Case("boolean as 1", lambda s: {"dataframe_records": [s.record(high_debt_ratio=1)]}),
    Case("null in a required column", lambda s: {"dataframe_records": [s.record(age=None)]}),
    # content types
    Case("charset=UTF-8", _records, JSON + "; charset=UTF-8"),
    Case("charset=utf-8", _records, JSON + "; charset=utf-8"),
    Case("charset=latin-1", _records, JSON + "; charset=latin-1"),
    Case("charset=utf8", _records, JSON + "; charset=utf8"),
    Case("unknown parameter", _records, JSON + "; something=something"),
    Case("unknown content type", _records, "not_a_supported_content_type"),
    Case("text/plain", _records, "text/plain"),
    Case("application/vnd.api+json", _records, "application/vnd.api+json"),
    Case("application/x-parquet", _parquet, "application/x-parquet"),
    Case("application/vnd.apache.parquet", _parquet, "application/vnd.apache.parquet"),
    Case("no Content-Type", _records, None),
    Case("Application/JSON (case)", _records, "Application/JSON"),
    Case('charset="utf-8" (quoted)', _records, JSON + '; charset="utf-8"'),
    Case("empty parameter (trailing ;)", _records, JSON + ";"),
    # bodies that cannot be read as a table
    Case("malformed JSON", lambda s: "this is,,,, not valid json"),
    Case("JSON 1", lambda s: 1),
    Case('JSON "1"', lambda s: "1"),
    Case("JSON [1]", lambda s: [1]),
    Case("no format key", lambda s: {"not": "a serialized dataframe"}),
    Case("two format keys", lambda s: {"dataframe_records": [], "dataframe_split": {"data": []}}),
    Case("dataframe_split as records", lambda s: {"dataframe_split": s.records}),
    Case(
        "dataframe_records as split",
        lambda s: {"dataframe_records": {"columns": s.columns, "data": s.rows}},
    ),
    Case(
        "split index/data mismatch",
        lambda s: {"dataframe_split": {"index": [1, 2], "data": [[1], [2], [3]]}},
    ),
    Case("body not UTF-8", lambda s: b'{"dataframe_records": [{"age": "\xff"}]}'),
    Case("JSON null", lambda s: "null"),
    Case("dataframe_records null", lambda s: {"dataframe_records": None}),
    Case(
        "inputs: columns of different lengths",
        lambda s: {"inputs": {**{c: [v, v] for c, v in s.records[0].items()}, "age": [1.0]}},
    ),
    Case("JSON nested 100,000 deep", lambda s: "[" * 100_000 + "]" * 100_000),
    Case("integer of 5,000 digits", lambda s: _json_with_literal(s, "age", "9" * 5000)),
    # bodies that do not fit the model's schema
    Case("split without columns", lambda s: {"dataframe_split": {"data": s.rows}}),
    Case(
        "split without columns, reordered",
        lambda s: {"dataframe_split": {"data": [row[::-1] for row in s.rows]}},
    ),
    Case(
        "split duplicate columns",
        lambda s: {
            "dataframe_split": {"columns": [*s.columns, "age"], "data": [[*r, 1.0] for r in s.rows]}
        },
    ),
    Case("instances: tensor (lists)", lambda s: {"instances": s.rows}),
    Case("records not objects", lambda s: {"dataframe_records": [1, 2]}),
    Case("empty dataframe_records", lambda s: {"dataframe_records": []}),
    Case(
        "one unnamed column",
        lambda s: {"dataframe_split": {"columns": ["0"], "data": [[i] for i in range(10)]}},
    ),
    Case("missing column", lambda s: {"dataframe_records": [s.without("age")]}),
    Case("missing optional column", lambda s: {"dataframe_records": [s.without("monthly_income")]}),
    Case("string for a double", lambda s: {"dataframe_records": [s.record(age="abc")]}),
    Case("Infinity for a double", lambda s: _json_with_literal(s, "age", "Infinity")),
    Case("1.5 for a boolean", lambda s: {"dataframe_records": [s.record(high_debt_ratio=1.5)]}),
    Case("true for a double", lambda s: {"dataframe_records": [s.record(age=True)]}),
    Case("object for a double", lambda s: {"dataframe_records": [s.record(age={"a": 1})]}),
    Case("list for a double", lambda s: {"dataframe_records": [s.record(age=[1, 2])]}),
    Case("10,001 rows", _many_rows),
    # CSV
    Case("CSV", _csv, "text/csv"),
    Case("CSV charset=utf-8", _csv, "text/csv; charset=utf-8"),
    Case("CSV with a UTF-8 BOM", lambda s: "\ufeff" + _csv(s), "text/csv"),
    Case("CSV with CRLF line ends", lambda s: _csv(s).replace("\n", "\r\n"), "text/csv"),
    Case("CSV NA markers", lambda s: _csv(s).replace(",,", ",NA,"), "text/csv"),
    Case("CSV empty", lambda s: "", "text/csv"),
    Case("CSV header only", lambda s: ",".join(s.columns) + "\n", "text/csv"),
    Case("CSV not UTF-8", lambda s: b"a,b\n\xff,1\n", "text/csv"),
    Case("CSV short row", lambda s: ",".join(s.columns) + "\n1,2\n", "text/csv"),
    Case(
        "CSV long row",
        lambda s: ",".join(s.columns) + "\n" + ",".join(["1"] * (len(s.columns) + 2)) + "\n",
        "text/csv",
    ),
]

# Case -> why mlfactory answers otherwise (each one is in docs/serving.md).
DOCUMENTED: dict[str, str] = {
    "application/vnd.apache.parquet": "415: Parquet is refused (decompression can outgrow the "
    "body limit before a row is checked); MLflow reads it",
    "no Content-Type": "read as JSON; MLflow fails with a 500",
    "Application/JSON (case)": "media types are case-insensitive (RFC 9110); MLflow 415",
    'charset="utf-8" (quoted)': "a quoted charset is the same charset (RFC 9110); MLflow 415",
    "empty parameter (trailing ;)": "an empty parameter is allowed (RFC 9110); MLflow 415",
    "JSON nested 100,000 deep": "400 naming the problem; MLflow fails with a 500",
    "integer of 5,000 digits": "400 naming the problem; MLflow fails with a 500",
    "one unnamed column": "422 naming the missing columns (MLflow 400)",
    "missing column": "422 naming the column (MLflow 400)",
    "missing optional column": "an optional column (missing values in training) may be "
    "absent: nulls, imputed; MLflow's model fails (400)",
    "string for a double": "422 naming the column and the type (MLflow 400)",
    "object for a double": "422 naming the column and the type (MLflow 400)",
    "list for a double": "422 naming the column and the type (MLflow 400)",
    "Infinity for a double": "422: numbers must be finite (MLflow 400 from the model)",
    "1.5 for a boolean": "422: only true/false, 0/1 and their strings are booleans; MLflow "
    "scores 1.5 as true",
    "10,001 rows": "413: the row limit (--max-batch-rows, 10,000); MLflow has none",
    "CSV long row": "400: a row with more fields than the header; MLflow (pandas) takes the "
    "extra leading fields as the index and scores the rest",
}


@dataclass
class Answer:
    status: int
    content_type: str
    text: str

    @classmethod
    def of(cls, response: httpx.Response) -> Answer:
        return cls(response.status_code, response.headers.get("content-type", ""), response.text)

    def json(self) -> Any:
        try:
            return json.loads(self.text)
        except ValueError:
            return None

    @property
    def predictions(self) -> list | None:
        body = self.json()
        return body.get("predictions") if isinstance(body, dict) else None

    @property
    def error_code(self) -> str | None:
        body = self.json()
        return body.get("error_code") if isinstance(body, dict) else None

    def summary(self) -> str:
        body = self.json()
        if self.predictions is not None:
            shown = self.predictions[:6]
            more = "…" if len(self.predictions) > 6 else ""
            what = f"predictions {json.dumps(shown)[:-1]}{more}] ({len(self.predictions)})"
        elif isinstance(body, dict) and "error_code" in body:
            what = body["error_code"]
        elif isinstance(body, dict):
            what = "{" + ", ".join(f'"{k}"' for k in list(body)[:3]) + "}"
        elif self.status == 0:
            return self.text[:60]
        elif not self.text.strip():
            what = repr(self.text) if self.text else "(empty)"
        elif "json" not in self.content_type:
            what = f"{self.content_type.split(';')[0]}: {self.text[:24]!r}"
        else:
            what = repr(self.text[:24])
        return f"{self.status} {what}"


@dataclass
class Row:
    case: Case
    mlflow: Answer
    mlfactory: Answer

    @property
    def same(self) -> bool:
        m, o = self.mlflow, self.mlfactory
        if m.status != o.status:
            return False
        if m.status == 200:
            if self.case.path == "/version":
                return m.text == o.text
            return m.predictions == o.predictions
        return m.error_code is None or m.error_code == o.error_code

    @property
    def verdict(self) -> str:
        if self.same:
            return "same"
        return "documented" if self.case.name in DOCUMENTED else "**UNDOCUMENTED**"


def _ask(method: str, url: str, content: bytes, headers: dict) -> Answer:
    # a new connection per request: a server that closes a kept-alive connection after an
    # error (MLflow's 500s) would otherwise reset the next request sent on it
    try:
        return Answer.of(httpx.request(method, url, content=content, headers=headers, timeout=120))
    except httpx.TransportError as exc:  # no HTTP answer at all (status 0)
        return Answer(0, "", f"no answer: {type(exc).__name__}: {exc}")


def compare(mlflow_url: str, mlfactory_url: str, frame: pd.DataFrame) -> list[Row]:
    """Send every case to both servers; one :class:`Row` per case."""
    sample = Sample(frame)
    rows = []
    for case in CASES:
        content, headers = case.request(sample)
        mlflow, ours = (
            _ask(case.method, url + case.path, content, headers)
            for url in (mlflow_url, mlfactory_url)
        )
        rows.append(Row(case, mlflow, ours))
    return rows


def markdown(rows: list[Row]) -> str:
    """The table: case, MLflow's answer, mlfactory's answer, verdict (and why, if documented)."""
    lines = [
        "| case | `mlflow models serve` | `mlfactory serve` | same? |",
        "|---|---|---|---|",
    ]
    for row in rows:
        documented = not row.same and row.case.name in DOCUMENTED
        why = f": {DOCUMENTED[row.case.name]}" if documented else ""
        cells = [row.case.name, row.mlflow.summary(), row.mlfactory.summary(), row.verdict + why]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    same = sum(row.same for row in rows)
    lines.append("")
    lines.append(f"{same} of {len(rows)} cases answered the same; {len(rows) - same} differ.")
    return "\n".join(lines)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(url: str, process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited ({process.returncode}); see {log}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/ping", timeout=2).status_code == 200:
                return
        time.sleep(0.25)
    raise RuntimeError(f"server did not answer /ping within {timeout:.0f} s; see {log}")


def _stop(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)  # its own session: the CLI and its uvicorn
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextlib.contextmanager
def serve_subprocess(
    command: list[str], env: dict[str, str], port: int, log: Path
) -> Iterator[str]:
    """Run ``command`` (a server on ``port``) in its own session until the block ends."""
    url = f"http://127.0.0.1:{port}"
    with log.open("w") as handle:
        process = subprocess.Popen(
            command, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            _wait(url, process, log)
            yield url
        finally:
            _stop(process)


def _env(tracking_uri: str, home: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # uvicorn
    env["MLFLOW_TRACKING_URI"] = tracking_uri
    # mlflow.set_registry_uri() in this process exports MLFLOW_REGISTRY_URI: another store's
    env["MLFLOW_REGISTRY_URI"] = tracking_uri
    env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    env.pop("MLFACTORY_API_KEY", None)
    if home is not None:
        env["MLFACTORY_HOME"] = str(home)
    return env


def serve_mlflow(
    tracking_uri: str, model_uri: str, log: Path
) -> contextlib.AbstractContextManager[str]:
    """``mlflow models serve --env-manager local -m model_uri`` on a free port: yields its URL."""
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri,
               "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]  # fmt: skip
    return serve_subprocess(command, _env(tracking_uri), port, log)


def mixed_sample(X: pd.DataFrame, predicted: Any, each: int = 6) -> pd.DataFrame:
    """Up to ``each`` rows of every class predicted, so that predictions are worth comparing."""
    predicted = pd.Series(list(predicted), index=X.index)
    chosen = [X[predicted == label].head(each) for label in sorted(predicted.unique())]
    return pd.concat(chosen).sample(frac=1.0, random_state=0)


def main() -> None:
    root = Path(__file__).resolve().parent
    sys.path.insert(0, str(root))
    from _credit_model import benchmark_settings, ensure_credit_model

    from mlfactory.datasets import load_dataset
    from mlfactory.registry import load_model
    from mlfactory.tracking import tracking_uri

    work = root / "_work" / "conformance"
    name = "credit-conformance"
    ensure_credit_model(work, name, "credit-conformance", rows=2_000)
    settings = benchmark_settings(work)
    uri = tracking_uri(settings)
    X = load_dataset("credit", settings=settings).X
    frame = mixed_sample(X, load_model(settings, f"{name}/1").model.predict(X))
    port = free_port()
    command = [sys.executable, "-m", "mlfactory", "serve", f"{name}/1", "--port", str(port),
               "--no-log-predictions"]  # fmt: skip
    with (
        serve_mlflow(uri, f"models:/{name}/1", work / "mlflow.log") as mlflow_url,
        serve_subprocess(command, _env(uri, settings.home), port, work / "mlfactory.log") as ours,
    ):
        rows = compare(mlflow_url, ours, frame)
    print(markdown(rows))
    if any(row.verdict == "**UNDOCUMENTED**" for row in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
