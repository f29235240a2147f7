"""`t2m eval TOPICS.json`: a video per topic, as ordinary low-priority jobs, and a report on them.

It starts an `EvalWorkflow` on the running stack (or an ephemeral one, as `generate` does), follows
it, and downloads its report (`<eval id>.json`, `<eval id>.md`) into `--out`; with `--schedule
CRON` it registers the eval as a Temporal Schedule instead and returns.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import uuid
from pathlib import Path
from typing import Any

from cli.output import Unwritable, out_dir, writing
from t2m.config import Settings
from t2m.vocabulary.request import QUALITIES

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,59}")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    e = sub.add_parser(
        "eval",
        help="make a video per topic of a file and report on them",
        description="Each topic of TOPICS.json becomes an ordinary job (owner `eval`, lowest"
        " priority, its own fairness key); the report says, per topic and overall, the success"
        " rate, wall time, cost, fix attempts, layout findings and, with --judge, the judge's"
        " scores. Exit 0 when the report is written, whatever the videos' outcomes.",
    )
    e.add_argument(
        "topics",
        type=Path,
        metavar="TOPICS.json",
        help="a JSON list of {theorem|topic, description|context, difficulty?, subfield?}",
    )
    e.add_argument("--out", type=out_dir, default=".", help="directory for the report files")
    e.add_argument(
        "--judge",
        default=None,
        metavar="MODEL",
        help="litellm model that scores each video 1-5 on five axes, with a reason each",
    )
    e.add_argument(
        "--schedule",
        default=None,
        metavar="CRON",
        help="register the eval as the Temporal Schedule <prefix>-eval-<name> on this cron"
        " expression (e.g. '0 3 * * *') instead of running it now",
    )
    e.add_argument("--name", default=None, help="the eval's name (default: the file's stem)")
    e.add_argument(
        "--quality", choices=QUALITIES, default="medium", help="480p15, 720p30, 1080p60, 2160p60"
    )
    e.add_argument("--model", default=None, help="litellm model name (default: T2M_DEFAULT_MODEL)")
    e.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    return e


def eval_request(settings: Settings, args: argparse.Namespace) -> Any:
    """The eval the file and flags describe, each topic through the API's own request rules.

    Raises TopicFileError or InvalidRequest with a one-line message naming the entry and field.
    A video is always made anew (`force`): an eval measures the pipeline, not the result cache.
    """
    from pydantic import ValidationError

    from t2m.eval.runs import EvalItem, EvalRequest
    from t2m.eval.topics import load_topics
    from t2m.requests import InvalidRequest, build_request
    from t2m.vocabulary.request import VideoOptions
    from workflows.eval import EVAL_OWNER

    name = args.name or args.topics.stem
    if not NAME.fullmatch(name):
        raise InvalidRequest("name", f"{name!r} must be 1-60 letters, digits, '.', '_' or '-'")
    if args.judge is not None and not args.judge.strip():
        raise InvalidRequest("judge", "give a model name")
    if args.schedule is not None and not args.schedule.strip():  # not "no schedule: run it now"
        raise InvalidRequest("schedule", "give a cron expression, e.g. '0 3 * * *'")
    items = []
    for topic in load_topics(args.topics):  # topic and context are checked there, per entry
        try:
            options = VideoOptions(
                topic=topic.theorem,
                context=topic.description,
                model=args.model,
                quality=args.quality,
                force=True,
            )
        except ValidationError as e:
            raise InvalidRequest.from_validation(e) from None
        request = build_request(settings, options, owner=EVAL_OWNER)
        items.append(EvalItem(topic=topic, request=request))
    return EvalRequest(name=name, items=items, judge_model=args.judge)


async def run(settings: Settings, args: argparse.Namespace) -> int:
    from t2m.eval.topics import TopicFileError
    from t2m.requests import InvalidRequest

    try:
        req = eval_request(settings, args)
    except (TopicFileError, InvalidRequest) as e:
        return _fail(args, f"invalid eval: {e}", code=2)
    if args.schedule is not None:
        return await schedule(settings, args, req)
    from cli.local import client_for

    async with client_for(settings, args.json) as client:
        result = await follow(client, settings, args, req)
    if isinstance(result, int):
        return result
    return download(settings, args, result)


async def schedule(settings: Settings, args: argparse.Namespace, req: Any) -> int:
    """Register the eval on the running stack's Temporal (a throwaway one would forget it)."""
    from temporalio.service import RPCError, RPCStatusCode

    from workflows.client import connect
    from workflows.eval import ensure_eval_schedule

    try:
        client = await asyncio.wait_for(connect(settings), timeout=5)
    except Exception as e:
        return _fail(args, f"no Temporal answers at {settings.temporal_address}: {e}")
    try:
        sid = await ensure_eval_schedule(client, settings, req, args.schedule)
    except RPCError as e:
        code = 2 if e.status == RPCStatusCode.INVALID_ARGUMENT else 1
        return _fail(args, f"--schedule {args.schedule!r}: {e.message}", code=code)
    info = (await client.get_schedule_handle(sid).describe()).info
    runs = [t.isoformat() for t in info.next_action_times[:3]]
    if args.json:
        print(json.dumps({"schedule_id": sid, "cron": args.schedule, "next_runs": runs}))
    else:
        print(f"Scheduled: {sid} ({args.schedule!r}, {len(req.items)} topics)")
        print(f"  next runs: {', '.join(runs) or 'none'}")
        print(f"  reports land in storage under eval/{sid}-<time>/")
    return 0


