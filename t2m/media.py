"""Media plumbing with PyAV: compose scenes + narration + soft subtitles, thumbnails, subtitles.

Composition re-encodes the video once so every scene can be *held* on its last frame while its
narration finishes (narration is never cut) and so scenes of differing sizes still join cleanly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from t2m.models import Cue

AUDIO_RATE = 44100
NARRATION_TAIL_S = 0.4
"""Silence kept after a scene's narration before the next scene starts."""


@dataclass(frozen=True)
class SceneInput:
    video: Path
    audio: Path | None
    audio_duration: float
    cues: Sequence[Cue]


@dataclass(frozen=True)
class Composed:
    duration: float
    cues: list[Cue]


def video_duration(path: Path) -> float:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        if s.duration is not None and s.time_base is not None:
            return float(s.duration * s.time_base)
        return float(c.duration or 0) / av.time_base


def read_audio(path: Path) -> np.ndarray:
    """Decode any audio file to mono float32 samples at AUDIO_RATE."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
    chunks: list[np.ndarray] = []
    with av.open(str(path)) as c:
        for frame in c.decode(audio=0):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
    for out in resampler.resample(None):
        chunks.append(out.to_ndarray().reshape(-1))
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)


def compose(
    scenes: Sequence[SceneInput],
    out: Path,
    *,
    subtitles: bool,
) -> Composed:
    """Join scenes into one MP4 (h264 + AAC narration + mov_text subtitles).

    Each scene lasts max(its animation, its narration + a short tail); a scene shorter than its
    narration is held on its last frame. A silent scene's `audio_duration` is its reading time.
    """
    with av.open(str(scenes[0].video)) as first:
        vs = first.streams.video[0]
        width, height = vs.codec_context.width, vs.codec_context.height
        fps = Fraction(vs.average_rate or 30)
    has_audio = any(s.audio for s in scenes)

    out.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(out), "w", format="mp4", options={"movflags": "+faststart"}) as oc:
        v_out = oc.add_stream("libx264", rate=fps)
        v_out.width, v_out.height, v_out.pix_fmt = width, height, "yuv420p"
        v_out.options = {"crf": "20", "preset": "veryfast"}
        a_out = oc.add_stream("aac", rate=AUDIO_RATE, layout="mono") if has_audio else None
        s_out = _subtitle_stream(oc) if subtitles else None

        frame_index = 0
        offset = 0.0
        audio_track: list[np.ndarray] = []
        cues: list[Cue] = []
        for scene in scenes:
            written = 0
            last = None
            with av.open(str(scene.video)) as ic:
                for frame in ic.decode(video=0):
                    last = frame.reformat(width=width, height=height, format="yuv420p")
                    frame_index = _encode(oc, v_out, last, frame_index)
                    written += 1
            animation = written / fps
            narration_end = scene.audio_duration + NARRATION_TAIL_S if scene.audio_duration else 0
            slot = max(float(animation), narration_end)
            while last is not None and written < round(slot * fps):
                frame_index = _encode(oc, v_out, last, frame_index)
                written += 1
            slot = float(written / fps)
            if has_audio:
                samples = round(slot * AUDIO_RATE)
                track = np.zeros(samples, dtype=np.float32)
                if scene.audio:
                    voice = read_audio(scene.audio)[:samples]
                    track[: len(voice)] = voice
                audio_track.append(track)
            cues += [
                Cue(start=offset + c.start, end=min(offset + c.end, offset + slot), text=c.text)
                for c in scene.cues
            ]
            offset += slot
        for packet in v_out.encode(None):
            oc.mux(packet)
        if a_out is not None:
            _encode_audio(oc, a_out, np.concatenate(audio_track))
        if s_out is not None:
            for cue in cues:
                _mux_cue(oc, s_out, cue)
    return Composed(duration=offset, cues=cues)


def _encode(oc: av.container.OutputContainer, stream, frame: av.VideoFrame, index: int) -> int:
    frame.pts = index
    frame.time_base = Fraction(1, 1) / stream.codec_context.framerate
    for packet in stream.encode(frame):
        oc.mux(packet)
    return index + 1


def _encode_audio(oc: av.container.OutputContainer, stream, samples: np.ndarray) -> None:
    step = stream.codec_context.frame_size or 1024
    for i in range(0, len(samples), step):
        chunk = samples[i : i + step]
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="fltp", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = i
        frame.time_base = Fraction(1, AUDIO_RATE)
        for packet in stream.encode(frame):
            oc.mux(packet)
    for packet in stream.encode(None):
        oc.mux(packet)


def _subtitle_stream(oc: av.container.OutputContainer):
    """A mov_text stream; its encoder needs the ASS header the SRT decoder would produce."""
    decoder = av.CodecContext.create("subrip", "r")
    decoder.open()
    stream = oc.add_stream("mov_text")
    stream.codec_context.subtitle_header = decoder.subtitle_header
    stream.codec_context.time_base = Fraction(1, 1000)
    stream.time_base = Fraction(1, 1000)
    return stream


def _mux_cue(oc: av.container.OutputContainer, stream, cue: Cue) -> None:
    start, end = round(cue.start * 1000), round(cue.end * 1000)
    text = cue.text.replace("\n", "\\N")
    sub = av.subtitles.subtitle.SubtitleSet.create(
        f"0,0,Default,,0,0,0,,{text}".encode(), 0, end - start, start
    )
    packet = stream.codec_context.encode_subtitle(sub)
    packet.stream = stream
    packet.pts = packet.dts = round(cue.start / stream.time_base)
    packet.duration = round((cue.end - cue.start) / stream.time_base)
    oc.mux(packet)


def thumbnail(video: Path, out: Path, at_s: float) -> Path:
    """Save the first frame at or after `at_s` as PNG."""
    with av.open(str(video)) as c:
        stream = c.streams.video[0]
        time_base = stream.time_base or Fraction(1, av.time_base)
        c.seek(int(at_s / time_base), stream=stream, backward=True)
        for frame in c.decode(stream):
            if frame.time is not None and frame.time + 1e-6 >= at_s:
                break
        out.parent.mkdir(parents=True, exist_ok=True)
        frame.to_image().save(out, format="PNG")
    return out


def sample_frames(video: Path, out_dir: Path, count: int) -> list[Path]:
    """`count` PNG frames spread evenly over the video (the last one near its end)."""
    duration = video_duration(video)
    times = [duration * (i + 1) / (count + 1) for i in range(count - 1)] + [
        max(0.0, duration - 0.1)
    ]
    return [thumbnail(video, out_dir / f"frame-{i}.png", t) for i, t in enumerate(times)]


def _timestamp(seconds: float, sep: str) -> str:
    ms = round(seconds * 1000)
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def to_srt(cues: Sequence[Cue]) -> str:
    return "\n".join(
        f"{i}\n{_timestamp(c.start, ',')} --> {_timestamp(c.end, ',')}\n{c.text}\n"
        for i, c in enumerate(cues, 1)
    )


def to_vtt(cues: Sequence[Cue]) -> str:
    body = "\n".join(
        f"{_timestamp(c.start, '.')} --> {_timestamp(c.end, '.')}\n{c.text}\n" for c in cues
    )
    return "WEBVTT\n\n" + body
