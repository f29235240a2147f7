"""The seed's video endpoints: create, status (polled or pushed), URLs and the media itself."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import Header, HTTPException, Query, Request, Response, status
from fastapi import Path as FastPath
from fastapi.responses import FileResponse, RedirectResponse

from api import service
from api.deps import (
    AppState,
    CurrentUser,
    JobId,
    MediaJob,
    OwnedJob,
    StateDep,
    protected_router,
    visible,
)
from api.metrics import JOBS_CREATED
from api.schemas import (
    Error,
    GenerateRequest,
    JobCreated,
    JobStatusResponse,
    PreviousVersion,
    Progress,
    VideoMetadata,
    VideoUrls,
    errors,
)
from t2m.catalog.db import Job
from t2m.catalog.shares import ShareStore
from t2m.vocabulary.job import TERMINAL_STATUSES
from t2m.vocabulary.plan import Artifacts

router = protected_router("/api/v1/videos", "videos")
IdempotencyKey = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=200,
        pattern=r"^[ -~]+$",
        description="printable ASCII; the same user and key return the same job, for the same"
        " body only (another body: 422; a deleted job's key: 409)",
    ),
]
JOB_ERRORS = errors(404)
SSE_EVENT = {
    "type": "object",
    "properties": {
        "event": {"type": "string", "enum": ["status"]},
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
}


@router.post(
    "/generate",
    status_code=status.HTTP_201_CREATED,
    response_model=JobCreated,
    responses=errors(400, 403, 409, 415, 429),
)
async def generate(
    body: GenerateRequest,
    user: CurrentUser,
    state: StateDep,
    idempotency_key: IdempotencyKey = None,
) -> JobCreated:
    job = await service.create_job(state, user.user, body, idempotency_key, user.admin)
    JOBS_CREATED.labels(priority=job.priority).inc()
    live = await service.live_status(state, job, wait=False)  # just made: no query to wait for
    return JobCreated(
        job_id=job.id,
        status=live.status,
        priority=job.priority,
        progress=Progress(
            percentage=live.percentage,
            current_stage=live.current_stage,
            stages_completed=live.stages_completed,
            estimated_completion=service.estimated_completion(job, live),
        ),
        created_at=job.created_at,
    )


@router.get("/jobs/{job_id}/status", response_model=JobStatusResponse, responses=JOB_ERRORS)
async def job_status(job_id: JobId, user: CurrentUser, state: StateDep) -> JobStatusResponse:
    snapshot = await state.status.get(job_id)  # no database read while the job runs
    job = visible(snapshot.job if snapshot else None, user, job_id)
    return await service.status_response(state, job, snapshot.status if snapshot else None)


@router.get(
    "/jobs/{job_id}/events",
    response_class=service.EventStream,
    status_code=200,
    responses={
        200: {
            "description": "`status` events, each a JobStatusResponse as JSON",
            "content": {"text/event-stream": {"schema": SSE_EVENT}},
        },
        **errors(404, 429),
    },
)
async def job_events(
    job: OwnedJob, user: CurrentUser, state: StateDep, request: Request
) -> Response:
    """Server-Sent Events: a `status` event whenever the job's status changes, until it ends.

    A stream also ends when the client disconnects, when the job is deleted, and after a maximum
    lifetime (reconnect to go on); a user may keep only a few streams open at once (429).
    """
    first = await service.status_response(state, job)
    if first.status in TERMINAL_STATUSES:  # one event and done: no need for a slot
        return service.EventStream([service.status_frame(first)])
    if not state.streams.acquire(user.user):
        raise HTTPException(
            429,
            f"at most {state.limits.events_per_user} open event streams per user",
            {"Retry-After": "10"},
        )
    return service.EventStream(
        service.status_events(state, job, first, request),
        on_close=lambda: state.streams.release(user.user),
    )


@router.get(
    "/jobs/{job_id}/video-url",
    response_model=VideoUrls,
    responses={
        **JOB_ERRORS,
        409: {"model": Error, "description": "not completed: `detail` has status and progress"},
    },
)
async def video_url(job: OwnedJob, state: StateDep) -> VideoUrls:
    """The current version's URLs (while a scene is regenerated: the version it will replace),
    and the previous version's, kept until the next version replaces it."""
    if not job.artifacts:
        live = await service.live_status(state, job)
        detail = {
            "message": "the video is not ready",
            "status": live.status,
            "progress": service.progress_of(live).model_dump(),
        }
        raise HTTPException(409, detail)
    artifacts, previous = job.artifacts, job.previous_artifacts
    return VideoUrls(
        job_id=job.id,
        status=job.status,
        **_urls(state, job, artifacts),
        metadata=VideoMetadata(
            duration=artifacts.duration_s,
            quality=job.request.quality,
            file_size=artifacts.size_bytes,
            created_at=job.completed_at or job.created_at,
        ),
        version=artifacts.version,
        language=service.language_of(job),
        previous=PreviousVersion(
            version=previous.version,
            duration=previous.duration_s,
            **_urls(state, job, previous, versioned=True),
        )
        if previous
        else None,
        share_url=f"/s/{share.token}"
        if (share := await ShareStore(state.jobs.pool).live(job.id))
        else None,
    )


