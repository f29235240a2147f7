"""Split renders (`t2m.render.split`): the dry pass that chooses a scene's animation ranges, and the
join of the rendered ranges into the scene's clip. The ranges themselves are `render_scene`
activities with a `span`, so each runs in its own jail on any render worker and a failed one is
retried alone; the joined clip is stored under the whole render's key, so the rest of the job
(compose, thumbnail, reuse by an identical scene) cannot tell it from a whole render.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from temporalio import activity
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.exceptions import ApplicationError

from activities.heartbeat import heartbeats
from activities.media import min_seconds, render_key
from activities.messages import JoinRequest, RenderOutcome, RenderPlan, RenderRequest
from t2m.catalog.storage import Storage
from t2m.config import POLLER_FRESH_S, Settings
from t2m.errors import ErrorKind
from t2m.jail.bwrap import JailUnavailable
from t2m.media import jailed as media_jail
from t2m.media import probe as media_probe
from t2m.media.probe import max_seconds
from t2m.render import layout_check as layout
from t2m.render import sandbox, split


class SplitActivities:
    def __init__(self, settings: Settings, storage: Storage) -> None:
        self.settings = settings
        self.storage = storage

    @activity.defn(name="plan_render")
    @heartbeats
    async def plan_render(self, req: RenderRequest) -> RenderPlan:
        """The ranges to render `req` in: none (render whole) for a scene too short to be worth
        a dry pass at its narration's length, one already rendered, one the dry pass cannot run
        or that lasts longer than a render may (the whole render reports its error to the fix
        loop), one with updaters, or when no slot is free; else `split.choose_ranges`."""
        at_least = min_seconds(req.narration_s)
        key = render_key(req.code, req.quality, at_least, req.class_name)
        min_range_s = self.settings.split_min_range_s
        if not split.worth_a_dry_pass(req.quality, at_least, min_range_s):
            return RenderPlan()
        if await asyncio.to_thread(self.storage.exists, key):
            return RenderPlan()
        with tempfile.TemporaryDirectory(prefix="t2m-plan-") as workdir:
            try:
                found = await split.plan(
                    req.code,
                    req.quality,
                    Path(workdir),
                    timeout_s=self.settings.render_timeout_s,
                    cpu_s=self.settings.render_cpu_s,
                    min_seconds=at_least,
                    scene_class=req.class_name,
                    on_tick=activity.heartbeat,
                )
            except JailUnavailable as e:
                raise ApplicationError(
                    f"render jail unavailable: {e}", type=ErrorKind.JAIL_UNAVAILABLE
                ) from e
        if isinstance(found, str):
            activity.logger.info("dry pass failed job=%s scene=%d", req.job_id, req.scene_index)
            return RenderPlan()
        fps = media_probe.QUALITIES.get(req.quality, media_probe.QUALITIES["ultra"])[2]
        if sum(found.frames) > max_seconds(at_least) * fps:  # the whole render tells the fixer
            return RenderPlan()
        slots = await self._free_slots()
        ranges = split.choose_ranges(found, req.quality, slots, min_range_s)
        estimate = split.estimate_s(req.quality, found.frames)
        return RenderPlan(
            ranges=ranges if len(ranges) > 1 else [], estimate_s=estimate, slots=slots
        )

    async def _free_slots(self) -> int:
        """`render_slots` when set, else the render slots of the workers polling the render
        queue lately (each assumed to run `render_concurrency`, as this one does) less the
        renders waiting for one."""
        if self.settings.render_slots:
            return self.settings.render_slots
        described = await activity.client().workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=activity.client().namespace,
                task_queue=TaskQueue(name=self.settings.queue("render")),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
                report_stats=True,
            )
        )
        now = datetime.now(UTC)
        pollers = {
            p.identity
            for p in described.pollers
            if (now - p.last_access_time.ToDatetime(UTC)).total_seconds() < POLLER_FRESH_S
        }
        waiting = described.stats.approximate_backlog_count if described.HasField("stats") else 0
        return max(1, len(pollers) * self.settings.render_concurrency - waiting)

    @activity.defn(name="join_renders")
    @heartbeats
    async def join_renders(self, req: JoinRequest) -> RenderOutcome:
        """The ranges joined by packet copy and checked like a render's video, in one media jail,
        stored under the whole render's key with the ranges' layout findings merged; a joined
        video the check refuses is a failed render (too long, say), as a whole one would be."""
        r = req.render
        at_least = min_seconds(r.narration_s)
        key = render_key(r.code, r.quality, at_least, r.class_name)
        findings = split.merge_findings([p.layout_issues for p in req.parts], layout.MAX_FINDINGS)
        with tempfile.TemporaryDirectory(prefix="t2m-join-") as tmp:
            work = Path(tmp) / "job"
            work.mkdir()
            ranges = []
            for i, part in enumerate(req.parts):
                if part.video_key is None:
                    raise ApplicationError(
                        "a range has no video", type=ErrorKind.MEDIA_FAILED, non_retryable=True
                    )
                dest = work / f"range-{i}.mp4"
                ranges.append(await asyncio.to_thread(self.storage.get_file, part.video_key, dest))
            try:
                video, duration, bad = await media_jail.join(
                    ranges, work, r.quality, at_least, activity.heartbeat
                )
            except media_jail.MediaFailed as e:
                video, bad = None, f"it could not be checked: {e}"
            if video is None:  # as a whole render's refused video: the fix loop's to mend
                error = f"Error: the render's video was refused: {bad}"
                return RenderOutcome(ok=False, error=sandbox.scrub(error)[:2000])
            await asyncio.to_thread(self.storage.put_file, key, video)
            (Path(tmp) / "layout.json").write_text(json.dumps(findings))
            layout_key = key.removesuffix(".mp4") + ".layout.json"
            await asyncio.to_thread(self.storage.put_file, layout_key, Path(tmp) / "layout.json")
        return RenderOutcome(ok=True, video_key=key, duration_s=duration, layout_issues=findings)
