"""A speech provider's answers made into one narration WAV, measured: runs in a media jail
(`t2m.media_jail.join_speech`), since the bytes are a remote server's and FFmpeg trusts what a
file claims.

Each part must be a file of a format speech APIs return (WAV, MP3, AAC in ADTS, FLAC, Ogg), told
by its first bytes and pinned when FFmpeg opens it, no larger than `MAX_PART_BYTES`, and decode
to at most its sentence's longest plausible length; the parts are joined with a short gap and
written as 16-bit mono PCM at the composer's rate, their measured durations returned for cues.
"""

from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np

MAX_PART_BYTES = 16 * 1024**2


def longest_s(sentence: str) -> float:
    """The longest a sentence's speech may last: a second a word (a slow reader says 2-3 words a
    second) plus room for pauses and spelled-out formulas."""
    return 15.0 + len(sentence.split())


class BadAudio(ValueError):
    """A part is not audio of a known format, or is longer than its sentence could be."""


def sniff(head: bytes) -> str | None:
    """The FFmpeg demuxer for a file starting with `head`, if it is a format speech APIs use."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:3] == b"ID3":
        return "mp3"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "aac" if head[1] & 0x06 == 0 else "mp3"  # ADTS has layer bits 00
    return None


def decode(path: Path, rate: int, longest_s: float) -> np.ndarray:
    """The part at `path` as mono float32 samples at `rate`; BadAudio if it is not acceptable."""
    import av

    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        if os.fstat(f.fileno()).st_size > MAX_PART_BYTES:
            raise BadAudio(f"a speech answer is larger than {MAX_PART_BYTES} bytes")
        fmt = sniff(f.read(16))
    if fmt is None:
        raise BadAudio("a speech answer is not WAV, MP3, AAC, FLAC or Ogg audio")
    limit = int(longest_s * rate)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    chunks: list[np.ndarray] = []
    count = 0
    try:
        with av.open(str(path), format=fmt) as c:
            if not c.streams.audio:
                raise BadAudio("a speech answer has no audio stream")
            for frame in c.decode(audio=0):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
                    count += chunks[-1].size
                if count > limit:
                    raise BadAudio(f"a sentence's speech lasts more than {longest_s:.0f} s")
    except av.FFmpegError as e:
        raise BadAudio(f"a speech answer cannot be decoded: {e}") from None
    for out in resampler.resample(None):
        chunks.append(out.to_ndarray().reshape(-1))
    samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    if samples.size == 0:
        raise BadAudio("a speech answer holds no sound")
    return samples[:limit]


def join(
    parts: list[Path], longest_s: list[float], out: Path, rate: int, gap_s: float
) -> list[float]:
    """Decode `parts`, write them to `out` with `gap_s` of silence between; their durations."""
    gap = np.zeros(int(gap_s * rate), dtype=np.float32)
    pieces: list[np.ndarray] = []
    durations = []
    for i, (part, longest) in enumerate(zip(parts, longest_s, strict=True)):
        samples = decode(part, rate, longest)
        if i:
            pieces.append(gap)
        pieces.append(samples)
        durations.append(samples.size / rate)
    pcm = (np.clip(np.concatenate(pieces), -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return durations
