"""The seed's video endpoints: create, status (polled or pushed), URLs and the media itself."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Header, HTTPException, Query, Request, status
from fastapi.responses import FileResponse, StreamingResponse

from api import service
from api.deps import AppState, CurrentUser, MediaJob, OwnedJob, StateDep
from api.metrics import JOBS_CREATED
from api.schemas import (
    GenerateRequest,
    JobCreated,
    JobStatusResponse,
    Progress,
    VideoMetadata,
    VideoUrls,
)
from t2m.db import Job
from t2m.models import TERMINAL_STATUSES, JobRecord, JobStatus, new_job_id
from t2m.requests import InvalidRequest, build_request

router = APIRouter(prefix="/api/v1/videos", tags=["videos"])
EVENTS_POLL_S = 1.0
EVENTS_KEEPALIVE_S = 15.0


@router.post("/generate", status_code=status.HTTP_201_CREATED, response_model=JobCreated)
async def generate(
    body: GenerateRequest,
    user: CurrentUser,
    state: StateDep,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=200)] = None,
) -> JobCreated:
    try:
        req = build_request(state.settings, body.configuration, user.user)
    except InvalidRequest as e:
        loc = ["body", "configuration", e.field]
        raise HTTPException(422, [{"loc": loc, "msg": e.message, "type": "value_error"}]) from None
    job_id = new_job_id(user.user, idempotency_key)
    job = await state.jobs.create(job_id, req, body.priority, idempotency_key)
    try:
        await service.start_job(state, job, req)
    except Exception as e:
        failed = JobStatus(job_id=job.id, status="failed", error=f"could not start: {e}")
        record = JobRecord(
            job_id=job.id, owner=user.user, request=req, status="failed", progress=failed
        )
        await state.jobs.record(record.model_copy(update={"error": failed.error}))
        raise HTTPException(503, "the workflow service is unavailable; try again") from None
    JOBS_CREATED.labels(priority=body.priority).inc()
    live = await service.live_status(state, job)
    return JobCreated(
        job_id=job.id,
        status=live.status,
        priority=body.priority,
        progress=Progress(
            percentage=live.percentage,
            current_stage=live.current_stage,
            stages_completed=live.stages_completed,
            estimated_completion=service.estimated_completion(job, live),
        ),
        created_at=job.created_at,
    )


@router.get("/jobs/{job_id}/status", response_model=JobStatusResponse)
async def job_status(job: OwnedJob, state: StateDep) -> JobStatusResponse:
    return await service.status_response(state, job)


@router.get("/jobs/{job_id}/events", response_class=StreamingResponse)
async def job_events(job: OwnedJob, state: StateDep, request: Request) -> StreamingResponse:
    """Server-Sent Events: a `status` event whenever the job's status changes, until it ends."""

    async def stream() -> AsyncIterator[str]:
        last, quiet = None, 0.0
        current = job
        while not await request.is_disconnected():
            body = (await service.status_response(state, current)).model_dump_json()
            if body != last:
                yield f"event: status\ndata: {body}\n\n"
                last, quiet = body, 0.0
                if json.loads(body)["status"] in TERMINAL_STATUSES:
                    return
            elif quiet >= EVENTS_KEEPALIVE_S:
                yield ": keep-alive\n\n"
                quiet = 0.0
            await asyncio.sleep(EVENTS_POLL_S)
            quiet += EVENTS_POLL_S
            current = await state.jobs.get(job.id) or current

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


@router.get(
    "/jobs/{job_id}/video-url",
    response_model=VideoUrls,
    responses={409: {"description": "not completed: the body has its status and progress"}},
)
async def video_url(job: OwnedJob, state: StateDep) -> VideoUrls:
    if job.status != "completed" or not job.artifacts:
        live = await service.live_status(state, job)
        detail = {
            "message": "the video is not ready",
            "status": live.status,
            "progress": service.progress_of(live).model_dump(),
        }
        raise HTTPException(409, detail)
    artifacts = job.artifacts
    token = state.auth.media_token(job.id)
    base = f"/api/v1/videos/jobs/{job.id}"
    return VideoUrls(
        job_id=job.id,
        status=job.status,
        video_url=f"{base}/stream?token={token}",
        download_url=f"{base}/download?token={token}",
        thumbnail_url=f"{base}/thumbnail?token={token}" if artifacts.thumbnail_key else None,
        subtitles_url=f"{base}/subtitles?format=vtt&token={token}" if artifacts.vtt_key else None,
        metadata=VideoMetadata(
            duration=artifacts.duration_s,
            quality=job.request.quality,
            file_size=artifacts.size_bytes,
            created_at=job.completed_at or job.created_at,
        ),
    )


ArtifactField = Literal["video_key", "thumbnail_key", "srt_key", "vtt_key"]


def _file(state: AppState, job: Job, key_field: ArtifactField, what: str) -> Path:
    """The local path of one of a completed job's artifacts (409 before, 404 if it has none)."""
    if job.status != "completed" or not job.artifacts:
        raise HTTPException(409, {"message": f"the {what} is not ready", "status": job.status})
    key: str | None = getattr(job.artifacts, key_field)
    if not key or not state.storage.exists(key):
        raise HTTPException(404, f"this job has no {what}")
    return state.storage.path(key)


@router.get("/jobs/{job_id}/stream", response_class=FileResponse)
async def stream(job: MediaJob, state: StateDep) -> FileResponse:
    """The MP4, with HTTP Range support (206 / 416) so players can seek."""
    return FileResponse(_file(state, job, "video_key", "video"), media_type="video/mp4")


@router.get("/jobs/{job_id}/download", response_class=FileResponse)
async def download(job: MediaJob, state: StateDep) -> FileResponse:
    path = _file(state, job, "video_key", "video")
    return FileResponse(
        path,
        media_type="video/mp4",
        filename=f"{job.id}.mp4",
        content_disposition_type="attachment",
    )


@router.get("/jobs/{job_id}/thumbnail", response_class=FileResponse)
async def thumbnail(job: MediaJob, state: StateDep) -> FileResponse:
    return FileResponse(_file(state, job, "thumbnail_key", "thumbnail"), media_type="image/png")


@router.get("/jobs/{job_id}/subtitles", response_class=FileResponse)
async def subtitles(
    job: MediaJob, state: StateDep, format: Literal["vtt", "srt"] = Query("vtt")
) -> FileResponse:
    media_type = "text/vtt" if format == "vtt" else "application/x-subrip"
    path = _file(state, job, "vtt_key" if format == "vtt" else "srt_key", "subtitles")
    return FileResponse(path, media_type=media_type, filename=f"{job.id}.{format}")
