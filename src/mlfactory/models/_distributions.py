"""Declarative search spaces for Bayesian (Optuna) and random search.

A space is a table ``{"clf__C": {"type": "float", "low": 1e-3, "high": 10, "log": true},
"clf__max_depth": {"type": "int", "low": 2, "high": 12}, "clf__kernel": {"type": "categorical",
"choices": ["rbf", "linear"]}}`` that a TOML spec or JSON file can hold. It becomes Optuna
distributions (:func:`to_optuna_distributions`) or scipy/list distributions for scikit-learn's
``RandomizedSearchCV`` (:func:`to_scipy_distributions`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from scipy import stats

from mlfactory.exceptions import SpecError

__all__ = [
    "CategoricalParam",
    "FloatParam",
    "IntParam",
    "SearchSpace",
    "parse_distributions",
    "to_optuna_distributions",
    "to_scipy_distributions",
]

Scalar = None | bool | int | float | str


class _Param(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FloatParam(_Param):
    """A float in ``[low, high]``, log-uniform when ``log``, on a grid when ``step``."""

    type: Literal["float"]
    low: float
    high: float
    log: bool = False
    step: float | None = None

    @model_validator(mode="after")
    def _check(self) -> FloatParam:
        _check_range(self.low, self.high, self.log, self.step)
        return self


class IntParam(_Param):
    """An integer in ``[low, high]`` (inclusive), log-spaced when ``log``."""

    type: Literal["int"]
    low: int
    high: int
    log: bool = False
    step: int = 1

    @model_validator(mode="after")
    def _check(self) -> IntParam:
        _check_range(self.low, self.high, self.log, self.step if self.step != 1 else None)
        if self.step < 1:
            raise ValueError(f"step must be >= 1, got {self.step}")
        return self


class CategoricalParam(_Param):
    """One of ``choices`` (None, booleans, numbers or strings)."""

    type: Literal["categorical"]
    choices: list[Scalar] = Field(min_length=1)


def _check_range(low: float, high: float, log: bool, step: float | None) -> None:
    if low > high:
        raise ValueError(f"low ({low}) must be <= high ({high})")
    if log and low <= 0:
        raise ValueError(f"log scale needs low > 0, got low={low}")
    if log and step is not None:
        raise ValueError("log and step cannot be combined")
    if step is not None and step <= 0:
        raise ValueError(f"step must be > 0, got {step}")


Param = Annotated[FloatParam | IntParam | CategoricalParam, Field(discriminator="type")]
SearchSpace = dict[str, Param]
_SPACE = TypeAdapter(SearchSpace)
_KINDS: dict[str, type[_Param]] = {
    "float": FloatParam,
    "int": IntParam,
    "categorical": CategoricalParam,
}


def parse_distributions(raw: Mapping[str, Any], where: str = "distributions") -> SearchSpace:
    """Validate a declarative space; ``SpecError`` naming the parameter and what was expected."""
    if not isinstance(raw, Mapping) or not raw:
        raise SpecError(
            f"{where}: expected a non-empty table of parameter -> "
            '{type = "float"|"int"|"categorical", ...}'
        )
    try:
        return _SPACE.validate_python(dict(raw))
    except ValidationError as exc:
        first = exc.errors()[0]
        parts = [str(part) for part in first["loc"]]
        name, tag, rest = parts[0], parts[1] if len(parts) > 1 else "", parts[2:]
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] in ("union_tag_invalid", "union_tag_not_found"):
            message = "'type' must be one of: float, int, categorical"
        elif first["type"] == "extra_forbidden" and rest:
            valid = ", ".join(_KINDS[tag].model_fields)
            message = f"unknown key {rest[0]!r}; valid keys for {tag}: {valid}"
        elif rest and rest[0] == "choices":
            message = "choices must be a non-empty list of None, booleans, numbers or strings"
        elif rest:
            message = f"{rest[0]}: {message}"
        raise SpecError(f"{where}: parameter {name!r}: {message}") from None


def to_optuna_distributions(raw: Mapping[str, Any]) -> dict[str, BaseDistribution]:
    """Optuna distributions (``FloatDistribution`` …) for a declarative space."""
    out: dict[str, BaseDistribution] = {}
    for name, param in parse_distributions(raw).items():
        if isinstance(param, FloatParam):
            out[name] = FloatDistribution(param.low, param.high, log=param.log, step=param.step)
        elif isinstance(param, IntParam):
            out[name] = IntDistribution(param.low, param.high, log=param.log, step=param.step)
        else:
            out[name] = CategoricalDistribution(param.choices)
    return out


def to_scipy_distributions(raw: Mapping[str, Any]) -> dict[str, Any]:
    """``RandomizedSearchCV`` distributions: scipy.stats objects for ranges, lists otherwise."""
    out: dict[str, Any] = {}
    for name, param in parse_distributions(raw).items():
        if isinstance(param, CategoricalParam):
            out[name] = list(param.choices)
        elif isinstance(param, FloatParam):
            if param.step is not None:
                count = int(np.floor((param.high - param.low) / param.step + 1e-9)) + 1
                out[name] = [float(param.low + i * param.step) for i in range(count)]
            elif param.log:
                out[name] = stats.loguniform(param.low, param.high)
            else:
                out[name] = stats.uniform(param.low, param.high - param.low)
        elif param.log:
            values = np.unique(np.round(np.geomspace(param.low, param.high, 32)).astype(int))
            out[name] = [int(v) for v in values]
        else:
            out[name] = list(range(param.low, param.high + 1, param.step))
    return out
