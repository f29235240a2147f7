"""The render jail against a corpus of hostile programs, with real bwrap and real Manim renders.

Each program in tests/hostile/ (`*.py.in`: templates, the canaries' paths are filled in) is one technique seen against the old sandbox. They run through
the jail layer directly (`sandbox.render_in_jail`: most of them would be stopped earlier by the
static check, which is not the boundary), concurrently, with canaries planted: a secret in the
worker's environment, a fake data dir (secret.key, another job's storage, Temporal's database,
PostgreSQL's files and a listening Unix socket), a loopback TCP listener and an abstract Unix
socket. A control program that reads a canary planted in its own work dir proves the detectors
see a leak.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import pytest
from temporalio.client import Client, WorkflowFailureError

from t2m.catalog.db import JobStore
from t2m.config import Settings
from t2m.jail import bwrap as jail
from t2m.render import sandbox, static_check
from t2m.vocabulary.request import VideoRequest
from tests.scripted import ScriptedLLM, plan_json
from workflows.client import job_status, start_video

HOSTILE = Path(__file__).parent / "hostile"
REPO = Path(__file__).resolve().parent.parent
SITE_PACKAGES = Path(sys.prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
CONCURRENCY = 3


class Listener:
    """A server socket that records every connection it accepts."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.connections = 0
        sock.listen()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


@dataclass
class Canaries:
    data: Path
    port: int
    socket_path: Path
    abstract: str
    targets: list[Path]
    tokens: dict[str, str] = field(default_factory=dict)
    listeners: list[Listener] = field(default_factory=list)

    def plant(self) -> None:
        """(Re)write every canary with fresh random values."""
        self.tokens = {k: f"CANARY{k.upper()}{secrets.token_hex(8)}" for k in _CANARY_KINDS}
        os.environ["T2M_CANARY_API_KEY"] = self.tokens["env"]
        os.environ["AWS_SECRET_ACCESS_KEY"] = self.tokens["aws"]
        (self.data / "secret.key").write_text(self.tokens["secret"])
        other = self.data / "storage" / "jobs" / "other"
        other.mkdir(parents=True, exist_ok=True)
        (other / "topic.txt").write_text(self.tokens["storage"])
        (other / "scene.mp4").write_bytes(self.tokens["storage"].encode() * 10)
        db = self.data / "temporal.db"
        db.unlink(missing_ok=True)
        with sqlite3.connect(db) as c:
            c.execute("create table history (topic text)")
            c.execute("insert into history values (?)", (self.tokens["temporal"],))
        pg = self.data / "pg" / "base" / "1"
        pg.mkdir(parents=True, exist_ok=True)
        (pg / "1259").write_text(self.tokens["postgres"])
        (self.data / "pg" / "pg_hba.conf").write_text("local all all trust\n")
        # What a media dir symlinked to the data dir would offer the worker as the result.
        result = {"video": "/job/scene.py", "layout": [self.tokens["secret"]]}
        (self.data / "result.json").write_text(json.dumps(result))
        # A drawing whose shape changes with each planting: if it reached a frame, frames differ.
        x = secrets.randbelow(300) + 50
        svg = f'<svg xmlns="http://www.w3.org/2000/svg" width="400" height="400"><rect x="{x}" '
        svg += 'y="50" width="200" height="300" fill="red"/></svg>'
        (self.data / "canary.svg").write_text(svg)
        from PIL import Image

        Image.new("RGB", (64, 64), (x % 256, 0, 0)).save(self.data / "canary.png")

    def substitute(self, code: str) -> str:
        targets = [str(t) for t in self.targets]
        shell = f"cat {self.data}/secret.key {self.data}/storage/jobs/other/topic.txt "
        shell += "/proc/*/environ; env; id; for t in " + " ".join(targets)
        shell += "; do echo PWNED > $t; done"
        for key, value in {
            "@@DATA@@": str(self.data),
            "@@PORT@@": str(self.port),
            "@@SOCKET@@": str(self.socket_path),
            "@@ABSTRACT@@": self.abstract,
            "@@TARGETS@@": repr(targets),
            "@@SHELL@@": shell,
            "@@WORKER_PID@@": str(os.getpid()),
            "@@REPO@@": str(REPO),
        }.items():
            code = code.replace(key, value)
        return code


