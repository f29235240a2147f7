"""`t2m generate` end to end: real Temporal, real renders, real narration, real files."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from temporalio.client import Client, WorkflowExecutionStatus

from cli import local
from t2m.config import Settings
from t2m.media import compose as media
from t2m.vocabulary.request import VideoRequest
from tests.helpers import asgi_client, cli_env, free_port, generate_then_ctrl_c, run_cli
from tests.media_checks import assert_broadcast_subtitles, probe
from tests.scripted import ScriptedLLM, scene_code
from workflows.client import start_video

PYTHAGORAS = (
    "In a right triangle the square of the hypotenuse equals the sum of the squares of the other "
    "two sides: a^2 + b^2 = c^2. The hypotenuse is the side opposite the right angle."
)


def best_frame_distance(video: Path, png: Path) -> float:
    import av

    thumb = np.asarray(Image.open(png).convert("RGB")).astype(np.int16)
    with av.open(str(video)) as c:
        return min(
            float(np.abs(f.to_ndarray(format="rgb24").astype(np.int16) - thumb).mean())
            for f in c.decode(video=0)
        )


@pytest.mark.parametrize(
    ("topic", "context", "flags", "stack"),
    [
        ("Pythagorean Theorem", PYTHAGORAS, [], "running"),
        ("Photosynthesis", "", ["--voice", "en-gb"], "running"),
        ("Black holes", "Gravity bends light. Nothing escapes the event horizon.", [], "ephemeral"),
    ],
)
async def test_generate_writes_a_watchable_video(
    settings: Settings, worker: None, tmp_path: Path, topic: str, context: str, flags, stack: str
) -> None:
    env = cli_env(settings)
    if stack == "ephemeral":  # nothing listens there: the CLI starts and stops its own stack
        env["T2M_TEMPORAL_ADDRESS"] = f"127.0.0.1:{free_port()}"
    out_dir = tmp_path / "out"
    args = ["generate", topic, "--context", context, "--quality", "low", "--out", str(out_dir)]
    code, out, err = await run_cli(env, *args, *flags, "--json")
    assert code == 0, err
    # Warned before rendering that the offline model makes a placeholder of a topic alone.
    assert ("warning: no --context" in err) == (not context), err
    result = json.loads(out)  # stdout is exactly one JSON object
    assert set(result) == {
        "job_id", "status", "video", "subtitles_srt", "subtitles_vtt", "thumbnail", "duration_s", "scenes",
        "reused_from",
    }  # fmt: skip
    job = result["job_id"]
    assert job.startswith("video-") and result["status"] == "completed"
    assert 3 <= result["scenes"] <= 5
    for field, ext in (
        ("video", "mp4"),
        ("subtitles_srt", "srt"),
        ("subtitles_vtt", "vtt"),
        ("thumbnail", "png"),
    ):
        assert result[field] == str((out_dir / f"{job}.{ext}").resolve())
        assert Path(result[field]).stat().st_size > 0

    video = Path(result["video"])
    p = probe(video)
    assert p.codecs == {"video": "h264", "audio": "aac", "subtitle": "mov_text"}
    # the offline model narrates its context once (no filler), so a short context is a short video
    assert p.duration >= 8 and abs(p.duration - result["duration_s"]) < 0.5
    assert p.audio_rms > 0.01  # narration is audible, not silence
    assert p.cues and all(0 <= s < e <= p.duration + 0.01 for s, e in p.cues)
    srt = Path(result["subtitles_srt"]).read_text()
    assert srt.count(" --> ") == len(p.cues)
    assert Path(result["subtitles_vtt"]).read_text().startswith("WEBVTT")
    # ≤ 2 lines × 42 characters, ≤ 7 s a cue, in both files and in the MP4's own track
    assert assert_broadcast_subtitles(srt) == len(p.cues)
    assert assert_broadcast_subtitles(Path(result["subtitles_vtt"]).read_text()) == len(p.cues)
    assert all(e - s <= 7.0 + 1e-3 for s, e in p.cues)
    assert best_frame_distance(video, Path(result["thumbnail"])) < 3.0  # a frame of the video
    luma = np.asarray(Image.open(result["thumbnail"]).convert("L")).astype(float)
    assert luma.std() > 12  # content, not a black or faded frame between scenes


async def test_silent_video_without_thumbnail(
    settings: Settings, worker: None, tmp_path: Path
) -> None:
    args = ["generate", "Prime numbers", "--quality", "low", "--voice", "none", "--no-thumbnail"]
    code, out, err = await run_cli(cli_env(settings), *args, "--out", str(tmp_path), "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["thumbnail"] is None
    p = probe(Path(result["video"]))
    assert "audio" not in p.codecs and p.codecs["subtitle"] == "mov_text"


async def test_ctrl_c_cancels_the_job_and_says_how_it_ended(
    settings: Settings,
    worker: None,
    client: Client,
    scripted: ScriptedLLM,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without an API: Ctrl-C cancels the job and waits for its run to end, exit 130; a job that
    completed before the cancel is told as completed, its files fetched, not reported cancelled."""
    # Its scenes render "forever", so that the cancel lands before the job could complete.
    scripted.handler = lambda task, data: (
        scene_code(data["class_name"], "self.wait(900)") if task == "write_scene_code" else None
    )
    env = cli_env(settings, T2M_ALLOWED_MODELS='["offline/templates", "scripted/test"]')
    code, answer, job = await generate_then_ctrl_c(env, "scripted/test")
    assert code == 130 and answer["status"] == "cancelled", answer
    assert answer["job_id"] == job
    described = await client.get_workflow_handle(answer["job_id"]).describe()
    assert described.status == WorkflowExecutionStatus.CANCELED  # it ended before the command

    # Ctrl-C that comes too late: the cancel is refused (the run is over) and the job's own
    # ending is told, with its files where a completed job's go.
    scripted.reset()
    req = VideoRequest(topic="Even numbers", context="Even numbers split in two equal halves.",
                       model="offline/templates", quality="low", thumbnail=False)  # fmt: skip
    handle = await start_video(client, settings, req)
    result = asyncio.ensure_future(handle.result())
    await asyncio.wait_for(asyncio.shield(result), timeout=240)
    out = tmp_path / "out"
    args = argparse.Namespace(json=True, out=out)
    code = await local.interrupted(settings, args, handle, result)
    told = json.loads(capsys.readouterr().out)
    assert code == 130 and told["status"] == "completed", told
    assert told["error"] == f"interrupted after the job completed: its files are in {out}"
    assert (out / f"{handle.id}.mp4").stat().st_size > 0


