"""`t2m generate` through the running API: the job is the API key's user's, and the server's
rules decide (its allowed models and default, quotas, priority ceiling, result reuse)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from cli import answers
from cli.jobs import MEDIA
from cli.outcome import CANCEL_WAIT_S, after_interrupt, done, fail
from cli.output import warn_without_context
from cli.progress import ProgressView, from_api
from cli.remote import TERMINAL, ApiError, Remote
from cli.request_flags import options
from t2m.requests import InvalidRequest


def generate(remote: Remote, args: argparse.Namespace) -> int:
    try:
        configuration = options(args).model_dump(mode="json", exclude_none=True)
    except InvalidRequest as e:  # the API's own model says so; no need to ask it
        return fail(args, None, f"invalid request: {e}", code=2)
    warn_without_context(configuration.get("model") or _default_model(remote), args.context)
    body = {"configuration": configuration, "priority": args.priority}
    try:
        created = remote.json("POST", "/api/v1/videos/generate", answers.JobCreated, json=body)
    except ApiError as e:
        reason = f"invalid request: {e}" if e.code == 2 else str(e)
        return fail(args, None, reason, code=e.code)
    job_id = created["job_id"]
    try:
        with ProgressView(job_id, stream=sys.stderr) as view:
            status = remote.follow(job_id, 0.5, lambda s: view.update(from_api(s)))
    except KeyboardInterrupt:
        return interrupted(remote, args, job_id)
    except ApiError as e:
        return fail(args, job_id, str(e), code=e.code)
    if status["status"] != "completed":
        reason = status.get("error") or status["status"]
        return fail(args, job_id, reason, status["status"], retryable=status.get("retryable"))
    try:
        paths, duration_s = _download(remote, job_id, args)
    except ApiError as e:
        return fail(args, job_id, str(e), code=e.code)
    scenes = len(status["progress"].get("scenes", []))
    return done(args, job_id, paths, duration_s, scenes, status.get("reused_from"))


def interrupted(remote: Remote, args: argparse.Namespace, job_id: str) -> int:
    """Ctrl-C: cancel the job on the server (refused with 409 if it is over), ask its status
    until it ends (for `CANCEL_WAIT_S` at most, or until a second Ctrl-C), and tell it as it is
    (`after_interrupt`)."""
    try:
        remote.request("POST", f"/api/v1/jobs/{job_id}/cancel")
    except ApiError as e:
        print(f"t2m: could not cancel {job_id}: {e}", file=sys.stderr)
    status: dict[str, Any] = {"status": "cancelling"}
    deadline = time.monotonic() + CANCEL_WAIT_S
    try:
        while time.monotonic() < deadline:
            status = remote.status(job_id)
            if status["status"] in TERMINAL:
                break
            time.sleep(0.2)
    except (ApiError, KeyboardInterrupt):
        pass
    if status["status"] == "completed":
        return after_interrupt(args, job_id, "completed", f"`t2m jobs download {job_id}` gets it")
    return after_interrupt(args, job_id, status["status"], status.get("error"))


def _default_model(remote: Remote) -> str:
    """The model the server uses when the request names none ("" when it does not say)."""
    try:
        config = remote.json("GET", "/api/v1/config", answers.ServerConfig)
    except ApiError:
        return ""
    return str(config.get("default_model") or "")


def _download(
    remote: Remote, job_id: str, args: argparse.Namespace
) -> tuple[dict[str, str | None], float]:
    """The job's files into `--out`, as `t2m jobs download` fetches them, and the video's length."""
    paths: dict[str, str | None] = {}
    for field, path, ext, optional in MEDIA:
        got = remote.download(
            f"/api/v1/videos/jobs/{job_id}/{path}", args.out / f"{job_id}.{ext}", optional
        )
        paths[field] = str(got.resolve()) if got else None
    urls = remote.json("GET", f"/api/v1/videos/jobs/{job_id}/video-url", answers.VideoUrls)
    return paths, float(urls["metadata"]["duration"])
