"""The web app: static pages that talk to the REST API from the browser."""

from __future__ import annotations

import re
from pathlib import Path as FilePath

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse

from api.deps import StateDep
from t2m.media import festival
from t2m.requests import allowed_models
from t2m.vocabulary.job import JOB_ID_PATTERN, STAGES

router = APIRouter(include_in_schema=False)
PAGES = FilePath(__file__).parent.parent / "web"


@router.get("/")
async def home() -> RedirectResponse:
    return RedirectResponse("/videos")


@router.get("/videos")
async def videos_page() -> FileResponse:
    return FileResponse(PAGES / "videos.html")


@router.get("/videos/create")
async def create_page() -> FileResponse:
    return FileResponse(PAGES / "create.html")


@router.get("/signin")
async def signin_page() -> FileResponse:
    """An API key for this tab, when the deployment has no dev identity."""
    return FileResponse(PAGES / "signin.html")


@router.get("/videos/status/{job_id}")
async def status_page(job_id: str) -> FileResponse:
    """The job's page; a malformed id gets a page saying so (404), not a 422's JSON. (An
    unknown job is only known as such to the page's own requests, which carry the key.)"""
    if not re.fullmatch(JOB_ID_PATTERN, job_id):
        return FileResponse(PAGES / "missing.html", status_code=404)
    return FileResponse(PAGES / "status.html")


@router.get("/favicon.ico")
async def favicon() -> FileResponse:
    return FileResponse(PAGES / "static" / "favicon.svg", media_type="image/svg+xml")


def ignores_feedback(model: str) -> bool:
    """Whether a model's regenerated scenes ignore the requester's feedback: the offline model
    writes code from templates and reads no feedback."""
    return model.startswith("offline/")


@router.get("/api/v1/config")
async def public_config(state: StateDep) -> dict:
    """What the create form offers (the allowed models and voices, the defaults) and what the job
    page shows: the pipeline's stages in order, the models that ignore regenerate feedback."""
    s = state.settings
    return {
        "models": allowed_models(s),
        "default_model": s.default_model,
        "stages": list(STAGES),
        "ignores_feedback": [m for m in allowed_models(s) if ignores_feedback(m)],
        "default_voice": s.default_voice,
        "voices": [*festival.installed(), *s.allowed_voices],
        "qualities": ["low", "medium", "high", "ultra"],
        "priorities": ["low", "normal", "high", "urgent"],
    }
