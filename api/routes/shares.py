"""Share links: the owner makes (and revokes) a link that plays one video without credentials.

`/s/{token}` is the page; `/api/v1/shared/{token}/…` its media, which accept that token for that
job only. Every answer is `no-store`, so a revoked link stops working at once, even from a cache;
with S3 storage the media answer with a presigned S3 URL, and one already handed out keeps working
until it expires (`T2M_PRESIGN_EXPIRY_S`).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Response, status
from fastapi.responses import FileResponse, HTMLResponse

from api.deps import AppState, OwnedJob, StateDep, protected_router
from api.routes.videos import ArtifactField, artifact_response, media
from api.routes.web import PAGES
from api.schemas import SharedVideo, ShareLink, errors
from api.service import language_of
from t2m.catalog.db import Job
from t2m.catalog.shares import Share, ShareStore

router = protected_router("/api/v1/jobs", "shares")
public = APIRouter(tags=["shares"])
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
TOKEN_PATTERN = r"^[A-Za-z0-9_-]{20,100}$"
Token = Annotated[str, Path(pattern=TOKEN_PATTERN, description="the share link's token")]


def _shares(state: AppState) -> ShareStore:
    return ShareStore(state.jobs.pool)


def _link(share: Share) -> ShareLink:
    return ShareLink(
        job_id=share.job_id, token=share.token, url=f"/s/{share.token}", created_at=share.created_at
    )


@router.post(
    "/{job_id}/share",
    status_code=status.HTTP_201_CREATED,
    response_model=ShareLink,
    responses={
        200: {"model": ShareLink, "description": "the job's existing link"},
        **errors(403, 404, 409, 415),
    },
)
async def create_share(job: OwnedJob, state: StateDep, response: Response) -> ShareLink:
    """The job's share link: made now (201), or the one it has (200). It lasts until revoked.
    A job with a video may share it whatever its latest run is doing (a regenerate in flight, or
    one that failed, leaves its current version playing)."""
    if job.artifacts is None:
        raise HTTPException(409, f"only a completed video can be shared; {job.id} is {job.status}")
    share, made = await _shares(state).create(job.id, job.owner)
    response.status_code = status.HTTP_201_CREATED if made else status.HTTP_200_OK
    return _link(share)


@router.get("/{job_id}/share", response_model=ShareLink, responses=errors(404))
async def get_share(job: OwnedJob, state: StateDep) -> ShareLink:
    share = await _shares(state).live(job.id)
    if share is None:
        raise HTTPException(404, f"job {job.id} has no share link")
    return _link(share)


@router.delete(
    "/{job_id}/share",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=errors(403, 404, 415),
)
async def revoke_share(job: OwnedJob, state: StateDep) -> Response:
    """Revoke the job's link: its page and media answer 404 from now on."""
    if not await _shares(state).revoke(job.id):
        raise HTTPException(404, f"job {job.id} has no share link")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _shared_job(state: AppState, token: str) -> Job | None:
    job_id = await _shares(state).job_of(token)
    return await state.jobs.get(job_id) if job_id else None


async def shared_job(token: Token, state: StateDep) -> Job:
    job = await _shared_job(state, token)
    if job is None:
        raise HTTPException(404, "this share link does not exist or was revoked", NO_STORE)
    return job


GONE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Link not found · t2m</title>
<link rel="stylesheet" href="/static/style.css"></head><body><main>
<h1>This link does not work</h1><p id="gone" class="muted">It does not exist, or its owner revoked it.</p>
</main></body></html>"""


@public.get("/s/{token}", include_in_schema=False)
async def share_page(token: str, state: StateDep) -> Response:
    if not re.fullmatch(TOKEN_PATTERN, token) or await _shared_job(state, token) is None:
        return HTMLResponse(GONE, status_code=404, headers=NO_STORE)
    return FileResponse(PAGES / "share.html", headers=NO_STORE)


@public.get("/api/v1/shared/{token}", response_model=SharedVideo, responses=errors(404, 409))
async def shared_video(token: Token, state: StateDep, response: Response) -> SharedVideo:
    """What a share link plays, with media URLs that work with that token only: the job's
    current version, also while a next one is made or after making it failed."""
    job = await shared_job(token, state)
    if not job.artifacts:
        raise HTTPException(409, {"message": "the video is not ready", "status": job.status})
    response.headers.update(NO_STORE)
    base, a = f"/api/v1/shared/{token}", job.artifacts
    return SharedVideo(
        topic=job.request.topic,
        video_url=f"{base}/stream",
        thumbnail_url=f"{base}/thumbnail" if a.thumbnail_key else None,
        subtitles_url=f"{base}/subtitles" if a.vtt_key else None,
        duration=a.duration_s,
        download_url=f"{base}/download",
        language=language_of(job),
    )


SHARED_MEDIA: dict[str, tuple[ArtifactField, str, str]] = {
    "stream": ("video_key", "video", "video/mp4"),
    "download": ("video_key", "video", "video/mp4"),
    "thumbnail": ("thumbnail_key", "thumbnail", "image/png"),
    "subtitles": ("vtt_key", "subtitles", "text/vtt"),
}


@public.get(
    "/api/v1/shared/{token}/{kind}",
    response_class=FileResponse,
    responses=media("video/mp4", "image/png", "text/vtt"),
)
async def shared_media(
    token: Token,
    kind: Annotated[Literal["stream", "download", "thumbnail", "subtitles"], Path()],
    state: StateDep,
) -> Response:
    """The shared video (with `Range`; `download`: as an attachment), its thumbnail or its
    WebVTT subtitles."""
    job = await shared_job(token, state)
    field, what, media_type = SHARED_MEDIA[kind]
    attachment = kind == "download"
    name = f"{job.id}.mp4" if attachment else None
    answer = await artifact_response(state, job, field, what, media_type, name, attachment)
    answer.headers.update(NO_STORE)
    return answer
