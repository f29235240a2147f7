"""Health (Temporal, a worker on each queue, database, storage, no job held by a failing workflow
task) and Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import AppState, StateDep
from api.metrics import JOBS_HELD
from workflows.client import held_jobs, queue_workers

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
    checks["workflow_tasks"] = await _held_jobs(state)
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ok else "degraded", **checks}, 200 if ok else 503)


async def _held_jobs(state: AppState) -> str:
    """ "ok", or how many running jobs a failing workflow task holds (and which)."""
    try:
        count, ids = await asyncio.wait_for(held_jobs(state.client, state.settings), timeout=3)
    except Exception as e:
        return f"error: {type(e).__name__}: {e}"[:200]
    JOBS_HELD.set(count)
    if not count:
        return "ok"
    return (
        f"error: {count} running job(s) held by a failing workflow task (a bug in workflow code"
        f" or a deploy that cannot replay them): {', '.join(ids)}; see README: Stranded runs"
    )


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(state: StateDep) -> Response:
    """Prometheus text exposition format (`t2m_jobs_held` counted at each scrape)."""
    await _held_jobs(state)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