async def test_bad_input_exits_2_with_a_one_line_reason(settings: Settings) -> None:
    code, out, err = await run_cli(
        cli_env(settings), "generate", "Cells", "--voice", "xx-nope", "--json"
    )
    assert code == 2
    assert json.loads(out)["status"] == "failed"
    assert err.strip().count("\n") == 0 and "unknown voice 'xx-nope'" in err
    code, _, err = await run_cli(cli_env(settings), "generate", "Cells", "--quality", "huge")
    assert code == 2 and "invalid choice: 'huge'" in err


@pytest.mark.parametrize("topic", ["ab", "   "])
async def test_the_cli_rejects_a_topic_as_the_api_does(settings: Settings, topic: str) -> None:
    async with asgi_client(settings) as http:
        r = await http.post("/api/v1/videos/generate", json={"configuration": {"topic": topic}})
    assert r.status_code == 422
    [problem] = r.json()["detail"]
    assert problem["loc"] == ["body", "configuration", "topic"]
    code, _, err = await run_cli(cli_env(settings), "generate", topic)
    assert code == 2
    assert err.strip() == f"t2m: failed: invalid request: topic: {problem['msg']}"


def test_media_thumbnail_helper_matches(tmp_path: Path) -> None:
    """Guards the distance helper itself: an unrelated image is far from every frame."""
    from tests.media_checks import make_clip

    clip = make_clip(tmp_path / "c.mp4", 0.5, (255, 0, 0))
    Image.new("RGB", (320, 180), (0, 0, 255)).save(tmp_path / "blue.png")
    media.thumbnail(clip, tmp_path / "red.png", 0.2)
    assert best_frame_distance(clip, tmp_path / "red.png") < 3.0
    assert best_frame_distance(clip, tmp_path / "blue.png") > 100
