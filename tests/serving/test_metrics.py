"""The in-house Prometheus registry renders the text format with hand-checked values."""

from mlfactory.serving._metrics import Counter, Gauge, Histogram, MetricsRegistry


def test_counter_gauge_histogram_text_format():
    registry = MetricsRegistry()
    requests = registry.add(Counter("req_total", "Requests.", ("endpoint", "status")))
    requests.inc(1, "/predict", "200")
    requests.inc(2, "/predict", "200")
    requests.inc(1, '/we"ird', "422")
    info = registry.add(Gauge("info", "Info.", ("version",)))
    info.set(1, "1")
    info.clear()
    info.set(1, "2")
    latency = registry.add(Histogram("lat_seconds", "Latency.", (0.1, 1.0)))
    latency.observe_many([0.05, 0.5, 0.5, 3.0])
    text = registry.render()
    assert text.splitlines() == [
        "# HELP req_total Requests.",
        "# TYPE req_total counter",
        'req_total{endpoint="/predict",status="200"} 3',
        'req_total{endpoint="/we\\"ird",status="422"} 1',
        "# HELP info Info.",
        "# TYPE info gauge",
        'info{version="2"} 1',
        "# HELP lat_seconds Latency.",
        "# TYPE lat_seconds histogram",
        'lat_seconds_bucket{le="0.1"} 1',
        'lat_seconds_bucket{le="1"} 3',
        'lat_seconds_bucket{le="+Inf"} 4',
        "lat_seconds_sum 4.05",
        "lat_seconds_count 4",
    ]
    assert requests.value("/predict", "200") == 3 and latency.count() == 4


def test_unlabelled_counter_shows_zero_before_first_increment():
    registry = MetricsRegistry()
    registry.add(Counter("dropped_total", "Dropped."))
    assert "dropped_total 0" in registry.render().splitlines()