async def follow(client: Any, settings: Settings, args: argparse.Namespace, req: Any) -> Any:
    """Start the eval and wait for it, telling each finished topic on stderr: its result, or
    the exit code once the failure is told: 1 the eval failed (its report could not be written)
    or was terminated; 130 Ctrl-C (the eval and its videos are cancelled, if it still runs)."""
    from datetime import timedelta

    from temporalio.client import WorkflowFailureError
    from temporalio.service import RPCError

    from t2m.eval.report import EvalResult
    from t2m.eval.runs import EvalProgress
    from workflows.eval import EVAL_PRIORITY, EvalWorkflow

    handle = await client.start_workflow(
        EvalWorkflow.run,
        req,
        id=f"eval-{uuid.uuid4()}",
        task_queue=settings.queue("video"),
        priority=EVAL_PRIORITY,
        static_summary=f"eval {req.name}: {len(req.items)} topics",
    )
    print(f"eval {handle.id}: {len(req.items)} topics", file=sys.stderr)
    result = asyncio.ensure_future(handle.result())
    told = 0
    try:
        while not result.done():
            await asyncio.wait({result}, timeout=1.0)
            try:
                progress: EvalProgress = await handle.query(
                    EvalWorkflow.progress, rpc_timeout=timedelta(seconds=3)
                )
            except Exception:
                continue  # no answer now: ask again on the next round
            for o in progress.finished[told:]:
                topic = progress.jobs.get(o.job_id, o.job_id)
                print(f"  {o.status:9} {topic} ({o.wall_s:.1f} s, {o.job_id})", file=sys.stderr)
            told = len(progress.finished)
        final: EvalResult = result.result()
        return final
    except WorkflowFailureError as e:
        return _fail(args, f"eval {handle.id} {_ended(e)}")
    except (KeyboardInterrupt, asyncio.CancelledError):
        try:
            await handle.cancel()
        except RPCError as e:  # it had ended already
            return _fail(args, f"interrupted; eval {handle.id} not cancelled: {e.message}", 130)
        return _fail(args, "cancelled by the user", code=130)


def _ended(failure: Exception) -> str:
    """How an eval that did not complete ended (`terminated: REASON`, `cancelled: …`, `failed:
    …`), with the innermost cause: an activity's own error, not "Activity task failed"."""
    from temporalio.exceptions import CancelledError, TerminatedError

    cause = failure
    while isinstance(cause.__cause__, Exception):
        cause = cause.__cause__
    how = {TerminatedError: "terminated", CancelledError: "cancelled"}.get(type(cause), "failed")
    return f"{how}: {cause}"


def download(settings: Settings, args: argparse.Namespace, result: Any) -> int:
    from t2m.catalog.storage import get_storage

    storage = get_storage(settings)
    paths = {}
    for field, key, ext in (
        ("report_json", result.json_key, "json"),
        ("report_markdown", result.markdown_key, "md"),
    ):
        try:
            with writing(args.out / f"{result.eval_id}.{ext}") as dest:
                paths[field] = str(storage.get_file(key, dest).resolve())
        except Unwritable as e:
            return _fail(args, str(e))
    o = result.overall
    if args.json:
        print(json.dumps({"eval_id": result.eval_id, **paths, **o.model_dump(mode="json")}))
        return 0
    print(
        f"Done: {result.eval_id}: {o.completed}/{o.topics} completed ({o.success_rate:.0%}),"
        f" {o.wall_s:.1f} s, ${o.cost_usd:.4f}, {o.fix_attempts} fix attempts,"
        f" {o.layout_findings} layout findings"
    )
    for axis, mean in o.mean_scores.items():
        print(f"  {axis:18} {mean:.2f} / 5")
    for field, path in paths.items():
        print(f"  {field:18} {path}")
    return 0


def _fail(args: argparse.Namespace, reason: str, code: int = 1) -> int:
    reason = " ".join(reason.split())
    if args.json:
        print(json.dumps({"error": reason}))
    print(f"t2m eval: {reason}", file=sys.stderr)
    return code
