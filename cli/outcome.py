"""What `t2m generate` prints when its job ends: one JSON object on stdout, or a summary line and
the files (`done`); the failure on stderr, and in the JSON (`fail`)."""

from __future__ import annotations

import argparse
import sys

from cli.jobs import REUSED
from cli.output import emit_json


def done(
    args: argparse.Namespace,
    job_id: str,
    paths: dict[str, str | None],
    duration_s: float,
    scenes: int,
    reused_from: str | None,
) -> int:
    """The result, once: a JSON object on stdout, or a summary line and the files."""
    if args.json:
        emit_json(
            {
                "job_id": job_id,
                "status": "completed",
                **paths,
                "duration_s": round(duration_s, 3),
                "scenes": scenes,
                "reused_from": reused_from,
            }
        )
        return 0
    if reused_from:
        print(f"Done: {job_id} ({duration_s:.1f} s), {REUSED.format(reused_from)}")
    else:
        print(f"Done: {job_id} ({duration_s:.1f} s, {scenes} scenes)")
    for field, path in paths.items():
        if path:
            print(f"  {field:14} {path}")
    return 0


def fail(
    args: argparse.Namespace,
    job_id: str | None,
    reason: str,
    status: str = "failed",
    code: int = 1,
    retryable: bool | None = None,
) -> int:
    reason = " ".join(reason.split())
    if args.json:
        answer = {"job_id": job_id, "status": status, "error": reason}
        emit_json(answer | ({"retryable": retryable} if status == "failed" else {}))
    print(f"t2m: {status}: {reason}", file=sys.stderr)
    return code
