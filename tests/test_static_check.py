import pytest

from t2m.sandbox import CodeRejected, static_check

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
