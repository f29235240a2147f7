"""The `t2m` command: `up`, `worker`, `generate`, `jobs`, `keys`, `docs`.

Exit codes: 0 ok, 1 failure, 2 invalid usage or request, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from cli.output import emit_json, json_only_on_stdout
from t2m.config import InvalidSettings, Settings, get_settings


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
    from cli import evaluate, generate, jobs

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
    generate.add_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if getattr(args, "json", False) and args.command == "generate":
        json_only_on_stdout()
    try:
        code = _run(args)
    except InvalidSettings as e:
        if getattr(args, "json", False):
            emit_json({"error": f"invalid settings: {e}"})
        print(f"t2m {args.command}: refusing to start: invalid settings: {e}", file=sys.stderr)
        code = 2
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
        from cli import generate

        code = generate.run(settings, args, version())
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
    import asyncpg

    from t2m.catalog import api_keys, db, local_postgres
    from t2m.vocabulary.text import user_name

    user = user.strip()
    try:
        user_name(user)
    except ValueError as e:
        return _key_refused(f"--user {user!r}: {e}", 2, as_json)

    server = None
    url = settings.database_url
    try:
        if not url:  # the embedded database of `t2m up` (started here if the stack is down)
            try:
                server, url = await local_postgres.start_embedded(settings.data_dir)
            except OSError as e:
                bad = isinstance(e, FileExistsError | NotADirectoryError)  # a file in the way
                reason = f"T2M_DATA_DIR {settings.data_dir}: {e.strerror} ({e.filename})"
                return _key_refused(reason, 2 if bad else 1, as_json)
        try:
            pool = await db.connect(url)
        except ValueError as e:  # asyncpg's ClientConfigurationError too
            reason = f"T2M_DATABASE_URL: {DATABASE_URL_RULE} ({_hidden(str(e), url)})"
            return _key_refused(reason, 2, as_json)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
            where = "T2M_DATABASE_URL" if settings.database_url else "the embedded database"
            shown = f"{_without_password(url)} ({where}): {_hidden(str(e), url)}"
            return _key_refused(f"cannot use the database at {shown}", 1, as_json)
        key = await api_keys.KeyStore(pool).create(user, admin)
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


DATABASE_URL_RULE = "must be a PostgreSQL URL, postgresql://USER:PASSWORD@HOST:PORT/DATABASE"


def _key_refused(reason: str, code: int, as_json: bool) -> int:
    """`keys create`'s failure: one line on stderr, and with --json a JSON object on stdout."""
    reason = " ".join(reason.split())
    if as_json:
        print(json.dumps({"error": reason}))
    print(f"t2m keys create: {reason}", file=sys.stderr)
    return code


def _credentials(url: str) -> tuple[str, str, str, str]:
    """A database URL's scheme (with `://`), user, password and the rest after the `@`."""
    head, _, rest = url.rpartition("@")
    scheme, sep, credentials = head.rpartition("://")
    user, _, password = credentials.partition(":")
    return scheme + sep, user, password, rest


def _without_password(url: str) -> str:
    scheme, user, password, rest = _credentials(url)
    return f"{scheme}{user}:***@{rest}" if password else url


def _hidden(text: str, url: str) -> str:
    """`text` with the password of the database URL `url` as `***`, wherever it appears."""
    from urllib.parse import unquote

    password = _credentials(url)[2]
    for secret in (password, unquote(password)):
        if secret:
            text = text.replace(secret, "***")
    return text
