"""Provider voices through litellm's speech API, against a real OpenAI-compatible speech server on
loopback (`tests/speech_server.py`: MP3 it synthesises): the video's audio is the server's, the
cues follow its timing, the cost is booked, an identical job asks for nothing, a bad key fails
the job at once, and a bad answer is refused by the jailed check."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import av
import numpy as np
import pytest
from pydantic import ValidationError
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.media import MediaActivities
from activities.messages import NarrateRequest
from t2m.catalog.db import JobStore
from t2m.catalog.storage import LocalStorage, get_storage
from t2m.config import Settings
from t2m.media.provider_speech import SpeechClient
from t2m.requests import InvalidRequest, build_request
from t2m.vocabulary.plan import Narration
from t2m.vocabulary.request import VideoOptions, VideoRequest
from tests.helpers import asgi_client, serve
from tests.speech_server import KEY, RATE, SpeechServer
from workflows.client import job_status, start_video

VOICE = "openai/tts-1:nova"
TTS_1_PER_CHAR = 15e-6
"""litellm's price of OpenAI's tts-1 (USD per input character, spaces not counted)."""


@pytest.fixture
async def speech(monkeypatch: pytest.MonkeyPatch):
    server = SpeechServer()
    async with serve(server.app()) as base:
        monkeypatch.setenv("OPENAI_API_BASE", f"{base}/v1")
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        yield server


def request(context: str) -> VideoRequest:
    return VideoRequest(
        topic="Tides", context=context, model="offline/templates", quality="low",
        voice=VOICE, owner=f"ada-{uuid.uuid4().hex[:6]}",
    )  # fmt: skip


def narrations(settings: Settings, job_id: str) -> list[Narration]:
    root = get_storage(settings).path(f"jobs/{job_id}/narration")  # type: ignore[attr-defined]
    return [Narration.model_validate_json(p.read_text()) for p in sorted(root.glob("*.json"))]


def envelope(samples: np.ndarray, window: int = RATE // 50) -> np.ndarray:
    n = samples.size // window
    return np.sqrt((samples[: n * window].reshape(n, window) ** 2).mean(axis=1))


def video_audio(path: Path) -> np.ndarray:
    resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
    chunks = []
    with av.open(str(path)) as c:
        for frame in c.decode(audio=0):
            chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    return np.concatenate(chunks)


async def test_a_job_narrated_by_a_provider_voice(
    client: Client, settings: Settings, worker: None, jobs: JobStore, speech: SpeechServer
) -> None:
    context = "The Moon pulls the oceans toward it. Two bulges of water follow it around the Earth."
    req = request(context)
    handle = await start_video(client, settings, req)
    result = await asyncio.wait_for(handle.result(), timeout=240)
    asked = [r["input"] for r in speech.requests]
    assert asked and {r["model"] for r in speech.requests} == {"tts-1"}
    assert {r["voice"] for r in speech.requests} == {"nova"}

    # the cues follow the server's audio, sentence by sentence
    told = narrations(settings, handle.id)
    cues = [c for n in told for c in n.cues]
    assert sorted(c.text for c in cues) == sorted(asked)
    for cue in cues:
        assert abs((cue.end - cue.start) - speech.served_s[cue.text]) < 0.03, cue

    # the video's audio is that audio: the title scene's (it says the topic) from the start
    video = get_storage(settings).path(result.artifacts.video_key)  # type: ignore[attr-defined]
    sent = speech.audio["Tides."]
    heard = video_audio(video)[: sent.size]
    correlation = np.corrcoef(envelope(sent), envelope(heard))[0, 1]
    assert correlation > 0.9, correlation

    # usage and cost booked: in the status and on the catalog row
    cost = sum(len("".join(text.split())) for text in asked) * TTS_1_PER_CHAR
    usage = (await job_status(handle)).usage["narrating"]
    assert usage.calls == len(asked) and usage.cached_calls == 0
    assert usage.cost_usd == pytest.approx(cost)
    row = await jobs.get(handle.id)
    assert row is not None and row.booked_usd == pytest.approx(cost)

    # an identical job: every sentence from the cache, not one request
    again = await start_video(client, settings, req)
    await asyncio.wait_for(again.result(), timeout=240)
    assert len(speech.requests) == len(asked)
    usage = (await job_status(again)).usage["narrating"]
    assert usage.calls == usage.cached_calls == len(asked) and usage.cost_usd == 0


async def test_a_bad_key_fails_the_job_at_once_in_one_line(
    client: Client,
    settings: Settings,
    worker: None,
    speech: SpeechServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-bad")
    handle = await start_video(client, settings, request("Waves carry energy, not water."))
    started = asyncio.get_running_loop().time()
    with pytest.raises(WorkflowFailureError):
        await asyncio.wait_for(handle.result(), timeout=60)
    assert asyncio.get_running_loop().time() - started < 30  # no retries with backoff
    status = await job_status(handle)
    assert status.status == "failed" and "\n" not in status.error
    assert VOICE in status.error and "Incorrect API key" in status.error, status.error
    scenes = len(status.scenes)
    assert 0 < len(speech.requests) <= scenes, "a narration asked once, never retried"


async def test_audio_that_is_not_audio_is_refused(tmp_path: Path, speech: SpeechServer) -> None:
    speech.garbage = True
    storage = LocalStorage(tmp_path / "storage")
    narrate = MediaActivities(Settings(data_dir=tmp_path / "data"), storage).narrate_scene
    asked = NarrateRequest(job_id=f"video-{uuid.uuid4()}", scene_index=0, text="Hi.", voice=VOICE)
    with pytest.raises(ApplicationError) as e:
        await ActivityEnvironment().run(narrate, asked)
    assert e.value.non_retryable and "refused" in str(e.value) and "not WAV, MP3" in str(e.value)


async def test_a_rate_limit_is_left_to_temporal_to_retry(
    tmp_path: Path, speech: SpeechServer
) -> None:
    speech.busy = 1
    narrate = MediaActivities(
        Settings(data_dir=tmp_path / "data"), LocalStorage(tmp_path)
    ).narrate_scene
    asked = NarrateRequest(job_id=f"video-{uuid.uuid4()}", scene_index=0, text="Hi.", voice=VOICE)
    with pytest.raises(Exception) as e:  # as raised: the activity's retry policy applies
        await ActivityEnvironment().run(narrate, asked)
    assert not isinstance(e.value, ApplicationError) and "RateLimit" in type(e.value).__name__
    again = await ActivityEnvironment().run(narrate, asked)  # the next attempt
    assert again.audio_key and again.usage.calls == 1 and len(speech.requests) == 2


async def test_a_storage_outage_neither_fails_a_paid_narration_nor_has_it_paid_again(
    tmp_path: Path, speech: SpeechServer
) -> None:
    """The provider speaks and the cost is booked, then storage (S3 away) cannot cache the
    audio: the narration goes on with it. Failing it had the activity's retries pay again."""

    class Unreachable(LocalStorage):
        def exists(self, key: str) -> bool:
            raise ConnectionRefusedError("storage is unreachable")

        def put_file(self, key: str, src: Path) -> None:
            raise ConnectionRefusedError("storage is unreachable")

    booked: list[float] = []

    async def book(cost: float) -> None:
        booked.append(cost)

    speaker = SpeechClient(Unreachable(tmp_path), "owner:ada", book)
    spoken = await speaker.speak(VOICE, ["The tide comes in."])
    assert spoken.audio[0] and len(speech.requests) == 1
    assert spoken.usage.cost_usd > 0 and booked == [spoken.usage.cost_usd]