def _urls(state: AppState, job: Job, artifacts: Artifacts, versioned: bool = False) -> dict:
    """Signed URLs of one version's media: presigned S3 URLs, or the media endpoints with a
    token (and `version=` when it is not the current one)."""
    storage, expires_s = state.storage, state.settings.presign_expiry_s
    thumb, vtt = artifacts.thumbnail_key, artifacts.vtt_key
    direct = storage.url_for(artifacts.video_key, expires_s)
    if direct is not None:  # straight from storage (presigned S3)
        urls = {
            "video_url": direct,
            "download_url": storage.url_for(
                artifacts.video_key, expires_s, filename=f"{job.id}.mp4", attachment=True
            ),
            "thumbnail_url": storage.url_for(thumb, expires_s) if thumb else None,
            "subtitles_url": storage.url_for(vtt, expires_s) if vtt else None,
        }
    else:  # through the media endpoints, with a signed token
        token = state.auth.media_token(job.id, job.owner)
        if versioned:
            token += f"&version={artifacts.version}"
        base = f"/api/v1/videos/jobs/{job.id}"
        urls = {
            "video_url": f"{base}/stream?token={token}",
            "download_url": f"{base}/download?token={token}",
            "thumbnail_url": f"{base}/thumbnail?token={token}" if artifacts.thumbnail_key else None,
            "subtitles_url": f"{base}/subtitles?format=vtt&token={token}"
            if artifacts.vtt_key
            else None,
        }
    return urls


