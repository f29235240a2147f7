"""Real renders in the jail: success, Manim's own error text, isolation, limits, cancellation."""

import asyncio
import contextlib
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

from t2m.jail import bwrap as jail
from t2m.render import sandbox, split
from tests.media_checks import probe
from tests.test_jail import jail_processes

CIRCLE = "from manim import *\n\nclass S(Scene):\n    def construct(self):\n        self.play(Create(Circle()))\n"


def render(code: str, workdir: Path, timeout_s: float = 120):
    return sandbox.render(code, "low", workdir, timeout_s=timeout_s, cpu_s=120)


async def test_render_produces_a_video(tmp_path: Path) -> None:
    result = await render(CIRCLE, tmp_path)
    assert result.ok and result.video is not None
    p = probe(result.video)
    assert p.codecs["video"] == "h264" and 0.5 < p.duration < 3


async def test_code_error_returns_manims_real_error(tmp_path: Path) -> None:
    bad = CIRCLE.replace("Circle()", 'Circle(radius="big")')
    result = await render(bad, tmp_path)
    assert not result.ok
    assert "UFuncNoLoopError" in result.error or "ufunc 'multiply'" in result.error
    assert 'Circle(radius="big")' in result.error  # the failing line of the generated code


async def test_static_rejection_never_starts_a_process(tmp_path: Path) -> None:
    result = await render("import os\n" + CIRCLE, tmp_path)
    assert not result.ok and "import of 'os' is not allowed" in result.error
    assert not (tmp_path / "scene.py").exists()


async def test_wall_timeout_kills_the_render(tmp_path: Path) -> None:
    slow = CIRCLE.replace("self.play(Create(Circle()))", "self.wait(600)")
    result = await render(slow, tmp_path, timeout_s=3)
    assert not result.ok and "timed out" in result.error
    assert jail_processes(tmp_path) == []


async def test_cancelling_kills_the_jail(tmp_path: Path) -> None:
    slow = CIRCLE.replace("self.play(Create(Circle()))", "self.wait(600)")
    task = asyncio.ensure_future(render(slow, tmp_path))
    await asyncio.sleep(3)
    assert jail_processes(tmp_path), "the render should be running"
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert jail_processes(tmp_path) == []


async def test_jail_has_no_network_no_secrets_and_its_limits(tmp_path: Path) -> None:
    """The render's process, probed from inside the real jail: a clean environment, paranoid TeX,
    an unprivileged uid, the address-space limit, the lowest CPU priority, no route to a host
    listener."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    os.environ["T2M_TEST_SECRET_KEY"] = "sk-should-not-leak"
    probe_code = (
        "import os, socket, resource\n"
        "print('secret' if 'T2M_TEST_SECRET_KEY' in os.environ else 'clean')\n"
        "print(os.environ['openin_any'], os.getuid() != 0)\n"
        "print(resource.getrlimit(resource.RLIMIT_AS)[0], os.nice(0))\n"
        f"try:\n    socket.create_connection(('127.0.0.1', {port}), timeout=2); print('connected')\n"
        "except OSError:\n    print('no network')\n"
    )
    try:
        run = await jail.run_python(
            ["-c", probe_code],
            tmp_path / "job",
            tmp_path / "log",
            env=sandbox.jail_env(),
            limits=jail.Limits(memory_mb=1536, cpu_s=30, wall_s=30),
        )
    finally:
        del os.environ["T2M_TEST_SECRET_KEY"]
        server.close()
    limit, niceness = str(1536 * 1024**2), str(jail.NICENESS)
    assert run.log.split() == ["clean", "p", "True", limit, niceness, "no", "network"]


def test_hostile_result_and_progress_files_are_read_as_nothing(tmp_path: Path) -> None:
    """result.json and progress.json are the jailed program's: JSON nested past the parser or a
    number no count can be is no result and no progress, not an exception the activity retries."""
    media = tmp_path / "media"
    media.mkdir()
    (media / "result.json").write_text("[" * 100_000 + "]" * 100_000)
    assert sandbox._read_result(tmp_path) is None
    (media / "progress.json").write_text('{"animations": Infinity, "seconds": 1}')
    assert sandbox._progress(tmp_path) == "before the first animation finished"
    (media / "progress.json").write_text('{"animations": 3, "seconds": 4.5}')
    assert sandbox._progress(tmp_path) == "after 3 animations (4.5 s of video)"


def _returns_within(read: Callable[[], object], seconds: float = 5) -> object:
    """`read()`'s answer, failing (not hanging the suite) if it blocks."""
    answer: list[object] = []
    reader = threading.Thread(target=lambda: answer.append(read()), daemon=True)
    reader.start()
    reader.join(seconds)
    assert answer, f"{read} blocked for {seconds} s"
    return answer[0]


def test_a_fifo_left_where_an_answer_belongs_is_no_answer_and_never_blocks(tmp_path: Path) -> None:
    """A render that leaves a FIFO as result.json, progress.json or plan.json (the jail is dead:
    no writer is left) must not block the worker's event loop on its open, which would freeze
    every job on that worker, and the next one's after the retry."""
    media = tmp_path / "media"
    media.mkdir()
    for name in ("result.json", "progress.json", "plan.json"):
        os.mkfifo(media / name)
    assert _returns_within(lambda: sandbox._read_result(tmp_path)) is None
    assert _returns_within(lambda: sandbox._progress(tmp_path)) == (
        "before the first animation finished"
    )
    assert _returns_within(lambda: split._read_plan(tmp_path)) is None