_CANARY_KINDS = ("env", "aws", "secret", "storage", "temporal", "postgres", "planted")


def _free_loopback_port() -> socket.socket:
    for port in range(23000 + secrets.randbelow(5000), 32000):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return s
        except OSError:
            s.close()
    raise RuntimeError("no free port")


@pytest.fixture(scope="module")
def canaries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Canaries]:
    data = tmp_path_factory.mktemp("t2m-data")
    tcp = Listener(_free_loopback_port())
    (data / "pg").mkdir()
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(str(data / "pg" / ".s.PGSQL.5432"))
    os.chmod(data / "pg" / ".s.PGSQL.5432", 0o777)  # world-writable, as the old PostgreSQL had it
    abstract_name = f"t2m-canary-{secrets.token_hex(4)}"
    abstract = socket.socket(socket.AF_UNIX)
    abstract.bind("\0" + abstract_name)
    token = secrets.token_hex(4)
    c = Canaries(
        data=data,
        port=tcp.sock.getsockname()[1],
        socket_path=data / "pg" / ".s.PGSQL.5432",
        abstract=abstract_name,
        targets=[
            data / "pwned.txt",
            Path(f"/tmp/t2m-pwned-{token}.txt"),
            REPO / f"pwned-{token}.txt",
            Path(jail.__file__).parent / f"pwned-{token}.py",
            SITE_PACKAGES / f"pwned-{token}.pth",
        ],
        listeners=[tcp, Listener(unix), Listener(abstract)],
    )
    saved = {k: os.environ.get(k) for k in ("T2M_CANARY_API_KEY", "AWS_SECRET_ACCESS_KEY")}
    c.plant()
    yield c
    for listener in c.listeners:
        listener.close()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@dataclass
class Outcome:
    name: str
    result: sandbox.RenderResult
    seconds: float
    log: bytes
    workdir_bytes: bytes
    frames: list[str]


def _frames(video: Path | None) -> list[str]:
    if video is None:
        return []
    with av.open(str(video)) as container:
        return [
            hashlib.sha256(f.to_ndarray(format="rgb24").tobytes()).hexdigest()
            for f in container.decode(video=0)
        ]


