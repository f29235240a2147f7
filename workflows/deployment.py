"""Worker Versioning: which build of the workflow code this process is, and how runs of other
builds are treated.

Every worker belongs to a Temporal worker deployment (`T2M_DEPLOYMENT_NAME`) under a build id
derived from the package version and a hash of the workflow code (`T2M_BUILD_ID` overrides it),
so a release whose workflow code changed is a new build even when nobody bumped the version.
Video and eval runs are PINNED to the build that started them (they finish on it, so a deploy
can never make a run replay on code it did not start with); the reconcile run AUTO_UPGRADEs.
The rollout (README "Changing workflow code"): start the new build's workers beside the old,
make the new build current (workers do it at start unless `T2M_PROMOTE_BUILD=false`), watch the
old build drain, retire it.
"""

from __future__ import annotations

import ast
import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from google.protobuf.field_mask_pb2 import FieldMask
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflow.v1 import WorkflowExecutionOptions
from temporalio.api.workflowservice.v1 import (
    SetWorkerDeploymentCurrentVersionRequest,
    UpdateWorkflowExecutionOptionsRequest,
)
from temporalio.client import Client
from temporalio.common import PinnedVersioningOverride, WorkerDeploymentVersion
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Replayer, WorkerDeploymentConfig

from t2m.config import Settings

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW_MODULES = ("workflows.video", "workflows.eval", "workflows.maintenance")
"""The workflow definitions; the build id covers them and every project module they import."""
PROJECT_PACKAGES = ("workflows", "activities", "t2m")
log = logging.getLogger("t2m.deployment")


