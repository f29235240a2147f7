"""The offline Festival voice (`festival:us_slt`, Debian's festival + festvox-us-slt-hts): real
synthesis in the media jail, cues that are the sentences' own audio, hostile text that stays text,
and the voice name checked where requests are."""

from __future__ import annotations

import asyncio
import uuid
import wave
from pathlib import Path

import numpy as np
import pytest
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from activities.media import MediaActivities
from activities.messages import NarrateRequest
from t2m.catalog.storage import LocalStorage, get_storage
from t2m.config import Settings
from t2m.keys import narration_key
from t2m.media import festival, languages
from t2m.media import speech as tts
from t2m.requests import InvalidRequest, build_request
from t2m.vocabulary.plan import Narration
from t2m.vocabulary.request import VideoOptions, VideoRequest
from tests.media_checks import probe
from workflows.client import start_video

VOICE = "festival:us_slt"
TEXT = (
    "The derivative of x cubed is three x squared. Does the series converge, or does it diverge? "
    "Gödel's theorem — proved in 1931 — says no."
)


def samples(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
        rate, data = w.getframerate(), w.readframes(w.getnframes())
    return np.frombuffer(data, "<i2").astype(np.float32) / 32768, rate


async def test_a_festival_voice_narrates_in_the_jail_with_exact_cues(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "storage")
    narrate = MediaActivities(Settings(data_dir=tmp_path / "data"), storage).narrate_scene
    asked = NarrateRequest(job_id=f"video-{uuid.uuid4()}", scene_index=0, text=TEXT, voice=VOICE)
    told = await ActivityEnvironment().run(narrate, asked)

    sentences = tts.split_sentences(TEXT)
    assert [c.text for c in told.cues] == sentences and len(sentences) == 3
    assert told.audio_key is not None
    x, rate = samples(storage.path(told.audio_key))
    assert abs(x.size / rate - told.duration_s) < 0.01
    assert abs(told.cues[-1].end - told.duration_s) < 0.01
    # each cue is its sentence's audio: speech inside, the joining gap's digital silence between
    for cue, words in zip(told.cues, (8, 9, 8), strict=True):
        spoken = x[int(cue.start * rate) : int(cue.end * rate)]
        assert np.sqrt((spoken**2).mean()) > 0.02, cue
        assert 90 < 60 * words / (cue.end - cue.start) < 260, cue  # a sane speaking rate
    for a, b in zip(told.cues, told.cues[1:], strict=False):
        assert abs(b.start - a.end - tts.SENTENCE_GAP_S) < 0.002
        assert np.abs(x[int(a.end * rate) + 2 : int(b.start * rate) - 2]).max() < 1e-3
    assert told.usage.calls == 0  # offline: nothing booked
    assert told.audio_key == narration_key(asked.job_id, TEXT, VOICE)
    assert told.audio_key != narration_key(asked.job_id, TEXT, "en-us")


def test_hostile_text_stays_text(tmp_path: Path) -> None:
    """Scheme, quotes and backslashes are spoken (never evaluated), emoji, control characters and
    symbols only are not an error, and accented letters are read as their base letters."""
    pwned = tmp_path / "pwned"
    hostile = [
        f'(system "touch {pwned}") (quit)',
        f'"; (system "touch {pwned}") "',
        'back\\slash \\" \\\\" end',
        "😀🎉\x07\x1b[31m",
        "",
        "-v xx --help",
    ]
    parts = festival.speak(hostile, VOICE, tmp_path / "work")
    assert not pwned.exists()
    lengths = [samples(p)[0].size / samples(p)[1] for p in parts]
    assert len(parts) == len(hostile) and all(s > 0 for s in lengths)
    assert lengths[0] > 1.5 and lengths[5] > 0.5  # said, not swallowed
    assert festival.ascii_text("Gödel, ℝ — Poincaré\x00!") == "Godel, R , Poincare !"


def test_a_festival_voice_is_checked_by_name() -> None:
    ok = build_request(Settings(), VideoOptions(topic="Tides", voice=VOICE), "ada")
    assert ok.voice == VOICE
    with pytest.raises(InvalidRequest) as e:
        build_request(Settings(), VideoOptions(topic="Tides", voice="festival:nope"), "ada")
    assert e.value.field == "voice"
    assert e.value.message.startswith("unknown voice 'festival:nope': Festival voices are")
    english = VideoOptions(topic="Tides", style_preferences={"language": "en"})
    assert build_request(Settings(default_voice=VOICE), english, "ada").voice == VOICE
    assert VOICE in festival.installed()
    assert languages.spoken_language({}, VOICE) == "en"


async def test_a_job_narrated_by_the_festival_voice(
    client: Client, settings: Settings, worker: None
) -> None:
    req = VideoRequest(
        topic="Tides", context="The Moon pulls the oceans toward it.", model="offline/templates",
        quality="low", voice=VOICE, owner=f"ada-{uuid.uuid4().hex[:6]}",
    )  # fmt: skip
    handle = await start_video(client, settings, req)
    result = await asyncio.wait_for(handle.result(), timeout=240)
    storage = get_storage(settings)
    told = [
        Narration.model_validate_json(p.read_text())
        for p in storage.path(f"jobs/{handle.id}/narration").glob("*.json")  # type: ignore[attr-defined]
    ]
    assert told and all(n.cues and n.audio_key for n in told)
    video = probe(storage.path(result.artifacts.video_key))  # type: ignore[attr-defined]
    assert video.codecs == {"video": "h264", "audio": "aac", "subtitle": "mov_text"}
    assert video.audio_rms > 0.01
    assert len(video.cues) == sum(len(n.cues) for n in told)
    assert video.duration >= sum(n.duration_s for n in told)
