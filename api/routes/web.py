"""The web app: static pages that talk to the REST API from the browser."""

from __future__ import annotations

from pathlib import Path as FilePath

from fastapi import APIRouter, Path
from fastapi.responses import FileResponse, RedirectResponse

from api.deps import StateDep
from t2m.models import JOB_ID_PATTERN

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
async def status_page(job_id: str = Path(pattern=JOB_ID_PATTERN)) -> FileResponse:
    return FileResponse(PAGES / "status.html")


@router.get("/api/v1/config")
async def public_config(state: StateDep) -> dict:
    """What the create form offers: the allowed models and voices, and the defaults."""
    s = state.settings
    return {
        "models": s.allowed_models,
        "default_voice": s.default_voice,
        "voices": s.allowed_voices,
        "qualities": ["low", "medium", "high", "ultra"],
        "priorities": ["low", "normal", "high", "urgent"],
    }
