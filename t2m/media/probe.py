"""Is this file what a render makes? A bounded check of a scene video before anything opens it.

A render's output is the attacker's file (the scene code can write any bytes and point
result.json at them), and FFmpeg trusts what a file claims: its size, frame rate, duration, packet
count and edit list decide how much the worker allocates and how long it loops. So a scene video
is accepted only if it has the shape Manim gives it, checked first by a small walker over the MP4
boxes that reads at most `MAX_MOOV_BYTES` (no FFmpeg involved), then by FFmpeg with the format
pinned to MP4 and the `file` protocol only:

- a regular, dense file (a sparse one would densify in storage), its size bounded by its frames;
- the boxes of a plain MP4 (`ftyp`, `mdat`, `moov`, `free`), one H.264 (`avc1`) video track;
- the quality's exact width, height and frame rate: every sample lasts exactly one frame;
- a duration within the narration plus `MARGIN_S`, and no more samples than that many frames;
- at most one edit (FFmpeg writes one to skip the B-frame delay), no more than a few frames in.

Runs inside the render jail as its last step (a clear message for the fixer), and again outside in
a media jail (`t2m.media.jailed`), the check that counts. Imports only the standard library (and
PyAV, lazily), so the jail needs nothing more to run it.
"""

from __future__ import annotations

import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

QUALITIES = {
    "low": (854, 480, 15),
    "medium": (1280, 720, 30),
    "high": (1920, 1080, 60),
    "ultra": (3840, 2160, 60),
}
"""Width, height and frame rate of Manim's quality presets (`manim.constants.QUALITIES`)."""
MARGIN_S = 60.0
"""How much longer than its narration a scene may run (animations can outlast the voice)."""
MAX_MOOV_BYTES = 16 * 1024**2
MAX_TOP_BOXES = 16
MAX_BOXES = 256
MAX_DELAY_FRAMES = 16
"""How far the one edit may skip into the track (the encoder's B-frame delay is 2 frames)."""
SLACK_BYTES = 256 * 1024
"""Room for boxes other than the samples (the `moov` is checked on its own)."""
TOP_BOXES = frozenset({b"ftyp", b"free", b"skip", b"wide", b"mdat", b"moov"})
CONTAINERS = frozenset({b"moov", b"trak", b"edts", b"mdia", b"minf", b"stbl", b"dinf"})


class BadVideo(ValueError):
    """The file is not what a render makes; the message says why, for the fixer."""


@dataclass(frozen=True)
class VideoFacts:
    width: int
    height: int
    fps: int
    frames: int
    duration_s: float
    size: int


def max_seconds(min_seconds: float) -> float:
    """The longest a scene rendered to last `min_seconds` may be."""
    return min_seconds + MARGIN_S


