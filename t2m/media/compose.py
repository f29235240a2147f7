"""Media plumbing with PyAV: compose scenes + narration + soft subtitles, thumbnails, subtitles.

Scenes are rendered to their narration's length, so composing copies their video packets and
encodes only the audio; see `compose` for the rare scene that has to be re-encoded.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from t2m.media.encoding import X264_OPTIONS
from t2m.vocabulary.plan import Cue

AUDIO_RATE = 44100
NARRATION_TAIL_S = 0.4
"""Silence kept after a scene's narration before the next scene starts."""
MAX_SCENE_S = 900.0
MAX_RATE = 60
"""Bounds on what a file may make this module allocate or loop over (a scene's length, its frame
rate): the files are checked before they get here (`t2m.media.probe`), this is the belt."""


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
    scenes: Sequence[SceneInput], out: Path, *, subtitles: bool, language: str = "und"
) -> Composed:
    """Join scenes into one MP4: video packets copied, narration encoded once as AAC, mov_text
    subtitles, `+faststart`; the audio and subtitle streams tagged with `language` (ISO 639-2).

    Each scene lasts max(its animation, its narration + a short tail). Scenes rendered to their
    narration's length (the normal case) and sharing the first scene's codec, size and frame rate
    are joined packet by packet, with no re-encode. A scene that is shorter than its narration or
    differs from the first one is re-encoded alone to match (held on its last frame); if even that
    cannot be joined losslessly (different codec parameters), the whole video is re-encoded.
    """
    with tempfile.TemporaryDirectory(prefix="t2m-compose-") as tmp:
        spec = _VideoSpec.of(scenes[0].video)
        videos = [_conforming(s, spec, Path(tmp) / f"scene-{i}.mp4") for i, s in enumerate(scenes)]
        if any(_VideoSpec.of(v) != spec for v in videos):
            spec = _VideoSpec.of(videos[0]).reencoded()
            videos = [
                _conforming(s, spec, Path(tmp) / f"all-{i}.mp4", force=True)
                for i, s in enumerate(scenes)
            ]
        return _join(scenes, videos, out, subtitles=subtitles, language=language)


def join(videos: Sequence[Path], out: Path) -> float:
    """Join the ranges of one split render (`t2m.render.split`) by packet copy into `out`: the whole
    render's own packets, no re-encode. Ranges that could not be joined losslessly (another
    codec, size, rate or encoder setup) are an error, never re-encoded. Returns the duration."""
    spec = _VideoSpec.of(videos[0])
    if any(_VideoSpec.of(v) != spec for v in videos[1:]):
        raise ValueError("the ranges of a split render differ in codec parameters")
    out.parent.mkdir(parents=True, exist_ok=True)
    offset = 0.0
    with av.open(str(out), "w", format="mp4", options={"movflags": "+faststart"}) as oc:
        with av.open(str(videos[0])) as first:
            v_out = oc.add_stream_from_template(first.streams.video[0])
        for video in videos:
            offset += _copy_packets(oc, v_out, video, offset)
    return offset


@dataclass(frozen=True)
class _VideoSpec:
    """What must match for two H.264 streams to be joined packet by packet."""

    codec: str
    width: int
    height: int
    pix_fmt: str
    rate: Fraction
    extradata: bytes

    @classmethod
    def of(cls, path: Path) -> _VideoSpec:
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            cc = s.codec_context
            # the nominal rate: the average is derived from the duration and can be off by a hair
            rate = Fraction(s.base_rate or s.guessed_rate or s.average_rate or 30)
            if not 0 < rate <= MAX_RATE:
                raise ValueError(f"a scene's frame rate is {float(rate):.6g} fps")
            return cls(
                cc.name, cc.width, cc.height, cc.pix_fmt or "", rate, bytes(cc.extradata or b"")
            )

    def reencoded(self) -> _VideoSpec:
        return _VideoSpec("h264", self.width, self.height, "yuv420p", self.rate, b"")


def _slot(scene: SceneInput) -> float:
    """How long a scene must last: its narration plus the tail (its reading time if silent)."""
    slot = scene.audio_duration + NARRATION_TAIL_S if scene.audio_duration else 0.0
    return min(max(slot, 0.0), MAX_SCENE_S)


def _conforming(scene: SceneInput, spec: _VideoSpec, tmp: Path, *, force: bool = False) -> Path:
    """The scene's video if it can be joined as it is, else a re-encoded, held copy that can."""
    fits = _VideoSpec.of(scene.video) == spec
    if fits and not force and video_duration(scene.video) + 1 / spec.rate >= _slot(scene):
        return scene.video
    with av.open(str(scene.video)) as ic, av.open(str(tmp), "w", format="mp4") as oc:
        v_out = oc.add_stream("libx264", rate=spec.rate, options=X264_OPTIONS)
        v_out.width, v_out.height, v_out.pix_fmt = spec.width, spec.height, "yuv420p"
        written, last, most = 0, None, round(MAX_SCENE_S * spec.rate)
        for frame in ic.decode(video=0):
            last = frame.reformat(width=spec.width, height=spec.height, format="yuv420p")
            written = _encode(oc, v_out, last, written)
            if written > most:
                raise ValueError(f"a scene lasts more than {MAX_SCENE_S:.0f} s")
        while last is not None and written < round(_slot(scene) * spec.rate):
            written = _encode(oc, v_out, last, written)
        for packet in v_out.encode(None):
            oc.mux(packet)
    return tmp


