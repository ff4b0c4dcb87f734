"""``mlfactory serve``: the online prediction service for a registered model."""

from __future__ import annotations

from typing import Annotated

import typer

from mlfactory.cli._common import console, current_settings
from mlfactory.exceptions import Terminated


def serve_command(
    ctx: typer.Context,
    model: Annotated[
        str,
        typer.Argument(
            help="Registered model: NAME (its champion), NAME@alias or NAME/version.",
            show_default=False,
        ),
    ],
    host: Annotated[
        str,
        typer.Option(
            help="Interface to bind. Anything but loopback (127.0.0.1, ::1, localhost) "
            "requires MLFACTORY_API_KEY of 16+ characters, not the .env.example placeholder."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
    workers: Annotated[
        int,
        typer.Option(help="Worker processes (each loads the model; metrics are per process)."),
    ] = 1,
    allow_pickle: Annotated[
        bool,
        typer.Option(
            "--allow-pickle",
            help="Also load pickle/cloudpickle models (runs code from the file: trusted only).",
        ),
    ] = False,
    allow_unverified: Annotated[
        bool,
        typer.Option(
            "--allow-unverified",
            help="Load a version that has no recorded SHA-256 (registered outside mlfactory "
            "promote, e.g. with the MLflow UI); warns. The type allow-list still applies.",
        ),
    ] = False,
    max_batch_rows: Annotated[
        int, typer.Option(help="Largest batch one request may send (larger: HTTP 413).")
    ] = 10_000,
    reload_interval: Annotated[
        float | None,
        typer.Option(
            "--reload-interval",
            help="Seconds between checks of the alias for a new version (off when unset; "
            "POST /reload always works).",
            show_default=False,
        ),
    ] = None,
    log_predictions: Annotated[
        bool,
        typer.Option(
            help="Log every scored request (inputs, predictions, probabilities) to the "
            "prediction_requests table."
        ),
    ] = True,
    onnx: Annotated[
        bool,
        typer.Option(
            help="Serve the version's ONNX graph (compiled and verified at promotion) with "
            "onnxruntime when it has one; else scikit-learn. GET /model says which and why."
        ),
    ] = True,
    batch_max_size: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Micro-batching: score concurrent requests together in calls of up to this "
            "many rows (0 = off). Default: on for the scikit-learn path only (64 rows, scoring "
            "together what queues while a call runs), off for a verified ONNX graph.",
            show_default=False,
        ),
    ] = None,
    batch_max_wait_ms: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Micro-batching: longest a request waits for others to join its call.",
        ),
    ] = 2.0,
    fleet_cache_size: Annotated[
        int,
        typer.Option(
            min=1,
            help="A fleet: segment models kept loaded at most (least recently used evicted); "
            "each record is routed to its segment's model, unseen segments to the fallback.",
        ),
    ] = 50,
) -> None:
    """Serve a registered model over HTTP until Ctrl-C.

    POST /invocations speaks MLflow's scoring protocol; POST /predict takes typed records.

    GET /health, /ready, /model, /metrics (Prometheus) and /docs; POST /reload swaps to the
    alias's new version.

    With MLFACTORY_API_KEY set, every endpoint but /health needs 'Authorization: Bearer KEY'.
    """
    from mlfactory.registry import verify_model
    from mlfactory.serving import check_bind, run_server
    from mlfactory.serving._server import auth_summary, check_port

    settings = current_settings(ctx)
    check_bind(settings, host)  # exits 2 with a clear message before anything loads
    # hash, exact type allow-list and a trial load: a model that fails them never gets a banner
    from mlfactory.fleet._serve import verify_fleet

    if not verify_fleet(settings, model):  # a fleet: its manifest and fallback, verified
        verify_model(settings, model, allow_pickle=allow_pickle, allow_unverified=allow_unverified)
    check_port(host, port)  # exits 2: out of range, a host that does not resolve, in use
    auth = auth_summary(settings)  # what the app enforces, never more
    console.print(
        f"serving [bold]{model}[/] on http://{host}:{port} ({workers} worker(s), {auth}); "
        f"docs at http://{host}:{port}/docs"
    )
    options: dict[str, object] = {
        "allow_pickle": allow_pickle,
        "allow_unverified": allow_unverified,
        "max_batch_rows": max_batch_rows,
        "reload_interval_s": reload_interval,
        "log_predictions": log_predictions,
        "onnx": onnx,
        "batch_max_size": batch_max_size,
        "batch_max_wait_ms": batch_max_wait_ms,
        "fleet_cache_size": fleet_cache_size,
    }
    try:
        run_server(settings, model, host=host, port=port, workers=workers, **options)
    except (KeyboardInterrupt, Terminated):  # Ctrl-C or SIGTERM: the normal way to stop
        console.print("stopped")
