"""Facts about produced media, read back with PyAV (used by several tests)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from t2m.media.encoding import X264_OPTIONS


@dataclass
class Probe:
    duration: float
    codecs: dict[str, str]
    audio_rms: float
    cues: list[tuple[float, float]]


def probe(path: Path) -> Probe:
    with av.open(str(path)) as c:
        codecs: dict[str, str] = {str(s.type): s.codec_context.name for s in c.streams}
        duration = float(c.duration or 0) / av.time_base
        cues = []
        if c.streams.subtitles:
            s = c.streams.subtitles[0]
            for p in c.demux(s):
                if p.size > 2 and p.pts is not None:  # mov_text gaps are 2-byte empty samples
                    cues.append(
                        (float(p.pts * s.time_base), float((p.pts + p.duration) * s.time_base))
                    )
    rms = 0.0
    if "audio" in codecs:
        with av.open(str(path)) as c:
            samples = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
            rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
    return Probe(duration, codecs, rms, cues)


def frame_at(path: Path, t: float) -> np.ndarray:
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            if frame.time is not None and frame.time + 1e-6 >= t:
                return frame.to_ndarray(format="rgb24")
    raise AssertionError(f"no frame at {t}s in {path}")


def make_clip(
    path: Path, seconds: float, color: tuple[int, int, int], size=(320, 180), fps=15
) -> Path:
    """A solid-colour h264 clip, standing in for a rendered scene (encoded as renders are)."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps, options=X264_OPTIONS)
        s.width, s.height, s.pix_fmt = size[0], size[1], "yuv420p"
        img = np.zeros((size[1], size[0], 3), dtype=np.uint8)
        img[:] = color
        for i in range(round(seconds * fps)):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = i, Fraction(1, fps)
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


def assert_broadcast_subtitles(text: str) -> int:
    """Every cue of an SRT or VTT file: at most 2 lines of at most 42 characters, at most 7 s;
    returns the number of cues."""

    def seconds(stamp: str) -> float:
        h, m, s = stamp.strip().replace(",", ".").split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)

    count = 0
    for block in text.replace("\r\n", "\n").split("\n\n"):
        rows = block.strip("\n").split("\n")
        timing = next((i for i, r in enumerate(rows) if " --> " in r), None)
        if timing is None:
            continue
        start, end = rows[timing].split(" --> ")
        body = [r for r in rows[timing + 1 :] if r.strip()]
        assert 1 <= len(body) <= 2, block
        assert all(len(r) <= 42 for r in body), block
        assert 0 <= seconds(end) - seconds(start) <= 7.0 + 1e-3, block
        count += 1
    return count
