"""The FastAPI façade: starts workflows, answers status, serves media and the web app.

`create_app()` wires one settings object to a Temporal client, the PostgreSQL job catalog, storage
and the authenticator in the lifespan; routes reach them through `Annotated` dependencies.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import secrets
import signal
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.routing import Match
from temporalio.service import RPCError

from api.auth import Authenticator
from api.deps import AppState
from api.headers import SecurityHeaders
from api.limits import BodyLimit, Limits, StreamSlots
from api.metrics import MetricsMiddleware
from api.routes import jobs, shares, system, videos, web
from api.routes.regenerate import router as regenerate_router
from api.service import problems_detail
from api.status_cache import StatusCache
from t2m.catalog import api_keys, db
from t2m.catalog.storage import get_storage
from t2m.config import InvalidSettings, Settings, get_settings
from t2m.requests import allowed_models, configuration_problems, plain_message
from t2m.vocabulary.job import JobStatus
from workflows.client import connect, history_growth, job_status_since

WEB_DIR = Path(__file__).parent / "web"
DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"
"""Swagger UI and ReDoc, as the `fastapi-offline` package ships them: the docs need no CDN."""


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


RETRY_AFTER_S = 5
"""What a 503 tells clients to wait: the catalog's writes retry about this often."""


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    """A backing service (database, Temporal) failed: say so with a 503, never a bare 500."""
    service = "workflow service" if isinstance(exc, RPCError) else "database"
    logging.getLogger("t2m.api").warning(
        "%s %s: %s unavailable: %s", request.method, request.url.path, service, exc
    )
    return JSONResponse(
        {"detail": f"the {service} is unavailable; try again shortly"},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def _printable(value: Any) -> Any:
    """`value` with lone surrogates replaced and NaN or infinities as text, so that it can be
    encoded as UTF-8 JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in value)
    if isinstance(value, list | tuple):
        return [_printable(v) for v in value]
    if isinstance(value, dict):
        return {_printable(k): _printable(v) for k, v in value.items()}
    return value


GENERATE_PATH = "/api/v1/videos/generate"


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422, made safe to send: the errors echo the input, which may hold lone
    surrogates that UTF-8 cannot encode (the default handler then fails with a 500). Messages
    lose pydantic's "Value error, " prefix; a new job's body also gets the deployment's rules
    checked (model, voice, budget ceiling), so every problem is reported at once."""
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in jsonable_encoder(exc.errors()):
        if error["type"] == "string_unicode":
            error["msg"] = "must not contain a lone surrogate"
        error["msg"] = plain_message(error["msg"])
        problems.append(_printable(error))
    body = exc.body
    if request.url.path == GENERATE_PATH and isinstance(body, dict):
        config = body.get("configuration")
        flagged = {
            tuple(p["loc"][2:3]) for p in problems if p["loc"][:2] == ["body", "configuration"]
        }
        if isinstance(config, dict):
            more = configuration_problems(request.app.state.t2m.settings, config)
            problems += problems_detail([p for p in more if (p[0].split(".")[0],) not in flagged])
    return JSONResponse({"detail": problems}, status_code=422)


async def _method_not_allowed(request: Request, exc: Exception) -> JSONResponse:
    """405 with an `Allow` header listing every method the path has, not only the first route's
    (Starlette stops at the first route whose path matches)."""
    allowed = {
        method
        for route in request.app.routes
        if isinstance(route, APIRoute) and route.matches(request.scope)[0] != Match.NONE
        for method in route.methods or ()
    }
    return JSONResponse(
        {"detail": "Method Not Allowed"}, 405, {"Allow": ", ".join(sorted(allowed))}
    )


def _openapi(app: FastAPI, settings: Settings) -> Callable[[], dict[str, Any]]:
    """The schema, with this deployment's model allow-list as the enum of `model`."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, summary=app.summary, routes=app.routes
            )
            model = schema["components"]["schemas"]["VideoOptions"]["properties"]["model"]
            model["anyOf"] = [
                {"enum": allowed_models(settings), "type": "string"},
                {"type": "null"},
            ]
            model["description"] = "one of the models this deployment allows (default: the first)"
            app.openapi_schema = schema
        return app.openapi_schema

    return openapi


def _offline_docs(app: FastAPI) -> None:
    """`/docs` (Swagger UI) and `/redoc` from local assets, so that they work offline."""
    assets = "/docs/static"
    app.mount(assets, StaticFiles(directory=DOCS_ASSETS), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},  # no badge from validator.swagger.io
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            redoc_js_url=f"{assets}/redoc.standalone.js",
            redoc_favicon_url=f"{assets}/favicon.png",
            with_google_fonts=False,
        )


@contextmanager
def _told_to_stop(stopping: asyncio.Event) -> Iterator[None]:
    """Sets `stopping` as soon as the server gets SIGTERM or SIGINT, before passing it on.

    On a signal uvicorn stops accepting connections and waits for the open ones to finish; only
    then does the lifespan end. An event stream never finishes on its own, so it must hear of the
    signal itself: the server's handler (uvicorn installs one with `signal.signal`) is wrapped.
    Without one (no server, or not in the main thread) there is nothing to wrap.
    """
    wrapped = {}
    if threading.current_thread() is threading.main_thread():
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            handler = signal.getsignal(sig)
            if callable(handler):

                def on_signal(
                    signum: int, frame: Any, handler: Callable[..., Any] = handler
                ) -> None:
                    with contextlib.suppress(RuntimeError):  # that loop is already closed
                        loop.call_soon_threadsafe(stopping.set)
                    handler(signum, frame)

                wrapped[sig] = handler
                signal.signal(sig, on_signal)
    try:
        yield
    finally:
        stopping.set()
        for sig, handler in wrapped.items():
            signal.signal(sig, handler)


def create_app(settings: Settings | None = None, limits: Limits | None = None) -> FastAPI:
    try:
        settings = settings or get_settings()
    except InvalidSettings as e:  # one line under uvicorn, as `t2m` and the worker say it
        raise SystemExit(f"t2m api: refusing to start: invalid settings: {e}") from None
    limits = limits or Limits()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not settings.database_url:
            raise RuntimeError("T2M_DATABASE_URL is required by the API (`t2m up` sets it)")
        pool = await db.connect(settings.database_url, settings.migrate_catalog)
        try:
            client = await connect(settings)

            async def query(
                job_id: str, known: JobStatus, seen: str, grown_to: str
            ) -> tuple[JobStatus, str]:
                return await job_status_since(client, job_id, known, seen, grown_to)

            def watch(job_id: str, seen: str) -> AsyncGenerator[tuple[str, JobStatus | None]]:
                return history_growth(client, job_id, seen)

            jobs = db.JobStore(pool)
            app.state.t2m = AppState(
                settings=settings,
                client=client,
                jobs=jobs,
                storage=get_storage(settings),
                auth=Authenticator(settings, api_keys.KeyStore(pool), secret_key(settings)),
                limits=limits,
                streams=StreamSlots(limits.events_per_user),
                status=StatusCache(jobs.get, query, watch),
            )
            # Everything loaded so far lives as long as the process: keep it out of the cyclic
            # collector, whose full passes over it took ~60 ms, the tail of status latency.
            gc.collect()
            gc.freeze()
            try:
                with _told_to_stop(app.state.t2m.stopping):
                    yield
            finally:
                await app.state.t2m.status.aclose()
        finally:
            await pool.close()

    app = FastAPI(
        title="t2m",
        summary="Topic to explanatory Manim video",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served by _offline_docs
        redoc_url=None,
    )
    app.add_middleware(BodyLimit, limit=limits.max_body_bytes)
    app.add_middleware(SecurityHeaders)  # outside BodyLimit: its 413s get the headers too
    app.add_middleware(MetricsMiddleware)  # outermost: it also counts the 413s
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(405, _method_not_allowed)
    app.add_exception_handler(asyncpg.PostgresError, _unavailable)
    app.add_exception_handler(asyncpg.InterfaceError, _unavailable)
    app.add_exception_handler(RPCError, _unavailable)
    app.add_exception_handler(db.CatalogUnavailable, _unavailable)
    app.include_router(videos.router)
    app.include_router(jobs.router)
    app.include_router(shares.router)
    app.include_router(shares.public)
    app.include_router(regenerate_router)
    app.include_router(system.router)
    app.include_router(web.router)
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")
    _offline_docs(app)
    app.openapi = _openapi(app, settings)  # type: ignore[method-assign]
    return app
