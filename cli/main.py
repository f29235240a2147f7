"""The `t2m` command: `up`, `worker`, `generate`, `jobs`, `keys`, `docs`.

Exit codes: 0 ok, 1 failure, 2 invalid usage or request, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli.output import emit_json, json_only_on_stdout, warn_without_context
from t2m.config import Settings, get_settings
from t2m.models import QUALITIES

if TYPE_CHECKING:
    from t2m.models import VideoRequest


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option that takes a value shows its default, `none` when it has none."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        help = action.help or ""
        if "default" in help or action.nargs == 0 or not action.option_strings:
            return help
        if action.default in (None, "", []):
            return f"{help} (default: none)"
        return f"{help} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """Subcommands' parsers are of this class too, so they share the formatter."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("t2m")
    except PackageNotFoundError:
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    from cli import evaluate, jobs

    p = Parser(
        prog="t2m",
        description="Topic to explanatory Manim video.",
        epilog="`t2m COMMAND --help` for a command's options. Exit codes: 0 ok, 1 failure,"
        " 2 invalid usage or request, 130 interrupted.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    p.set_defaults(usage_parser=p)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    u = sub.add_parser("up", help="run the embedded stack (Temporal, PostgreSQL, worker, API)")
    u.add_argument(
        "--queues",
        default="video,llm,render",
        help="comma-separated queues its worker serves (others run `t2m worker` elsewhere)",
    )
    d = sub.add_parser("docs", help="the Manim documentation t2m retrieves from")
    ds = d.add_subparsers(dest="docs_command", required=True).add_parser(
        "search", help="top matches for QUERY"
    )
    ds.add_argument("query", help="what to look for, in words or API names")
    ds.add_argument(
        "--k", type=int, default=5, choices=range(1, 51), metavar="K", help="matches, 1-50"
    )
    ds.add_argument("--json", action="store_true", help="print the matches as JSON on stdout")
    w = sub.add_parser("worker", help="serve t2m's task queues")
    w.add_argument("--queues", default="video,llm,render", help="comma-separated: video,llm,render")
    k = sub.add_parser("keys", help="manage API keys")
    kc = k.add_subparsers(dest="keys_command", required=True).add_parser(
        "create", help="create an API key (shown once; only its hash is stored)"
    )
    kc.add_argument("--user", required=True, help="the user the key acts as")
    kc.add_argument("--admin", action="store_true", help="may see and steer every user's jobs")
    kc.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    j = jobs.add_parser(sub)
    j.set_defaults(usage_parser=j)
    evaluate.add_parser(sub)
    g = sub.add_parser("generate", help="make a video about TOPIC")
    g.add_argument("topic", help="what the video explains, 3-500 characters")
    g.add_argument("--context", default="", help="facts and framing for the video")
    g.add_argument(
        "--quality", choices=QUALITIES, default="medium", help="480p15, 720p30, 1080p60, 2160p60"
    )
    g.add_argument("--model", default=None, help="litellm model name (default: T2M_DEFAULT_MODEL)")
    g.add_argument(
        "--voice",
        default=None,
        help="espeak-ng voice name, or `none` for silence (default: T2M_DEFAULT_VOICE)",
    )
    g.add_argument(
        "--style",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a style preference (repeatable): theme=dark|light, accent_color=#RRGGBB|NAME,"
        " pace=slow|normal|fast, audience=beginner|…|expert, language=fr, or any KEY=text",
    )
    g.add_argument("--rag", action="store_true", help="put Manim docs in the code prompts")
    g.add_argument(
        "--visual-check",
        action="store_true",
        help="have T2M_VISION_MODEL review frames of each scene",
    )
    g.add_argument(
        "--force",
        action="store_true",
        help="make the video anew even if an identical one was made before",
    )
    g.add_argument(
        "--max-cost-usd",
        type=float,
        default=None,
        help="budget of the job's model calls in USD; once spent, fix rounds end"
        " (default: T2M_DEFAULT_MAX_COST_USD, else T2M_MAX_COST_USD_CEILING, else none)",
    )
    g.add_argument("--no-subtitles", action="store_true", help="make no subtitles")
    g.add_argument("--no-thumbnail", action="store_true", help="make no thumbnail")
    g.add_argument("--out", type=Path, default=Path("."), help="directory for the results")
    g.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if getattr(args, "json", False) and args.command == "generate":
        json_only_on_stdout()
    try:
        code = _run(args)
    except KeyboardInterrupt:
        if getattr(args, "json", False):
            emit_json({"error": "interrupted"})
        print("t2m: interrupted", file=sys.stderr)
        code = 130
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # sdk-python#300: the SDK can abort at interpreter exit


def _run(args: argparse.Namespace) -> int:
    if args.command is None or (args.command == "jobs" and args.jobs_command is None):
        # Bare `t2m` (or `t2m jobs`) asks for nothing: show what it can do, on stderr, and exit 2
        # like any incomplete command line, so that a script with an empty argument fails.
        args.usage_parser.print_help(sys.stderr)
        return 2
    if args.command == "jobs":
        from cli import jobs

        return jobs.run(args, version())
    settings = get_settings()
    if args.command == "up":
        from cli.ports import port_in_use

        if taken := port_in_use(settings):  # not "t2m is up" with another stack's URLs
            print(f"t2m up: refusing to start: {taken}", file=sys.stderr)
            return 2
        from cli.stack import up

        code = asyncio.run(up(settings, args.queues))
    elif args.command == "worker":
        import worker

        code = worker.main(["--queues", args.queues])
    elif args.command == "docs":
        code = docs_search(settings, args.query, args.k, args.json)
    elif args.command == "keys":
        code = asyncio.run(create_key(settings, args.user, args.admin, args.json))
    elif args.command == "eval":
        from cli import evaluate

        code = asyncio.run(evaluate.run(settings, args))
    else:
        code = asyncio.run(generate(settings, args))
    return code


def docs_search(settings: Settings, query: str, k: int, as_json: bool) -> int:
    from dataclasses import asdict

    from t2m.authoring import docs as rag

    hits = rag.load_index(settings.data_dir).search(query, k)
    if as_json:
        print(json.dumps([asdict(h) for h in hits]))
        return 0
    if not hits:
        print("no matches", file=sys.stderr)
        return 1
    for i, h in enumerate(hits, 1):
        first = h.snippet.splitlines()[0]
        print(f"{i}. {h.name}  (score {h.score:.2f})\n   {first}")
    return 0


async def create_key(settings: Settings, user: str, admin: bool, as_json: bool = False) -> int:
    from t2m.catalog import db
    from t2m.models import user_name

    user = user.strip()
    try:
        user_name(user)
    except ValueError as e:
        if as_json:
            print(json.dumps({"error": f"--user {user!r}: {e}"}))
        print(f"t2m keys create: --user {user!r}: {e}", file=sys.stderr)
        return 2

    server = None
    url = settings.database_url
    if not url:  # the embedded database of `t2m up` (started here if the stack is down)
        server, url = await db.start_embedded(settings.data_dir)
    try:
        pool = await db.connect(url)
        key = await db.KeyStore(pool).create(user, admin)
        await pool.close()
    finally:
        if server is not None:
            server.cleanup()
    print(json.dumps({"user": user, "admin": admin, "key": key}) if as_json else key)
    print(
        f"API key for {user}{' (admin)' if admin else ''}: shown once, keep it safe.",
        file=sys.stderr,
    )
    return 0


@contextlib.asynccontextmanager
async def _client(settings: Settings, quiet: bool) -> AsyncIterator:
    """The running stack's client, or an ephemeral dev server + in-process worker."""
    from cli.stack import dev_server_flags, temporal_binary
    from workflows.client import connect, ensure_search_attributes

    try:
        yield await asyncio.wait_for(connect(settings), timeout=3)
        return
    except Exception:
        pass
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.testing import WorkflowEnvironment

    import worker

    if not quiet:
        print("No t2m stack answers; starting an ephemeral one for this command.", file=sys.stderr)
    # The dev server inherits stdout; point it at stderr so `--json` output stays clean.
    saved_stdout = os.dup(1)
    os.dup2(2, 1)
    try:
        env = await WorkflowEnvironment.start_local(
            namespace=settings.temporal_namespace,
            data_converter=pydantic_data_converter,
            dev_server_existing_path=temporal_binary(),
            dev_server_log_level="error",
            dev_server_extra_args=dev_server_flags(),
            ui=False,
        )
    finally:
        os.dup2(saved_stdout, 1)
        os.close(saved_stdout)
    async with env:
        await ensure_search_attributes(env.client)
        # No drain: this stack ends with the command, so work left running has nowhere to go on.
        no_drain = settings.model_copy(update={"worker_drain_s": 0})
        async with worker.running(env.client, no_drain):
            yield env.client


def _style_pairs(pairs: list[str]) -> dict[str, str] | None:
    """`--style KEY=VALUE` flags as the request's style preferences."""
    from t2m.requests import InvalidRequest

    style = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidRequest("style_preferences", f"--style takes KEY=VALUE, not {pair!r}")
        style[key.strip()] = value.strip()
    return style or None


def _request(settings: Settings, args: argparse.Namespace) -> VideoRequest:
    """The request the flags describe, through the API's own model and rules."""
    from pydantic import ValidationError

    from t2m.models import VideoOptions
    from t2m.requests import InvalidRequest, build_request

    try:
        options = VideoOptions(
            topic=args.topic,
            context=args.context,
            model=args.model,
            quality=args.quality,
            use_rag=args.rag,
            visual_check=args.visual_check,
            enable_subtitles=not args.no_subtitles,
            enable_thumbnails=not args.no_thumbnail,
            voice=args.voice,
            force=args.force,
            max_cost_usd=args.max_cost_usd,
            style_preferences=_style_pairs(args.style),
        )
    except ValidationError as e:
        raise InvalidRequest.from_validation(e) from None
    return build_request(settings, options, owner=settings.dev_user or "local")


async def generate(settings: Settings, args: argparse.Namespace) -> int:
    from temporalio.client import WorkflowFailureError

    from cli.progress import ProgressView
    from t2m.catalog.storage import get_storage
    from t2m.requests import InvalidRequest
    from workflows.client import job_status, start_video

    try:
        req = _request(settings, args)
    except InvalidRequest as e:
        _fail(args, None, f"invalid request: {e}")
        return 2
    warn_without_context(req.model, req.context)
    async with _client(settings, args.json) as client:
        handle = await start_video(client, settings, req)
        view = ProgressView(handle.id, stream=sys.stderr)
        result_task = asyncio.ensure_future(handle.result())
        try:
            with view:
                while not result_task.done():
                    view.update(await job_status(handle))
                    await asyncio.wait({result_task}, timeout=0.5)
                view.update(await job_status(handle))
            result = result_task.result()
        except (KeyboardInterrupt, asyncio.CancelledError):
            await handle.cancel()  # exit 130, as for any interrupted command
            return _fail(args, handle.id, "cancelled by the user", status="cancelled", code=130)
        except WorkflowFailureError as e:
            status = await job_status(handle)
            reason = status.error or str(e.cause or e)
            return _fail(args, handle.id, reason, status.status, retryable=status.retryable)
    storage = get_storage(settings)
    a = result.artifacts
    args.out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, str | None] = {}
    for field, key, ext in (
        ("video", a.video_key, "mp4"),
        ("subtitles_srt", a.srt_key, "srt"),
        ("subtitles_vtt", a.vtt_key, "vtt"),
        ("thumbnail", a.thumbnail_key, "png"),
    ):
        dest = args.out / f"{result.job_id}.{ext}"
        paths[field] = str(storage.get_file(key, dest).resolve()) if key else None
    if args.json:
        emit_json(
            {
                "job_id": result.job_id,
                "status": "completed",
                **paths,
                "duration_s": round(a.duration_s, 3),
                "scenes": result.scenes,
            }
        )
    else:
        print(f"Done: {result.job_id} ({a.duration_s:.1f} s, {result.scenes} scenes)")
        for field, path in paths.items():
            if path:
                print(f"  {field:14} {path}")
    return 0


def _fail(
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
