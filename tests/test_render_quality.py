"""Fewer wasted fix rounds (issue 12, item 2), on real renders in the jail (low quality): a still
scene lasts its narration, the named class is rendered, the layout check judges only what is drawn
(and 3D scenes as projected), failures without a traceback say why, the fix prompt names the
replacement of old Manim API, and `ImageMobject` renders."""

from pathlib import Path

import numpy as np
import pytest
from manim import ThreeDCamera, config
from manim.utils.deprecation import deprecated

from activities.media import min_seconds
from t2m.authoring import manim_api_changes as api_changes
from t2m.authoring import steps as authoring
from t2m.authoring.llm import ModelClient
from t2m.media import speech as tts
from t2m.render import layout_check as layout
from t2m.render import sandbox
from t2m.vocabulary.plan import ScenePlan
from tests.media_checks import frame_at, probe

FPS = 15  # low quality
HEAD = "from manim import *\nimport numpy as np\n\n"


def render(code: str, workdir: Path, **kwargs):
    kwargs.setdefault("timeout_s", 120)
    return sandbox.render(HEAD + code, "low", workdir, cpu_s=120, **kwargs)


STILL = """
class Scene1(Scene):
    def construct(self):
        self.add(Text("A still picture"), Square().shift(DOWN * 2))
"""


async def test_a_still_scene_lasts_its_narration(tmp_path: Path) -> None:
    narration_s, _ = tts.synthesize(
        "A still picture needs no animation. It is held while this is spoken.",
        "en-us",
        tmp_path / "narration.wav",
    )
    assert narration_s > 2
    result = await render(STILL, tmp_path / "a", min_seconds=min_seconds(narration_s))
    assert result.ok and result.video is not None, result.error
    assert probe(result.video).duration == pytest.approx(min_seconds(narration_s), abs=1.5 / FPS)
    assert frame_at(result.video, narration_s).max() > 200  # the picture, not a black frame

    silent = await render(STILL, tmp_path / "b")  # no narration: a short still
    assert silent.ok and silent.video is not None, silent.error
    assert 0.5 <= probe(silent.video).duration <= 1.5


TWO_SCENES = """
class Helper(Scene):
    pass


class Scene1(Helper):
    def construct(self):
        self.play(Create(Square()), run_time=2)


class Scene2(Scene):
    def construct(self):
        self.play(Create(Circle()), run_time=1)
"""


async def test_the_named_class_is_rendered(tmp_path: Path) -> None:
    named = await render(TWO_SCENES, tmp_path / "a", scene_class="Scene2")
    assert named.ok and named.video is not None, named.error
    assert probe(named.video).duration == pytest.approx(1.0, abs=1.5 / FPS)
    # No class by that name: the first scene that is not another's base class.
    absent = await render(TWO_SCENES, tmp_path / "b", scene_class="Scene7")
    assert absent.ok and absent.video is not None, absent.error
    assert probe(absent.video).duration == pytest.approx(2.0, abs=1.5 / FPS)


NOT_DRAWN = """
class Scene1(Scene):
    def construct(self):
        tracker = ValueTracker(0)
        number = DecimalNumber(0).add_updater(lambda m: m.set_value(tracker.get_value()))
        background = Rectangle(width=14, height=7.8, fill_color=BLUE_E, fill_opacity=1, stroke_width=0)
        hidden = Text("hidden").shift(RIGHT * 9).set_opacity(0)
        self.add(tracker, background, number, hidden)
        self.play(tracker.animate.set_value(180))
        self.play(Write(Text("Far").shift(RIGHT * 9)))
"""


async def test_layout_judges_only_what_is_drawn(tmp_path: Path) -> None:
    """A ValueTracker at x = 180, a transparent Text off-screen and a frame-filling background
    0.09 past the safe margin are not findings; an off-screen Text is."""
    result = await render(NOT_DRAWN, tmp_path)
    assert result.ok, result.error
    assert len(result.layout) == 1, result.layout
    assert result.layout[0].startswith("after animation 2: Text('Far') is outside the safe area")


THREE_D = """
class Scene1(ThreeDScene):
    def construct(self):
        self.set_camera_orientation(phi=75 * DEGREES, theta=-90 * DEGREES)
        axes = ThreeDAxes()
        cube = Cube(side_length=1, fill_opacity=0.8).move_to(axes.c2p(0, 4.5, 1))
        title = Text("Depth").to_corner(UL)
        self.add_fixed_in_frame_mobjects(title)
        self.play(Create(axes), FadeIn(cube))
"""


async def test_a_3d_scene_is_judged_as_projected(tmp_path: Path) -> None:
    result = await render(THREE_D, tmp_path / "a")
    assert result.ok, result.error
    assert result.layout == []
    # The same scene whose fixed title is pushed off the frame is still judged.
    off = THREE_D.replace(".to_corner(UL)", ".shift(LEFT * 8)")
    result = await render(off, tmp_path / "b")
    assert result.ok, result.error
    assert [f for f in result.layout if "Text('Depth') is outside" in f], result.layout


