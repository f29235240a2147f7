"""Split renders (`t2m.render.split`): a scene rendered as animation ranges on separate activities and
joined is the whole render, frame for frame, with the same padding, layout findings, narration
and subtitles once composed; ranges are chosen from the dry pass and the free slots."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

import worker as t2m_worker
from activities.media import MediaActivities, min_seconds
from activities.messages import (
    ComposeRequest,
    JoinRequest,
    NarrateRequest,
    RenderOutcome,
    RenderRequest,
)
from activities.split import SplitActivities
from t2m.catalog.db import JobStore
from t2m.catalog.storage import LocalStorage
from t2m.config import Settings
from t2m.render import split
from t2m.vocabulary.plan import SceneMedia
from t2m.vocabulary.request import VideoRequest
from tests.helpers import cli_env
from tests.media_checks import make_clip, probe
from workflows.client import job_status, start_video

EIGHT = """from manim import *
import random

class Scene1(Scene):
    def construct(self):
        square, circle = Square(color=BLUE), Circle(color=RED).shift(LEFT * 3)
        title = Text("Split renders").to_edge(UP)
        words = Text("far too long a line of text to fit in the frame at all").shift(DOWN * 3)
        self.play(Create(square))
        self.play(Write(title))
        self.play(square.animate.rotate(PI / 3).shift(RIGHT))
        self.play(FadeIn(circle), FadeIn(words))
        self.wait(0.5)
        self.play(Transform(square, Triangle(color=GREEN)))
        self.play(circle.animate.scale(0.5).shift(DOWN + RIGHT * random.uniform(-2, 2)))
        self.play(FadeOut(title), run_time=0.7)
"""
UPDATERS = """from manim import *

class Scene1(Scene):
    def construct(self):
        dot = Dot()
        # no Text: nothing but the runner makes the media dir of a pass that writes no video
        label = always_redraw(lambda: Square(0.2).next_to(dot, UP))
        self.add(label)
        self.play(dot.animate.shift(RIGHT))
        self.play(dot.animate.shift(LEFT))