def _tree_bytes(root: Path) -> bytes:
    """Every regular file under `root`, not following symlinks (one points at secret.key) and
    not waiting on a FIFO a program left (answer_fifos.py)."""
    out = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            try:
                fd = os.open(
                    os.path.join(dirpath, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
                )
            except OSError:
                continue
            with os.fdopen(fd, "rb") as f:
                if stat.S_ISREG(os.fstat(fd).st_mode):
                    out.append(f.read(50 * 1024**2))
    return b"\n".join(out)


def _header(code: str, key: str) -> str | None:
    m = re.search(rf"^{key}: (.*)$", code, re.MULTILINE)
    return m.group(1).strip() if m else None


async def _run_one(name: str, canaries: Canaries, base: Path, sem: asyncio.Semaphore) -> Outcome:
    code = canaries.substitute((HOSTILE / f"{name}.in").read_text())
    workdir = base / name.removesuffix(".py")
    (workdir / "job").mkdir(parents=True)
    (workdir / "job" / "planted.txt").write_text(canaries.tokens["planted"])
    timeout = float(_header(code, "TIMEOUT") or 90)
    cpu = int(_header(code, "CPU") or 30)
    async with sem:
        t0 = time.monotonic()
        result = await sandbox.render_in_jail(code, "low", workdir, timeout_s=timeout, cpu_s=cpu)
        seconds = time.monotonic() - t0
    log = (workdir / "render.log").read_bytes()
    return Outcome(name, result, seconds, log, _tree_bytes(workdir), _frames(result.video))


def jail_processes(under: Path) -> list[str]:
    """Live processes of the jails whose work dirs are under `under`: jail processes show the
    bind of their work dir in their mountinfo, and the outer bwrap is the parent of one of them.
    (Scoped, because other test runs on this host may be rendering too.)"""
    found, parents = [], set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_bytes()
            if stat[stat.rindex(b")") + 2 :].startswith(b"Z"):
                continue
            seen = Path(f"/proc/{pid}/mountinfo").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(under) in seen:
            found.append(f"{pid} uid={os.stat(f'/proc/{pid}').st_uid} {cmdline[:120]}")
            parents.add(stat[stat.rindex(b")") + 2 :].split()[1].decode())
    for pid in parents - {line.split()[0] for line in found}:
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            if cmdline.startswith(jail.bwrap_path()):
                found.append(f"{pid} uid={os.stat(f'/proc/{pid}').st_uid} {cmdline[:120]}")
    return found


def _leaks(o: Outcome, tokens: dict[str, str]) -> list[str]:
    places = {
        "error": (o.result.error or "").encode(),
        "layout": repr(o.result.layout).encode(),
        "log": o.log,
        "work dir": o.workdir_bytes,
    }
    return [
        f"{kind} canary in the {place}"
        for kind, token in tokens.items()
        for place, data in places.items()
        if token.encode() in data
        and (kind, place) != ("planted", "work dir")  # it is planted there
    ]


def _outcome_problems(o: Outcome, code: str) -> list[str]:
    expect = _header(code, "EXPECT") or "."
    if expect == "ok":
        return [] if o.result.ok else [f"expected a video, got: {o.result.error}"]
    if expect == ".":
        return []
    if o.result.ok:
        return [f"expected a failure matching {expect!r}, got a video"]
    if not re.search(expect, o.result.error or ""):
        return [f"error does not match {expect!r}: {(o.result.error or '')[-800:]}"]
    return []


async def test_hostile_corpus_leaks_nothing(canaries: Canaries, tmp_path: Path) -> None:
    names = sorted(p.name.removesuffix(".in") for p in HOSTILE.glob("*.py.in"))
    assert len(names) >= 30
    sentinel = subprocess.Popen(["sleep", "600"])  # another process of the worker's host
    sem = asyncio.Semaphore(CONCURRENCY)
    t0 = time.monotonic()
    try:
        first = await asyncio.gather(*(_run_one(n, canaries, tmp_path / "a", sem) for n in names))
        tokens_a = dict(canaries.tokens)
        # Videos must not depend on anything outside the work dir: re-plant every canary with new
        # content, render again, and compare the decoded frames.
        canaries.plant()
        with_video = [o.name for o in first if o.result.ok]
        second = await asyncio.gather(
            *(_run_one(n, canaries, tmp_path / "b", sem) for n in with_video)
        )
        corpus_s = time.monotonic() - t0
        await asyncio.sleep(5)
        left = jail_processes(tmp_path)
        assert sentinel.poll() is None, "a render killed a process outside its jail"
    finally:
        sentinel.kill()
    problems: list[str] = []
    for o in first:
        code = (HOSTILE / f"{o.name}.in").read_text()
        found = _leaks(o, tokens_a) + _outcome_problems(o, code)
        if o.name == "control_own_file.py":
            assert found == ["planted canary in the log"]
            continue
        problems += [f"{o.name}: {p}" for p in found]
    for o in second:
        before = next(f for f in first if f.name == o.name)
        changed = o.frames != before.frames
        if o.name == "control_own_file.py":
            assert changed and o.frames, "the frame comparison must see the control's canary"
        elif changed:
            problems.append(f"{o.name}: its frames change with the canaries' content")
    problems += [f"marker written: {t}" for t in canaries.targets if t.exists()]
    for path in (REPO / "pwned.py", Path("/tmp/pwned"), Path(sys.prefix) / "pwned"):
        if path.exists():
            problems.append(f"marker written: {path}")
    problems += [
        f"listener {i} (TCP, PostgreSQL socket, abstract socket) got {lst.connections} connections"
        for i, lst in enumerate(canaries.listeners)
        if lst.connections
    ]
    assert left == [], f"jail processes left 5 s after the corpus: {left}"
    assert problems == [], "\n".join(problems)
    slow = {o.name: round(o.seconds, 1) for o in first if o.seconds > 10}
    print(f"\ncorpus: {len(first)} + {len(second)} renders in {corpus_s:.1f} s; slow: {slow}")


async def test_pipe_holder_and_orphans_do_not_hold_the_worker(
    canaries: Canaries, tmp_path: Path
) -> None:
    """A grandchild holding stdout, and setsid orphans: the render returns as soon as the scene
    is done (the jail's PID namespace dies with its init), far before its timeout."""
    sem = asyncio.Semaphore(2)
    outcomes = await asyncio.gather(
        *(_run_one(n, canaries, tmp_path, sem) for n in ("pipe_holder.py", "setsid_orphans.py"))
    )
    for o in outcomes:
        assert o.result.ok and o.seconds < 20, (o.name, o.seconds, o.result.error)
    assert jail_processes(tmp_path) == []


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("shell_random_os.py", "import of name '_os'"),
        ("shell_typing_sys.py", "attribute 'sys'"),
        ("shell_file_ops_os.py", "attribute 'file_ops'"),
        ("shell_commands_capture.py", "attribute 'capture'"),
        ("shell_ctypes_system.py", "attribute 'ctypeslib'"),
        ("shell_attrgetter_globals.py", "attrgetter() with a private or dunder name"),
        ("shell_format_globals.py", "format() with a private or dunder name"),
        ("shell_numpy_pickle.py", "allow_pickle is not allowed"),
        ("numpy_fromfile_environ.py", "import of 'os'"),
        ("numpy_datasource_secret.py", "attribute 'DataSource'"),
        ("numpy_savetxt_markers.py", "attribute 'savetxt'"),
    ],
)
async def test_static_check_reports_the_bypasses(
    canaries: Canaries, tmp_path: Path, name: str, rule: str
) -> None:
    code = canaries.substitute((HOSTILE / f"{name}.in").read_text())
    result = await sandbox.render(code, "low", tmp_path, timeout_s=30, cpu_s=30)
    assert not result.ok and rule in (result.error or "")
    assert not (tmp_path / "job").exists()  # no jail was started