def _join(
    scenes: Sequence[SceneInput],
    videos: Sequence[Path],
    out: Path,
    *,
    subtitles: bool,
    language: str,
) -> Composed:
    has_audio = any(s.audio for s in scenes)
    out.parent.mkdir(parents=True, exist_ok=True)
    offset, cues, audio_track = 0.0, [], []
    with av.open(str(out), "w", format="mp4", options={"movflags": "+faststart"}) as oc:
        with av.open(str(videos[0])) as first:
            v_out = oc.add_stream_from_template(first.streams.video[0])
        # The fast AAC coder: about twice the speed of the default search, plenty for speech.
        aac = {"aac_coder": "fast"}
        a_out = (
            oc.add_stream("aac", rate=AUDIO_RATE, layout="mono", options=aac) if has_audio else None
        )
        s_out = _subtitle_stream(oc) if subtitles else None
        for tagged in (a_out, s_out):
            if tagged is not None:
                tagged.metadata["language"] = language
        for scene, video in zip(scenes, videos, strict=True):
            slot = _copy_packets(oc, v_out, video, offset)
            if has_audio:
                track = np.zeros(round(slot * AUDIO_RATE), dtype=np.float32)
                if scene.audio:
                    voice = read_audio(scene.audio)[: len(track)]
                    track[: len(voice)] = voice
                audio_track.append(track)
            cues += [
                Cue(start=offset + c.start, end=min(offset + c.end, offset + slot), text=c.text)
                for c in scene.cues
            ]
            offset += slot
        if a_out is not None:
            _encode_audio(oc, a_out, np.concatenate(audio_track))
        if s_out is not None:
            for cue in cues:
                _mux_cue(oc, s_out, cue)
    return Composed(duration=offset, cues=cues)


def _copy_packets(oc: av.container.OutputContainer, stream, video: Path, offset_s: float) -> float:
    """Mux `video`'s packets into `stream`, shifted to start at `offset_s`; return its length."""
    with av.open(str(video)) as ic:
        src = ic.streams.video[0]
        tb = src.time_base or Fraction(1, av.time_base)
        packets = []
        for p in ic.demux(src):
            if p.size:
                packets.append(p)
            if len(packets) > MAX_SCENE_S * MAX_RATE:
                raise ValueError(f"a scene has more than {MAX_SCENE_S * MAX_RATE:.0f} frames")
        start = min(p.pts for p in packets if p.pts is not None)
        end = max(p.pts + (p.duration or 0) for p in packets if p.pts is not None)
        shift = round(offset_s / tb) - start
        for p in packets:
            p.pts = None if p.pts is None else p.pts + shift
            p.dts = None if p.dts is None else p.dts + shift
            p.stream = stream
            oc.mux(p)
    return min(float((end - start) * tb), MAX_SCENE_S)


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


# --- a thumbnail that shows content ------------------------------------------------------------
# A fixed time lands on whatever is there: taken at 2.0 s it was the fade between scenes 1 and 2,
# and a third of the thumbnails were black. So frames are sampled over the whole video (and at the
# time the workflow suggests), each scored by its detail (the spread of its luma) and whether it
# is settled (the same as a moment before: not inside a fade or a move). The best one is kept;
# ties go to the one nearest the suggested time. Deterministic for a given video.
THUMB_CANDIDATES = 12
SETTLE_S = 0.3
"""A frame is settled if the one this long before looks the same (no fade, no motion)."""
_MOVING = 2.0
"""Mean absolute luma change (0–255) above which a frame is still moving."""


def _luma(frame: av.VideoFrame) -> np.ndarray:
    small = frame.reformat(width=160, height=90, format="gray")
    return small.to_ndarray()[:90, :160].astype(np.float32)


def _frames_near(c: av.container.InputContainer, at_s: float) -> tuple[av.VideoFrame, float]:
    """The first frame at or after `at_s` and how much it differs from the one SETTLE_S before."""
    stream = c.streams.video[0]
    time_base = stream.time_base or Fraction(1, av.time_base)
    before_s = max(0.0, at_s - SETTLE_S)
    c.seek(int(before_s / time_base), stream=stream, backward=True)
    before = frame = None
    for frame in c.decode(stream):
        if frame.time is None:
            continue
        if before is None and frame.time + 1e-6 >= before_s:
            before = frame
        if frame.time + 1e-6 >= at_s:
            break
    if frame is None:
        raise ValueError("the video has no frames")
    change = float(np.abs(_luma(frame) - _luma(before or frame)).mean())
    return frame, change


def _thumb_score(frame: av.VideoFrame, change: float) -> float:
    """Detail (luma spread), halved for a frame that is still changing."""
    detail = float(_luma(frame).std())
    return detail if change <= _MOVING else detail / 2


def best_thumbnail(video: Path, out: Path, at_s: float, duration_s: float) -> Path:
    """Save the best frame (see the module doc) as PNG; `at_s` is the suggested time."""
    end = max(0.0, duration_s - 0.05)
    times = sorted(
        {round(min(at_s, end), 3)}
        | {round(end * (i + 1) / THUMB_CANDIDATES, 3) for i in range(THUMB_CANDIDATES)}
    )
    best: tuple[float, float, av.VideoFrame] | None = None
    with av.open(str(video)) as c:
        for t in times:
            frame, change = _frames_near(c, t)
            key = (_thumb_score(frame, change), -abs(t - at_s))
            if best is None or key > best[:2]:
                best = (*key, frame)
        assert best is not None
        out.parent.mkdir(parents=True, exist_ok=True)
        best[2].to_image().save(out, format="PNG")
    return out
