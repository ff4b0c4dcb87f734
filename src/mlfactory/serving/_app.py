"""The FastAPI application: built in ``lifespan``, errors mapped in one place.

No ``from __future__ import annotations`` here: the ``/predict`` body type is created at startup
from the model's schema, and FastAPI must see the real class, not a string.
"""

import asyncio
import contextlib
import hmac
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Body, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlfactory import __version__
from mlfactory.exceptions import ConfigError, MlfactoryError
from mlfactory.logs import get_logger
from mlfactory.registry import ModelRef, parse_model_ref
from mlfactory.serving._errors import PayloadError, error_code_for, status_for
from mlfactory.serving._explain import add_explain_route
from mlfactory.serving._frame import describe_type
from mlfactory.serving._microbatch import DEFAULT_BATCH_MAX_WAIT_MS
from mlfactory.serving._payloads import (
    CONTENT_TYPE_CSV,
    MLFLOW_FORMATS,
    check_content_type,
    columns_from_csv,
    columns_from_mlflow,
    json_error,
    parse_content_type,
    parse_json,
)
from mlfactory.serving._schema import (
    HealthResponse,
    InputField,
    ModelDescription,
    PredictionItem,
    PredictResponse,
    ReloadResponse,
    record_model,
)
from mlfactory.serving._service import ModelService, Scored, ServeOptions
from mlfactory.settings import Settings

__all__ = ["create_app"]

logger = get_logger(__name__)

PUBLIC_PATHS = frozenset({"/health", "/ping"})
WARNING_HEADER = "X-Mlfactory-Warning"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")


class ModelInference(ModelDescription):
    """``GET /model``: the description plus why the live inference path was chosen."""

    inference: str = Field(description="Inference path live now: onnx or sklearn.")
    inference_reason: str = Field(
        description="Why: a verified ONNX graph, or why scikit-learn serves (the fallback reason)."
    )


_INVOCATIONS_BODY = {
    "required": True,
    "content": {
        "text/csv": {"schema": {"type": "string", "description": "CSV with a header row"}},
        "application/json": {
            "schema": {
                "type": "object",
                "description": "MLflow scoring protocol: exactly one of "
                + ", ".join(MLFLOW_FORMATS)
                + ' (e.g. {"dataframe_split": {"columns": [...], "data": [[...]]}}).',
                "properties": {
                    "dataframe_split": {
                        "type": "object",
                        "properties": {
                            "columns": {"type": "array", "items": {"type": "string"}},
                            "data": {"type": "array", "items": {"type": "array"}},
                        },
                    },
                    "dataframe_records": {"type": "array", "items": {"type": "object"}},
                    "instances": {"type": "array", "items": {"type": "object"}},
                    "inputs": {"type": "object"},
                },
            }
        },
    },
}


def _error(
    status: int, message: str, kind: str = "error", error_code: str | None = None
) -> JSONResponse:
    """Every error body: our ``error`` (the kind) and ``message``, plus MLflow's ``error_code``."""
    body = {"error": kind, "error_code": error_code or error_code_for(status), "message": message}
    return JSONResponse(body, status_code=status)


