"""Watch while it renders: a real job (scripted model, real renders and narration) lists a done
scene's preview URL in its status, and that URL plays (a signed media URL, no credentials: the
scene's render with its narration) while a later scene is still rendering."""

from __future__ import annotations

import asyncio
import io
import time

import av
import httpx
import pytest

from tests.scripted import ScriptedLLM, plan_json, scene_code


def probe(data: bytes) -> tuple[float, list[str]]:
    """The file's duration (s) and its streams' kinds, read by PyAV."""
    with av.open(io.BytesIO(data)) as c:
        duration = float(c.duration or 0) / av.time_base
        return duration, sorted(s.type for s in c.streams)


# A render slot per scene: with two, the stuck scenes may take both before the quick one, which
# then waits tens of seconds for a slot (CI runs took 68-78 s, against ~6 s).
@pytest.mark.parametrize("settings", [{"render_concurrency": 3}], indirect=True)
async def test_a_done_scene_plays_while_a_later_scene_still_renders(
    api: httpx.AsyncClient, keys: dict, scripted: ScriptedLLM, worker: None
) -> None:
    def handler(task: str, data: dict) -> str | None:
        if task == "plan_video":
            return plan_json("Quick", "Stuck", "Stuck too", duration=2.0)
        if task in ("write_scene_code", "fix_scene_code"):
            stuck = data["scene"]["index"] > 0
            return scene_code(data["class_name"], "self.wait(900)" if stuck else None)
        return None

    scripted.handler = handler
    alice, bob = keys["alice"], keys["bob"]
    body = {"configuration": {"topic": "Watch early", "model": "scripted/test", "quality": "low"}}
    job = (await api.post("/api/v1/videos/generate", json=body, headers=alice)).json()["job_id"]
    url = f"/api/v1/videos/jobs/{job}/status"
    deadline = time.monotonic() + 120
    while True:
        status = (await api.get(url, headers=alice)).json()
        scenes = status["progress"]["scenes"]
        if scenes and scenes[0]["preview_url"]:
            break
        assert status["status"] in ("queued", "running") and time.monotonic() < deadline, status
        await asyncio.sleep(0.3)
    assert scenes[0]["state"] == "done" and scenes[1]["preview_url"] is None
    preview = scenes[0]["preview_url"]
    assert preview.startswith(f"/api/v1/videos/jobs/{job}/scenes/0/preview?token=")

    played = await api.get(preview)  # the token alone authorizes it, as for the job's video
    assert played.status_code == 200 and played.headers["content-type"] == "video/mp4"
    duration, streams = probe(played.content)
    assert streams == ["audio", "video"]  # the render joined with its narration
    assert 1.0 < duration < 15.0
    part = await api.get(preview, headers={"Range": "bytes=0-1023"})
    assert part.status_code == 206 and len(part.content) == 1024  # a player can seek

    now = (await api.get(url, headers=alice)).json()
    assert now["status"] == "running" and now["progress"]["scenes"][1]["state"] == "rendering"
    not_yet = await api.get(f"/api/v1/videos/jobs/{job}/scenes/1/preview", headers=alice)
    assert not_yet.status_code == 409, not_yet.text
    none = await api.get(f"/api/v1/videos/jobs/{job}/scenes/7/preview", headers=alice)
    assert none.status_code == 404 and "index" in none.json()["detail"]
    other = await api.get(f"/api/v1/videos/jobs/{job}/scenes/0/preview", headers=bob)
    assert other.status_code == 404  # another user's job
    forged = await api.get(f"/api/v1/videos/jobs/{job}/scenes/0/preview?token=x")
    assert forged.status_code == 401

    assert (await api.post(f"/api/v1/jobs/{job}/cancel", headers=alice)).status_code == 202
    while (await api.get(url, headers=alice)).json()["status"] != "cancelled":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.3)
