"""The FastAPI façade: starts workflows, answers status, serves media and the web app.

`create_app()` wires one settings object to a Temporal client, the PostgreSQL job catalog, storage
and the authenticator in the lifespan; routes reach them through `Annotated` dependencies.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from temporalio.service import RPCError

from api.auth import Authenticator
from api.deps import AppState
from api.metrics import MetricsMiddleware
from api.routes import jobs, system, videos, web
from t2m import db
from t2m.config import Settings, get_settings
from t2m.storage import LocalStorage
from workflows.client import connect

WEB_DIR = Path(__file__).parent / "web"


def secret_key(settings: Settings) -> str:
    """The configured secret, or one generated once and kept (0600) in the data dir."""
    if settings.secret_key:
        return settings.secret_key
    path = settings.data_dir / "secret.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48))
    return path.read_text().strip()


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    """A backing service (database, Temporal) failed: say so with a 503, never a bare 500."""
    service = "workflow service" if isinstance(exc, RPCError) else "database"
    logging.getLogger("t2m.api").warning(
        "%s %s: %s unavailable: %s", request.method, request.url.path, service, exc
    )
    return JSONResponse(
        {"detail": f"the {service} is unavailable; try again shortly"}, status_code=503
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not settings.database_url:
            raise RuntimeError("T2M_DATABASE_URL is required by the API (`t2m up` sets it)")
        pool = await db.connect(settings.database_url)
        try:
            app.state.t2m = AppState(
                settings=settings,
                client=await connect(settings),
                jobs=db.JobStore(pool),
                storage=LocalStorage(settings.storage_dir),
                auth=Authenticator(settings, db.KeyStore(pool), secret_key(settings)),
            )
            yield
        finally:
            await pool.close()

    app = FastAPI(
        title="t2m",
        summary="Topic to explanatory Manim video",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.add_middleware(MetricsMiddleware)
    app.add_exception_handler(asyncpg.PostgresError, _unavailable)
    app.add_exception_handler(asyncpg.InterfaceError, _unavailable)
    app.add_exception_handler(RPCError, _unavailable)
    app.include_router(videos.router)
    app.include_router(jobs.router)
    app.include_router(system.router)
    app.include_router(web.router)
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")
    return app
