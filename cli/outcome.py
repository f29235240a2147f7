"""What `t2m generate` prints when its job ends: one JSON object on stdout, or a summary line and
the files (`done`); the failure on stderr, and in the JSON (`fail`); after Ctrl-C, how the job
ended (`after_interrupt`)."""

from __future__ import annotations

import argparse
import sys

from cli.jobs import REUSED
from cli.output import emit_json

CANCEL_WAIT_S = 15.0
"""After Ctrl-C, how long `t2m generate` waits for the job to end before it says "cancelling"."""


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


def after_interrupt(
    args: argparse.Namespace, job_id: str, status: str, detail: str | None = None
) -> int:
    """Ctrl-C's outcome once the cancel was sent: exit 130, saying how the job ended, never a
    cancel that did not happen. The job may have ended otherwise (over before the cancel arrived,
    or completed by a last step the cancel does not stop). `status` is its last known status;
    `detail` the error of a failed job, or where a completed job's files are."""
    reasons = {
        "cancelled": "cancelled by the user",
        "completed": f"interrupted after the job completed: {detail}",
        "failed": f"interrupted after the job failed: {detail}",
        "cancelling": "cancel requested; the job is still stopping on the server",
    }
    ended = status if status in reasons else "cancelling"
    return fail(args, job_id, reasons[ended], status=ended, code=130)
