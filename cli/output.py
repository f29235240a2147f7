"""`--json` output: the one JSON object alone on stdout, whatever else runs in the process; and
`--out`, the directory the files go to."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

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
    """`--out` (an argparse type): a writable directory, or one that can be made (it is made when
    the files come). Checked before any work, not after a whole render; nothing is created here."""
    path = Path(text)
    try:
        nearest = next(p for p in (path, *path.parents) if p.exists() or p.is_symlink())
        is_dir = nearest.is_dir()
    except OSError as e:  # a parent that may not be searched
        raise argparse.ArgumentTypeError(f"{text!r}: {e.strerror}") from None
    if not is_dir:
        where = "is" if nearest == path else f"is under {nearest}, which is"
        raise argparse.ArgumentTypeError(f"{text!r} {where} not a directory")
    if not os.access(nearest, os.W_OK | os.X_OK):
        where = "" if nearest == path else f" (its parent {nearest})"
        raise argparse.ArgumentTypeError(f"{text!r}{where} is not writable")
    return path
