"""Eval activities (queue `<prefix>-llm`): judge one video, write an eval's report.

Thin wrappers over `t2m.eval`: they fetch what the plain functions need from storage, the job
catalog or Temporal, and put the report back in storage under `eval/<eval id>/`.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import timedelta
from pathlib import Path

from temporalio import activity
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError

from activities.heartbeat import heartbeats
from t2m.authoring.llm import ModelClient, ModelError
from t2m.catalog.db import JobStore
from t2m.catalog.storage import Storage
from t2m.eval.judge import JUDGE_FRAMES, Judgement, JudgeRequest, judge_video, srt_transcript
from t2m.eval.report import EvalResult, ReportRequest, build_report, markdown
from t2m.keys import report_keys
from t2m.media import jailed as media_jail
from t2m.vocabulary.job import JobStatus

STATUS_QUERY_TIMEOUT = timedelta(seconds=10)


class EvalActivities:
    def __init__(
        self,
        client: ModelClient,
        storage: Storage,
        jobs: JobStore | None = None,
        temporal: Client | None = None,
    ) -> None:
        self.client = client
        self.storage = storage
        self.jobs = jobs
        """The job catalog, where finished jobs' statuses are read (None: ask Temporal)."""
        self.temporal = temporal

    @activity.defn(name="judge_video")
    @heartbeats
    async def judge(self, req: JudgeRequest) -> Judgement:
        """Score one video; a model that cannot be used is a judgement without scores."""
        with tempfile.TemporaryDirectory(prefix="t2m-judge-") as tmp:
            video = await asyncio.to_thread(
                self.storage.get_file, req.video_key, Path(tmp) / "video.mp4"
            )
            transcript = ""
            if req.srt_key:
                srt = await asyncio.to_thread(
                    self.storage.get_file, req.srt_key, Path(tmp) / "video.srt"
                )
                transcript = srt_transcript(srt.read_text())
            try:
                frames = await media_jail.sample_frames(
                    video, Path(tmp) / "frames", JUDGE_FRAMES, activity.heartbeat
                )
                return await judge_video(self.client, req.model, req.topic, transcript, frames)
            except media_jail.MediaFailed as e:
                return Judgement(error=f"the video's frames could not be read: {e}")
            except ModelError as e:
                return Judgement(error=str(e))

    @activity.defn(name="write_eval_report")
    @heartbeats
    async def write_eval_report(self, req: ReportRequest) -> EvalResult:
        statuses = [await self._final_status(o.job_id) for o in req.outcomes]
        report = build_report(req, statuses)
        json_key, markdown_key = report_keys(req.eval_id)
        with tempfile.TemporaryDirectory(prefix="t2m-eval-") as tmp:
            for key, text in (
                (json_key, report.model_dump_json(indent=2)),
                (markdown_key, markdown(report)),
            ):
                path = Path(tmp) / Path(key).name
                path.write_text(text)
                await asyncio.to_thread(self.storage.put_file, key, path)
        return EvalResult(
            eval_id=req.eval_id,
            json_key=json_key,
            markdown_key=markdown_key,
            overall=report.overall,
        )

    async def _final_status(self, job_id: str) -> JobStatus | None:
        """A finished job's last status: its catalog row, else its workflow's `status` query
        (answered from its history), else None (the report then lacks its details)."""
        if self.jobs is not None:
            job = await self.jobs.get(job_id)
            if job is not None and job.progress is not None:
                return job.progress
        if self.temporal is None:
            return None
        handle = self.temporal.get_workflow_handle(job_id)
        try:
            return await handle.query(
                "status", result_type=JobStatus, rpc_timeout=STATUS_QUERY_TIMEOUT
            )
        except (RPCError, WorkflowQueryFailedError) as e:
            activity.logger.warning("no status for %s: %s", job_id, e)
            return None
