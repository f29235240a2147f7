import importlib
import inspect
import pkgutil
import re
import types
from pathlib import Path

import manim
import pytest

from t2m.render.static_check import ALLOWED_MODULES, CodeRejected, static_check
from t2m.render.static_names import DANGEROUS_NAMES, MANIM_REEXPORTS

GOOD = """
from manim import *
import numpy as np
import math

class Demo(Scene):
    def __init__(self, **kw):
        super().__init__(**kw)

    def construct(self):
        self.play(Create(Circle(radius=math.sqrt(2))))
"""


def test_allowed_code_passes() -> None:
    static_check(GOOD)


@pytest.mark.parametrize(
    ("snippet", "reason"),
    [
        ("import os", "import of 'os'"),
        ("import subprocess as sp", "import of 'subprocess'"),
        ("from socket import socket", "import from 'socket'"),
        ("from . import x", "import from None"),
        ("open('/etc/passwd').read()", "use of 'open'"),
        ("eval('1+1')", "use of 'eval'"),
        ("exec('x=1')", "use of 'exec'"),
        ("__import__('os')", "use of '__import__'"),
        ("x = ().__class__.__bases__", "dunder attribute '__class__'"),
        ("getattr(Circle, 'x')", "use of 'getattr'"),
        ("y = __builtins__", "use of '__builtins__'"),
    ],
)
def test_forbidden_constructs_are_rejected_with_line_and_rule(snippet: str, reason: str) -> None:
    code = f"from manim import *\n{snippet}\nclass S(Scene):\n    pass\n"
    with pytest.raises(CodeRejected) as e:
        static_check(code)
    assert reason in str(e.value)
    assert "line 2" in str(e.value)


def test_syntax_error_names_the_line() -> None:
    with pytest.raises(CodeRejected, match="SyntaxError: line 2"):
        static_check("from manim import *\nclass S(Scene)\n    pass\n")


def test_code_without_a_scene_class_is_rejected() -> None:
    with pytest.raises(CodeRejected, match="no Scene subclass"):
        static_check("from manim import *\nx = Circle()\n")


WEAPONS = Path(__file__).parent / "hostile" / "output"


@pytest.mark.parametrize("name", sorted(p.name for p in WEAPONS.glob("*.py.in")))
def test_the_hostile_output_corpus_is_refused(name: str) -> None:
    """Each weapon of issue 18 reached `av.open` or `subprocess.run` through names manim's modules
    re-export, or `operator.attrgetter("op" + "en")`; the check now names them."""
    with pytest.raises(CodeRejected, match=r"not manim's own|non-constant|is not allowed"):
        static_check((WEAPONS / name).read_text())


@pytest.mark.parametrize(
    ("snippet", "reason"),
    [
        ("from manim.utils.commands import run", "'run' from 'manim.utils.commands'"),
        ("from manim.utils.file_ops import copyfile", "'copyfile' from 'manim.utils.file_ops'"),
        ("from manim.utils.file_ops import Path", "it is not manim's own"),
        ("from manim.scene.scene_file_writer import av", "'av' from"),
        ("from manim.utils.tex_file_writing import json", "'json' from"),
        ("from manim.utils.file_ops import Path as P", "'Path' from"),
        ("import manim.scene.scene_file_writer as w\nw.av.open('x')", "attribute 'av'"),
        ("sp.run(['id'])", "use of 'sp'"),
        ("operator.attrgetter('op' + 'en')(x)", "built (non-constant) string"),
        ("operator.attrgetter('a', 'op' + 'en')(x)", "built (non-constant) string"),
        ("operator.methodcaller(name)(x)", "built (non-constant) string"),
        ("g = operator.attrgetter\ng('open')(x)", "attrgetter may only be called directly"),
        ("from operator import attrgetter as ag", "import of name 'attrgetter'"),
        ("fmt = '{0.' + 'x}'\nfmt.format(x)", "format() on a built (non-constant) string"),
    ],
)
def test_reexported_and_built_names_are_refused(snippet: str, reason: str) -> None:
    code = f"import operator\nfrom manim import *\n{snippet}\nclass S(Scene):\n    pass\n"
    with pytest.raises(CodeRejected, match=re.escape(reason)):
        static_check(code)


def test_constant_attrgetter_and_format_still_pass() -> None:
    static_check(
        "import operator\nfrom manim import *\nfrom operator import attrgetter\n"
        "key = operator.attrgetter('radius')\nlabel = '{:.2f}'.format(1.5)\n"
        "by_name = attrgetter('width', 'height')\n"
        "class S(Scene):\n    def construct(self):\n"
        "        color = BLUE\n        time = ValueTracker(0)\n"
        "        self.play(Create(Circle(color=color)))\n"
    )


def test_every_name_the_installed_manim_reexports_is_listed() -> None:
    """Recomputed from the installed manim: a new re-export (an upgrade) fails here until listed."""
    found = set()
    for info in pkgutil.walk_packages(manim.__path__, "manim."):
        try:
            module = importlib.import_module(info.name)
        except Exception:  # optional extras (e.g. the jupyter magic) that are not installed
            continue
        for name, value in vars(module).items():
            if name.startswith("_"):
                continue
            if isinstance(value, types.ModuleType):
                origin = value.__name__
            elif inspect.isclass(value) or inspect.isroutine(value):
                origin = getattr(value, "__module__", None) or ""
            else:
                continue
            top = origin.split(".")[0]
            if top == "manim" or top in ALLOWED_MODULES:
                continue
            if not (top == "builtins" and not isinstance(value, types.ModuleType)):
                found.add(name)
    assert found - MANIM_REEXPORTS == set()
    assert DANGEROUS_NAMES & {"run", "sp", "copyfile", "Path", "json", "av"} == {
        "run", "sp", "copyfile", "Path", "json", "av"
    }  # fmt: skip
