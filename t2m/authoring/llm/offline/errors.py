"""The offline model's documentation searches for a failed render: the Manim names its error is
about, found in the error and the code, without understanding either.

An error naming old API (`api_changes`: `ShowCreation`, `Sector(outer_radius=…)`) gets a search
for the old name with what replaced it; the other code-like names the error shares with the code
(`Axes`, `x_range`, a quoted `'font_size'`) make one more search. No such name: the error's last
line, as a real model's unusable answer gets.
"""

from __future__ import annotations

import builtins
import re

from t2m.authoring import manim_api_changes as api_changes

MAX_QUERIES = 3
MAX_NAMES = 6
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_STRING = re.compile(r"\"[^\"\n]*\"|'[^'\n]*'")
_PYTHON = frozenset(dir(builtins)) | {"Traceback", "File", "None", "True", "False"}


def _code_like(name: str) -> bool:
    """A class-like (`Sector`) or argument-like (`outer_radius`) name, not an English word."""
    return not name.startswith("_") and name not in _PYTHON and (name[0].isupper() or "_" in name)


def _names(text: str) -> list[str]:
    return list(dict.fromkeys(n for n in _IDENTIFIER.findall(text) if _code_like(n)))


def _change_query(change: api_changes.Change) -> str:
    """The old name and its replacement's names and arguments: `ShowCreation Create`."""
    replacement = change.hint.split(": use ", 1)[-1] if ": use " in change.hint else ""
    arguments = re.findall(r"(\w+)=", replacement)
    return " ".join(dict.fromkeys(_names(change.old) + _names(replacement) + arguments))


def doc_queries(error: str, code: str) -> list[str]:
    """1–3 searches naming what `error` is about, most specific first."""
    queries = [_change_query(c) for c in api_changes.matching(error)]
    queries = [q for q in dict.fromkeys(queries) if q][: MAX_QUERIES - 1]
    said = set(" ".join(queries).split())
    in_code = set(_IDENTIFIER.findall(_STRING.sub('""', code)))  # names, not words in strings
    lines = reversed(error.strip().splitlines())  # the message first, then the traceback upwards
    names = [n for n in _names("\n".join(lines)) if n in in_code and n not in said]
    if names:
        queries.append(" ".join(names[:MAX_NAMES]))
    return queries or [(error.strip().splitlines() or ["Scene"])[-1]]
