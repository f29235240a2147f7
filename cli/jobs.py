"""`t2m jobs list|status|cancel|retry|delete|download|regenerate`: the REST API from the command line.

Each verb prints a short human summary, or with `--json` exactly one JSON object on stdout (on
failure too: `{"error": …, "http_status": …}`). Errors are one `t2m: …` line on stderr. Exit codes
are in `cli.remote` and the README: 0 ok, 1 failure, 2 invalid request, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from typing import Any

from cli import answers
from cli.output import out_dir
from cli.progress import ProgressView, from_api
from cli.remote import ApiError, Remote, load_config
from t2m.budget import spent_against
from t2m.vocabulary.job import JOB_ID_PATTERN, JOB_STATES

REUSED = "reused from job {}; --force to make anew"
VERBS = ("list", "status", "cancel", "retry", "delete", "download", "regenerate")
MEDIA = (  # field of the JSON answer, API path, file extension, may be missing
    ("video", "download", "mp4", False),
    ("subtitles_srt", "subtitles?format=srt", "srt", True),
    ("subtitles_vtt", "subtitles?format=vtt", "vtt", True),
    ("thumbnail", "thumbnail", "png", True),
)
INTERVAL_S = (0.1, 3600.0)
"""`--interval`'s bounds: polls no closer than the API needs, no sleep past the platform's."""


def add_parser(sub: Any) -> argparse.ArgumentParser:
    j = sub.add_parser(
        "jobs",
        help="list, follow, cancel, retry, delete and download jobs through the REST API",
        description="Talks to the REST API at T2M_API, else `api` in ~/.config/t2m/config.toml (or"
        " the file T2M_CONFIG names), else where `t2m up` serves it (T2M_API_HOST/T2M_API_PORT,"
        " default http://127.0.0.1:8000), with the API key in T2M_API_KEY or `api_key` there.",
    )
    verbs = j.add_subparsers(dest="jobs_command", metavar="VERB")
    ls = verbs.add_parser("list", help="your jobs, newest first (admins: --owner)")
    ls.add_argument(
        "--status", choices=JOB_STATES, default=None, help="only jobs in this state (default: all)"
    )
    ls.add_argument(
        "--owner",
        default=None,
        help="admins: another user's jobs, or * for everyone's (default: your own)",
    )
    ls.add_argument("--page", type=int, default=1, help="page number")
    ls.add_argument("--page-size", type=int, default=20, help="jobs per page, 1-100")
    _json_flag(ls)
    st = verbs.add_parser("status", help="a job's status, stage and scenes")
    _job_id(st)
    st.add_argument(
        "--follow",
        action="store_true",
        help="show its progress until it ends (a bar on a terminal, a line per change otherwise);"
        " the exit code is then its outcome (1: failed or cancelled)",
    )
    st.add_argument(
        "--interval",
        type=_interval,
        default=2.0,
        help=f"seconds between polls, {INTERVAL_S[0]:g} to {INTERVAL_S[1]:g}",
    )
    _json_flag(st)
    for verb, what in (
        ("cancel", "cancel a queued or running job"),
        ("retry", "run a failed or cancelled job again, reusing its finished scenes"),
        ("delete", "delete a job and its files (cancelling it if it still runs)"),
    ):
        _json_flag(_job_id(verbs.add_parser(verb, help=what)))
    dl = verbs.add_parser("download", help="a completed job's video, subtitles and thumbnail")
    _job_id(dl)
    dl.add_argument("--out", type=out_dir, default=".", help="directory for the files")
    _json_flag(dl)
    rg = verbs.add_parser(
        "regenerate",
        help="make one scene again with your feedback: a running job redoes it before composing;"
        " a completed one gets a new version of its video (the previous one stays downloadable)",
    )
    _job_id(rg)
    rg.add_argument("index", metavar="INDEX", type=int, help="the scene's index, from 0")
    rg.add_argument(
        "--feedback",
        required=True,
        metavar="TEXT",
        help="what should change in the scene (default: none; it is required)",
    )
    _json_flag(rg)
    return j


def _job_id(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("job_id", metavar="JOB_ID", type=_checked_id, help="the job's id (video-…)")
    return p


def _checked_id(job_id: str) -> str:
    """A job id as the API makes and accepts them (`video-<uuid>`), refused here otherwise: an
    empty one would name another path, a huge one no URL can hold."""
    if not re.fullmatch(JOB_ID_PATTERN, job_id):
        shown = repr(job_id) if len(job_id) <= 60 else f"{job_id[:60]!r}… ({len(job_id)} chars)"
        raise argparse.ArgumentTypeError(
            f"{shown} is not a job id: video-<uuid>, as `t2m jobs list` shows them"
        )
    return job_id


def _interval(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    low, high = INTERVAL_S
    if not low <= seconds <= high:  # nan and inf too
        raise argparse.ArgumentTypeError(f"{text!r}: give seconds from {low:g} to {high:g}")
    return seconds


def _json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def run(args: argparse.Namespace, version: str) -> int:
    try:
        with Remote(load_config(), version) as remote:
            result = VERB_RUNNERS[args.jobs_command](remote, args)
    except ApiError as e:
        if args.json:
            print(json.dumps({"error": str(e), "http_status": e.status}))
        print(f"t2m: {e}", file=sys.stderr)
        return e.code
    code, answer, text = result
    print(json.dumps(answer) if args.json else text)
    return code


Outcome = tuple[int, dict[str, Any], str]


def _list(remote: Remote, args: argparse.Namespace) -> Outcome:
    params: dict[str, Any] = {"page": args.page, "page_size": args.page_size}
    if args.status:
        params["status"] = args.status
    if args.owner:
        params["owner"] = args.owner
    page = remote.json("GET", "/api/v1/jobs", answers.JobList, params=params)
    rows = [
        f"{j['job_id']}  {j['status']:9}  {j['quality']:6}  {j['created_at'][:19]}  {j['topic']}"
        for j in page["items"]
    ]
    pages = max(1, -(-page["total"] // page["page_size"]))
    rows.append(f"page {page['page']} of {pages} ({page['total']} jobs)")
    return 0, page, "\n".join(rows)


def describe(s: dict[str, Any]) -> str:
    p = s["progress"]
    stage = "" if p["current_stage"] == s["status"] else f", {p['current_stage']}"
    line = f"{s['job_id']}: {s['status']}{stage} {p['percentage']:.0f}%"
    if budget := s.get("budget"):
        line += f", spent {spent_against(budget['max_cost_usd'], budget['spent_usd'])}"
    if s.get("error"):
        line += f": {' '.join(s['error'].split())}"
    if s.get("held"):
        line += f" ({s['held']})"
    if s.get("reused_from"):
        line += f", {REUSED.format(s['reused_from'])}"
    return line


def _scenes(s: dict[str, Any]) -> list[str]:
    return [
        f"  scene {sc['index'] + 1}: {sc['state']:9} {sc['title']}"
        for sc in s["progress"].get("scenes", [])
    ]


def _status(remote: Remote, args: argparse.Namespace) -> Outcome:
    if not args.follow:
        s = remote.status(args.job_id)
        return 0, s, "\n".join([describe(s), *_scenes(s)])
    with ProgressView(args.job_id, stream=sys.stderr) as view:
        s = remote.follow(args.job_id, args.interval, lambda s: view.update(from_api(s)))
    if s["status"] != "completed":
        print(
            f"t2m: job {s['job_id']} {s['status']}: {s.get('error') or ''}".rstrip(": "),
            file=sys.stderr,
        )
        return 1, s, describe(s)
    return 0, s, "\n".join([describe(s), *_scenes(s)])


def _action(verb: str) -> Any:
    def act(remote: Remote, args: argparse.Namespace) -> Outcome:
        path = f"/api/v1/jobs/{args.job_id}"
        if verb == "delete":
            remote.request("DELETE", path)
            answer = {"job_id": args.job_id, "status": "deleted"}
        else:
            answer = remote.json("POST", f"{path}/{verb}", answers.ActionResult)
        return 0, answer, f"{answer['job_id']}: {answer['status']}"

    return act


def _download(remote: Remote, args: argparse.Namespace) -> Outcome:
    answer: dict[str, Any] = {"job_id": args.job_id, "status": "completed"}
    for field, path, ext, optional in MEDIA:
        dest = args.out / f"{args.job_id}.{ext}"
        try:
            got = remote.download(f"/api/v1/videos/jobs/{args.job_id}/{path}", dest, optional)
        except ApiError as e:
            if e.status != 409:
                raise
            # Not "not ready (HTTP 409)": say why there is nothing, and what to do about it.
            raise ApiError(_nothing_to_download(remote.status(args.job_id)), e.code, 409) from None
        answer[field] = str(got.resolve()) if got else None
    text = "\n".join(
        f"  {k:14} {v}" for k, v in answer.items() if v and k not in ("job_id", "status")
    )
    return 0, answer, f"Downloaded {args.job_id}\n{text}"


def _nothing_to_download(s: dict[str, Any]) -> str:
    job, state = s["job_id"], s["status"]
    if state == "cancelled":
        return f"job {job} was cancelled: it has no video (`t2m jobs retry {job}` runs it again)"
    if state == "failed":
        again = (
            f"`t2m jobs retry {job}` runs it again"
            if s.get("retryable") is not False
            else "change the request and generate anew"
        )
        reason = " ".join((s.get("error") or "no reason given").split())
        return f"job {job} failed: {reason}; it has no video ({again})"
    p = s["progress"]
    return (
        f"job {job} is {state}, {p['current_stage']} {p['percentage']:.0f}%: no video yet"
        f" (`t2m jobs status {job} --follow` waits for it)"
    )


def _regenerate(remote: Remote, args: argparse.Namespace) -> Outcome:
    path = f"/api/v1/jobs/{args.job_id}/scenes/{args.index}/regenerate"
    answer = remote.json("POST", path, answers.Regenerated, json={"feedback": args.feedback})
    text = f"{answer['job_id']}: scene {answer['index']} {answer['status']}"
    return 0, answer, f"{text}, for version {answer['version']} of the video"


VERB_RUNNERS = {
    "list": _list,
    "status": _status,
    "cancel": _action("cancel"),
    "retry": _action("retry"),
    "delete": _action("delete"),
    "download": _download,
    "regenerate": _regenerate,
}
