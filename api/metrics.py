"""Prometheus metrics for the API (served at /metrics).

Labels come from a bounded set, whatever clients send: the matched route's template (never the
raw path; `unmatched` when no route matched), the method when it is a standard one (`OTHER`
otherwise) and the status code the API chose.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter("t2m_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("t2m_http_request_seconds", "HTTP request latency", ["method", "route"])
JOBS_CREATED = Counter("t2m_jobs_created_total", "Video jobs created", ["priority"])
JOBS_HELD = Gauge(
    "t2m_jobs_held",
    "Running jobs whose workflow task keeps failing (as of the last /health or /metrics)",
)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the client sees if the app raises before answering

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            method = scope["method"] if scope["method"] in METHODS else "OTHER"
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            LATENCY.labels(method, route).observe(time.perf_counter() - start)
            REQUESTS.labels(method, route, str(status)).inc()