def test_provider_voices_are_allowed_by_configuration() -> None:
    options = VideoOptions(topic="Tides", voice=VOICE)
    with pytest.raises(InvalidRequest) as e:
        build_request(Settings(), options, "ada")
    assert e.value.field == "voice" and "T2M_ALLOWED_VOICES" in e.value.message
    allowed = Settings(allowed_voices=[VOICE, "elevenlabs/eleven_multilingual_v2:Rachel"])
    assert build_request(allowed, options, "ada").voice == VOICE
    assert build_request(allowed, VideoOptions(topic="Tides"), "ada").voice == "en-us"
    default = Settings(allowed_voices=[VOICE], default_voice=VOICE)
    assert build_request(default, VideoOptions(topic="Tides"), "ada").voice == VOICE
    with pytest.raises(ValidationError, match="PROVIDER/MODEL:VOICE"):
        Settings(allowed_voices=["nova"])
    with pytest.raises(ValidationError, match="not in T2M_ALLOWED_VOICES"):
        Settings(default_voice=VOICE)


async def test_the_form_and_the_api_offer_the_allowed_voices(settings: Settings) -> None:
    allowed = settings.model_copy(update={"allowed_voices": [VOICE]})
    async with asgi_client(allowed) as http:
        offered = (await http.get("/api/v1/config")).json()
        assert offered["voices"] == ["festival:us_slt", VOICE]  # installed offline ones first
        assert offered["default_voice"] == "en-us"
        asked = {"configuration": {"topic": "Tides", "voice": "openai/tts-1:alloy"}}
        r = await http.post("/api/v1/videos/generate", json=asked)
        assert r.status_code == 422 and "voice" in r.text and VOICE in r.text, r.text
