"""Names the static check refuses because manim's modules re-export them from the standard library
or third-party packages: `from manim.utils.commands import run` is `subprocess.run`, and
`manim.scene.scene_file_writer.av` is PyAV with its `open`. A scene needs none of them (manim's
own names come from `from manim import *`).

`MANIM_REEXPORTS` lists every such name of the installed manim's modules (tests/test_static_check.py
recomputes it, so a manim upgrade that adds one fails that test until it is listed): importing
one from a manim module is refused. `DANGEROUS_NAMES` are those reaching processes, files, code
or the network, refused wherever they appear (as a name or an attribute), so an alias or a
chain of attributes does not bring them back; names a scene commonly uses for its own things
(`color`, `time`, `highlight`...) are not among them.
"""

from __future__ import annotations

MANIM_REEXPORTS = frozenset(
    {
        "ABCMeta", "Attribute", "AudioSegment", "BadParameter", "BeautifulSoup", "BytesIO",
        "Choice", "Console", "Context", "DirModifiedEvent", "ET", "FileModifiedEvent",
        "FileSystemEventHandler", "FixtureRequest", "Framebuffer", "HelpFormatter", "HelpTheme",
        "HtmlFormatter", "Image", "IntRange", "MarkupUtils", "Match", "Name", "NamedTemporaryFile",
        "Namespace", "Observer", "PangoUtils", "Path", "PathLike", "PathVerb", "PriorityQueue",
        "PurePath", "Queue", "Resampling", "RichHandler", "Rotation", "SkiaPath", "Style",
        "StyleSyntaxError", "Subscript", "Tag", "TextSetting", "Theme", "Thread", "TypeVar",
        "argparse", "ast", "av", "cairo", "click", "cloup", "color", "colorsys", "configparser",
        "contextlib", "contextmanager", "copyfile", "datetime", "decorate", "decorator", "dedent",
        "ease_of_access_options", "entry_points", "errno", "errors", "get_all_styles",
        "get_lexer_by_name", "get_style_by_name", "global_options", "guess_lexer",
        "guess_lexer_for_filename", "hashlib", "highlight", "http", "importlib", "inspect", "json",
        "literal_eval", "logging", "manimpango", "mimetypes", "moderngl", "numbers", "nx",
        "option", "option_group", "os", "output_options", "override", "pathlib", "perf_counter",
        "platform", "plot_isoline", "printf", "pytest", "re", "reduce", "render_options", "run",
        "se", "shutil", "sp", "srt", "subprocess", "suppress", "sys", "textwrap", "threading",
        "time", "timeit", "tqdm", "types", "unicodedata", "union", "urllib", "warnings", "zlib",
    }
)  # fmt: skip
DANGEROUS_NAMES = frozenset(
    {
        "run", "sp", "subprocess", "copyfile", "shutil", "Path", "PurePath", "pathlib", "json",
        "av", "tempfile", "NamedTemporaryFile", "threading", "Thread", "logging", "RichHandler",
        "cairo", "moderngl", "manimpango", "Image", "AudioSegment", "srt", "Observer",
        "FileSystemEventHandler", "click", "cloup", "Console", "urllib", "http", "importlib",
        "inspect", "types", "timeit", "platform", "argparse", "configparser", "mimetypes",
        "entry_points", "nx", "ET", "pytest", "decorator", "decorate", "tqdm", "contextlib",
        "errno", "ast", "literal_eval", "BeautifulSoup", "zlib", "hashlib", "io", "BytesIO",
        "tarfile", "zipfile", "glob", "fnmatch", "pkgutil", "runpy", "codeop",
        "marshal", "multiprocessing", "concurrent", "asyncio",         "selectors", "mmap", "fcntl", "pty", "tty", "termios", "posix", "pwd", "grp",
        "gc", "weakref", "traceback", "linecache", "tokenize", "sysconfig", "webbrowser",
    }
)  # fmt: skip


def reexport_problem(name: str, module: str) -> str:
    """The message for a name a manim module re-exports from elsewhere. Empty for others."""
    if name not in MANIM_REEXPORTS or module.split(".")[0] != "manim":
        return ""
    return (
        f"import of name {name!r} from {module!r} is not allowed: it is not manim's own"
        " (manim re-exports it from the standard library or another package)"
    )
