"""Narration is stored content-addressed (real espeak-ng, real storage): a scene narrated anew (a
redo) gets a key of its own, so the audio the kept scene uses is never overwritten, and the same
narration asked again is the same object, reused rather than made again."""

from __future__ import annotations

import uuid
from pathlib import Path

from temporalio.testing import ActivityEnvironment

from activities.media import MediaActivities, narration_key
from activities.messages import NarrateRequest
from t2m.catalog.storage import LocalStorage
from t2m.config import Settings

A = "A circle is the set of points at one distance from its centre. That distance is the radius."
B = "Make the circle bigger. Its radius doubles, and so does its circumference."


async def test_a_redo_never_overwrites_the_narration_the_kept_scene_uses(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "storage")
    narrate = MediaActivities(Settings(data_dir=tmp_path / "data"), storage).narrate_scene
    env, job = ActivityEnvironment(), f"video-{uuid.uuid4()}"

    def req(text: str) -> NarrateRequest:
        return NarrateRequest(job_id=job, scene_index=0, text=text, voice="en-us")

    first = await env.run(narrate, req(A))
    assert first.audio_key == narration_key(job, A, "en-us")
    assert first.audio_key.startswith(f"jobs/{job}/narration/")  # deleted with its job
    kept = storage.path(first.audio_key)
    kept_bytes, kept_mtime = kept.read_bytes(), kept.stat().st_mtime_ns
    assert kept_bytes.startswith(b"RIFF") and first.duration_s > 2 and len(first.cues) == 2

    redo = await env.run(narrate, req(B))  # scene 0 narrated anew, with other words
    assert redo.audio_key is not None and redo.audio_key != first.audio_key
    assert kept.read_bytes() == kept_bytes, "the kept scene's audio is untouched"
    assert storage.path(redo.audio_key).read_bytes() != kept_bytes

    again = await env.run(narrate, req(A))  # the same narration: the same object, reused
    assert again == first
    assert kept.stat().st_mtime_ns == kept_mtime, "reused, not synthesised and stored again"

    other_voice = await env.run(narrate, req(A).model_copy(update={"voice": "en-gb"}))
    assert other_voice.audio_key not in (first.audio_key, redo.audio_key)
