"""Model-driven activities (queue `<prefix>-llm`): thin wrappers over `t2m.authoring`.

Transient model trouble (rate limits, timeouts, 5xx) raises as-is, so Temporal retries it with
backoff; a model that cannot be used or a plan that will not validate fails at once.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from t2m import authoring
from t2m.llm import ModelError
from workflows.contracts import CodeRequest, FixRequest, VideoPlan, VideoRequest


def _non_retryable(err: Exception) -> ApplicationError:
    return ApplicationError(str(err), type=type(err).__name__, non_retryable=True)


@activity.defn(name="plan_video")
async def plan_video(req: VideoRequest) -> VideoPlan:
    try:
        return await authoring.plan_video(req.model, req.topic, req.context)
    except (ModelError, authoring.PlanError) as e:
        raise _non_retryable(e) from e


@activity.defn(name="write_scene_code")
async def write_scene_code(req: CodeRequest) -> str:
    try:
        return await authoring.write_scene_code(req.model, req.topic, req.scene, req.scene_count)
    except ModelError as e:
        raise _non_retryable(e) from e


@activity.defn(name="fix_scene_code")
async def fix_scene_code(req: FixRequest) -> str:
    try:
        return await authoring.fix_scene_code(
            req.model, req.topic, req.scene, req.code, req.error, req.attempt
        )
    except ModelError as e:
        raise _non_retryable(e) from e


ACTIVITIES = [plan_video, write_scene_code, fix_scene_code]
