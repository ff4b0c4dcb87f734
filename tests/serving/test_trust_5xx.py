"""The service's last 5xx paths, on a real uvicorn server: numbers no column can hold, deep JSON,
bodies over the limit however they are sent, ragged CSV, non-JSON bodies on the typed routes."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx
import pytest
from _serving_helpers import ThreadedServer

from mlfactory.serving import create_app

COLUMNS = ("count", "amount", "city")  # long, double, string (the 'mixed' model)
GOOD = {"count": "7", "amount": "0.5", "city": '"a"'}  # JSON literals of one valid record
JSON = {"content-type": "application/json"}
ERROR_KEYS = {"error", "error_code", "message"}  # error_code: as MLflow's


@pytest.fixture(scope="module")
def server(mixed_settings) -> Iterator[ThreadedServer]:
    app = create_app(mixed_settings, "mixed", max_body_bytes=200_000, log_predictions=False)
    with ThreadedServer(app) as running:
        yield running


@pytest.fixture(scope="module")
def http(server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def _record(**literals: str) -> str:
    values = {**GOOD, **literals}
    return "{" + ", ".join(f'"{name}": {values[name]}' for name in COLUMNS) + "}"


def _bodies(**literals: str) -> list[tuple[str, str, str]]:
    """(path, content type, body) of one record in every payload format the service reads."""
    values = {**GOOD, **literals}
    record = _record(**literals)
    row = ", ".join(values[name] for name in COLUMNS)
    columns = json.dumps(list(COLUMNS))
    inputs = ", ".join(f'"{name}": [{values[name]}]' for name in COLUMNS)
    csv_cells = [values[name].strip('"') for name in COLUMNS]
    return [
        ("/predict", "application/json", record),
        ("/predict", "application/json", f"[{record}]"),
        ("/explain", "application/json", record),
        ("/invocations", "application/json", f'{{"dataframe_records": [{record}]}}'),
        ("/invocations", "application/json", f'{{"instances": [{record}]}}'),
        ("/invocations", "application/json", f'{{"inputs": {{{inputs}}}}}'),
        (
            "/invocations",
            "application/json",
            f'{{"dataframe_split": {{"columns": {columns}, "data": [[{row}]]}}}}',
        ),
        ("/invocations", "text/csv", ",".join(COLUMNS) + "\n" + ",".join(csv_cells) + "\n"),
    ]


def _assert_error(response: httpx.Response, status: int | tuple[int, ...], *words: str) -> None:
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, (response.status_code, response.text)
    body = response.json()
    assert set(body) == ERROR_KEYS and body["error"] == "PayloadError", body
    for word in words:
        assert word in body["message"], (word, body["message"])


HUGE = "1" * 400
INFINITE = [HUGE, "-" + HUGE, "1e400", "-1e400", "Infinity", "-Infinity"]
OUT_OF_RANGE = {
    "count": [*INFINITE, "1e20", "-1e20", "9223372036854775808", f'"{HUGE}"', '"1e20"', "[[1]]"],
    "amount": [*INFINITE, f'"{HUGE}9"'],
}


@pytest.mark.parametrize("column", ["count", "amount"])  # long, double
def test_numbers_no_column_can_hold_are_4xx_naming_the_field(http, column):
    for path, content_type, body in _bodies():
        response = http.post(path, content=body, headers={"content-type": content_type})
        assert response.status_code == 200, (path, body, response.text)
    for literal in OUT_OF_RANGE[column]:
        for path, content_type, body in _bodies(**{column: literal}):
            if content_type == "text/csv" and literal.startswith(("[", '"')):
                continue  # no such cell in a CSV
            response = http.post(path, content=body, headers={"content-type": content_type})
            _assert_error(response, (400, 422), f"'{column}'")
    # MLflow's own client sends NaN for missing values: /invocations reads it as a null
    for path, content_type, body in _bodies(**{column: "NaN"}):
        response = http.post(path, content=body, headers={"content-type": content_type})
        if path == "/invocations":
            assert response.status_code == 200, response.text
        else:
            _assert_error(response, 422, f"'{column}'")


@pytest.mark.parametrize("path", ["/predict", "/explain", "/invocations"])
def test_json_nested_too_deeply_or_with_a_giant_integer_is_a_400(http, path):
    for deep in ("[" * 50_000 + "]" * 50_000, '{"a": ' * 20_000 + "1" + "}" * 20_000):
        response = http.post(path, content=deep, headers=JSON)
        _assert_error(response, 400, "JSON nested too deeply")
    giant = '{"count": ' + "9" * 5_000 + "}"
    _assert_error(http.post(path, content=giant, headers=JSON), 400, "4300 digits")
    latin1 = b'{"city": "\xe9"}'
    _assert_error(http.post(path, content=latin1, headers=JSON), 400, "not UTF-8")
    # nested just under the parser's limit: parsed, then refused by the column (or ignored)
    nested = "[" * 900 + "1" + "]" * 900
    for route, content_type, body in _bodies(count=nested, city=nested):
        if route == path and content_type != "text/csv":
            response = http.post(path, content=body, headers={"content-type": content_type})
            _assert_error(response, (400, 422))
    if path != "/invocations":
        extra = '{"count": 1, "amount": 1.0, "city": "a", "deep": ' + nested + "}"
        assert http.post(path, content=extra, headers=JSON).status_code == 200


@pytest.fixture(scope="module")
def small(mixed_settings) -> Iterator[ThreadedServer]:
    app = create_app(mixed_settings, "mixed", max_body_bytes=1000, log_predictions=False)
    with ThreadedServer(app) as running:
        yield running


def test_a_chunked_body_without_content_length_cannot_pass_the_limit(small):
    def chunks() -> Iterator[bytes]:
        yield b'{"dataframe_records": ['
        for _ in range(163):
            yield b" " * 1000
        yield b"]}"

    with httpx.Client(base_url=small.url, timeout=30) as client:
        for path in ("/invocations", "/predict", "/explain"):
            response = client.post(path, content=chunks(), headers=JSON)
            assert "content-length" not in response.request.headers
            _assert_error(response, 413, "request body exceeds 1000 bytes")
        ok = client.post("/predict", content=_record(), headers=JSON)
        assert ok.status_code == 200, ok.text
        under = client.post("/predict", content=iter([_record().encode()]), headers=JSON)
        assert under.status_code == 200, under.text


def _raw_exchange(server: ThreadedServer, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def test_a_lying_content_length_gets_no_5xx_and_no_more_than_the_limit(small):
    body = b'{"dataframe_records": [' + b" " * 5000 + b"]}"
    short = b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    answer = _raw_exchange(small, short + b"Content-Length: 10\r\n\r\n" + body)
    statuses = [int(line.split()[1]) for line in answer.split(b"\r\n") if line[:5] == b"HTTP/"]
    assert statuses and all(400 <= status < 500 for status in statuses), answer[:500]
    chunked = b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    for_chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in [body[:500]] * 4)
    answer = _raw_exchange(small, chunked + for_chunks + b"0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b'"message":"request body exceeds 1000 bytes"' in answer


def test_csv_rows_shorter_or_longer_than_the_header_are_400(http):
    csv = {"content-type": "text/csv"}
    header = "count,amount,city\n"
    cases = {
        "shorter": header + "1,0.5,a\n2,0.5\n",
        "longer": header + "1,0.5,a\n2,0.5,b,extra\n",
        "longer first": header + "1,0.5,a,extra\n",
    }
    for name, text in cases.items():
        response = http.post("/invocations", content=text, headers=csv)
        _assert_error(response, 400, "expected 3, one per header column")
        assert "CSV line" in response.json()["message"], name
    duplicate = "count,amount,city,count\n1,0.5,a,2\n"
    _assert_error(http.post("/invocations", content=duplicate, headers=csv), 400, "duplicate")
    blank_lines = header + "\n1,0.5,a\n\n2,NA,b\n"
    assert http.post("/invocations", content=blank_lines, headers=csv).status_code == 200
    for line_end in ("\r\n", "\r"):  # Windows and old Mac line ends, as pandas reads them
        text = (header + "1,0.5,a\n2,,b\n").replace("\n", line_end)
        assert http.post("/invocations", content=text, headers=csv).status_code == 200


def test_typed_routes_refuse_csv_with_415_and_answer_in_the_documented_body(http):
    csv = {"content-type": "text/csv"}
    for path in ("/predict", "/explain"):
        response = http.post(path, content="count,amount,city\n1,0.5,a\n", headers=csv)
        _assert_error(response, 415, "'text/csv' is not supported", "application/json")
        broken = http.post(path, content=b'{"count": ', headers=JSON)
        _assert_error(broken, 400, "JSON")
    missing = http.get("/no/such/route")
    assert missing.status_code == 404 and set(missing.json()) == ERROR_KEYS
    wrong_method = http.get("/predict")
    assert wrong_method.status_code == 405 and set(wrong_method.json()) == ERROR_KEYS
    assert "POST" in wrong_method.headers["allow"]


def test_explain_of_values_that_overflow_the_model_is_a_422(http):
    for amount in ("1e308", "-1e308"):
        response = http.post("/explain", content=_record(amount=amount), headers=JSON)
        _assert_error(response, 422, "explanation is not finite")


def test_long_extra_column_names_keep_the_warning_header_one_short_line(http):
    record = {"count": 1, "amount": 0.5, "city": "a"}
    record |= {"x" * 5_000 + str(i): 1 for i in range(30)}
    record["\r\nSet-Cookie: a=b"] = 1
    for path, body in (("/predict", record), ("/invocations", {"dataframe_records": [record]})):
        response = http.post(path, json=body)
        assert response.status_code == 200, response.text
        warning = response.headers["X-Mlfactory-Warning"]
        assert len(warning) < 1_200 and "(+11 more)" in warning
        assert "set-cookie" not in response.headers


def test_errors_never_echo_a_body_back(http):
    many_keys = {"k" * 1_000 + str(i): 1 for i in range(100)}
    response = http.post("/invocations", json=many_keys)
    _assert_error(response, 400, "exactly one of the keys")
    assert len(response.json()["message"]) < 1_000