def _source(module: str) -> Path | None:
    base = ROOT / Path(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def workflow_code_files(roots: Iterable[str] = WORKFLOW_MODULES) -> list[Path]:
    """The source files workflow code runs: the workflow modules and, transitively, the project
    modules they import (read from the source, nothing imported)."""
    seen: dict[str, Path] = {}
    todo = list(roots)
    while todo:
        module = todo.pop()
        path = _source(module)
        if module in seen or path is None:
            continue
        seen[module] = path
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            todo += [n for n in names if n.split(".")[0] in PROJECT_PACKAGES]
    return sorted(seen.values())


@cache
def code_build_id() -> str:
    """`<package version>-<12 hex digits of the workflow code's hash>`."""
    digest = hashlib.sha256()
    for path in workflow_code_files():
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    try:
        release = version("t2m")
    except PackageNotFoundError:
        release = "0"
    return f"{release}-{digest.hexdigest()[:12]}"


def deployment_version(settings: Settings) -> WorkerDeploymentVersion:
    return WorkerDeploymentVersion(settings.deployment_name, settings.build_id or code_build_id())


def deployment_config(version: WorkerDeploymentVersion) -> WorkerDeploymentConfig:
    """A workflow worker of this build. Activity workers stay unversioned: activity code must
    accept what any release's workflows send (boundary models only gain defaulted fields), and
    versioned activity queues with task-queue fairness on were seen to leave tasks undispatched
    on the 1.32 dev server."""
    return WorkerDeploymentConfig(version=version, use_worker_versioning=True)


async def promote(
    client: Client, current: WorkerDeploymentVersion, timeout_s: float = 30.0
) -> None:
    """Make `current` the deployment's current version: new runs start on it; runs pinned to
    an older build stay there. Retried until the server has seen this build's pollers."""
    request = SetWorkerDeploymentCurrentVersionRequest(
        namespace=client.namespace,
        deployment_name=current.deployment_name,
        build_id=current.build_id,
        identity=client.identity,
        ignore_missing_task_queues=True,
    )
    await _until_accepted(  # "does your Worker Deployment have pollers?": not yet
        lambda: client.workflow_service.set_worker_deployment_current_version(request),
        lambda e: True,
        timeout_s,
    )


async def adopt_older_builds(
    client: Client, settings: Settings, workflows: list[type]
) -> dict[str, str]:
    """For a single-host stack restarted on changed workflow code (`t2m up`): runs pinned to an
    older build have no worker left to finish them. Each whose history replays cleanly on this
    build's code is moved onto this build (it goes on where it was); one that does not replay is
    left pinned and reported, to be retried (`t2m jobs retry`) or finished by its build's
    worker. Returns job id → "moved" or why not."""
    current = deployment_version(settings)
    query = (
        f'TaskQueue = "{settings.queue("video")}" AND ExecutionStatus = "Running"'
        f' AND ((TemporalWorkerDeployment = "{current.deployment_name}"'
        f' AND TemporalWorkerDeploymentVersion != "{search_value(current)}")'
        " OR TemporalWorkerDeployment IS NULL)"  # started before workers were versioned
    )
    replayer = Replayer(workflows=workflows, data_converter=client.data_converter)
    outcome: dict[str, str] = {}
    async for execution in client.list_workflows(query):
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        history = await handle.fetch_history()
        replayed = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        if replayed.replay_failure is not None:
            outcome[execution.id] = f"left on its build: {replayed.replay_failure}"
            log.warning(
                "run %s does not replay on build %s: %s",
                execution.id,
                current.build_id,
                replayed.replay_failure,
            )
            continue
        moved = await _pin(client, _pin_request(client, execution.id, execution.run_id, current))
        outcome[execution.id] = "moved" if moved else "ended before it was moved"
    if outcome:
        log.info("runs of older builds: %s", outcome)
    return outcome


TRANSIENT = {
    RPCStatusCode.CANCELLED,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.RESOURCE_EXHAUSTED,
}
"""Refusals that say nothing about the request: it may be made again."""


def _not_yet_movable(e: RPCError) -> bool:
    """Whether a refused move of a run may be asked again."""
    return e.status in TRANSIENT or "is not present in task queue" in e.message


async def _pin(
    client: Client, request: UpdateWorkflowExecutionOptionsRequest, timeout_s: float = 30.0
) -> bool:
    """Move a run; retried while the server has not yet listed this build on the queue (a
    version's task queues are registered asynchronously after its first poll) or gave up on the
    request inside (CANCELLED "operation was canceled" was seen under load: the move is
    idempotent, so it is asked again). False if the run has ended: listed as running, it may end
    before it is moved (a maintenance run at a worker's start did, and the worker exited on the
    refusal)."""
    try:
        await _until_accepted(
            lambda: client.workflow_service.update_workflow_execution_options(request),
            _not_yet_movable,
            timeout_s,
        )
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:  # "workflow execution already completed"
            return False
        raise
    return True


async def _until_accepted(
    call: Callable[[], Awaitable[object]], not_yet: Callable[[RPCError], bool], timeout_s: float
) -> None:
    """Make `call` until the server accepts it, while its refusals say `not_yet` (something
    the server registers asynchronously), for up to `timeout_s`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            await call()
            return
        except RPCError as e:
            if not not_yet(e) or loop.time() > deadline:
                raise
            log.debug("not yet accepted, trying again: %s", e.message)
            await asyncio.sleep(0.3)


def _pin_request(
    client: Client, workflow_id: str, run_id: str | None, to: WorkerDeploymentVersion
) -> UpdateWorkflowExecutionOptionsRequest:
    return UpdateWorkflowExecutionOptionsRequest(
        namespace=client.namespace,
        workflow_execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id or ""),
        workflow_execution_options=WorkflowExecutionOptions(
            versioning_override=PinnedVersioningOverride(to)._to_proto()
        ),
        update_mask=FieldMask(paths=["versioning_override"]),
    )


def search_value(version: WorkerDeploymentVersion) -> str:
    """How the `TemporalWorkerDeploymentVersion` search attribute spells a version."""
    return f"{version.deployment_name}:{version.build_id}"


async def pinned_runs(client: Client, version: WorkerDeploymentVersion) -> int:
    """Running workflows pinned to `version`: once none is left, its workers may be retired."""
    query = (
        'ExecutionStatus = "Running"'
        f' AND TemporalWorkerDeploymentVersion = "{search_value(version)}"'
    )
    return (await client.count_workflows(query)).count
