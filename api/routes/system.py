"""Health (Temporal, a worker on each queue, database, storage) and Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import StateDep
from workflows.client import queue_workers

router = APIRouter(tags=["system"])


async def _check(coro) -> str:
    try:
        await asyncio.wait_for(coro, timeout=3)
        return "ok"
    except Exception as e:
        return f"error: {type(e).__name__}: {e}"[:200]


HEALTH = {"type": "object", "additionalProperties": {"type": "string"}}


@router.get(
    "/health",
    responses={
        200: {
            "description": "every component answers",
            "content": {"application/json": {"schema": HEALTH}},
        },
        503: {
            "description": "a component is down: its value says why (`status` is `degraded`)",
            "content": {"application/json": {"schema": HEALTH}},
        },
    },
)
async def health(state: StateDep) -> JSONResponse:
    """Temporal, the database, storage, and a worker polling each task queue."""
    checks = {
        "temporal": await _check(state.client.service_client.check_health()),
        "database": await _check(state.jobs.pool.fetchval("SELECT 1")),
        "storage": await _check(asyncio.to_thread(state.storage.check)),
    }
    try:
        workers = await asyncio.wait_for(queue_workers(state.client, state.settings), timeout=3)
    except Exception as e:
        workers = {"workers": f"error: {type(e).__name__}: {e}"[:200]}
    checks |= workers
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ok else "degraded", **checks}, 200 if ok else 503)


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics() -> Response:
    """Prometheus text exposition format."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
