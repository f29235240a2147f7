"""A worker serves only the stack whose artifacts it can see.

With file storage each stack's artifacts live in its own data dir. A worker pointed at another
stack's Temporal (a second `t2m up` whose own Temporal could not bind, a `t2m worker` with the
wrong T2M_DATA_DIR) would take that stack's tasks and write their renders where the stack never
looks (`FileNotFoundError: no object at key 'renders/….mp4'`). So the storage holds a marker
object with its id, and the Temporal namespace records, per task-queue prefix, the storage id of
its stack: the first worker claims it, a worker with another storage refuses with one line.
S3 storage is shared by every host of a stack, so it needs no marker."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from pathlib import Path

from temporalio.api.namespace.v1 import UpdateNamespaceInfo
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, UpdateNamespaceRequest
from temporalio.client import Client

from t2m.catalog.storage import LocalStorage, Storage
from t2m.config import Settings
from t2m.keys import STORAGE_MARKER


def storage_id(storage: Storage) -> str:
    """The storage's id, made and stored on first use."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "id"
        if storage.exists(STORAGE_MARKER):
            return storage.get_file(STORAGE_MARKER, path).read_text().strip()
        path.write_text(uuid.uuid4().hex)
        storage.put_file(STORAGE_MARKER, path)
        return path.read_text()


async def stack_mismatch(client: Client, settings: Settings, storage: Storage) -> str | None:
    """Why this worker must not serve the stack's queues (None: it may)."""
    if not isinstance(storage, LocalStorage):
        return None
    mine = await asyncio.to_thread(storage_id, storage)
    field = f"t2m.catalog.storage.{settings.task_queue_prefix}"
    service = client.workflow_service
    described = await service.describe_namespace(
        DescribeNamespaceRequest(namespace=client.namespace)
    )
    claimed = dict(described.namespace_info.data).get(field)
    if claimed is None:  # the first worker of this stack: claim the namespace for its storage
        info = UpdateNamespaceInfo(data={field: f"{mine} {storage.url}"})
        await service.update_namespace(
            UpdateNamespaceRequest(namespace=client.namespace, update_info=info)
        )
        return None
    their_id, _, their_url = claimed.partition(" ")
    if their_id == mine:
        return None
    return (
        f"the stack on {settings.temporal_address} keeps its artifacts in {their_url}, not in"
        f" {storage.url}: its jobs' files would be out of reach (set T2M_DATA_DIR to its data dir)"
    )
