"""Worker metrics: `python worker.py` with T2M_WORKER_METRICS_PORT set serves the Temporal SDK's
metrics and t2m's own on one Prometheus endpoint. The test makes that worker process do real work
(the offline model plans and fixes, two real renders in the jail: one with a shape off the frame,
one that does not compile), then scrapes the endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.messages import CodeResult, FixRequest, PlanResult, RenderOutcome, RenderRequest
from t2m.config import Settings
from t2m.vocabulary.request import VideoRequest
from tests.helpers import cli_env, free_port, metric_series

ROOT = Path(__file__).parent.parent
OFF_FRAME = """from manim import *

class OffFrame(Scene):
    def construct(self):
        self.play(Create(Circle().shift(RIGHT * 9)), run_time=0.5)
"""
BROKEN = OFF_FRAME.replace("Circle()", "Circel()")
TIMEOUT = timedelta(minutes=5)


@workflow.defn(sandboxed=False)
class Exercise:
    """Runs the worker's activities by name on its queues (served by the worker process)."""

    @workflow.run
    async def run(self, prefix: str) -> list[str]:
        req = VideoRequest(topic="Circles", model="offline/templates", quality="low")
        llm, render = f"{prefix}-llm", f"{prefix}-render"
        planned = await workflow.execute_activity(
            "plan_video",
            req,
            result_type=PlanResult,
            task_queue=llm,
            start_to_close_timeout=TIMEOUT,
        )
        outcomes = []
        for code in (OFF_FRAME, BROKEN):
            rr = RenderRequest(job_id="metrics", scene_index=0, code=code, quality="low")
            outcomes.append(
                await workflow.execute_activity(
                    "render_scene",
                    rr,
                    result_type=RenderOutcome,
                    task_queue=render,
                    start_to_close_timeout=TIMEOUT,
                )
            )
        scene = planned.plan.scenes[0]
        fix = FixRequest(
            model=req.model, topic=req.topic, scene=scene, code=BROKEN, error="NameError", attempt=1
        )
        await workflow.execute_activity(
            "fix_scene_code",
            fix,
            result_type=CodeResult,
            task_queue=llm,
            start_to_close_timeout=TIMEOUT,
        )
        return [f"{o.ok} {len(o.layout_issues)}" for o in outcomes]


async def scrape(url: str, proc: subprocess.Popen) -> str:
    async with httpx.AsyncClient() as http:
        for _ in range(600):
            assert proc.poll() is None, "the worker exited"
            with contextlib.suppress(httpx.TransportError):
                answer = await http.get(url)
                if answer.status_code == 200:
                    return answer.text
            await asyncio.sleep(0.1)
    raise AssertionError(f"no metrics at {url}")


def total(exposition: str, family: str, **labels: str) -> float:
    """The sum of a family's samples whose labels include `labels`."""
    series = metric_series(exposition, family)
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    return sum(v for k, v in series.items() if all(w in k for w in wanted))


async def test_worker_serves_sdk_and_t2m_metrics(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    env = cli_env(
        settings,
        T2M_DATABASE_URL=settings.database_url or "",
        T2M_WORKER_METRICS_PORT=str(port),
    )
    log = (tmp_path / "worker.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "worker.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        before = await scrape(url, proc)
        assert "t2m_renders" not in before  # nothing rendered yet
        queue = f"exercise-{uuid.uuid4().hex[:8]}"
        async with Worker(
            client,
            task_queue=queue,
            workflows=[Exercise],
            workflow_runner=UnsandboxedWorkflowRunner(),
        ):
            outcomes = await client.execute_workflow(
                Exercise.run,
                settings.task_queue_prefix,
                id=f"metrics-{uuid.uuid4()}",
                task_queue=queue,
            )
        assert outcomes[0].startswith("True ") and outcomes[0] != "True 0", outcomes
        assert outcomes[1] == "False 0", outcomes
        text = await scrape(url, proc)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()

    assert total(text, "t2m_renders", outcome="ok", quality="low") == 1
    assert total(text, "t2m_renders", outcome="failed", quality="low") == 1
    assert total(text, "t2m_render_seconds_count") == 2
    assert total(text, "t2m_render_seconds_sum") > 0
    assert total(text, "t2m_layout_findings", outcome="ok") >= 1
    assert total(text, "t2m_fix_attempts", activity_type="fix_scene_code") == 1
    assert total(text, "t2m_model_calls", model="offline/templates") >= 2
    assert total(text, "t2m_model_calls", activity_type="plan_video") >= 1
    assert total(text, "t2m_model_tokens", kind="prompt") > 0
    assert total(text, "t2m_model_tokens", kind="completion") > 0
    # The offline model is free: its cost is booked (one observation per model call), at 0 USD.
    assert total(text, "t2m_model_cost_usd_count", model="offline/templates") == 2
    # The SDK's own metrics, on the same endpoint: it polled and ran the activities.
    assert (
        total(text, "temporal_activity_execution_latency_count", activity_type="render_scene") == 2
    )
    assert (
        total(
            text,
            "temporal_worker_task_slots_available",
            task_queue=f"{settings.task_queue_prefix}-render",
        )
        > 0
    )
