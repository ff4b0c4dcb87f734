"""Helpers for serving tests: JSON records, a real uvicorn server in a thread, clients."""

from __future__ import annotations

import warnings

import httpx
import pandas as pd

from mlfactory.serving import BackgroundServer, free_port

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # starlette prefers httpx2; httpx still works
    from fastapi.testclient import TestClient

__all__ = ["TestClient", "ThreadedServer", "client", "free_port", "records"]


def records(frame: pd.DataFrame) -> list[dict]:
    """JSON-ready records (NaN -> None), the way a client sends them."""
    return [
        {k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
        for row in frame.astype(object).to_dict(orient="records")
    ]


ThreadedServer = BackgroundServer


def client(server: ThreadedServer, **headers: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers=headers, timeout=30)
