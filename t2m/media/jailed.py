"""Media work on untrusted files, jailed like a render: probes, compose, thumbnails and the frames
a vision model is shown.

A scene video is the attacker's file until proven otherwise, and FFmpeg's allocations and loops
follow what a file claims (an 8K frame size, 10⁹ fps, 37 h of packets, a 10 k-entry edit list, a
concat script naming a FIFO). So the worker never opens one itself, neither on its event loop
nor in a thread it cannot stop: each piece of media work runs `t2m.media.jail_main` in a fresh jail
(`t2m.jail.bwrap.run_python`: an unprivileged uid, no network, only its own work dir, RLIMIT_AS, CPU and
wall limits, the off-loop watchdog), which is killed when the awaiting task is cancelled. The
answer comes back as a small JSON file, read bounded and checked like result.json.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from t2m.errors import ErrorKind, T2mError
from t2m.jail import bwrap as jail
from t2m.jail.limits import Limits
from t2m.jail.output import read_output
from t2m.media.compose import Composed, SceneInput
from t2m.media.probe import max_seconds
from t2m.vocabulary.plan import Cue

Tick = Callable[[], Awaitable[None] | None] | None
PROBE_LIMITS = Limits(memory_mb=1024, cpu_s=20, wall_s=60, threads=32, disk_mb=64, files=64)
COMPOSE_LIMITS = Limits(memory_mb=3072, cpu_s=900, wall_s=1100, disk_mb=4096, files=256)
SPEECH_LIMITS = Limits(memory_mb=1024, cpu_s=60, wall_s=100, threads=32, disk_mb=256, files=256)
THUMBNAIL_LIMITS = Limits(memory_mb=1536, cpu_s=60, wall_s=100, threads=48, disk_mb=64, files=64)
"""Wall limits a little under the activities' start-to-close timeouts (20 and 2 min), so the jail's
own limit ends the work first, with a clear message."""
MAX_ANSWER_BYTES = 4 * 1024**2
MAX_FRAME_BYTES = 64 * 1024**2
"""A PNG frame of a 2160p video is a few MB; a file past this was not written by the frames op."""


class MediaFailed(T2mError, RuntimeError):
    """The media work failed or was killed at a limit; the message says which."""

    kind = ErrorKind.MEDIA_FAILED


def _env() -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": jail.JAIL_WORKDIR,
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
    }


async def run(
    op: str, args: Sequence[str], work: Path, limits: Limits, on_tick: Tick = None
) -> dict:
    """Run `t2m.media.jail_main OP ARGS` in a jail on `work` (seen as /job); its answer."""
    log = work.parent / f"{work.name}.media.log"
    answer = work / "out.json"
    answer.unlink(missing_ok=True)
    argv = ["-I", "-B", "-m", "t2m.media.jail_main", op, *args]
    r = await jail.run_python(argv, work, log, env=_env(), limits=limits, on_tick=on_tick)
    if r.violation is not None:
        raise MediaFailed(f"{op}: {r.violation}")
    try:
        data = json.loads(read_output(work, answer.name, MAX_ANSWER_BYTES))
        if not isinstance(data, dict):
            raise ValueError(data)
    except (OSError, ValueError, RecursionError):  # RecursionError: [[[[… nested past the parser
        tail = r.log.strip().splitlines()[-20:]
        raise MediaFailed(f"{op} failed (status {r.returncode}): " + "\n".join(tail)) from None
    return data


async def probe_render(
    video: Path, quality: str, min_seconds: float, dest: Path, on_tick: Tick = None
) -> tuple[Path | None, float, str | None]:
    """Move a render's `video` (a regular file, checked by the caller) into the fresh directory
    `dest` and check it there: (the file, its duration, None) if it is what a render makes,
    else (None, 0, why)."""
    dest.mkdir(parents=True, exist_ok=False)
    checked = dest / "scene.mp4"
    os.rename(video, checked)
    longest = max_seconds(min_seconds)
    args = [f"{jail.JAIL_WORKDIR}/scene.mp4", quality, f"{longest:.3f}"]
    try:
        answer = await run("probe", args, dest, _with_input(PROBE_LIMITS, checked), on_tick)
    except MediaFailed as e:
        return None, 0.0, f"the video could not be checked: {e}"
    if answer.get("ok") is not True:
        return None, 0.0, str(answer.get("error"))[:500]
    duration = answer.get("duration_s")
    if not isinstance(duration, float) or not 0 < duration <= longest:
        return None, 0.0, "the video check gave no sane duration"
    return checked, duration, None


async def compose(
    scenes: Sequence[SceneInput],
    work: Path,
    *,
    subtitles: bool,
    language: str = "und",
    on_tick: Tick = None,
) -> tuple[Path, Composed]:
    """`media.compose` in a jail. The scenes' files must be under `work`; the video is written
    to `work/video.mp4`; `language` is an ISO 639-2 code."""

    def inside(p: Path) -> str:
        return f"{jail.JAIL_WORKDIR}/{p.resolve().relative_to(work.resolve())}"

    spec = {
        "scenes": [
            {
                "video": inside(s.video),
                "audio": inside(s.audio) if s.audio else None,
                "audio_duration": s.audio_duration,
                "cues": [c.model_dump() for c in s.cues],
            }
            for s in scenes
        ],
        "subtitles": subtitles,
        "language": language,
        "out": f"{jail.JAIL_WORKDIR}/video.mp4",
    }
    (work / "spec.json").write_text(json.dumps(spec))
    answer = await run("compose", [f"{jail.JAIL_WORKDIR}/spec.json"], work, COMPOSE_LIMITS, on_tick)
    out = work / "video.mp4"
    try:
        duration = float(answer["duration_s"])
        cues = [Cue.model_validate(c) for c in answer["cues"]]
    except (KeyError, TypeError, ValueError) as e:
        raise MediaFailed(f"compose gave no sane answer: {e}") from None
    if out.is_symlink() or not out.is_file():
        raise MediaFailed("compose wrote no video")
    return out, Composed(duration=duration, cues=cues)


async def join(
    ranges: Sequence[Path], work: Path, quality: str, min_seconds: float, on_tick: Tick = None
) -> tuple[Path | None, float, str | None]:
    """`media.join` in a jail, under compose's limits: the ranges (under `work`, each already
    checked by `probe_render`) joined by packet copy into `work/joined.mp4` and checked there as
    `probe_render` checks a render's video, in the same jail: (the file, its duration, None) if
    it is what a render makes, else (None, 0, why)."""
    inside = [f"{jail.JAIL_WORKDIR}/{p.resolve().relative_to(work.resolve())}" for p in ranges]
    longest = max_seconds(min_seconds)
    args = [f"{jail.JAIL_WORKDIR}/joined.mp4", quality, f"{longest:.3f}", *inside]
    answer = await run("join", args, work, COMPOSE_LIMITS, on_tick)
    out = work / "joined.mp4"
    if out.is_symlink() or not out.is_file():
        raise MediaFailed("join wrote no video")
    if answer.get("ok") is not True:
        return None, 0.0, str(answer.get("error"))[:500]
    duration = answer.get("duration_s")
    if not isinstance(duration, float) or not 0 < duration <= longest:
        return None, 0.0, "the video check gave no sane duration"
    return out, duration, None


async def thumbnail(video: Path, work: Path, at_s: float, on_tick: Tick = None) -> Path:
    """`media.best_thumbnail` in a jail; `video` is moved into `work` first."""
    limits = _with_input(THUMBNAIL_LIMITS, _moved_in(video, work))
    args = [f"{jail.JAIL_WORKDIR}/video.mp4", f"{jail.JAIL_WORKDIR}/thumb.png", f"{at_s:.3f}"]
    await run("thumbnail", args, work, limits, on_tick)
    return _written(work / "thumb.png", "the thumbnail")


async def sample_frames(video: Path, work: Path, count: int, on_tick: Tick = None) -> list[Path]:
    """`media.sample_frames` in a jail: `count` PNG frames spread over `video` (moved into `work`
    first), for a vision model. The worker only hands their bytes on, never decodes them."""
    limits = _with_input(THUMBNAIL_LIMITS, _moved_in(video, work))
    args = [f"{jail.JAIL_WORKDIR}/video.mp4", jail.JAIL_WORKDIR, str(count)]
    await run("frames", args, work, limits, on_tick)
    return [_written(work / f"frame-{i}.png", "a frame") for i in range(count)]


def _moved_in(video: Path, work: Path) -> Path:
    work.mkdir(parents=True, exist_ok=True)
    if video != work / "video.mp4":
        shutil.move(video, work / "video.mp4")
    return work / "video.mp4"


def _with_input(limits: Limits, video: Path) -> Limits:
    """`limits` with room on disk for the input itself (the jail's disk limit counts its work
    dir, where the video lies): a long 2160p video may be hundreds of MB, and its thumbnail
    must not fail for that."""
    allocated = video.stat().st_blocks * 512  # as the limit counts it: a sparse file adds little
    return dataclasses.replace(limits, disk_mb=limits.disk_mb + allocated // 1024**2 + 1)


def _written(path: Path, what: str) -> Path:
    """`path` if the jail wrote it as a regular file of a sane size, else MediaFailed."""
    if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_FRAME_BYTES:
        raise MediaFailed(f"{what} was not written")
    return path


async def join_speech(
    parts: Sequence[Path],
    longest_s: Sequence[float],
    work: Path,
    gap_s: float,
    on_tick: Tick = None,
) -> tuple[Path, list[float]]:
    """`speech_audio.join` in a jail: the provider's answers `parts` (files under `work`) decoded,
    bounded by `longest_s` each, joined into `work/narration.wav`; their measured durations."""
    spec = {"parts": [f"{jail.JAIL_WORKDIR}/{p.relative_to(work)}" for p in parts]}
    return await _speech("speech", spec, longest_s, work, gap_s, on_tick)


async def festival_speech(
    sentences: Sequence[str],
    voice: str,
    longest_s: Sequence[float],
    work: Path,
    gap_s: float,
    on_tick: Tick = None,
) -> tuple[Path, list[float]]:
    """`festival.speak` in a jail, then `speech_audio.join` there as for a provider's answers:
    `work/narration.wav` and each sentence's measured duration."""
    spec = {"sentences": list(sentences), "voice": voice, "work": f"{jail.JAIL_WORKDIR}/festival"}
    return await _speech("festival", spec, longest_s, work, gap_s, on_tick)


async def _speech(
    op: str, spec: dict, longest_s: Sequence[float], work: Path, gap_s: float, on_tick: Tick
) -> tuple[Path, list[float]]:
    spec |= {"longest_s": list(longest_s), "gap_s": gap_s}
    spec["out"] = f"{jail.JAIL_WORKDIR}/narration.wav"
    (work / "speech.json").write_text(json.dumps(spec))
    answer = await run(op, [f"{jail.JAIL_WORKDIR}/speech.json"], work, SPEECH_LIMITS, on_tick)
    if answer.get("ok") is not True:
        raise MediaFailed(f"the voice's audio was refused: {str(answer.get('error'))[:300]}")
    durations = answer.get("durations")
    out = work / "narration.wav"
    if (
        not isinstance(durations, list)
        or len(durations) != len(longest_s)
        or not all(
            isinstance(d, float) and 0 < d <= m for d, m in zip(durations, longest_s, strict=True)
        )
        or out.is_symlink()
        or not out.is_file()
    ):
        raise MediaFailed("the speech check gave no sane answer")
    return out, durations
