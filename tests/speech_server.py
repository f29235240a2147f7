"""A real OpenAI-compatible speech server for tests: `POST /v1/audio/speech` answers with MP3 it
synthesises (espeak-ng's WAV, at its own speed and pitch, re-encoded with PyAV's LAME), checks
the bearer key like OpenAI (401 with OpenAI's error body), and records every request and the
duration of the audio it sent, so a test can check what t2m did with it."""

from __future__ import annotations

import io
import subprocess
import tempfile
import wave
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

KEY = "sk-test-speech"
RATE = 22050
SPEED_WPM = 210
"""Faster than t2m's own espeak-ng narration (160 wpm): cues timed by t2m's engine would not fit."""


@dataclass
class SpeechServer:
    requests: list[dict] = field(default_factory=list)
    served_s: dict[str, float] = field(default_factory=dict)
    """Seconds of audio sent for each input text."""
    audio: dict[str, np.ndarray] = field(default_factory=dict)
    """The samples (float32 at RATE) sent for each input text, as decoded back from the MP3."""
    busy: int = 0
    """Answer this many requests with 429 (rate limited) first."""
    garbage: bool = False
    """Answer with bytes that are not audio (a broken or hostile server)."""

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/audio/speech")
        async def speech(request: Request) -> Response:
            body = await request.json()
            self.requests.append(body)
            if request.headers.get("authorization") != f"Bearer {KEY}":
                error: dict[str, str | None] = {
                    "message": "Incorrect API key provided: sk-bad. You can find your API key at"
                    " https://platform.openai.com/account/api-keys.",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
                return JSONResponse({"error": error}, status_code=401)
            if self.busy > 0:
                self.busy -= 1
                error = {
                    "message": "Rate limit reached",
                    "type": "requests",
                    "code": None,
                }
                return JSONResponse({"error": error}, status_code=429)
            if self.garbage:
                return Response(b"<html>not audio</html>" * 100, media_type="audio/mpeg")
            mp3 = mp3_of(espeak(body["input"]))
            samples = decode(mp3)
            self.audio[body["input"]] = samples
            self.served_s[body["input"]] = samples.size / RATE
            return Response(mp3, media_type="audio/mpeg")

        return app


def espeak(text: str) -> np.ndarray:
    """espeak-ng's speech of `text` as int16 samples at RATE (its native rate)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "s.wav"
        cmd = ["espeak-ng", "-v", "en-gb+f3", "-s", str(SPEED_WPM), "-w", str(out), text]
        subprocess.run(cmd, check=True, capture_output=True, timeout=30)
        with wave.open(str(out)) as w:
            assert w.getframerate() == RATE and w.getsampwidth() == 2
            return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def mp3_of(samples: np.ndarray) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=RATE, layout="mono")
        for i in range(0, samples.size, 1152):
            chunk = samples[i : i + 1152].reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(chunk, format="s16p", layout="mono")
            frame.sample_rate = RATE
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def decode(data: bytes) -> np.ndarray:
    resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
    chunks = []
    with av.open(io.BytesIO(data)) as c:
        for frame in c.decode(audio=0):
            chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(chunks)
