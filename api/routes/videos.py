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
from api.schemas import GenerateRequest, JobCreated, JobStatusResponse, Progress, VideoUrls
from t2m.db import Job
from t2m.tts import VoiceError, check_voice
from workflows.contracts import TERMINAL_STATUSES, VideoRequest

router = APIRouter(prefix="/api/v1/videos", tags=["videos"])
EVENTS_POLL_S = 1.0
EVENTS_KEEPALIVE_S = 15.0


def _unprocessable(field: str, message: str) -> HTTPException:
    return HTTPException(
        422, [{"loc": ["body", "configuration", field], "msg": message, "type": "value_error"}]
    )


@router.post("/generate", status_code=status.HTTP_201_CREATED, response_model=JobCreated)
async def generate(
    body: GenerateRequest,
    user: CurrentUser,
    state: StateDep,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=200)] = None,
) -> JobCreated:
    cfg, settings = body.configuration, state.settings
    model = cfg.model or settings.allowed_models[0]
    if model not in settings.allowed_models:
        raise _unprocessable(
            "model", f"model {model!r} is not allowed; allowed: {settings.allowed_models}"
        )
    if cfg.visual_check and not settings.vision_model:
        raise _unprocessable("visual_check", "no vision model is configured (T2M_VISION_MODEL)")
    voice = cfg.voice or settings.default_voice
    if voice.lower() != "none":
        try:
            check_voice(voice)
        except VoiceError as e:
            raise _unprocessable("voice", str(e)) from None
    req = VideoRequest(
        topic=cfg.topic,
        context=cfg.context,
        quality=cfg.quality,
        model=model,
        voice=None if voice.lower() == "none" else voice,
        subtitles=cfg.enable_subtitles,
        thumbnail=cfg.enable_thumbnails,
        owner=user.user,
        max_fix_attempts=settings.max_fix_attempts,
        use_rag=cfg.use_rag,
        planner_model=settings.planner_model,
        coder_model=settings.coder_model,
        vision_model=settings.vision_model if cfg.visual_check else None,
    )
    job_id = service.job_id_for(user.user, idempotency_key)
    request_json = req.model_dump(mode="json") | {"style_preferences": cfg.style_preferences or {}}
    job = await state.jobs.create(job_id, user.user, request_json, body.priority, idempotency_key)
    try:
        await service.start_job(state, job, req)
    except Exception as e:
        await state.jobs.record(
            job.id, "failed", owner=user.user, request=request_json, error=f"could not start: {e}"
        )
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
        thumbnail_url=f"{base}/thumbnail?token={token}" if artifacts.get("thumbnail_key") else None,
        subtitles_url=f"{base}/subtitles?format=vtt&token={token}"
        if artifacts.get("vtt_key")
        else None,
        metadata={
            "duration": artifacts["duration_s"],
            "quality": job.request.get("quality", ""),
            "format": "mp4",
            "file_size": artifacts.get("size_bytes", 0),
            "created_at": job.completed_at or job.created_at,
        },
    )


def _file(state: AppState, job: Job, key_field: str, what: str) -> Path:
    """The local path of one of a completed job's artifacts (409 before, 404 if it has none)."""
    if job.status != "completed" or not job.artifacts:
        raise HTTPException(409, {"message": f"the {what} is not ready", "status": job.status})
    key = job.artifacts.get(key_field)
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
    path = _file(state, job, f"{format}_key", "subtitles")
    return FileResponse(path, media_type=media_type, filename=f"{job.id}.{format}")
