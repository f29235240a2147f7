"""Fair queues: one user's batch does not hold back another user's job. Activities are faked by
name on the real dev server (started with fairness on, as `t2m up` starts it); each render takes
a fixed time on a single render slot, so the order the queue hands tasks out is the whole story."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

from temporalio.client import Client
from temporalio.service import RPCError

from t2m.config import Settings
from t2m.vocabulary.job import JobStatus, new_job_id
from t2m.vocabulary.request import VideoRequest
from tests.fakes import Fakes, running
from workflows.client import FAIRNESS_KEY_MAX_BYTES, owner_fairness_key, start_video
from workflows.video import VideoWorkflow

RENDER_S = 0.4
SCENES = 2
"""The fake plan's scenes: one job's render is SCENES renders."""


async def wait_rendering(client: Client, job_ids: list[str]) -> None:
    """Until every job has planned and waits for its renders."""
    for job_id in job_ids:
        handle = client.get_workflow_handle(job_id)
        while True:
            status: JobStatus = await handle.query(VideoWorkflow.status)
            if status.current_stage == "rendering":
                break
            await asyncio.sleep(0.05)


async def test_a_batch_from_one_user_does_not_delay_another_users_job(
    client: Client, tmp_path: Path
) -> None:
    fakes = Fakes(render_delay_s=RENDER_S)
    async with running(client, fakes, render_slots=1) as queue:
        settings = Settings(
            data_dir=tmp_path,
            temporal_address=client.service_client.config.target_host,
            temporal_namespace=client.namespace,
            task_queue_prefix=queue.removesuffix("-video"),
        )

        async def submit(owner: str) -> str:
            req = VideoRequest(topic="Circles", model="fake/model", owner=owner)
            return (await start_video(client, settings, req, new_job_id())).id

        batch = [await submit("alice") for _ in range(10)]
        await wait_rendering(client, batch)  # her 20 renders are queued
        submitted = time.monotonic()
        single = await submit("bob")
        await client.get_workflow_handle(single).result()
        waited = time.monotonic() - submitted
        described = await client.get_workflow_handle(single).describe()
        for job_id in batch:  # the rest of her batch does not matter here
            with contextlib.suppress(RPCError):  # already completed
                await client.get_workflow_handle(job_id).terminate()

    bobs = [info for info in fakes.rendered if info.workflow_id == single]
    queued = min(info.current_attempt_scheduled_time for info in bobs)
    last = max(info.started_time for info in bobs)
    ahead = sum(
        info.workflow_id != single and queued < info.started_time < last for info in fakes.rendered
    )
    order = "".join("B" if info.workflow_id == single else "a" for info in fakes.rendered)
    during = sum(
        info.workflow_id != single and queued < info.started_time < (described.close_time or last)
        for info in fakes.rendered
    )
    print(f"bob's job: {waited:.2f} s, {ahead} of alice's renders ahead of his, {during} in all")
    # once his renders are queued, at most one job's render of alice's goes before his last one
    assert ahead <= SCENES, order
    # and his finishing steps (compose, thumbnail, finalize) do not queue behind her renders: they
    # have a queue of their own, so while his job closes at most the render slot's next render
    # (and one more if a workflow task is slow) of hers starts
    assert during <= SCENES + 2, order
    assert {info.priority.fairness_key for info in bobs} == {"bob"}  # inherited from the workflow


async def test_an_owner_name_too_long_for_a_fairness_key_still_gets_one_of_its_own(
    client: Client, tmp_path: Path
) -> None:
    owners = ["é" * 200, "é" * 199 + "e"]  # 1-200 characters is a valid user name
    keys = {owner_fairness_key(owner) for owner in owners}
    assert len(keys) == 2 and all(len(k.encode()) <= FAIRNESS_KEY_MAX_BYTES for k in keys)
    settings = Settings(
        data_dir=tmp_path,
        temporal_address=client.service_client.config.target_host,
        temporal_namespace=client.namespace,
        task_queue_prefix="no-worker",
    )
    req = VideoRequest(topic="Circles", model="fake/model", owner=owners[0])
    handle = await start_video(client, settings, req, new_job_id())  # the server takes the key
    described = await handle.describe()
    await handle.terminate()
    assert described.raw_description.workflow_execution_info.priority.fairness_key in keys