class ServiceMiddleware:
    """Request ids, API-key check, request counts and latency — one pure ASGI layer."""

    def __init__(
        self, app: ASGIApp, service: ModelService, api_key: str | None, max_body_bytes: int
    ) -> None:
        self.app, self.service = app, service
        self.api_key = api_key.encode() if api_key else None
        self.max_body_bytes = max_body_bytes

    def _too_large(self, scope: Scope) -> bool:
        length = dict(scope["headers"]).get(b"content-length", b"0")
        return length.isdigit() and int(length) > self.max_body_bytes

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body, counted as it arrives (chunked or not, whatever Content-Length says).

        Raises :class:`_BodyTooLarge` at the first chunk past ``max_body_bytes`` (the rest is
        never read); ``None`` if the client disconnected first.
        """
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _reject_size(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.max_body_bytes
        response = _error(413, f"request body exceeds {limit} bytes", "PayloadError")
        await response(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        if self.api_key is None or scope["path"] in PUBLIC_PATHS:
            return True
        headers = dict(scope["headers"])
        given = headers.get(b"x-api-key", b"")
        auth = headers.get(b"authorization", b"")
        if auth[:7].lower() == b"bearer ":
            given = auth[7:].strip()
        return hmac.compare_digest(given, self.api_key)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = [500]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                MutableHeaders(scope=message).append("X-Request-Id", request_id)
            await send(message)

        try:
            if not self._authorized(scope):
                response = _error(
                    401, "missing or wrong API key: send Authorization: Bearer KEY or X-API-Key"
                )
                response.headers["WWW-Authenticate"] = "Bearer"
                await response(scope, receive, send_with_id)
            elif (refused := _refused_content_type(scope)) is not None:
                await refused(scope, receive, send_with_id)
            elif self._too_large(scope):
                await self._reject_size(scope, receive, send_with_id)
            else:
                try:
                    body = await self._read_body(receive)
                except _BodyTooLarge:
                    await self._reject_size(scope, receive, send_with_id)
                    return
                if body is None:  # the client disconnected before sending its whole body
                    status[0] = 499
                    return
                await self.app(scope, _replay(body, receive), send_with_id)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "other"
            metrics = self.service.metrics
            metrics.requests.inc(1, endpoint, str(status[0]))
            metrics.latency.observe(time.perf_counter() - start, endpoint)


def _refused_content_type(scope: Scope) -> JSONResponse | None:
    """The 415 for a POST whose Content-Type has a parameter other than ``charset=utf-8``.

    Every route reads bodies as UTF-8: a body declared in another charset would be misread, and
    an unknown parameter is refused as MLflow's scoring server refuses it (on every route, so
    that ``/predict`` and ``/explain`` follow the same rule as ``/invocations``).
    """
    if scope["method"] != "POST":
        return None
    content_type = dict(scope["headers"]).get(b"content-type")
    if not content_type or b";" not in content_type:
        return None
    try:
        check_content_type(content_type.decode("latin-1"))
    except PayloadError as error:
        return _error(415, str(error), "PayloadError", error.error_code)
    return None


class _BodyTooLarge(Exception):
    """More request body bytes arrived than ``max_body_bytes``."""


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the body already read, then the client's own events."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


def _is_json(content_type: str) -> bool:
    """What FastAPI parses as JSON: no content type, application/json or application/*+json."""
    mime = content_type.split(";")[0].strip().lower()
    main, _, sub = mime.partition("/")
    return not mime or (main == "application" and (sub == "json" or sub.endswith("+json")))


def _unsupported(content_type: str, expected: str) -> str:
    return f"content type {content_type[:100]!r} is not supported; send {expected}"


def _validation_message(exc: RequestValidationError, types: dict[str, str]) -> tuple[int, str]:
    """One readable line from FastAPI's validation errors: field, problem, expected type."""
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        detail = next(e for e in errors if e.get("type") == "json_invalid")
        return 400, f"request body is not valid JSON: {detail.get('msg', '')}".strip()
    body = getattr(exc, "body", None)
    if isinstance(body, bytes | str):
        return 400, "request body must be JSON (Content-Type: application/json)"
    want_list = isinstance(body, list)
    parts = []
    for error in errors:
        loc = [p for p in error.get("loc", ()) if p != "body"]
        if loc and isinstance(loc[0], str) and (loc[0].endswith("Record") or "[" in loc[0]):
            if loc[0].startswith("list[") != want_list:
                continue
            loc = loc[1:]
        row = next((p for p in loc if isinstance(p, int)), None)
        field = next((p for p in reversed(loc) if isinstance(p, str)), None)
        where = f"field {field!r}" if field else "body"
        if row is not None:
            where += f" (record {row})"
        expected = f"; expected {describe_type(types[field])} or null" if field in types else ""
        if error.get("type") == "missing":
            parts.append(f"missing {where}{expected}")
        else:
            parts.append(f"{where}: {error.get('msg')}{expected}")
    if not parts:
        parts = ["body must be one record (JSON object) or a list of records"]
    return 422, "; ".join(parts[:5]) + ("" if len(parts) <= 5 else f" (+{len(parts) - 5} more)")


_warned_columns: set[str] = set()  # log each ignored column once per process, not per request


def _short_name(name: object) -> str:
    text = ascii(str(name)[:41])
    return text if len(text) <= 42 else text[:40] + "...'"


def _scored_headers(scored: Scored, request_id: str) -> dict[str, str]:
    headers = {"X-Model-Time-Ms": f"{scored.result.model_ms:.3f}"}
    routes = getattr(scored.result, "routes", None)
    if routes is not None:  # a fleet: which model scored each record (first 100), fallback count
        shown = ",".join(ascii(route)[1:-1].replace(",", "\\x2c")[:40] for route in routes[:100])
        headers["X-Mlfactory-Segment-Models"] = shown + (",..." if len(routes) > 100 else "")
        headers["X-Mlfactory-Fallback"] = str(sum(route == "fallback" for route in routes))
    if scored.batch.ignored:
        # names come from the client: at most 20, each cut to 40 characters, so the header
        # (and the log line) stays a line long, whatever the request holds
        shown = [_short_name(name) for name in scored.batch.ignored[:20]]
        more = len(scored.batch.ignored) - len(shown)
        names = ", ".join(shown) + (f" (+{more} more)" if more > 0 else "")
        headers[WARNING_HEADER] = f"ignored columns not in the model: {names}"
        new = {_short_name(name) for name in scored.batch.ignored[:1000]} - _warned_columns
        if new and len(_warned_columns) < 1000:
            _warned_columns.update(new)
            logger.warning("request %s: ignored columns %s", request_id, names)
    return headers


def _add_predict_route(app: FastAPI, service: ModelService) -> None:
    """``POST /predict`` with a body type built from the loaded model's input schema."""
    loaded = service.current().loaded
    Record = record_model(loaded.info.name, loaded.inputs)
    names = [(f"f{i}", column.name) for i, column in enumerate(loaded.inputs)]
    app.state.input_types = {column.name: column.type for column in loaded.inputs}

    def _columns(records: list[Any]) -> dict[str, list[Any]]:
        columns = {name: [getattr(r, field) for r in records] for field, name in names}
        for record in records:
            for extra in record.model_extra or {}:
                columns.setdefault(extra, [None] * len(records))
        return columns

    async def predict(
        request: Request,
        body: Annotated[Record | list[Record], Body(description="One record or a list.")],
    ) -> Response:
        records = body if isinstance(body, list) else [body]
        request_id = request.state.request_id
        if service.scores_inline(len(records)):
            scored = service.score_columns(_columns(records), request_id)
        else:
            scored = await run_in_threadpool(service.score_columns, _columns(records), request_id)
        info = scored.predictor.loaded.info
        probabilities = scored.probabilities or [None] * len(scored.predictions)
        payload = PredictResponse(
            model_name=info.name,
            model_version=info.version,
            request_id=request_id,
            predictions=[
                PredictionItem(prediction=p, probabilities=q)
                for p, q in zip(scored.predictions, probabilities, strict=True)
            ],
        )
        return Response(
            payload.model_dump_json(),
            media_type="application/json",
            headers=_scored_headers(scored, request_id),
        )

    app.add_api_route(
        "/predict",
        predict,
        methods=["POST"],
        response_model=PredictResponse,
        summary="Score records with typed fields (one record or a list)",
        description="Classifiers return the predicted class and each class's probability; "
        "regressors the value. Extra fields are ignored (warning header); nulls are imputed.",
        tags=["scoring"],
    )
    app.openapi_schema = None


def create_app(
    settings: Settings,
    model_ref: str | ModelRef,
    *,
    allow_pickle: bool = False,
    allow_unverified: bool = False,
    max_batch_rows: int = 10_000,
    reload_interval_s: float | None = None,
    log_predictions: bool = True,
    log_db_url: str | None = None,
    log_flush_interval_s: float = 0.5,
    log_batch_rows: int = 500,
    log_queue_rows: int = 50_000,
    max_body_bytes: int = 64 * 1024 * 1024,
    onnx: bool = False,
    batch_max_size: int | None = None,
    batch_max_wait_ms: float = DEFAULT_BATCH_MAX_WAIT_MS,
    fleet_cache_size: int = 50,
) -> FastAPI:
    """The prediction service for ``model_ref`` (``NAME``, ``NAME@alias`` or ``NAME/version``).

    Nothing is loaded here: the model loads in the app's lifespan (startup), the prediction log
    writer starts with it and is flushed at shutdown. With ``onnx`` the version's verified ONNX
    graph (recorded at promotion) serves when it has one; ``GET /model`` says which path is live.
    ``batch_max_size`` > 1 turns on micro-batching: concurrent requests are scored together in
    calls of up to that many rows, waiting at most ``batch_max_wait_ms`` for company; 0 turns it
    off; ``None`` (default) batches only the scikit-learn path, what queues while a call runs.
    A fleet version routes each record by its segment columns to its segment's model, keeping at
    most ``fleet_cache_size`` of them loaded (LRU); ``X-Mlfactory-Segment-Models`` says which.
    """
    ref = parse_model_ref(model_ref) if isinstance(model_ref, str) else model_ref
    if max_batch_rows < 1:
        raise ConfigError(f"max_batch_rows must be at least 1, got {max_batch_rows}")
    if (batch_max_size is not None and batch_max_size < 0) or batch_max_wait_ms < 0:
        raise ConfigError(
            f"--batch-max-size ({batch_max_size}) and --batch-max-wait-ms ({batch_max_wait_ms}) "
            "must be >= 0 (size 0 or 1: micro-batching off)"
        )
    options = ServeOptions(
        allow_pickle=allow_pickle,
        allow_unverified=allow_unverified,
        max_batch_rows=max_batch_rows,
        reload_interval_s=reload_interval_s,
        log_predictions=log_predictions,
        log_db_url=log_db_url,
        log_queue_rows=log_queue_rows,
        log_batch_rows=log_batch_rows,
        log_flush_interval_s=log_flush_interval_s,
        onnx=onnx,
        batch_max_size=batch_max_size,
        batch_max_wait_ms=batch_max_wait_ms,
        fleet_cache_size=fleet_cache_size,
    )
    if fleet_cache_size < 1:
        raise ConfigError(f"--fleet-cache-size must be at least 1, got {fleet_cache_size}")
    service = ModelService(settings, ref, options)
    api_key = settings.api_key.get_secret_value() if settings.api_key else None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        _add_predict_route(app, service)
        add_explain_route(app, service)
        poller = None
        if reload_interval_s:
            poller = asyncio.create_task(service.poll(reload_interval_s))
        try:
            yield
        finally:
            if poller is not None:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller
            await service.stop()

    app = FastAPI(
        # the service's metrics are its Prometheus /metrics; FastAPI's native OpenTelemetry
        # checked the global providers on every request (~3% of a 1-row request's CPU)
        telemetry={"tracing": False, "metrics": False, "logs": False},
        title=f"mlfactory prediction service: {ref}",
        version=__version__,
        description="Scores records with a registered model. MLflow-compatible /invocations, "
        "typed /predict, health, readiness, model description, Prometheus metrics, reload.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.input_types = {}
    app.add_middleware(
        ServiceMiddleware, service=service, api_key=api_key, max_body_bytes=max_body_bytes
    )

    @app.exception_handler(MlfactoryError)
    async def _library_error(_request: Request, exc: MlfactoryError) -> JSONResponse:
        status = status_for(exc)
        if status >= 500:
            logger.error("%s: %s", type(exc).__name__, exc)
        return _error(status, str(exc), type(exc).__name__, error_code_for(status, exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        content_type = request.headers.get("content-type", "")
        if not _is_json(content_type) and request.method == "POST":
            return _error(415, _unsupported(content_type, "application/json"), "PayloadError")
        status, message = _validation_message(exc, request.app.state.input_types)
        return _error(status, message, "PayloadError")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI turns a body json.loads refused for other reasons than syntax (nesting,
        # huge integers, bytes that are not UTF-8) into a bare 400: say which, in our format.
        parse = json_error(exc.__cause__) if exc.__cause__ is not None else None
        if parse is not None:
            return _error(parse.status_code, str(parse), "PayloadError")
        kinds = {404: "NotFound", 405: "MethodNotAllowed"}
        message = f"{exc.detail}: {request.method} {request.url.path}"
        response = _error(exc.status_code, message, kinds.get(exc.status_code, "HTTPError"))
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error: %s", exc)
        return _error(500, "internal error; see the service log", "InternalError")

    @app.get("/health", response_model=HealthResponse, tags=["operations"])
    async def health() -> HealthResponse:
        """Liveness: the process answers (no key needed)."""
        return HealthResponse(status="alive")

    @app.get("/ready", response_model=HealthResponse, tags=["operations"])
    async def ready() -> JSONResponse:
        """Readiness: 200 once the model is loaded, 503 before."""
        if service.predictor is None:
            return JSONResponse({"status": "loading"}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/ping", response_model=HealthResponse, tags=["operations"])
    async def ping() -> JSONResponse:
        """MLflow's health check (``ScoringServerClient.wait_server_ready``): as ``/ready``."""
        return await ready()

    from mlflow.version import VERSION as mlflow_version  # mlflow is loaded to serve anyway

    @app.get("/version", response_class=PlainTextResponse, tags=["operations"])
    async def version() -> PlainTextResponse:
        """The MLflow version serving the model, as ``mlflow models serve`` answers it."""
        return PlainTextResponse(mlflow_version, headers={"X-Mlfactory-Version": __version__})

    @app.get("/model", response_model=ModelInference, tags=["operations"])
    async def model() -> ModelInference:
        """Which model version is live, its metrics, input schema and inference path."""
        predictor = service.current()
        loaded = predictor.loaded
        inputs = loaded.inputs
        return ModelInference(
            name=loaded.info.name,
            version=loaded.info.version,
            alias=None if ref.version else (ref.alias or "champion"),
            aliases=loaded.info.aliases,
            task="classification" if loaded.is_classifier else "regression",
            classes=getattr(predictor, "classes", []),
            metrics=loaded.info.metrics,
            inputs=[InputField(name=c.name, type=c.type, required=c.required) for c in inputs],
            inference=predictor.kind,
            inference_reason=getattr(predictor, "reason", ""),
            loaded_at=service.loaded_at,
        )

    @app.get("/metrics", response_class=PlainTextResponse, tags=["operations"])
    async def metrics() -> PlainTextResponse:
        """Prometheus text format: requests, latency, rows, predictions, log drops."""
        return PlainTextResponse(
            service.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    @app.post("/reload", response_model=ReloadResponse, tags=["operations"])
    async def reload() -> ReloadResponse:
        """Re-resolve the alias; load the new version fully, then swap; in-flight calls finish."""
        old, new = await service.reload()
        return ReloadResponse(previous_version=old, version=new, changed=old != new)

    @app.post(
        "/invocations",
        tags=["scoring"],
        openapi_extra={"requestBody": _INVOCATIONS_BODY},
        responses={200: {"description": '{"predictions": [...]}, as mlflow models serve'}},
    )
    async def invocations(request: Request) -> Response:
        """MLflow scoring protocol: dataframe_split, dataframe_records, instances or inputs."""
        mime = parse_content_type(request.headers.get("content-type"))
        body = await request.body()
        request_id = request.state.request_id
        names = [c.name for c in service.current().loaded.inputs]

        def run() -> Scored:
            if mime == CONTENT_TYPE_CSV:
                columns = columns_from_csv(body)
            else:
                columns = columns_from_mlflow(parse_json(body), names)
            return service.score_columns(columns, request_id)

        # ~1 KB per row of 10-20 features: a rough row count without parsing the body first
        scored = run() if service.scores_inline(len(body) // 512) else await run_in_threadpool(run)
        return JSONResponse(
            {"predictions": scored.predictions}, headers=_scored_headers(scored, request_id)
        )

    # the scoring route first: each request was matched against the documentation and
    # operations routes before it (a regular expression each); paths are distinct, so the
    # order changes nothing else
    routes = app.router.routes
    routes.insert(0, routes.pop(next(i for i, r in enumerate(routes) if r.path == "/invocations")))
    return app
