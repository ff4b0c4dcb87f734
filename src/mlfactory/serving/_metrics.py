"""A tiny Prometheus registry: counters and histograms with labels, text exposition format.

``prometheus_client`` is not a dependency; the service needs only a handful of series, and this
keeps them in one place, thread-safe, per process.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import TypeVar

__all__ = ["LATENCY_BUCKETS", "Counter", "Histogram", "MetricsRegistry", "ServiceMetrics"]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
VALUE_BUCKETS = (-10.0, -1.0, -0.1, 0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 10.0, 100.0, 1000.0, 1e6)


_M = TypeVar("_M", bound="Counter | Histogram")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape(str(v))}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class Counter:
    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        self.name, self.help, self.label_names = name, help_text, tuple(labels)
        self._values: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()

    def inc(self, amount: float = 1.0, *labels: str) -> None:
        key = tuple(str(v) for v in labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, *labels: str) -> float:
        return self._values.get(tuple(str(v) for v in labels), 0.0)

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        with self._lock:
            items = sorted(self._values.items())
        if not items and not self.label_names:
            items = [((), 0.0)]
        lines += [f"{self.name}{_labels(self.label_names, k)} {_number(v)}" for k, v in items]
        return lines


class Gauge(Counter):
    def clear(self) -> None:
        with self._lock:
            self._values.clear()

    def set(self, value: float, *labels: str) -> None:
        with self._lock:
            self._values[tuple(str(v) for v in labels)] = float(value)

    def render(self) -> list[str]:
        lines = super().render()
        lines[1] = f"# TYPE {self.name} gauge"
        return lines


class Histogram:
    def __init__(
        self, name: str, help_text: str, buckets: Sequence[float], labels: Sequence[str] = ()
    ) -> None:
        self.name, self.help, self.label_names = name, help_text, tuple(labels)
        self.buckets = tuple(sorted(buckets))
        self._series: dict[tuple[str, ...], list[float]] = {}  # bucket counts..., sum, count
        self._lock = threading.Lock()

    def observe_many(self, values: Sequence[float], *labels: str) -> None:
        key = tuple(str(v) for v in labels)
        with self._lock:
            series = self._series.setdefault(key, [0.0] * (len(self.buckets) + 2))
            for value in values:
                for i, bound in enumerate(self.buckets):
                    if value <= bound:
                        series[i] += 1
                series[-2] += value
                series[-1] += 1

    def observe(self, value: float, *labels: str) -> None:
        self.observe_many((value,), *labels)

    def count(self, *labels: str) -> float:
        series = self._series.get(tuple(str(v) for v in labels))
        return series[-1] if series else 0.0

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        with self._lock:
            items = sorted((k, list(v)) for k, v in self._series.items())
        for key, series in items:
            for bound, count in zip(self.buckets, series, strict=False):
                le = _labels(self.label_names, key, f'le="{_number(bound)}"')
                lines.append(f"{self.name}_bucket{le} {_number(count)}")
            inf = _labels(self.label_names, key, 'le="+Inf"')
            lines.append(f"{self.name}_bucket{inf} {_number(series[-1])}")
            lines.append(f"{self.name}_sum{_labels(self.label_names, key)} {series[-2]!r}")
            lines.append(f"{self.name}_count{_labels(self.label_names, key)} {_number(series[-1])}")
        return lines


class MetricsRegistry:
    """Holds metrics in registration order and renders them all."""

    def __init__(self) -> None:
        self._metrics: list[Counter | Histogram] = []

    def add(self, metric: _M) -> _M:
        self._metrics.append(metric)
        return metric

    def render(self) -> str:
        lines: list[str] = []
        for metric in self._metrics:
            lines += metric.render()
        return "\n".join(lines) + "\n"


class ServiceMetrics:
    """The series the prediction service exposes on ``/metrics``."""

    def __init__(self) -> None:
        self.registry = MetricsRegistry()
        add = self.registry.add
        self.requests = add(
            Counter(
                "mlfactory_requests_total",
                "HTTP requests by endpoint and status.",
                ("endpoint", "status"),
            )
        )
        self.latency = add(
            Histogram(
                "mlfactory_request_duration_seconds",
                "Time to answer a request, by endpoint.",
                LATENCY_BUCKETS,
                ("endpoint",),
            )
        )
        self.model_latency = add(
            Histogram(
                "mlfactory_model_duration_seconds",
                "Time spent in the model per request.",
                LATENCY_BUCKETS,
            )
        )
        self.rows = add(Counter("mlfactory_rows_scored_total", "Records scored."))
        self.classes = add(
            Counter("mlfactory_predictions_total", "Predicted classes (classifiers).", ("class",))
        )
        self.values = add(
            Histogram("mlfactory_prediction_value", "Predicted values (regressors).", VALUE_BUCKETS)
        )
        self.logged = add(
            Counter("mlfactory_prediction_log_written_total", "Records written to the log.")
        )
        self.dropped = add(
            Counter(
                "mlfactory_prediction_log_dropped_total",
                "Records not logged (queue full or database unreachable).",
            )
        )
        self.model_info = add(
            Gauge(
                "mlfactory_model_info",
                "The model version being served (value 1).",
                ("name", "version", "inference"),
            )
        )
        self.reloads = add(
            Counter("mlfactory_model_reloads_total", "Reload attempts by outcome.", ("outcome",))
        )

    def render(self) -> str:
        return self.registry.render()
