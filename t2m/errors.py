"""One error vocabulary: the base of t2m's own errors, the kinds of error that cross Temporal, and
what each means to an HTTP client and to the `t2m` command.

An activity or the workflow reports a failure as a Temporal `ApplicationError` whose `type` is an
`ErrorKind`: the workflow, the API and the CLI compare against these members, never against
strings. Their values are written in recorded histories and in running jobs' failures, so a
value never changes (add a member instead). Standard library only: the render jail loads this.
"""

from __future__ import annotations

from enum import StrEnum


class T2mError(Exception):
    """Base of every error t2m raises on purpose. Each subclass also keeps the builtin kind that
    says what went wrong (`ValueError` for bad input, `RuntimeError` for a host's trouble), and
    names its `kind` when it crosses Temporal."""

    kind: ErrorKind | None = None


class ErrorKind(StrEnum):
    """`ApplicationError.type` of every failure t2m raises across the Temporal boundary."""

    # An activity's step failed for good (non-retryable: a new run would meet it again).
    MODEL_ERROR = "ModelError"
    PLAN_ERROR = "PlanError"
    VOICE_ERROR = "VoiceError"
    MEDIA_FAILED = "MediaFailed"
    CATALOG_REJECTED = "CatalogRejected"
    REUSED_GONE = "ReusedGone"
    """An identical job's files, which the whole-result cache offered, are gone from storage."""
    # Retryable: another attempt (on another host, a moment later) can succeed.
    JAIL_UNAVAILABLE = "JailUnavailable"
    ARTIFACTS_MISSING = "ArtifactsMissing"
    # The workflow's own decisions.
    SCENE_FAILED = "SceneFailed"
    BUDGET_REACHED = "BudgetReached"
    VIDEO_FAILED = "VideoFailed"
    # The regenerate_scene update's validator refusing a redo.
    SCENES_FINAL = "ScenesFinal"
    NOT_PLANNED = "NotPlanned"
    NO_SUCH_SCENE = "NoSuchScene"
    VERSION_IN_PROGRESS = "VersionInProgress"
    SCENE_BUSY = "SceneBusy"
    TOO_MANY_REDOS = "TooManyRedos"


CONFLICT = 409
"""The job is not in a state that allows the action: asking again later may succeed."""
HTTP_STATUS: dict[ErrorKind, int] = {
    ErrorKind.NO_SUCH_SCENE: 422,
    ErrorKind.SCENES_FINAL: CONFLICT,
    ErrorKind.NOT_PLANNED: CONFLICT,
    ErrorKind.VERSION_IN_PROGRESS: CONFLICT,
    ErrorKind.SCENE_BUSY: CONFLICT,
    ErrorKind.TOO_MANY_REDOS: CONFLICT,
}
"""The API's answer to a refusal the workflow reports (the rest surface as a failed job)."""

INVALID_REQUEST = (400, CONFLICT, 422)
"""Answers that mean "this request cannot succeed as asked" (exit 2): malformed or invalid input,
and a 409, the job not being in a state that allows the action (cancel an ended job, retry a
completed one, download an unfinished one). Asking again unchanged would get the same answer."""
EXIT_INVALID, EXIT_FAILED = 2, 1
"""The `t2m` command's exit codes: an invalid request or command line; any other failure."""


def http_status(kind: str | None) -> int:
    """The API's status for a refusal of `kind` (409 for one it does not list)."""
    known = {k.value: status for k, status in HTTP_STATUS.items()}
    return known.get(kind or "", CONFLICT)


def exit_code(status: int) -> int:
    """The `t2m` command's exit code for an error answer of the API with HTTP `status`."""
    return EXIT_INVALID if status in INVALID_REQUEST else EXIT_FAILED
