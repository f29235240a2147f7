"""The jail's output is hostile too: every weapon of issue 18, built inside a real jail by a
program that passed the static check of its day (tests/hostile/output/; run here with the check
bypassed, as it now refuses them), is refused with a clear message
before anything outside a jail opens it; media work is jailed and dies with a cancel; the
watchdog works while the event loop is blocked; memory the RSS sum cannot see is refused or
capped; the output limit holds at the byte."""

from __future__ import annotations

import asyncio
import re
import resource
import shutil
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from temporalio.client import Client, WorkflowFailureError

from t2m.config import Settings
from t2m.jail.limits import Limits
from t2m.media import compose as media
from t2m.media import jailed as media_jail
from t2m.render import sandbox
from tests.media_checks import make_clip
from tests.scripted import ScriptedLLM, plan_json
from tests.test_jail import jail_processes
from workflows.client import job_status, start_video

WEAPONS = Path(__file__).parent / "hostile" / "output"
HOSTILE = Path(__file__).parent / "hostile"
GIB = 1024**3


def _header(code: str, key: str, default: str) -> str:
    m = re.search(rf"^{key}: (.*)$", code, re.MULTILINE)
    return m.group(1).strip() if m else default


def _mem_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no MemAvailable")


async def test_every_weapon_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    names = sorted(p.name.removesuffix(".py.in") for p in WEAPONS.glob("*.py.in"))
    assert len(names) >= 8
    sem = asyncio.Semaphore(2)

    async def one(name: str) -> tuple[str, sandbox.RenderResult, float]:
        code = (WEAPONS / f"{name}.py.in").read_text()
        # The static check now refuses every weapon (tests/test_static_check.py); it is fast
        # feedback, not the boundary: the jail and its output checks must hold without it, so the
        # weapons run with it bypassed (`render_in_jail`), as code slipping past it would.
        async with sem:
            t0 = time.monotonic()
            result = await sandbox.render_in_jail(
                code,
                "low",
                tmp_path / name,
                timeout_s=float(_header(code, "TIMEOUT", "60")),
                cpu_s=int(_header(code, "CPU", "60")),
                min_seconds=2.0,
            )
            return name, result, time.monotonic() - t0

    outcomes = await asyncio.gather(*(one(n) for n in names))
    problems = []
    for name, result, seconds in outcomes:
        expect = _header((WEAPONS / f"{name}.py.in").read_text(), "EXPECT", "?")
        if result.ok or not re.search(expect, result.error or ""):
            problems.append(f"{name}: {result.ok} {(result.error or '')[-400:]}")
        print(f"{name}: {seconds:.1f} s: {(result.error or '').splitlines()[-1]}")
    assert problems == [], "\n".join(problems)
    # Nothing was parsed outside a jail: the worker (this process) never grew.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 < 2 * GIB
    assert jail_processes(tmp_path) == []
    # The sparse file stayed sparse: nothing read it whole.
    sparse = next((tmp_path / "sparse_1g").rglob("scene.mp4"))
    assert sparse.stat().st_blocks * 512 < 10 * 1024**2


def _billion_fps(path: Path) -> Path:
    """A 1-second file claiming 10⁹ fps (what compose looped on for ever)."""
    with av.open(str(path), "w", format="mp4") as oc:
        s = oc.add_stream("libx264", rate=10**9, options={"preset": "ultrafast"})
        s.width, s.height, s.pix_fmt = 854, 480, "yuv420p"
        for i in range(15):
            frame = av.VideoFrame(854, 480, "yuv420p")
            frame.pts, frame.time_base = i * 10**9 // 15, Fraction(1, 10**9)
            for p in s.encode(frame):
                oc.mux(p)
        for p in s.encode(None):
            oc.mux(p)
    return path