def media(*content_types: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` of a media endpoint: the file (whole, or the `Range` asked for), or
    with S3 storage a redirect to a short-lived presigned URL (S3 honours `Range` itself)."""
    binary = {ct: {"schema": {"type": "string", "format": "binary"}} for ct in content_types}
    return {
        200: {"content": binary, "description": "the file"},
        206: {"content": binary, "description": "the requested byte range"},
        307: {"description": "S3 storage: the file at a presigned URL"},
        416: {"description": "the requested range is not satisfiable"},
        **errors(404, 409),
    }


ArtifactField = Literal["video_key", "thumbnail_key", "srt_key", "vtt_key"]
Version = Annotated[
    int | None,
    Query(ge=1, description="the previous version (video-url's `previous`); default: the current"),
]


def _version(job: Job, version: int | None) -> Artifacts | None:
    """The artifacts of the version asked for: the current one, or the previous one if kept."""
    current, previous = job.artifacts, job.previous_artifacts
    if version is None or (current is not None and version == current.version):
        return current
    if previous is not None and version == previous.version:
        return previous
    kept = [a.version for a in (current, previous) if a is not None]
    raise HTTPException(404, f"job {job.id} has no version {version}; it keeps versions {kept}")


async def artifact_response(
    state: AppState,
    job: Job,
    key_field: ArtifactField,
    what: str,
    media_type: str,
    filename: str | None = None,
    attachment: bool = False,
    version: int | None = None,
) -> Response:
    """One of a completed job's artifacts (409 before, 404 if it has none): the local file, or a
    307 to a presigned S3 URL so the bytes never pass through the API."""
    artifacts = _version(job, version)
    if not artifacts:
        raise HTTPException(409, {"message": f"the {what} is not ready", "status": job.status})
    key: str | None = getattr(artifacts, key_field)
    return await _serve(state, key, what, media_type, filename, attachment)


async def _serve(
    state: AppState,
    key: str | None,
    what: str,
    media_type: str,
    filename: str | None = None,
    attachment: bool = False,
) -> Response:
    storage = state.storage
    if not key or not await asyncio.to_thread(storage.exists, key):
        raise HTTPException(404, f"this job has no {what}")
    expires_s = state.settings.presign_expiry_s
    url = storage.url_for(key, expires_s, filename=filename, attachment=attachment)
    if url is not None:  # straight from storage (presigned S3): the bytes never pass here
        return RedirectResponse(url, status_code=307)
    disposition = "attachment" if attachment else "inline"
    return FileResponse(
        storage.path(key),
        media_type=media_type,
        filename=filename,
        content_disposition_type=disposition,
    )


@router.get("/jobs/{job_id}/stream", response_class=FileResponse, responses=media("video/mp4"))
async def stream(job: MediaJob, state: StateDep, version: Version = None) -> Response:
    """The MP4, with HTTP Range support (206 / 416) so players can seek."""
    return await artifact_response(state, job, "video_key", "video", "video/mp4", version=version)


@router.get("/jobs/{job_id}/download", response_class=FileResponse, responses=media("video/mp4"))
async def download(job: MediaJob, state: StateDep, version: Version = None) -> Response:
    name = f"{job.id}.mp4" if version is None else f"{job.id}-v{version}.mp4"
    return await artifact_response(
        state, job, "video_key", "video", "video/mp4", name, True, version
    )


@router.get("/jobs/{job_id}/thumbnail", response_class=FileResponse, responses=media("image/png"))
async def thumbnail(job: MediaJob, state: StateDep, version: Version = None) -> Response:
    return await artifact_response(
        state, job, "thumbnail_key", "thumbnail", "image/png", version=version
    )


@router.get(
    "/jobs/{job_id}/subtitles",
    response_class=FileResponse,
    responses=media("text/vtt", "application/x-subrip"),
)
async def subtitles(
    job: MediaJob,
    state: StateDep,
    format: Literal["vtt", "srt"] = Query("vtt"),
    version: Version = None,
) -> Response:
    media_type = "text/vtt" if format == "vtt" else "application/x-subrip"
    field: ArtifactField = "vtt_key" if format == "vtt" else "srt_key"
    language = service.language_of(job)  # players pick the language from the name: ID.fr.vtt
    name = f"{job.id}.{language}.{format}" if language else f"{job.id}.{format}"
    return await artifact_response(state, job, field, "subtitles", media_type, name, True, version)


@router.get(
    "/jobs/{job_id}/scenes/{index}/preview",
    response_class=FileResponse,
    responses=media("video/mp4"),
)
async def scene_preview(
    job: MediaJob, state: StateDep, index: Annotated[int, FastPath(ge=0, le=1000)]
) -> Response:
    """One done scene with its narration (`Range` honoured), playable while the rest of the
    video is made; the status names it as the scene's `preview_url`. 409 until it is done."""
    live = await service.live_status(state, job)
    scene = next((s for s in live.scenes if s.index == index), None)
    if scene is None:
        raise HTTPException(404, f"index: job {job.id} has no scene {index}")
    if scene.state != "done" or not scene.preview_key:
        raise HTTPException(409, {"message": f"scene {index} is not ready", "state": scene.state})
    return await _serve(state, scene.preview_key, f"preview of scene {index}", "video/mp4")