@pytest.mark.parametrize(
    ("snippet", "rule"),
    [
        ('operator.attrgetter("sys.modules")(typing)', "naming a forbidden attribute"),
        ('operator.methodcaller("__reduce__")(c)', "private or dunder name"),
        ("random._inst", "private attribute '_inst'"),
        ("typing.get_type_hints(Circle)", "attribute 'get_type_hints'"),
        ("from numpy import ctypeslib", "import of name 'ctypeslib'"),
        ("np.f2py", "attribute 'f2py'"),
    ],
)
def test_static_check_closes_cheap_bypasses(snippet: str, rule: str) -> None:
    code = f"import operator, random, typing\nimport numpy as np\nfrom manim import *\n{snippet}\n"
    with pytest.raises(static_check.CodeRejected, match=re.escape(rule)):
        static_check.static_check(code + "class S(Scene):\n    pass\n")


def test_static_check_allows_harmless_stdlib_and_a_main_block() -> None:
    static_check.static_check(
        textwrap.dedent(
            """
            import collections, copy, enum, dataclasses, fractions, cmath, string, operator
            import itertools, functools
            from manim import *

            class S(Scene):
                def construct(self):
                    self._dots = VGroup(*[Dot() for _ in range(3)])
                    self.play(Create(self._dots))

            if __name__ == "__main__":
                S().render()
            """
        )
    )