async def test_compose_is_jailed_and_dies_with_a_cancel(tmp_path: Path) -> None:
    """Compose fed a file that never passed the check (say, cached before it existed): it runs
    in a jail, and a cancel leaves no media process behind."""
    work = tmp_path / "job"
    work.mkdir()
    scene = media.SceneInput(_billion_fps(work / "scene-0.mp4"), None, 3600.0, [])
    task = asyncio.create_task(media_jail.compose([scene], work, subtitles=False))
    deadline = time.monotonic() + 20
    while not jail_processes(tmp_path) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert jail_processes(tmp_path), "compose should be running in a jail"
    await asyncio.sleep(1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert jail_processes(tmp_path) == []


async def test_media_work_is_killed_at_its_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "job"
    work.mkdir()
    scene = media.SceneInput(_billion_fps(work / "scene-0.mp4"), None, 3600.0, [])
    monkeypatch.setattr(media_jail, "COMPOSE_LIMITS", Limits(memory_mb=512, cpu_s=30, wall_s=5))
    t0 = time.monotonic()
    with pytest.raises(media_jail.MediaFailed, match="compose: (timed out|memory limit|CPU)"):
        await media_jail.compose([scene], work, subtitles=False)
    assert time.monotonic() - t0 < 15
    assert jail_processes(tmp_path) == []


async def test_frames_for_a_vision_model_are_taken_in_a_jail(tmp_path: Path) -> None:
    """The critique's and the judge's frames: PNGs cut in a media jail; a file its decoder
    refuses is a MediaFailed, not a crash of the worker that holds the model keys."""
    clip = make_clip(tmp_path / "clip.mp4", 2.0, (200, 30, 30))
    frames = await media_jail.sample_frames(clip, tmp_path / "frames", 3)
    assert [f.name for f in frames] == ["frame-0.png", "frame-1.png", "frame-2.png"]
    assert all(f.read_bytes().startswith(b"\x89PNG") for f in frames)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\0\0\0\x18ftypisom" + bytes(4096))
    with pytest.raises(media_jail.MediaFailed, match="frames failed"):
        await media_jail.sample_frames(junk, tmp_path / "junk", 3)
    assert jail_processes(tmp_path) == []


def _noise_clip(path: Path, frames: int) -> Path:
    """A low-quality clip of random noise (854x480, 15 fps): ~0.43 MB a frame, all of it video."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=15, options={"crf": "10", "preset": "ultrafast"})
        s.width, s.height, s.pix_fmt = 854, 480, "yuv420p"
        for _ in range(frames):
            pixels = rng.integers(0, 256, (480, 854, 3), dtype=np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


async def test_a_video_larger_than_a_jails_disk_limit_is_still_checked(tmp_path: Path) -> None:
    """A jail's disk limit counts its work dir, where the video lies: a long 2160p render or
    video of hundreds of MB must still pass its check and get its thumbnail (here a clip larger
    than both jails' limits of 64 MB)."""
    video = _noise_clip(tmp_path / "video.mp4", 165)
    assert video.stat().st_size > 64 * 1024**2
    shutil.copy(video, tmp_path / "render.mp4")
    png = await media_jail.thumbnail(video, tmp_path / "job", 5.0)
    assert png.read_bytes().startswith(b"\x89PNG")
    checked, duration, refused = await media_jail.probe_render(
        tmp_path / "render.mp4", "low", 11.0, tmp_path / "checked"
    )
    assert refused is None and checked is not None and duration == pytest.approx(11.0)


async def test_the_watchdog_sees_through_a_blocked_event_loop(tmp_path: Path) -> None:
    """A render that grows past its memory limit while the worker's event loop is blocked for 15 s
    is killed during the block, not after it. (The block starts with the jail; under a full
    suite's load `import manim` and touching the hogs' pages took the render ~8 s to reach the
    limit.)"""
    code = (
        "import os, time\nfrom manim import *\n\nclass Hog(Scene):\n    def construct(self):\n"
        "        time.sleep(1)\n        for _ in range(6):\n            if os.fork() == 0:\n"
        "                hog = bytearray(400 * 1024**2)\n"
        "                for i in range(0, len(hog), 4096):\n                    hog[i] = 1\n"
        "                time.sleep(600)\n            time.sleep(0.3)\n        time.sleep(600)\n"
    )
    gone_at: list[float] = []
    seen = threading.Event()

    def watch() -> None:
        while True:
            alive = jail_processes(tmp_path)
            if alive:
                seen.set()
            elif seen.is_set():
                gone_at.append(time.monotonic())
                return
            time.sleep(0.05)

    threading.Thread(target=watch, daemon=True).start()
    loop = asyncio.get_running_loop()
    blocked: list[float] = []

    def block() -> None:
        if not seen.is_set():
            loop.call_later(0.2, block)
            return
        time.sleep(15)
        blocked.append(time.monotonic())

    loop.call_later(0.2, block)
    result = await sandbox.render_in_jail(code, "low", tmp_path, timeout_s=60, cpu_s=60)
    assert not result.ok and "memory limit" in (result.error or "")
    assert blocked and gone_at and gone_at[0] < blocked[0], "killed only once the loop woke up"


async def test_memfds_and_shared_memory_are_refused(tmp_path: Path) -> None:
    """4 memfds × 1 GiB held took 4.45 GiB of host memory with 12 MiB of RSS: now refused (and
    SysV shared memory, which outlives its mappings, too)."""
    code = (
        "import ctypes, os\nfrom manim import *\n\nclass S(Scene):\n    def construct(self):\n"
        "        try:\n            fds = [os.memfd_create(f'm{i}') for i in range(4)]\n"
        "            for fd in fds:\n                os.ftruncate(fd, 1 << 30)\n"
        "                os.pwrite(fd, b'x' * (1 << 20), 0)\n            print('MEMFD MADE')\n"
        "        except OSError as e:\n            print('MEMFD REFUSED', e.errno)\n"
        "        libc = ctypes.CDLL(None, use_errno=True)\n"
        "        r = libc.shmget(0, 1 << 30, 0o1600)\n"
        "        print('SHM', 'REFUSED' if r < 0 else 'MADE', ctypes.get_errno())\n"
        "        raise RuntimeError('done')\n"
    )
    before = _mem_available()
    result = await sandbox.render_in_jail(code, "low", tmp_path, timeout_s=60, cpu_s=60)
    assert "MEMFD REFUSED 1" in (result.error or ""), result.error
    assert "SHM REFUSED 1" in (result.error or ""), result.error
    assert before - _mem_available() < GIB  # noisy neighbours allowed; 4 GiB would show


async def test_sockets_and_disk_reservations_are_refused(tmp_path: Path) -> None:
    """Memory and disk no limit sees at once: socketpair buffers (7.8 MB of kernel memory each,
    no RSS) and fallocate with KEEP_SIZE (a 50 MB reservation past a 1 MB RLIMIT_FSIZE, before
    the watchdog's next look). Both refused by the seccomp filter; nothing is reserved."""
    code = (
        "import ctypes, os, socket\nfrom manim import *\n\nclass S(Scene):\n"
        "    def construct(self):\n"
        "        try:\n            socket.socketpair()\n            print('SOCKETS MADE')\n"
        "        except OSError as e:\n            print('SOCKETS REFUSED', e.errno)\n"
        "        libc = ctypes.CDLL(None, use_errno=True)\n"
        "        fd = os.open('/job/reserved', os.O_WRONLY | os.O_CREAT)\n"
        "        r = libc.fallocate(fd, 1, ctypes.c_long(0), ctypes.c_long(50 << 20))\n"
        "        print('FALLOCATE', 'REFUSED' if r < 0 else 'MADE', ctypes.get_errno())\n"
        "        print('BLOCKS', os.fstat(fd).st_blocks)\n"
        "        raise RuntimeError('done')\n"
    )
    result = await sandbox.render_in_jail(code, "low", tmp_path, timeout_s=60, cpu_s=60)
    for line in ("SOCKETS REFUSED 1", "FALLOCATE REFUSED 95", "BLOCKS 0"):
        assert line in (result.error or ""), result.error


async def test_tmp_inodes_are_capped(tmp_path: Path) -> None:
    """1 M empty files in the jail's /tmp cost 1 GB of kernel memory and no byte of its size."""
    code = (
        "from manim import *\n\nclass S(Scene):\n    def construct(self):\n        n = 0\n"
        "        while True:\n            open(f'/tmp/f{n}', 'w').close()\n            n += 1\n"
    )
    t0 = time.monotonic()
    result = await sandbox.render_in_jail(code, "low", tmp_path, timeout_s=60, cpu_s=60)
    assert not result.ok and "files in /tmp" in (result.error or ""), result.error
    assert time.monotonic() - t0 < 30


async def test_the_output_limit_holds_at_the_byte(tmp_path: Path) -> None:
    code = (HOSTILE / "log_flood.py.in").read_text()
    result = await sandbox.render_in_jail(code, "low", tmp_path, timeout_s=20, cpu_s=20)
    assert not result.ok and "output limit" in (result.error or "")
    assert (tmp_path / "render.log").stat().st_size == Limits().log_mb * 1024**2


@pytest.mark.parametrize(
    "settings", [{"render_timeout_s": 60.0, "render_cpu_s": 60}], indirect=True
)
async def test_a_weapon_fails_its_job_while_a_bystander_completes(
    client: Client, settings: Settings, scripted: ScriptedLLM, worker: None
) -> None:
    """Through the whole pipeline (static check, jail, checks, fix loop): the job whose scenes
    are weapons fails with a check's message (today the static check's, which names each weapon's
    way in; the output checks stand behind it); another job on the same worker completes."""
    weapons = {
        n: (WEAPONS / f"{n}.py.in").read_text() for n in ("concat_fifo", "big_8k", "billion_fps")
    }

    def handler(task: str, data: dict) -> str | None:
        if task == "plan_video" and data["topic"].startswith("Hostile"):
            return plan_json(*weapons, duration=1.0)
        if task in ("write_scene_code", "fix_scene_code") and data["scene"]["title"] in weapons:
            return f"```python\n{weapons[data['scene']['title']]}\n```"
        return None

    scripted.handler = handler
    from t2m.vocabulary.request import VideoRequest

    hostile = await start_video(
        client,
        settings,
        VideoRequest(
            topic="Hostile media", model="scripted/test", quality="low", max_fix_attempts=1
        ),
    )
    t0 = time.monotonic()
    bystander = await start_video(
        client, settings, VideoRequest(topic="A bystander", model="scripted/test", quality="low")
    )
    await asyncio.wait_for(bystander.result(), 120)
    bystander_s = time.monotonic() - t0
    with pytest.raises(WorkflowFailureError):
        await asyncio.wait_for(hostile.result(), 240)
    status = await job_status(hostile)
    assert status.status == "failed"
    error = status.model_dump_json()  # the static check names the weapon before any render
    assert "is not allowed" in error or "refused" in error, status
    print(f"bystander completed in {bystander_s:.1f} s")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 < 2 * GIB
