"""Visuals chosen from what a sentence talks about: a right triangle, a function graph, a wave,
vectors, a number line, an array, a bar chart, a circle — or none when it names none of them.

Each visual is a function in the generated scene file that returns a VGroup sized for the right
half of the frame (at most `W` wide and `H` tall), drawn in the scene's colours (FG, ACCENT)."""

from __future__ import annotations

import re

_KINDS: list[tuple[str, str]] = [
    ("triangle", r"right[- ]triangle|right[- ]angled|hypotenuse|pythagor|triangle rectangle|hypot[ée]nuse"),
    ("circle", r"\bcircles?\b|\bradius\b|\bdiameter\b|circumference|\bcercle\b|\brayon\b"),
    ("vectors", r"\bvectors?\b|\bforces?\b|\bvelocity\b|\bacceleration\b|\bmomentum\b|\bvecteurs?\b"),
    ("array", r"\barrays?\b|\blists?\b|\bsort(?:s|ed|ing)?\b|binary search|\bindex(?:es)?\b|\btableau\b"),
    ("number_line", r"number line|\bintegers?\b|negative numbers?|real numbers?|\bintervals?\b|inequalit|absolute value"),
    ("bar_chart", r"bar chart|histogram|distribution|probabilit|\bfrequenc|percent|proportion|statistic"),
    ("wave", r"\bwaves?\b|oscillat|wavelength|periodic|\bsine\b|\bcosine\b|polari[sz]|\bcos\^?2|\bonde"),
    ("exp", r"exponential|grows? (?:by|at)|\bdecay|compound|doubling|half-life"),
    ("graph", r"\bgraphs?\b|\bfunctions?\b|derivative|\bslopes?\b|tangent line|\bcurves?\b|parabola|quadratic|integral|area under"),
]  # fmt: skip


def numbers(text: str) -> list[float]:
    return [float(n) for n in re.findall(r"(?<![\w^.])-?\d+(?:\.\d+)?(?![\w^])", text)][:8]


def choose(text: str, scene: str = "") -> str | None:
    """The visual a sentence calls for, or None. A bar chart needs two numbers to show (from the
    sentence, else from the rest of its scene)."""
    low = text.lower()
    for kind, pattern in _KINDS:
        if re.search(pattern, low):
            if kind == "bar_chart" and len(numbers(text)) < 2 and len(numbers(scene)) < 2:
                continue
            return kind
    return None


_FUNCTIONS = '''
def _sized(group):
    """Scale a visual to the right half of the frame (at most W by H)."""
    group.scale_to_fit_width(min(W, group.width))
    if group.height > H:
        group.scale_to_fit_height(H)
    return group


def _plot(fn, x_range, y_range, label):
    axes = Axes(x_range=x_range, y_range=y_range, x_length=5, y_length=3.6, tips=False,
                axis_config={"color": FG, "stroke_width": 2})
    curve = axes.plot(fn, x_range=x_range[:2], color=ACCENT, stroke_width=5)
    name = MathTex(label, color=ACCENT, font_size=34).next_to(axes, UP, buff=0.1)
    return _sized(VGroup(axes, curve, name))


def visual_triangle():
    a, b, c = [-1.5, -1, 0], [1.5, -1, 0], [-1.5, 1, 0]
    tri = Polygon(a, b, c, color=ACCENT, stroke_width=5)
    corner = Square(0.3, color=FG, stroke_width=2).move_to([-1.35, -0.85, 0])
    labels = VGroup(MathTex("b", color=FG).next_to(Line(a, b), DOWN, buff=0.15),
                    MathTex("a", color=FG).next_to(Line(a, c), LEFT, buff=0.15),
                    MathTex("c", color=ACCENT).move_to([0.25, 0.25, 0]))
    return _sized(VGroup(tri, corner, labels))


def visual_circle():
    circle = Circle(radius=1.6, color=ACCENT, stroke_width=5)
    radius = Line(ORIGIN, RIGHT * 1.6, color=FG)
    label = MathTex("r", color=FG).next_to(radius, UP, buff=0.1)
    return _sized(VGroup(circle, radius, Dot(ORIGIN, color=FG), label))


def visual_vectors():
    u = Arrow(ORIGIN, [2, 0.6, 0], buff=0, color=ACCENT)
    v = Arrow(ORIGIN, [0.6, 1.8, 0], buff=0, color=FG)
    s = DashedLine(ORIGIN, [2.6, 2.4, 0], color=ACCENT)
    labels = VGroup(MathTex(r"\\vec u", color=ACCENT).next_to(u, DOWN, buff=0.1),
                    MathTex(r"\\vec v", color=FG).next_to(v, LEFT, buff=0.1))
    return _sized(VGroup(u, v, s, labels))


def visual_array(values):
    cells = VGroup(*[Square(0.8, color=FG) for _ in values]).arrange(RIGHT, buff=0)
    marks = VGroup(*[Text(str(v), font_size=26, color=ACCENT).move_to(c) for v, c in zip(values, cells)])
    index = VGroup(*[Text(str(i), font_size=18, color=FG).next_to(c, DOWN, buff=0.1)
                     for i, c in enumerate(cells)])
    return _sized(VGroup(cells, marks, index))


def visual_number_line(points):
    line = NumberLine(x_range=[-5, 5, 1], length=5.5, include_numbers=True, color=FG,
                      font_size=28,
                      decimal_number_config={"color": FG, "num_decimal_places": 0})
    dots = VGroup(*[Dot(line.n2p(p), color=ACCENT, radius=0.1) for p in points])
    return _sized(VGroup(line, dots))


def visual_bar_chart(values):
    top = max(values) if max(values) > 0 else 1
    chart = BarChart(values, y_range=[0, top * 1.2, top * 1.2 / 4], x_length=5, y_length=3.4,
                     bar_colors=[ACCENT, FG], axis_config={"color": FG, "font_size": 20})
    return _sized(chart)


def visual_wave():
    return _plot(lambda x: np.sin(x), [-6.3, 6.3, 3.14], [-1.5, 1.5, 1], r"\\sin x")


def visual_exp():
    return _plot(lambda x: np.exp(x), [-2, 2, 1], [0, 8, 2], r"e^x")


def visual_graph():
    return _plot(lambda x: x ** 2, [-3, 3, 1], [0, 9, 3], r"x^2")
'''


def functions() -> str:
    return _FUNCTIONS


def call(kind: str, text: str, scene: str = "") -> str:
    """The expression that builds visual `kind` for `text` (numbers from it, else its scene)."""
    found = numbers(text) if len(numbers(text)) >= 2 or not scene else numbers(scene)
    if kind == "array":
        values = [int(n) if n.is_integer() else n for n in found[:6]] or list(range(5))
        return f"visual_array({values!r})"
    if kind == "number_line":
        points = [n for n in found if -5 <= n <= 5][:4] or [-2.0, 3.0]
        return f"visual_number_line({points!r})"
    if kind == "bar_chart":
        return f"visual_bar_chart({[abs(n) for n in found[:6]]!r})"
    return f"visual_{kind}()"