"""
NARRATION = (
    "A scene rendered in three ranges on three workers. "
    "Joined by packet copy, it is the whole render, frame for frame."
)


def frames_of(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def test_ranges_balance_frames_and_never_outnumber_animations() -> None:
    plan = split.Plan(frames=[30, 30, 30, 30, 60, 30, 30, 60], updaters=False)
    assert split.choose_ranges(plan, "high", 3, 0.0) == [(0, 2), (3, 5), (6, 7)]  # 90/120/90
    assert split.choose_ranges(plan, "high", 2, 0.0) == [(0, 3), (4, 7)]  # 120/180
    assert len(split.choose_ranges(plan, "high", 50, 0.0)) == 8  # one range per animation at most
    # 300 frames at 1080p60 estimate 4.5 s: not worth two ranges of 8 s
    assert split.choose_ranges(plan, "high", 3, 8.0) == [(0, 7)]
    assert split.choose_ranges(plan, "ultra", 3, 8.0) == [(0, 3), (4, 7)]  # 18 s: two
    assert split.choose_ranges(plan, "high", 1, 0.0) == [(0, 7)]  # no free slot
    updaters = split.Plan(frames=plan.frames, updaters=True)
    assert split.choose_ranges(updaters, "ultra", 3, 0.0) == [(0, 7)]
    many = split.Plan(frames=[60] * 40, updaters=False)
    assert len(split.choose_ranges(many, "ultra", 100, 0.0)) == split.MAX_RANGES


@pytest.mark.parametrize(
    "plan_json",
    [
        '{"frames": [Infinity], "updaters": false}',
        '{"frames": [1e400], "updaters": false}',
        '{"frames": [10000001], "updaters": false}',
        '{"frames": [' + "9" * 4000 + '], "updaters": false}',
        "[" * 100_000 + "]" * 100_000,
    ],
    ids=["infinity", "overflow", "past-max-frames", "4000-digits", "nested"],
)
def test_a_hostile_plan_is_no_plan(tmp_path: Path, plan_json: str) -> None:
    """plan.json is the jailed program's: numbers it cannot mean, or JSON nested past the
    parser, make no plan (the scene renders whole), not an exception retried ten times."""
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "plan.json").write_text(plan_json)
    assert split._read_plan(tmp_path) is None


def test_findings_merge_as_a_whole_render_reports_them() -> None:
    parts = [
        ["after animation 2: Text 'a' leaves the frame"],
        ["after animation 4: Text 'a' leaves the frame", "after animation 5: 'b' overlaps 'c'"],
        ["after animation 7: 'b' overlaps 'c'", "after animation 8: 'd' overlaps 'e'"],
    ]
    assert split.merge_findings(parts, 8) == [
        "after animation 2: Text 'a' leaves the frame",
        "after animation 5: 'b' overlaps 'c'",
        "after animation 8: 'd' overlaps 'e'",
    ]
    assert len(split.merge_findings(parts, 2)) == 2


async def test_dry_pass_counts_frames_and_sees_updaters(tmp_path: Path) -> None:
    plan = await split.plan(
        UPDATERS, "low", tmp_path / "u", timeout_s=120, cpu_s=120, min_seconds=0.0
    )
    assert isinstance(plan, split.Plan), plan
    assert plan.frames == [15, 15] and plan.updaters
    bad = await split.plan(
        EIGHT.replace("Square(", "Squar("), "low", tmp_path / "b", timeout_s=120, cpu_s=120,
        min_seconds=0.0,
    )  # fmt: skip
    assert isinstance(bad, str) and "NameError" in bad


async def test_split_render_is_the_whole_render(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    whole_store, split_store = LocalStorage(tmp_path / "whole"), LocalStorage(tmp_path / "split")
    whole_media = MediaActivities(settings, whole_store)
    split_media = MediaActivities(settings, split_store)
    narration = await ActivityEnvironment().run(
        whole_media.narrate_scene, NarrateRequest(job_id="j", scene_index=0, text=NARRATION, voice="en-us")
    )  # fmt: skip
    assert narration.audio_key is not None
    shutil.copytree(tmp_path / "whole", tmp_path / "split", dirs_exist_ok=True)
    req = RenderRequest(
        job_id="j", scene_index=0, code=EIGHT, quality="low",
        narration_s=narration.duration_s, class_name="Scene1",
    )  # fmt: skip

    plan = await split.plan(
        EIGHT, "low", tmp_path / "plan", timeout_s=120, cpu_s=120,
        min_seconds=min_seconds(narration.duration_s), scene_class="Scene1",
    )  # fmt: skip
    assert isinstance(plan, split.Plan), plan
    assert len(plan.frames) == 9 and not plan.updaters  # eight animations and the padding wait
    spans = split.choose_ranges(plan, "low", 3, 0.0)
    assert len(spans) == 3 and spans[-1][1] == 8

    whole, *parts = await asyncio.gather(
        ActivityEnvironment().run(whole_media.render_scene, req),
        *(
            ActivityEnvironment().run(split_media.render_scene, req.model_copy(update={"span": s}))
            for s in spans
        ),
    )
    assert whole.ok and all(p.ok for p in parts), [whole.error, *(p.error for p in parts)]
    assert len({p.video_key for p in parts} | {whole.video_key}) == 4  # a key per range
    joined = await ActivityEnvironment().run(
        SplitActivities(settings, split_store).join_renders, JoinRequest(render=req, parts=parts)
    )
    assert joined.video_key == whole.video_key  # the clip a whole render would have made
    assert joined.layout_issues == whole.layout_issues and whole.layout_issues
    assert abs(joined.duration_s - whole.duration_s) < 1e-6
    assert whole.duration_s >= min_seconds(narration.duration_s)  # padded to the narration
    assert whole.video_key is not None
    a = frames_of(whole_store.root / whole.video_key)
    b = frames_of(split_store.root / whole.video_key)
    assert len(a) == len(b) == sum(plan.frames)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))

    composed = []
    for media, store in ((whole_media, whole_store), (split_media, split_store)):
        scene = SceneMedia(video_key=whole.video_key, narration=narration)
        out = await ActivityEnvironment().run(
            media.compose_video, ComposeRequest(job_id="j", scenes=[scene], subtitles=True)
        )
        composed.append((out, probe(store.root / out.video_key), store))
    (one, p1, s1), (two, p2, s2) = composed
    assert one.duration_s == two.duration_s and p1.cues == p2.cues and p1.cues
    assert abs(p1.audio_rms - p2.audio_rms) < 1e-6 and p1.audio_rms > 0
    assert one.srt_key and two.srt_key
    assert (s1.root / one.srt_key).read_text() == (s2.root / two.srt_key).read_text()


def spans(log: Path, what: str) -> set[tuple[int, str]]:
    found = re.findall(rf"render {what} job=\S+ scene=(\d+) span=(\d+,\d+) ", log.read_text())
    return {(int(scene), span) for scene, span in found}


def render_worker(settings: Settings, log: Path) -> subprocess.Popen:
    """A render-only worker of 2 slots that splits every scene it can into up to 3 ranges."""
    env = cli_env(
        settings, T2M_RENDER_CONCURRENCY="2", T2M_RENDER_SLOTS="3", T2M_SPLIT_MIN_RANGE_S="0"
    )
    return subprocess.Popen(
        [sys.executable, "-m", "worker", "--queues", "render"],
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


async def test_a_split_scene_longer_than_a_render_may_last_goes_to_the_fixer(
    tmp_path: Path,
) -> None:
    """A scene that outlasts its narration by more than a render may (`MARGIN_S`): its dry
    pass has it rendered whole (whose refusal the fix loop reads), and a joined video the check
    refuses is a failed render for the fix loop too, not a failed job."""
    settings = Settings(data_dir=tmp_path / "data", render_slots=2, split_min_range_s=0)
    store = LocalStorage(tmp_path / "store")
    activities = SplitActivities(settings, store)
    long_scene = EIGHT.replace("self.wait(0.5)", "self.wait(70)")
    req = RenderRequest(
        job_id="j", scene_index=0, code=long_scene, quality="medium", class_name="Scene1"
    )
    plan = await ActivityEnvironment().run(activities.plan_render, req)
    assert plan.ranges == []  # 8 + 70 s at no narration: whole
    parts = []
    for i in range(2):  # two ranges of 31 s: each a render's length, 62 s together is not
        clip = make_clip(tmp_path / f"range-{i}.mp4", 31.0, (30, 30, 200), size=(854, 480))
        store.put_file(f"renders/range-{i}.mp4", clip)
        parts.append(RenderOutcome(ok=True, video_key=f"renders/range-{i}.mp4"))
    joined = await ActivityEnvironment().run(
        activities.join_renders,
        JoinRequest(render=req.model_copy(update={"quality": "low"}), parts=parts),
    )
    assert not joined.ok and joined.error is not None and "refused" in joined.error
    assert "930 frames" in joined.error and "shorten the scene" in joined.error


async def test_a_killed_range_worker_redoes_only_its_range(
    client: Client, settings: Settings, jobs: JobStore, tmp_path: Path
) -> None:
    req = VideoRequest(
        topic="Fractions",
        context="A fraction is a part of a whole. The denominator counts the parts.",
        model="offline/templates",
        quality="medium",
    )
    first_log, second_log = tmp_path / "render1.log", tmp_path / "render2.log"
    async with t2m_worker.running(client, settings, queues=("video", "llm"), jobs=jobs):
        first = render_worker(settings, first_log)
        try:
            handle = await start_video(client, settings, req)
            deadline = time.monotonic() + 240
            while True:  # a scene with a range done and another one rendering
                started, done = spans(first_log, "start"), spans(first_log, "done")
                cut = {s for s, _ in done} & {s for s, _ in started - done}
                if cut:
                    break
                assert time.monotonic() < deadline, first_log.read_text()[-3000:]
                await asyncio.sleep(0.05)
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
        finally:
            if first.poll() is None:
                os.killpg(first.pid, signal.SIGKILL)
        started, done = spans(first_log, "start"), spans(first_log, "done")
        second = render_worker(settings, second_log)
        try:
            result = await asyncio.wait_for(handle.result(), timeout=300)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=30)
    redone = spans(second_log, "start")
    assert redone & done == set(), f"finished ranges rendered again: {redone & done}"
    interrupted = started - done
    assert interrupted and interrupted <= redone  # the killed ranges, and only on their own
    assert not re.search(r"render start job=\S+ scene=\d+ span= ", second_log.read_text())
    assert result.scenes >= 1 and (await job_status(handle)).status == "completed"