REALISTIC = [
    """
import numpy as np
from manim import *

class SineWave(Scene):
    def construct(self):
        axes = Axes(x_range=[0, 2 * np.pi, np.pi / 2], y_range=[-1.5, 1.5, 0.5], tips=False)
        graph = axes.plot(np.sin, color=BLUE)
        self.play(Create(axes), run_time=0.5)
        self.play(Create(graph), run_time=0.5)
""",
    """
import random
from manim import *

class RandomDots(Scene):
    def construct(self):
        random.seed(3)
        dots = VGroup(*[Dot([random.uniform(-5, 5), random.uniform(-3, 3), 0]) for _ in range(30)])
        self.play(LaggedStart(*[FadeIn(d) for d in dots], lag_ratio=0.02), run_time=0.6)
""",
    """
from manim import *

class Tracker(Scene):
    def construct(self):
        t = ValueTracker(0)
        number = always_redraw(lambda: DecimalNumber(t.get_value()).to_edge(UP))
        dot = always_redraw(lambda: Dot([t.get_value() - 2, 0, 0], color=YELLOW))
        self.add(number, dot)
        self.play(t.animate.set_value(4), run_time=0.6)
""",
    """
from manim import *

class Pythagoras(Scene):
    def construct(self):
        eq = MathTex(r"a^2", "+", r"b^2", "=", r"c^2")
        self.play(Write(eq), run_time=0.5)
        self.play(eq[4].animate.set_color(RED), run_time=0.3)
""",
    """
from manim import *

class Cube3D(ThreeDScene):
    def construct(self):
        self.set_camera_orientation(phi=70 * DEGREES, theta=30 * DEGREES)
        axes = ThreeDAxes(x_range=[-2, 2], y_range=[-2, 2], z_range=[-2, 2])
        cube = Cube(side_length=1.5, fill_opacity=0.6, fill_color=BLUE)
        self.play(Create(axes), FadeIn(cube), run_time=0.5)
        self.play(Rotate(cube, angle=PI / 3, axis=UP), run_time=0.5)
""",
    """
from manim import *

class Labels(Scene):
    def construct(self):
        title = Text("Compound interest", font_size=40).to_edge(UP)
        formula = MathTex(r"A = P\\left(1 + \\frac{r}{n}\\right)^{nt}").next_to(title, DOWN)
        box = SurroundingRectangle(formula, buff=0.2)
        self.play(FadeIn(title), Write(formula), run_time=0.5)
        self.play(Create(box), run_time=0.3)
""",
    """
import numpy as np
from manim import *

class Vectors(Scene):
    def construct(self):
        plane = NumberPlane()
        v = Arrow(ORIGIN, [2, 1, 0], buff=0, color=GREEN)
        m = np.array([[0, -1], [1, 0]])
        w = Arrow(ORIGIN, [*(m @ np.array([2, 1])), 0], buff=0, color=RED)
        self.add(plane)
        self.play(GrowArrow(v), run_time=0.3)
        self.play(TransformFromCopy(v, w), run_time=0.4)
""",
    """
from dataclasses import dataclass
from manim import *

@dataclass
class Bar:
    label: str
    value: float

class Bars(Scene):
    def construct(self):
        data = [Bar("a", 1.0), Bar("b", 2.5), Bar("c", 1.7)]
        chart = BarChart([b.value for b in data], bar_names=[b.label for b in data], y_range=[0, 3, 1])
        self.play(Create(chart), run_time=0.6)
""",
    """
from manim import *

class Morph(Scene):
    def construct(self):
        square = Square()
        circle = Circle()
        square.add_updater(lambda m, dt: m.rotate(dt))
        self.add(square)
        self.play(Transform(square, circle), run_time=0.5)
        square.clear_updaters()
        self.play(square.animate.shift(RIGHT), run_time=0.3)

if __name__ == "__main__":
    Morph().render()
""",
    """
import math
from manim import *

class Unit(MovingCameraScene):
    def construct(self):
        circle = Circle(radius=2)
        dot = Dot(circle.point_at_angle(math.pi / 4))
        line = Line(ORIGIN, dot.get_center())
        self.play(Create(circle), Create(line), FadeIn(dot), run_time=0.5)
        self.play(self.camera.frame.animate.scale(0.6).move_to(dot), run_time=0.4)
""",
]


async def test_realistic_scenes_render_in_the_jail(tmp_path: Path) -> None:
    sem = asyncio.Semaphore(2)

    async def one(i: int, code: str) -> sandbox.RenderResult:
        async with sem:
            return await sandbox.render(code, "low", tmp_path / str(i), timeout_s=120, cpu_s=120)

    results = await asyncio.gather(*(one(i, c) for i, c in enumerate(REALISTIC)))
    failed = {i: r.error for i, r in enumerate(results) if not r.ok}
    assert failed == {}
    for r in results:
        assert r.video is not None and len(_frames(r.video)) >= 5


