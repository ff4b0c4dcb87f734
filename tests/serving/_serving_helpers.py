"""Helpers for serving tests: JSON records, a real uvicorn server in a thread, clients."""

from __future__ import annotations

import threading
import time
import warnings

import httpx
import pandas as pd
import uvicorn
from _postgres import free_port

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


class ThreadedServer:
    """A real uvicorn server on a free loopback port, in a thread."""

    def __init__(self, app, host: str = "127.0.0.1") -> None:
        self.port = free_port()
        self.url = f"http://{host}:{self.port}"
        config = uvicorn.Config(app, host=host, port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def client(server: ThreadedServer, **headers: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers=headers, timeout=30)
