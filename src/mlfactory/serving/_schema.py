"""Pydantic models of the service: the typed record built from the model's input schema, responses.

The record model is created at startup with :func:`pydantic.create_model`, one field per feature
with its training type, nullable (the pipelines impute), so the OpenAPI page documents every
feature. Field names are internal (``f0``, ``f1``...); the feature names are the aliases.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from mlfactory.registry import InputColumn
from mlfactory.serving._frame import describe_type

__all__ = [
    "HealthResponse",
    "InputField",
    "ModelDescription",
    "PredictResponse",
    "PredictionItem",
    "ReloadResponse",
    "record_model",
]

_PY_TYPES: dict[str, type] = {
    "double": float,
    "float": float,
    "long": int,
    "integer": int,
    "boolean": bool,
    "string": str,
    "datetime": datetime,
}


def record_model(model_name: str, inputs: Sequence[InputColumn]) -> type[BaseModel]:
    """A pydantic model with one nullable, typed field per input column of the model."""
    fields: dict[str, Any] = {}
    for i, column in enumerate(inputs):
        py_type = _PY_TYPES.get(column.type, Any)
        default = ... if column.required else None
        presence = "required (may be null)" if column.required else "optional"
        fields[f"f{i}"] = (
            py_type | None,
            Field(
                default,
                alias=column.name,
                description=f"{describe_type(column.type)}; {presence}: nulls are imputed",
            ),
        )
    title = "".join(part.capitalize() for part in re.split(r"[^0-9A-Za-z]+", model_name) if part)
    return create_model(
        f"{title or 'Model'}Record",
        __config__=ConfigDict(
            extra="allow",
            coerce_numbers_to_str=True,
            allow_inf_nan=False,
            json_schema_extra={"description": f"One record for model {model_name!r}."},
        ),
        **fields,
    )


class HealthResponse(BaseModel):
    status: str


class InputField(BaseModel):
    name: str
    type: str
    required: bool


class ModelDescription(BaseModel):
    name: str
    version: str
    alias: str | None = Field(description="Alias the service follows (None for a pinned version).")
    aliases: list[str]
    task: str = Field(description="classification or regression")
    classes: list[Any]
    metrics: dict[str, float]
    inputs: list[InputField]
    inference: str = Field(
        description="Inference path live now: onnx (the compiled graph verified at promotion) "
        "or sklearn."
    )
    loaded_at: datetime


class PredictionItem(BaseModel):
    prediction: Any = Field(description="Predicted class label (classifiers) or value.")
    probabilities: dict[str, float] | None = Field(
        default=None, description="Probability of each class (classifiers)."
    )


class PredictResponse(BaseModel):
    model_name: str
    model_version: str
    request_id: str
    predictions: list[PredictionItem]


class ReloadResponse(BaseModel):
    previous_version: str
    version: str
    changed: bool
