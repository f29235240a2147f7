"""Prometheus metrics for the API (served at /metrics)."""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import Response

REQUESTS = Counter("t2m_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("t2m_http_request_seconds", "HTTP request latency", ["method", "route"])
JOBS_CREATED = Counter("t2m_jobs_created_total", "Video jobs created", ["priority"])


class MetricsMiddleware(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        LATENCY.labels(request.method, path).observe(time.perf_counter() - start)
        REQUESTS.labels(request.method, path, str(response.status_code)).inc()
        return response
