"""A seeded fuzz loop over real uvicorn servers: hostile bodies, headers and paths get no 5xx.

Hundreds of requests to ``/invocations``, ``/predict`` and ``/explain`` of two registered models
(long/double/string columns; double/boolean columns with optional ones) and to the dashboard's
pages. Every request is built from ``random.Random(SEED)``: a failure names its case number, and
the same seed replays the same requests.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import quote

import httpx
import pytest
from _serving_helpers import ThreadedServer

from mlfactory.dashboard import create_dashboard_app
from mlfactory.serving import create_app
from mlfactory.tracking import open_tracking

SEED = 20261201
CASES_PER_MODEL = 180
DASHBOARD_CASES = 120
MAX_BODY = 30_000

CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=latin-1",
    "application/problem+json",
    "text/csv",
    "text/csv; charset=utf-8",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
    "application/octet-stream",
    "",
    ";;;",
    "application/",
    "json",
    "\u00e9t\u00e9/json",  # sent as UTF-8 bytes
]


def _number(rng: random.Random) -> str:
    digits = "".join(rng.choice("0123456789") for _ in range(rng.choice([1, 19, 20, 40, 400])))
    return rng.choice(
        [
            digits.lstrip("0") or "0",
            "-" + (digits.lstrip("0") or "0"),
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775809",
            "1e20",
            "-1e20",
            "1e308",
            "1e400",
            "-1e400",
            "1e-400",
            "-0",
            "0.1",
            "NaN",
            "Infinity",
            "-Infinity",
            "2.5",
            "1" * 5000,
        ]
    )


def _string(rng: random.Random) -> str:
    text = rng.choice(
        [
            "",
            "a",
            "1e400",
            "1" * 400,
            "NaN",
            "true",
            "2024-02-30",
            "2024-01-01T00:00:00+05:00",
            "99999-01-01",
            "\u0000",
            "\ud83d\ude00 \u540d\u524d",
            "x" * 20_000,
            "' OR 1=1 --",
            "<script>alert(1)</script>",
        ]
    )
    return json.dumps(text)


def _nested(rng: random.Random, depth: int) -> str:
    opening, closing = rng.choice([("[", "]"), ('{"k": ', "}")])
    return opening * depth + "1" + closing * depth


def _value(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.45:
        return _number(rng)
    if kind < 0.7:
        return _string(rng)
    if kind < 0.8:
        return rng.choice(["true", "false", "null", "{}", "[]", '{"a": 1}', "[1, 2]"])
    return _nested(rng, rng.choice([2, 50, 900, 3000]))


@dataclass
class Target:
    columns: list[str]
    good: dict[str, str]  # JSON literals of one valid record


def _record(rng: random.Random, target: Target) -> str:
    fields = dict(target.good)
    for name in rng.sample(target.columns, rng.choice([0, 1, 1, 2, len(target.columns)])):
        fields[name] = _value(rng)
    if rng.random() < 0.2:
        fields.pop(rng.choice(target.columns))
    if rng.random() < 0.2:
        fields[rng.choice(["extra", "", "\u0000", "a" * 300, "__proto__"])] = _value(rng)
    return "{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in fields.items()) + "}"


def _json_body(rng: random.Random, target: Target, path: str) -> str:
    records = [_record(rng, target) for _ in range(rng.choice([1, 1, 2, 5]))]
    if path != "/invocations":
        return records[0] if rng.random() < 0.6 else "[" + ", ".join(records) + "]"
    names = list(target.columns)
    rows = [
        "["
        + ", ".join(_value(rng) if rng.random() < 0.3 else target.good[n] for n in names)
        + ("" if rng.random() < 0.85 else ", 1")
        + "]"
        for _ in records
    ]
    shapes = [
        '{"dataframe_records": [' + ", ".join(records) + "]}",
        '{"instances": [' + ", ".join(records) + "]}",
        '{"inputs": ' + records[0] + "}",
        '{"inputs": {'
        + ", ".join(f'"{n}": [{_value(rng)}, {target.good[n]}]' for n in names)
        + "}}",
        '{"dataframe_split": {"columns": '
        + json.dumps(names if rng.random() < 0.8 else [*names, "x"])
        + ', "data": ['
        + ", ".join(rows)
        + "]}}",
        '{"dataframe_split": {"data": ' + _value(rng) + "}}",
        '{"dataframe_records": ' + _value(rng) + "}",
        '{"inputs": [[1, 2], [3]], "instances": []}',
        _value(rng),
    ]
    return rng.choice(shapes)


def _csv_body(rng: random.Random, target: Target) -> str:
    header = list(target.columns)
    if rng.random() < 0.2:
        header.append(rng.choice(["extra", header[0], ""]))
    lines = [",".join(header)]
    for _ in range(rng.randint(0, 4)):
        cells = [
            rng.choice(["", "NA", "1" * 400, "1e400", "-1e20", '"a,b"', '"', "\u0000", "x"])
            if rng.random() < 0.4
            else target.good[name].strip('"')
            for name in target.columns
        ]
        cut = rng.choice([len(cells), len(cells), len(cells) - 1, len(cells) + 1])
        lines.append(",".join([*cells, "9"][:cut]))
    return "\r\n".join(lines) if rng.random() < 0.3 else "\n".join(lines)


def _mutate(rng: random.Random, body: bytes) -> bytes:
    choice = rng.random()
    if choice < 0.1 and body:
        return body[: rng.randrange(len(body))]  # truncated
    if choice < 0.18 and body:
        at = rng.randrange(len(body))
        return body[:at] + bytes([rng.randrange(256)]) + body[at + 1 :]  # one byte flipped
    if choice < 0.22:
        return body + b" " * MAX_BODY  # over the limit
    if choice < 0.25:
        return b"\xff\xfe" + body  # not UTF-8
    return body


def _service_request(rng: random.Random, target: Target) -> dict:
    path = rng.choice(["/invocations", "/invocations", "/predict", "/explain"])
    common = rng.random() < 0.7
    content_type = rng.choice(CONTENT_TYPES[:2] if common else CONTENT_TYPES)
    is_csv = content_type.startswith("text/csv") or (path == "/invocations" and rng.random() < 0.1)
    text = _csv_body(rng, target) if is_csv else _json_body(rng, target, path)
    body = _mutate(rng, text.encode("utf-8", "surrogatepass"))
    headers = {"content-type": content_type.encode()} if content_type else {}
    if rng.random() < 0.15:
        headers["x-request-id"] = rng.choice(["a" * 200, "\u00e9", "", "a\tb"]).encode()
    params = {}
    if path == "/explain" and rng.random() < 0.3:
        params["top_k"] = rng.choice(["0", "-1", "1" * 30, "abc", "100", "1e3"])
    chunked = rng.random() < 0.15
    content: bytes | Iterator[bytes] = iter([body[:10], body[10:]]) if chunked else body
    return {"method": "POST", "url": path, "content": content, "headers": headers, "params": params}


def _run_cases(url: str, build: Callable[[random.Random], dict], cases: int, seed: int) -> None:
    rng = random.Random(seed)
    failures, statuses = [], []
    with httpx.Client(base_url=url, timeout=30) as http:
        for case in range(cases):
            request = build(rng)
            shown = {k: str(v)[:120] for k, v in request.items() if k != "content"}
            try:
                response = http.request(**request)
            except httpx.TransportError as exc:  # a dropped connection: the server failed
                failures.append((case, shown, repr(exc)))
                continue
            statuses.append(response.status_code)
            if response.status_code >= 500:
                failures.append((case, shown, response.status_code, response.text[:200]))
    assert not failures, f"seed {seed}: {len(failures)} failures, first: {failures[:3]}"
    counts = {code: statuses.count(code) for code in sorted(set(statuses))}
    assert counts.get(200) and sum(n for c, n in counts.items() if 400 <= c < 500), counts
    print(f"seed {seed}: {cases} requests, statuses {counts}")


@pytest.fixture(scope="module")
def mixed_target(mixed_settings) -> Iterator[tuple[str, Target]]:
    app = create_app(mixed_settings, "mixed", max_body_bytes=MAX_BODY, log_predictions=False)
    good = {"count": "7", "amount": "0.5", "city": '"a"'}
    with ThreadedServer(app) as server:
        yield server.url, Target(list(good), good)


@pytest.fixture(scope="module")
def credit_target(registered) -> Iterator[tuple[str, Target]]:
    app = create_app(registered.settings, "credit", max_body_bytes=MAX_BODY, log_predictions=False)
    row = registered.X.head(1).astype(object).to_dict(orient="records")[0]
    good = {k: "null" if v != v else json.dumps(v) for k, v in row.items()}
    with ThreadedServer(app) as server:
        yield server.url, Target(list(good), good)


@pytest.mark.parametrize("model", ["mixed", "credit"])
def test_hostile_requests_to_the_service_get_no_5xx(request, model):
    url, target = request.getfixturevalue(f"{model}_target")
    seed = SEED + (model == "credit")
    _run_cases(url, lambda rng: _service_request(rng, target), CASES_PER_MODEL, seed)


def _dashboard_request(rng: random.Random, run_id: str, experiment: str) -> dict:
    hostile = [
        "%00",
        "a%00b",
        "..",
        "..%2F..%2F..%2Fmlflow.db",
        "%2E%2E/%2E%2E/%2E%2E/mlflow.db",
        "a" * 5000,
        "%FF%FE",
        "%",
        "%2F",
        "%E2%80%AE",
        quote("\u540d\u524d/ x?#%"),
        "model/MLmodel",
        "estimator.skops",
    ]
    piece = rng.choice(hostile)
    flag = rng.choice(["0", "1", "x", "9" * 30])
    path = rng.choice(
        [
            f"/experiments/{piece}",
            f"/experiments/{quote(experiment, safe='')}?sort={piece}&desc={flag}",
            f"/runs/{piece}",
            f"/runs/{run_id}/artifacts/{piece}",
            f"/runs/{run_id}/artifacts/model/{piece}",
            f"/runs/{piece}/artifacts/{piece}",
            f"/monitoring/reports/{rng.choice(['-1', '0', '9' * 30, 'x', piece])}",
            f"/{piece}",
            rng.choice(["/data", "/experiments", "/models", "/monitoring", "/health", "/"]),
        ]
    )
    return {"method": rng.choice(["GET", "GET", "GET", "HEAD", "POST"]), "url": path}


def test_hostile_paths_to_the_dashboard_get_no_5xx(registered):
    client = open_tracking(registered.settings)
    run_id = registered.run_id
    experiment = client.get_experiment(client.get_run(run_id).info.experiment_id).name
    with ThreadedServer(create_dashboard_app(registered.settings)) as server:
        _run_cases(
            server.url,
            lambda rng: _dashboard_request(rng, run_id, experiment),
            DASHBOARD_CASES,
            SEED,
        )