async def test_check_jail_passes_here() -> None:
    await sandbox.check_jail()


async def test_without_bwrap_check_and_render_refuse(tmp_path: Path) -> None:
    """No silent fallback: with no bwrap on PATH both fail with a clear error."""
    path = os.environ["PATH"]
    os.environ["PATH"] = str(tmp_path)  # an empty directory
    try:
        with pytest.raises(sandbox.JailUnavailable, match="bubblewrap"):
            await sandbox.check_jail()
        with pytest.raises(sandbox.JailUnavailable, match="bubblewrap"):
            await sandbox.render(
                "from manim import *\nclass S(Scene):\n    pass\n",
                "low",
                tmp_path / "w",
                timeout_s=30,
                cpu_s=30,
            )
    finally:
        os.environ["PATH"] = path


def test_check_jail_works_for_an_unprivileged_worker() -> None:
    """A non-root worker gets bwrap's user-namespace mode (Debian's python3.11, since the venv's
    interpreter lives under root's 0700 home)."""
    if not Path("/usr/bin/python3.11").exists():
        pytest.skip("needs Debian's /usr/bin/python3.11")
    code = "import asyncio; from t2m.jail import self_test; asyncio.run(self_test.check_jail()); print('ok')"
    out = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        + ["/usr/bin/python3.11", "-c", code],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": "/tmp"},
        cwd="/tmp",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.strip() == "ok", out.stderr


