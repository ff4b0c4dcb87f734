"""``POST /explain``: SHAP contributions of one record for the served model.

No ``from __future__ import annotations`` here: FastAPI must see the body type built at runtime.
"""

import math
import threading
from typing import Annotated, Any

import mlflow
import numpy as np
import pandas as pd
from fastapi import Body, FastAPI, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from mlfactory.serving._errors import PayloadError
from mlfactory.serving._frame import build_frame
from mlfactory.serving._schema import record_model
from mlfactory.serving._service import ModelService
from mlfactory.tracking import tracking_uri

__all__ = ["add_explain_route"]

BACKGROUND_ROWS = 200


class Contribution(BaseModel):
    feature: str
    value: float
    contribution: float


class ExplainResponse(BaseModel):
    model_name: str
    model_version: str
    explainer: str
    scale: str
    base_value: float
    model_output: float
    prediction: Any
    contributions: list[Contribution]
    rest: float


class _Backgrounds:
    """The model run's reference sample (training rows), read once per served version."""

    def __init__(self, service: ModelService) -> None:
        self.service = service
        self._frames: dict[str, pd.DataFrame | None] = {}
        self._lock = threading.Lock()

    def get(self, run_id: str, columns: list[str]) -> pd.DataFrame | None:
        with self._lock:
            if run_id not in self._frames:
                self._frames[run_id] = self._read(run_id, columns)
            return self._frames[run_id]

    def _read(self, run_id: str, columns: list[str]) -> pd.DataFrame | None:
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id,
                artifact_path="reference_sample.parquet",
                tracking_uri=tracking_uri(self.service.settings),
            )
        except Exception:  # a model logged elsewhere: tree explainers need no background
            return None
        frame = pd.read_parquet(path)
        frame = frame[[c for c in columns if c in frame.columns]]
        return frame.sample(n=min(BACKGROUND_ROWS, len(frame)), random_state=0)


def _check_finite(result: dict[str, Any]) -> None:
    """A 422, not a response JSON cannot carry, when extreme values overflow the explanation."""
    numbers = [result.get(key, 0.0) for key in ("base_value", "model_output", "rest")]
    for item in result.get("contributions", []):
        numbers += [item["value"], item["contribution"]]
    if not all(math.isfinite(float(number)) for number in numbers):
        raise PayloadError(
            "the explanation is not finite for these values (far outside the range the model "
            "was trained on?)"
        )


def add_explain_route(app: FastAPI, service: ModelService) -> None:
    """Register ``POST /explain`` with the same typed record body as ``/predict``."""
    from mlfactory.explain import explain_record

    loaded = service.current().loaded
    Record = record_model(loaded.info.name, loaded.inputs)
    backgrounds = _Backgrounds(service)
    names = [(f"f{i}", column.name) for i, column in enumerate(loaded.inputs)]

    def _explain(record: BaseModel, top_k: int) -> ExplainResponse:
        current = service.current().loaded
        # the schema's fields only: extra fields (maybe deeply nested JSON) are never walked
        raw = {name: [getattr(record, field)] for field, name in names}
        batch = build_frame(raw, current.inputs, 1)
        background = backgrounds.get(current.info.run_id, current.feature_names)
        with np.errstate(all="ignore"):  # extreme inputs: the result is checked below
            result = explain_record(current.model, batch.frame, top_k, background)
        _check_finite(result)
        return ExplainResponse(
            model_name=current.info.name,
            model_version=current.info.version,
            **{k: result[k] for k in ExplainResponse.model_fields if k in result},
        )

    async def explain(
        request: Request,
        body: Annotated[Record, Body(description="One record, typed like /predict's.")],
        top_k: Annotated[int, Query(ge=1, le=100, description="Features to return.")] = 5,
    ) -> ExplainResponse:
        return await run_in_threadpool(_explain, body, top_k)

    app.add_api_route(
        "/explain",
        explain,
        methods=["POST"],
        response_model=ExplainResponse,
        summary="SHAP contributions of one record (top-k features, base value)",
        description="base_value + the contributions of every feature = model_output, on the "
        "explainer's scale (log-odds for linear and boosted models, probability otherwise).",
        tags=["explain"],
    )
    app.openapi_schema = None
