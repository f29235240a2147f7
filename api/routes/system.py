"""Probes and operations: `/livez` (the event loop answers), `/readyz` (this process's own
dependencies answer: what a load balancer needs), `/health` (the whole service, a worker on every
queue and no job held by a failing workflow task: for people and alerts) and Prometheus
`/metrics`.

`/health` and `/metrics` are internal: a request that came through a proxy (it carries
`X-Forwarded-For`, `Forwarded` or `X-Real-IP`, as every Ingress adds) gets a 404, so they are not
published by the Ingress while probes and Prometheus reach the pods directly."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import AppState, StateDep
from api.metrics import JOBS_HELD
from workflows.client import held_jobs
from workflows.worker_liveness import queue_workers

PROXY_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")


def internal_only(request: Request) -> None:
    """404 for a request that came through a proxy (see the module doc)."""
    if any(h in request.headers for h in PROXY_HEADERS):
        raise HTTPException(404, "Not Found")


router = APIRouter(tags=["system"])


async def _check(coro) -> str:
    try:
        await asyncio.wait_for(coro, timeout=3)
        return "ok"
    except Exception as e:
        return f"error: {type(e).__name__}: {e}"[:200]


HEALTH = {"type": "object", "additionalProperties": {"type": "string"}}


@router.get("/livez", response_class=JSONResponse)
async def livez() -> dict[str, str]:
    """Liveness: the event loop answers (nothing else is asked: a dependency outage must not get
    the pod restarted)."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={
        200: {
            "description": "this process can serve",
            "content": {"application/json": {"schema": HEALTH}},
        },
        503: {
            "description": "one of this process's own dependencies is down",
            "content": {"application/json": {"schema": HEALTH}},
        },
    },
)
async def readyz(state: StateDep) -> JSONResponse:
    """Readiness: Temporal, the database and storage answer this process. Workers are not its
    dependencies: with none polling, requests are still accepted and queued, so a worker outage
    keeps API pods in the load balancer (`/health` reports it)."""
    checks = await _own_checks(state)
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ok else "unavailable", **checks}, 200 if ok else 503)


async def _own_checks(state: AppState) -> dict[str, str]:
    return {
        "temporal": await _check(state.client.service_client.check_health()),
        "database": await _check(state.jobs.pool.fetchval("SELECT 1")),
        "storage": await _check(asyncio.to_thread(state.storage.check)),
    }


@router.get(
    "/health",
    dependencies=[Depends(internal_only)],
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
    checks = await _own_checks(state)
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
    dependencies=[Depends(internal_only)],
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(state: StateDep) -> Response:
    """Prometheus text exposition format (`t2m_jobs_held` counted at each scrape)."""
    await _held_jobs(state)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