def test_a_killed_worker_takes_its_jail_with_it(tmp_path: Path) -> None:
    """SIGKILL the worker mid-render (its scene has setsid orphans): nothing of the jail survives."""
    scene = (HOSTILE / "setsid_orphans.py.in").read_text().replace("@@TARGETS@@", "[]")
    scene = scene.replace("self.play(Create(Circle()))", "self.wait(600)")
    (tmp_path / "scene.py").write_text(scene)
    worker = textwrap.dedent(
        f"""
        import asyncio
        from pathlib import Path
        from t2m.render import sandbox
        code = Path({str(tmp_path / "scene.py")!r}).read_text()
        asyncio.run(sandbox.render_in_jail(
            code, "low", Path({str(tmp_path / "w")!r}), timeout_s=600, cpu_s=600))
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", worker])
    try:
        deadline = time.monotonic() + 30
        while len(jail_processes(tmp_path)) < 6 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(jail_processes(tmp_path)) >= 6, "the render and its orphans should be running"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 5
    while jail_processes(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert jail_processes(tmp_path) == []


def test_scrub_removes_secrets_from_error_text() -> None:
    env = {
        "OPENAI_API_KEY": "sk-proj-abcdefghijklmnop1234",
        "T2M_DATABASE_URL": "postgresql://t2m:hunter2pass@localhost/t2m",
        "T2M_S3_SECRET": "s3secretvalue99",
        "AWS_ACCESS_KEY_ID": "AKIAABCDEFGHIJKLMNOP",
        "T2M_QUALITY": "low",  # not a secret: left alone
    }
    text = (
        "key sk-proj-abcdefghijklmnop1234 db postgresql://t2m:hunter2pass@localhost/t2m "
        "pw hunter2pass s3 s3secretvalue99 aws AKIAABCDEFGHIJKLMNOP other "
        "https://bob:pw123456@example.com/x quality low ghp_abcdefghijklmnopqrstuv"
    )
    out = sandbox.scrub(text, env)
    for secret in ("sk-proj", "hunter2pass", "s3secretvalue99", "AKIA", "pw123456", "ghp_"):
        assert secret not in out
    assert "quality low" in out and "example.com/x" in out


PIPELINE_LIMITS = {"render_timeout_s": 30.0, "render_cpu_s": 30}


@pytest.mark.parametrize("settings", [PIPELINE_LIMITS], indirect=True)
async def test_the_corpus_through_the_whole_pipeline(
    canaries: Canaries,
    client: Client,
    settings: Settings,
    scripted: ScriptedLLM,
    worker: None,
    jobs: JobStore,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    """A scripted model answers every scene with a corpus program (the static check first, then
    the jail): each job ends failed or completed, nothing leaks into what the user can read, and
    the worker serves a benign job afterwards."""
    # This worker's jails get their work dirs in a directory of this test's own, so the count of
    # jail processes left is this test's, not that of renders running beside it on the host.
    work_dirs = Path(tempfile.mkdtemp(prefix="t2m-corpus-"))
    request.addfinalizer(lambda: shutil.rmtree(work_dirs, ignore_errors=True))
    work_dirs.chmod(0o755)
    monkeypatch.setattr(tempfile, "tempdir", str(work_dirs))
    names = sorted(p.name.removesuffix(".in") for p in HOSTILE.glob("*.py.in"))
    programs = {n: canaries.substitute((HOSTILE / f"{n}.in").read_text()) for n in names}
    groups = [names[i::7] for i in range(7)]  # 3 to 7 scenes per job

    def handler(task: str, data: dict) -> str | None:
        if task == "plan_video":
            return plan_json(*groups[int(data["topic"].split()[-1])], duration=1.0)
        if task in ("write_scene_code", "fix_scene_code"):
            return f"```python\n{programs[data['scene']['title']]}\n```"
        return None

    scripted.handler = handler
    sentinel = subprocess.Popen(["sleep", "600"])
    try:
        handles = [
            await start_video(
                client,
                settings,
                VideoRequest(
                    topic=f"Hostile {i}", model="scripted/test", quality="low", max_fix_attempts=1
                ),
            )
            for i in range(len(groups))
        ]
        for h in handles:
            with contextlib.suppress(WorkflowFailureError):
                await asyncio.wait_for(h.result(), 600)
        await asyncio.sleep(5)
        assert sentinel.poll() is None, "a render killed a process outside its jail"
    finally:
        sentinel.kill()
    seen = []
    for h in handles:
        status = await job_status(h)
        assert status.status in ("completed", "failed"), status
        row = await jobs.get(h.id)
        assert row is not None and row.status == status.status
        seen.append(status.model_dump_json() + repr(row))
    leaked = [k for k, token in canaries.tokens.items() if any(token in text for text in seen)]
    assert leaked == []
    assert [t for t in canaries.targets if t.exists()] == []
    assert [lst.connections for lst in canaries.listeners] == [0, 0, 0]
    assert jail_processes(work_dirs) == []
    scripted.handler = lambda task, data: None  # the offline model, on the same worker
    benign = VideoRequest(topic="Afterwards", model="scripted/test", quality="low")
    await (await start_video(client, settings, benign)).result()


async def test_a_context_with_tex_input_never_shows_the_file(
    client: Client, settings: Settings, worker: None, tmp_path: Path
) -> None:
    """With the offline model, a request asking TeX to `\\input` a host file: the video is the
    same whatever that file says, so its contents never reach the frames."""
    secret = tmp_path / "host-secret.tex"
    frames = []
    for content in ("ALPHA one two", "omega THREE FOUR five six"):
        secret.write_text(content)
        shutil.rmtree(settings.storage_dir / "renders", ignore_errors=True)  # render anew
        req = VideoRequest(
            topic="Secret files",
            context=rf"The formula is $\texttt{{\input{{{secret}}}}}$ and nothing else.",
            model="offline/templates",
            quality="low",
            voice=None,
        )
        handle = await start_video(client, settings, req)
        with contextlib.suppress(WorkflowFailureError):
            await handle.result()
        status = await job_status(handle)
        assert content not in status.model_dump_json()
        if status.artifacts is not None:
            frames.append(_frames(settings.storage_dir / status.artifacts.video_key))
    assert len(frames) == 2 and frames[0] == frames[1]


def test_the_jails_tmp_is_mounted_before_the_binds(tmp_path: Path) -> None:
    """A venv or checkout under /tmp (a CI clone, say) must be bound onto the jail's own /tmp,
    not hidden by it: the tmpfs comes before every read-only bind."""
    args = jail.bwrap_options(tmp_path, None, jail.Limits())
    tmpfs = args.index("--tmpfs")
    assert args[tmpfs + 1] == "/tmp"
    binds = [i for i, a in enumerate(args) if a == "--ro-bind" and args[i + 1] != "/usr"]
    assert binds and min(binds) > tmpfs
