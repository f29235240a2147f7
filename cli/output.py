"""`--json` output: the one JSON object alone on stdout, whatever else runs in the process; and
`--out`, the directory the files go to."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from t2m.errors import T2mError

_JSON_OUT: int | None = None
"""With `--json`: the real stdout, kept for the one JSON object; fd 1 then points at stderr."""


def json_only_on_stdout() -> None:
    """Send everything but the JSON answer to stderr: the throwaway stack (worker, litellm, dev
    server) runs in this process, and whatever it prints or logs, to sys.stdout or to fd 1 (a C
    library, a child process), must not land before the JSON."""
    global _JSON_OUT
    sys.stdout.flush()
    _JSON_OUT = os.dup(1)
    os.dup2(2, 1)


def emit_json(answer: Any) -> None:
    """Print the command's one JSON object on the real stdout."""
    text = json.dumps(answer) + "\n"
    if _JSON_OUT is None:
        sys.stdout.write(text)
        return
    sys.stdout.flush()
    os.write(_JSON_OUT, text.encode())


def warn_without_context(model: str, context: str | None) -> None:
    """Say before rendering what the offline model will make of a topic with no context: a short
    placeholder that says no context was given (it knows no topic; it presents its context)."""
    if model.startswith("offline/") and not (context or "").strip():
        print(
            f"t2m: warning: no --context, and the offline model ({model}) knows no topic: this"
            " makes a short placeholder video. Give --context TEXT (a few sentences), or choose"
            " a real model with --model.",
            file=sys.stderr,
        )


def out_dir(text: str) -> Path:
    """`--out` (an argparse type): a directory a file can be written in, made if it is not there.
    Checked before any work, not after a whole render, by writing (and removing) a file there:
    permission bits say nothing to root, nor of a read-only mount, /proc or a full inode table."""
    path = Path(text)
    try:
        nearest = next(p for p in (path, *path.parents) if p.exists() or p.is_symlink())
        is_dir = nearest.is_dir()
    except OSError as e:  # a parent that may not be searched
        raise argparse.ArgumentTypeError(f"{text!r}: {e.strerror}") from None
    if not is_dir:
        where = "is" if nearest == path else f"is under {nearest}, which is"
        raise argparse.ArgumentTypeError(f"{text!r} {where} not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise argparse.ArgumentTypeError(f"{text!r} cannot be made: {e.strerror or e}") from None
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".t2m-check-"):
            pass
    except OSError as e:
        raise argparse.ArgumentTypeError(f"{text!r} is not writable: {e.strerror or e}") from None
    return path


class Unwritable(T2mError, RuntimeError):
    """A file could not be written into `--out` after all (the disk full, a directory in the
    file's place, the directory gone since it was checked): the command's one-line failure."""


@contextlib.contextmanager
def writing(dest: Path) -> Iterator[Path]:
    """Around writing `dest` into `--out`: its directory made again (it may be gone since
    `out_dir`), and an OSError raised as Unwritable naming the file and the system's reason."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        yield dest
    except OSError as e:
        raise Unwritable(f"cannot write {dest}: {e.strerror or e}") from None