def test_3d_points_are_projected_before_they_are_judged() -> None:
    """Unprojected, ThreeDAxes and a cube behind the origin look off-frame; as the camera at
    phi = 75° draws them, they are inside."""
    from manim import Cube, ThreeDAxes

    camera = ThreeDCamera()
    camera.set_phi(75 * np.pi / 180)
    camera.reset_rotation_matrix()
    axes = ThreeDAxes()
    mobjects = [axes, Cube(side_length=1).move_to(axes.c2p(0, 4.5, 1))]
    size = (config.frame_width, config.frame_height)
    assert layout.check(mobjects, *size) != []
    assert layout.check(mobjects, *size, project=camera.transform_points_pre_display) == []


async def test_failures_without_a_traceback_say_why(tmp_path: Path) -> None:
    plugin = "from manim_physics import *\n" + STILL
    rejected = await render(plugin, tmp_path / "a")
    assert not rejected.ok and "plugin manim_physics is not installed" in rejected.error
    # Past the static check (the jail is the boundary), the runner says the same.
    unchecked = await sandbox.render_in_jail(
        HEAD + plugin, "low", tmp_path / "b", timeout_s=60, cpu_s=60
    )
    assert not unchecked.ok
    assert unchecked.error.splitlines()[-1].startswith(
        "Error: plugin manim_physics is not installed"
    )

    many = """
class Scene1(Scene):
    def construct(self):
        dots = VGroup(*[Dot(RIGHT * (i % 20 - 10) * 0.3 + UP * (i // 20 - 5) * 0.3) for i in range(200)])
        for _ in range(1000):
            self.play(dots.animate.rotate(0.1), run_time=0.5)
"""
    slow = await render(many, tmp_path / "c", timeout_s=12)
    assert not slow.ok
    last = slow.error.splitlines()[-1]
    assert last.startswith("Render timed out after "), last
    animations = int(last.split("after ")[1].split()[0])
    assert 1 <= animations < 1000 and "the limit is 12 s" in last


SHOW_CREATION = """
class Scene1(Scene):
    def construct(self):
        self.play(ShowCreation(Circle()))
"""
OUTER_RADIUS = """
class Scene1(Scene):
    def construct(self):
        self.play(Create(Sector(outer_radius=2, angle=PI / 3)))
"""


async def test_fix_prompts_name_the_api_change(tmp_path: Path, scripted) -> None:
    scripted.handler = lambda task, data: "```python\n" + HEAD + STILL + "```"
    scene = ScenePlan(index=0, title="A sector", narration="A sector of a circle.")
    client = ModelClient(cache=None)
    cases = [
        (SHOW_CREATION, "`ShowCreation` was removed from Manim: use Create("),
        (OUTER_RADIUS, "`Sector(outer_radius=…)` is no longer accepted: use Sector(radius="),
    ]
    for i, (code, hint) in enumerate(cases):
        result = await render(code, tmp_path / str(i))
        assert not result.ok  # Manim's own error from the jail
        await authoring.fix_scene_code(
            client, "scripted/test", "Sectors", scene, code, result.error, 1
        )
        data, prompt = scripted.prompts_for("fix_scene_code")[-1]
        assert any(h.startswith(hint) for h in data["api_changes"]), data.get("api_changes")
        assert hint in prompt
    # An error naming no old API gets no hint.
    await authoring.fix_scene_code(
        client, "scripted/test", "Sectors", scene, STILL, "ZeroDivisionError: division by zero", 2
    )
    data, _ = scripted.prompts_for("fix_scene_code")[-1]
    assert "api_changes" not in data


def test_every_api_change_holds_for_the_installed_manim() -> None:
    """The curated entries are all true of the installed Manim (a stale one is dropped by
    `table`, and this fails), and Manim's own deprecation markers are read."""
    curated = (
        len(api_changes.REMOVED_NAMES)
        + len(api_changes.RENAMED_ARGUMENTS)
        + len(api_changes.REMOVED_METHODS)
    )
    held = [c for c in api_changes.table() if "deprecated" not in c.hint]
    assert len(held) == curated, sorted(c.old for c in held)

    @deprecated(since="v0.1", until="v9", replacement="Create")
    def ShowGrowth() -> None:
        pass

    found = api_changes.deprecated_in({"ShowGrowth": ShowGrowth})
    assert [c.old for c in found] == ["ShowGrowth"] and "Create" in found[0].hint


IMAGE = """
class Scene1(Scene):
    def construct(self):
        pixels = np.zeros((40, 40, 3), dtype=np.uint8)
        pixels[:, :, 0] = 255
        image = ImageMobject(pixels)
        image.height = 4
        self.add(image)
        self.play(FadeIn(Dot(DOWN * 3)))
"""


async def test_image_mobject_renders(tmp_path: Path) -> None:
    result = await render(IMAGE, tmp_path)
    assert result.ok and result.video is not None, result.error
    frame = frame_at(result.video, 0.5)
    h, w, _ = frame.shape
    r, g, b = (int(c) for c in frame[h // 2, w // 2])
    assert r > 200 and g < 60 and b < 60  # the red image in the middle of the frame
