"""The dashboard: a read-only, server-rendered FastAPI site over the factory's stores."""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from mlfactory.dashboard import _queries as q
from mlfactory.dashboard._artifacts import resolve_artifact
from mlfactory.dashboard._defaults import DEFAULT_MLFLOW_URL
from mlfactory.dashboard._svg import line_chart
from mlfactory.exceptions import DataError, MlfactoryError, ModelNotFound
from mlfactory.logs import get_logger
from mlfactory.settings import Settings, mask_urls_in_text
from mlfactory.tracking import TrackingStoreEmpty, TrackingStoreNotReady, open_tracking

__all__ = ["DEFAULT_MLFLOW_URL", "create_dashboard_app"]

logger = get_logger(__name__)
TEMPLATES = Path(__file__).parent / "templates"
PAGE_CSP = (
    "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; "
    "frame-src 'self'; form-action 'self'; base-uri 'none'"
)
# Artifact HTML (explain reports) is shown as-is but can run nothing and reach nothing else.
ARTIFACT_CSP = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'"
NAV = (
    ("data", "Data"),
    ("experiments", "Experiments"),
    ("models", "Models"),
    ("monitoring", "Monitoring"),
)


def _fmt(value: Any, digits: int = 4) -> str:
    """Numbers for tables: floats rounded, ``None`` as a dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != 0 and abs(value) < 10 ** (-digits):
            return f"{value:.2e}"
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES))
    templates.env.filters["fmt"] = _fmt
    templates.env.filters["urlpart"] = lambda value: quote(str(value), safe="")
    templates.env.filters["urlpath"] = lambda value: quote(str(value), safe="/")
    templates.env.globals["nav"] = NAV
    return templates


def _authorized(request: Request, key: str) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer":
        return secrets.compare_digest(credentials.strip().encode(), key.encode())
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        return secrets.compare_digest(decoded.partition(":")[2].encode(), key.encode())
    return False


def create_dashboard_app(settings: Settings, mlflow_url: str = DEFAULT_MLFLOW_URL) -> FastAPI:
    """The dashboard app on ``settings``' stores; links to the MLflow UI at ``mlflow_url``.

    Every page is a GET rendered on the server (no JavaScript, no external assets). With
    ``MLFACTORY_API_KEY`` set, every page but ``/health`` needs the key, as a Bearer token or as
    the password of HTTP Basic authentication (so a browser can log in).
    """
    templates = _templates()
    api_key = settings.api_key.get_secret_value() if settings.api_key else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.client = None  # opened on first need, once the store is there (read-only)
        yield

    def tracking(request: Request) -> tuple[Any, str | None]:
        """The read-only MLflow client, or ``None`` and one line saying why the store cannot be
        read yet (empty, older or newer schema). Looked at again on each page until it opens:
        the dashboard never creates the store, its tables, nor migrates them."""
        client = getattr(request.app.state, "client", None)
        if client is not None:
            return client, None
        try:
            client = open_tracking(settings, read_only=True)
        except (TrackingStoreEmpty, TrackingStoreNotReady) as exc:
            return None, str(exc)
        request.app.state.client = client
        return client, None

    def tracking_client(request: Request) -> Any:
        client, notice = tracking(request)
        if client is None:
            raise ModelNotFound(notice or "the tracking store cannot be read")
        return client

    app = FastAPI(
        title="mlfactory dashboard",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    def render(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
        page = name.removesuffix(".html")
        context.setdefault("page", page)
        context.setdefault("store_notice", None)
        context.setdefault("mlflow_url", mlflow_url.rstrip("/"))
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    def error_page(request: Request, status_code: int, message: str) -> Response:
        titles = {400: "Bad request", 404: "Not found", 401: "Unauthorized"}
        return render(
            request,
            "error.html",
            status_code=status_code,
            page="error",
            title=titles.get(status_code, "Error"),
            message=mask_urls_in_text(message),
            status=status_code,
        )

    @app.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if api_key and request.url.path != "/health" and not _authorized(request, api_key):
            return Response(
                "authentication required: Bearer token or Basic password = MLFACTORY_API_KEY",
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="mlfactory dashboard"'},
            )
        response = await call_next(request)
        if request.url.path.startswith("/runs/") and "/artifacts/" in request.url.path:
            response.headers.setdefault("Content-Security-Policy", ARTIFACT_CSP)
        else:
            response.headers.setdefault("Content-Security-Policy", PAGE_CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    @app.exception_handler(ModelNotFound)
    async def _not_found(request: Request, exc: ModelNotFound) -> Response:
        return error_page(request, 404, str(exc))

    @app.exception_handler(DataError)
    async def _bad_request(request: Request, exc: DataError) -> Response:
        return error_page(request, 400, str(exc))

    @app.exception_handler(MlfactoryError)
    async def _failure(request: Request, exc: MlfactoryError) -> Response:
        logger.error("dashboard page %s failed: %s", request.url.path, exc)
        return error_page(request, 500, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _bad_query(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'][1:])}: {error['msg']}"
            for error in exc.errors()
        )
        return error_page(request, 400, f"invalid request: {problems}")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = "no such page" if exc.status_code == 404 else str(exc.detail)
        return error_page(request, exc.status_code, message)

    @app.get("/health", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/", include_in_schema=False)
    def index() -> RedirectResponse:
        return RedirectResponse("/data", status_code=307)

    @app.get("/data", response_class=HTMLResponse)
    def data_page(request: Request) -> Response:
        status = q.data_status(settings)
        return render(request, "data.html", title="Data", status=status)

    @app.get("/experiments", response_class=HTMLResponse)
    def experiments_page(request: Request) -> Response:
        client, notice = tracking(request)
        names = q.experiment_names(client) if client is not None else []
        return render(
            request, "experiments.html", title="Experiments", names=names, store_notice=notice
        )

    # ``:path``: a name may hold "/" (sent as %2F, which the router sees decoded)
    @app.get("/experiments/{name:path}", response_class=HTMLResponse)
    def leaderboard_page(
        request: Request, name: str, sort: str | None = None, desc: int = 1
    ) -> Response:
        board = q.leaderboard(tracking_client(request), name, sort, bool(desc))
        return render(request, "leaderboard.html", page="experiments", title=name, board=board)

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    def run_page(request: Request, run_id: str) -> Response:
        run = q.run_detail(tracking_client(request), run_id)
        return render(request, "run.html", page="experiments", title=run["name"], run=run)

    @app.get("/runs/{run_id}/artifacts/{path:path}")
    def artifact(request: Request, run_id: str, path: str) -> Response:
        run = q.get_run(tracking_client(request), run_id)
        return FileResponse(resolve_artifact(run["artifact_uri"], path))

    @app.get("/models", response_class=HTMLResponse)
    def models_page(request: Request) -> Response:
        client, notice = tracking(request)
        models = q.models_overview(settings, client) if client is not None else []
        return render(request, "models.html", title="Models", models=models, store_notice=notice)

    @app.get("/monitoring", response_class=HTMLResponse)
    def monitoring_page(request: Request) -> Response:
        history = q.drift_history(settings)
        charts = {
            model: line_chart(
                [p.created_at for p in points],
                [p.share_drifted for p in points],
                threshold=points[-1].drift_share_threshold,
                title=f"share of drifted features, {model}",
            )
            for model, points in history.items()
        }
        return render(
            request, "monitoring.html", title="Monitoring", history=history, charts=charts
        )

    @app.get("/monitoring/reports/{report_id}", response_class=HTMLResponse)
    def report_page(request: Request, report_id: int) -> Response:
        report = q.drift_report(settings, report_id)
        return render(
            request,
            "report.html",
            page="monitoring",
            title=f"Drift report {report_id}",
            report=report,
        )

    return app
