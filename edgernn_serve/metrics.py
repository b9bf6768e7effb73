"""Prometheus metrics (``/metrics``) and a health check (``/healthz``) over HTTP.

The daemon's components keep plain integer counters on their own thread's hot
path; a :class:`prometheus_client` collector reads them when ``/metrics`` is
scraped, so stepping never takes a metrics lock. Every series is prefixed
``edgernn_`` (the list is in docs/serve.md). Latency histograms are recorded
by one writer thread into fixed buckets, from 5 µs up.
"""

from __future__ import annotations

import bisect
import json
import socket
import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, HTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
)

#: Upper bounds in seconds: sub-millisecond resolution where a step lives.
LATENCY_BUCKETS = (5e-6, 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3,
                   10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 1.0)


class Histogram:
    """Fixed-bucket histogram with a single writer (no lock).

    Parameters
    ----------
    bounds : sequence of float
        Increasing upper bounds (seconds); a last ``+Inf`` bucket is implied.
    """

    def __init__(self, bounds=LATENCY_BUCKETS) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self.sum += seconds

    def cumulative(self) -> list:
        """[(le, cumulative count)] including ``+Inf``."""
        out, total = [], 0
        for le, c in zip((*map(repr, self.bounds), "+Inf"), list(self.counts), strict=True):
            total += c
            out.append((le, total))
        return out

    def quantile(self, q: float) -> float:
        """Upper bound of the bucket holding quantile ``q`` (nan when empty)."""
        cum = self.cumulative()
        n = cum[-1][1]
        if n == 0:
            return float("nan")
        for (le, c) in cum:
            if c >= q * n:
                return float(le)
        return float("inf")


class Metrics:
    """The daemon's metrics registry.

    Providers are callables returning an iterable of samples
    ``(name, kind, help, labels, value)`` with ``kind`` "counter" or "gauge";
    they are called at every scrape.

    Attributes
    ----------
    step_latency : Histogram
        Seconds per native step call (one batch of streams).
    frame_latency : Histogram
        Seconds from a frame's arrival to its result being handed to the sinks.
    info : dict
        Labels of ``edgernn_model_info`` (id, sha256, path, sizes).
    """

    def __init__(self) -> None:
        self.step_latency = Histogram()
        self.frame_latency = Histogram()
        self.info: dict = {}
        self.histograms: dict = {}  # more: {name (without edgernn_): (help, Histogram)}
        self.providers: list = []
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))

    def add(self, provider) -> None:
        self.providers.append(provider)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Collector:
    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def collect(self):
        m = self.m
        yield from _histogram("step_latency_seconds", "Seconds per native step call (one "
                              "batch of ready streams)", m.step_latency)
        yield from _histogram("frame_latency_seconds", "Seconds from a frame's arrival to "
                              "its result being handed to the sinks", m.frame_latency)
        for name, (help_, h) in list(m.histograms.items()):
            yield from _histogram(name, help_, h)
        if m.info:
            fam = InfoMetricFamily("edgernn_model", "The model being served")
            fam.add_metric([], {k: str(v) for k, v in m.info.items()})
            yield fam
        groups: dict = defaultdict(list)
        meta: dict = {}
        for provider in list(m.providers):
            for name, kind, help_, labels, value in provider():
                meta.setdefault(name, (kind, help_))
                groups[name].append((labels or {}, value))
        for name, rows in groups.items():
            kind, help_ = meta[name]
            keys = sorted({k for labels, _ in rows for k in labels})
            cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            fam = cls(f"edgernn_{name}", help_, labels=keys)
            for labels, value in rows:
                fam.add_metric([str(labels.get(k, "")) for k in keys], float(value))
            yield fam


def _histogram(name, help_, h: Histogram):
    cum = h.cumulative()
    yield HistogramMetricFamily(f"edgernn_{name}", help_, buckets=cum, sum_value=h.sum)


class MetricsServer:
    """HTTP server: ``GET /metrics`` (Prometheus text) and ``GET /healthz`` (JSON).

    Parameters
    ----------
    listen : (host, port)
        Port 0 picks a free one (see ``address``).
    metrics : Metrics
    health : callable
        ``health() -> (ok: bool, detail: dict)``; ``/healthz`` answers 200 when
        ok, else 503, with ``detail`` as JSON.
    """

    def __init__(self, listen, metrics: Metrics, health) -> None:
        handler = type("Handler", (_Handler,), {"metrics": metrics, "health": staticmethod(health)})
        # One thread answers every request in turn (a scrape takes a millisecond; a
        # client that stalls is cut off after ``_Handler.timeout``): no thread, and no
        # malloc arena, is created per scrape in a process that runs for months.
        server_cls = HTTPServer
        if ":" in listen[0]:
            server_cls = type("HTTPServer6", (HTTPServer,), {"address_family": socket.AF_INET6})
        self.httpd = server_cls(listen, handler)
        self.address = self.httpd.server_address[:2]
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={
            "poll_interval": 0.2}, name="metrics-http", daemon=True)

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    metrics: Metrics
    server_version = "edgernn"
    timeout = 5.0

    def do_GET(self):  # noqa: N802 (http.server's name)
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, CONTENT_TYPE_LATEST, self.metrics.render())
        elif path == "/healthz":
            ok, detail = self.health()
            body = json.dumps({"status": "ok" if ok else "unhealthy", **detail},
                              default=str).encode()
            self._send(200 if ok else 503, "application/json", body)
        else:
            self._send(404, "text/plain; charset=utf-8", b"try /metrics or /healthz\n")

    def _send(self, code: int, ctype: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:  # scrapes are not worth a log line each
        pass