def check(path: Path, quality: str, longest_s: float, *, with_ffmpeg: bool = True) -> VideoFacts:
    """The facts of the scene video at `path`, or BadVideo saying how it is not a render's."""
    if quality not in QUALITIES:
        raise BadVideo(f"unknown quality {quality!r}")
    width, height, fps = QUALITIES[quality]
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        raise BadVideo(f"the scene video cannot be opened: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise BadVideo("the scene video is not a regular file")
        frame_cap = int(longest_s * fps) + 2
        if st.st_size > SLACK_BYTES + MAX_MOOV_BYTES + frame_cap * _max_frame_bytes(width, height):
            raise BadVideo(f"the scene video is far too large ({st.st_size} bytes)")
        if st.st_blocks * 512 + SLACK_BYTES < st.st_size:
            raise BadVideo(
                f"the scene video is a sparse file ({st.st_size} bytes long, "
                f"{st.st_blocks * 512} allocated): not something Manim writes"
            )
        facts = _walk(fd, st.st_size, width, height, fps, longest_s)
    finally:
        os.close(fd)
    if with_ffmpeg:
        _check_with_ffmpeg(path, facts, longest_s)
    return facts


def _max_frame_bytes(width: int, height: int) -> int:
    """More than any H.264 frame of this size takes (a raw 4:2:0 frame is 1.5 bytes/pixel)."""
    return width * height * 2


def _boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of the boxes in data[start:end]."""
    out: list[tuple[bytes, int, int]] = []
    while start < end:
        if end - start < 8 or len(out) >= MAX_BOXES:
            raise BadVideo("the scene video's MP4 structure is malformed")
        size, kind = struct.unpack_from(">I4s", data, start)
        header = 8
        if size == 1 and end - start >= 16:
            size, header = struct.unpack_from(">Q", data, start + 8)[0], 16
        if size < header or start + size > end:
            raise BadVideo(f"the scene video's MP4 box {kind!r} has a bad size")
        out.append((kind, start + header, start + size))
        start += size
    return out


def _top_level(fd: int, size: int) -> bytes:
    """The one `moov` box's bytes, after checking the file holds only plain MP4 boxes."""
    offset, moov, count = 0, None, 0
    while offset < size:
        count += 1
        head = os.pread(fd, 16, offset)
        if len(head) < 8 or count > MAX_TOP_BOXES:
            raise BadVideo("the scene video's MP4 structure is malformed")
        box_size, kind = struct.unpack_from(">I4s", head)
        header = 8
        if box_size == 1 and len(head) == 16:
            box_size, header = struct.unpack_from(">Q", head, 8)[0], 16
        elif box_size == 0:
            box_size = size - offset
        if kind not in TOP_BOXES:
            raise BadVideo(f"the scene video has an MP4 box Manim does not write: {kind!r}")
        if box_size < header or offset + box_size > size:
            raise BadVideo(f"the scene video's MP4 box {kind!r} has a bad size")
        if kind == b"moov":
            if moov is not None:
                raise BadVideo("the scene video has two `moov` boxes")
            if box_size > MAX_MOOV_BYTES:
                raise BadVideo(f"the scene video's index is far too large ({box_size} bytes)")
            moov = os.pread(fd, box_size, offset)
            if len(moov) != box_size:
                raise BadVideo("the scene video is truncated")
        offset += box_size
    if moov is None:
        raise BadVideo("the scene video has no `moov` box (not a finished MP4)")
    return moov


def _walk(fd: int, size: int, width: int, height: int, fps: int, longest_s: float) -> VideoFacts:
    moov = _top_level(fd, size)
    found: dict[bytes, list[tuple[int, int]]] = {}

    def visit(start: int, end: int, depth: int) -> None:
        for kind, s, e in _boxes(moov, start, end):
            found.setdefault(kind, []).append((s, e))
            if kind in CONTAINERS and depth < 6:
                visit(s, e, depth + 1)

    visit(8 if struct.unpack_from(">I", moov)[0] != 1 else 16, len(moov), 0)
    if len(found.get(b"trak", [])) != 1:
        raise BadVideo("the scene video must have exactly one track (Manim writes video only)")
    for kind in (b"mvex", b"moof"):
        if kind in found:
            raise BadVideo("the scene video is fragmented (Manim writes a plain MP4)")

    def one(kind: bytes) -> bytes:
        boxes = found.get(kind, [])
        if len(boxes) != 1:
            raise BadVideo(f"the scene video needs exactly one {kind.decode()!r} box")
        s, e = boxes[0]
        return moov[s:e]

    def u32(b: bytes, at: int) -> int:
        if at + 4 > len(b):
            raise BadVideo("the scene video's MP4 index is truncated")
        return int(struct.unpack_from(">I", b, at)[0])

    hdlr = one(b"hdlr")
    if hdlr[8:12] != b"vide":
        raise BadVideo("the scene video's track is not video")
    stsd = one(b"stsd")
    if u32(stsd, 4) != 1 or stsd[12:16] != b"avc1":
        raise BadVideo(f"the scene video is not H.264 (its sample entry is {stsd[12:16]!r})")
    got_w, got_h = struct.unpack_from(">HH", stsd, 8 + 32) if len(stsd) >= 44 else (0, 0)
    if (got_w, got_h) != (width, height):
        raise BadVideo(f"the scene video is {got_w}x{got_h}, not the quality's {width}x{height}")
    mdhd = one(b"mdhd")
    timescale = u32(mdhd, 20 if mdhd[0] == 1 else 12)
    if timescale == 0 or timescale % fps:
        raise BadVideo(f"the scene video's time scale ({timescale}) does not fit {fps} fps")
    delta = timescale // fps
    stsz = one(b"stsz")
    constant, frames = u32(stsz, 4), u32(stsz, 8)
    frame_cap = int(longest_s * fps) + 1
    if frames == 0:
        raise BadVideo("the scene video has no frames")
    if frames > frame_cap:
        raise BadVideo(
            f"the scene video has {frames} frames, more than {longest_s:.1f} s at {fps} fps "
            "(the narration plus a minute): shorten the scene"
        )
    if constant:
        sample_bytes = constant * frames
    else:
        if len(stsz) < 12 + 4 * frames:
            raise BadVideo("the scene video's sample sizes are truncated")
        sample_bytes = sum(struct.unpack_from(f">{frames}I", stsz, 12))
    if sample_bytes > frames * _max_frame_bytes(width, height):
        raise BadVideo("the scene video's frames are larger than any frame of its size")
    stts = one(b"stts")
    entries = u32(stts, 4)
    if entries > frames or len(stts) < 8 + 8 * entries:
        raise BadVideo("the scene video's frame timing table is malformed")
    timed = length = 0
    for i in range(entries):
        count, d = struct.unpack_from(">II", stts, 8 + 8 * i)
        # Joined partial movies may shift a frame by a tick or two; nothing more.
        if not delta // 2 <= d <= 2 * delta:
            rate = f"{timescale / d:.6g} fps" if d else "zero-length frames"
            raise BadVideo(f"the scene video's frames do not last 1/{fps} s ({rate})")
        timed += count
        length += count * d
    if timed != frames:
        raise BadVideo("the scene video's frame timing does not match its frame count")
    duration = length / timescale
    if duration > longest_s or abs(length - frames * delta) > frames * delta // 10:
        raise BadVideo(f"the scene video lasts {duration:.1f} s for {frames} frames at {fps} fps")
    for kind in (b"ctts", b"stss", b"stco", b"co64", b"stsc"):
        for s, e in found.get(kind, []):
            if u32(moov[s:e], 4) > frames:
                raise BadVideo(
                    f"the scene video's {kind.decode()!r} table is longer than its frames"
                )
    _check_edits(found, moov, length, delta)
    if size > sample_bytes + len(moov) + SLACK_BYTES:
        raise BadVideo(f"the scene video holds {size} bytes for {sample_bytes} bytes of frames")
    return VideoFacts(width, height, fps, frames, duration, size)


def _check_edits(
    found: dict[bytes, list[tuple[int, int]]], moov: bytes, length: int, delta: int
) -> None:
    """At most one edit, at normal speed, skipping at most a few frames (the encoder delay)."""
    elsts = found.get(b"elst", [])
    if len(elsts) > 1:
        raise BadVideo("the scene video has more than one edit list")
    if not elsts:
        return
    s, e = elsts[0]
    box = moov[s:e]
    version, count = box[0], struct.unpack_from(">I", box, 4)[0] if len(box) >= 8 else -1
    if count == 0:
        return
    if count != 1:
        raise BadVideo(f"the scene video has an edit list of {count} entries (Manim writes one)")
    fmt = ">QqHH" if version == 1 else ">IiHH"
    if len(box) < 8 + struct.calcsize(fmt):
        raise BadVideo("the scene video's edit list is truncated")
    _segment, media_time, rate, _ = struct.unpack_from(fmt, box, 8)
    if rate != 1 or not 0 <= media_time <= MAX_DELAY_FRAMES * delta or media_time >= length:
        raise BadVideo("the scene video's edit list is not the encoder's plain delay")


def _check_with_ffmpeg(path: Path, facts: VideoFacts, longest_s: float) -> None:
    """FFmpeg's view, with the format pinned and only the `file` protocol: one H.264 stream of
    the expected size and rate, and no more packets than the index said (counted, not kept)."""
    import av

    try:
        with av.open(
            str(path), format="mp4", options={"protocol_whitelist": "file"}, timeout=10
        ) as c:
            if len(c.streams) != 1 or len(c.streams.video) != 1:
                raise BadVideo("the scene video must hold exactly one (video) stream")
            s = c.streams.video[0]
            cc = s.codec_context
            if cc.name != "h264" or (cc.width, cc.height) != (facts.width, facts.height):
                raise BadVideo(f"FFmpeg reads the scene video as {cc.name} {cc.width}x{cc.height}")
            if (
                s.average_rate is not None
                and abs(float(s.average_rate) - facts.fps) > facts.fps / 10
            ):
                raise BadVideo(f"FFmpeg reads the scene video at {float(s.average_rate):.6g} fps")
            if c.duration is not None and c.duration / av.time_base > longest_s + 1:
                raise BadVideo(f"FFmpeg reads the scene video as {c.duration / av.time_base} s")
            for packets, _ in enumerate(c.demux(s), 1):
                if packets > facts.frames + 1:
                    raise BadVideo("the scene video has more packets than its index says")
    except av.error.FFmpegError as e:
        raise BadVideo(f"FFmpeg cannot read the scene video: {e}") from None
