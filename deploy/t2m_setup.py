"""One-shot set-up for a t2m deployment, run before the API and the workers start.

docker-compose.yml runs it as the `t2m-setup` service and deploy/ as the `t2m-setup` Job; the image
has it at /opt/t2m/setup.py. Idempotent; every step uses t2m's own settings (`T2M_*`) and code:

1. waits for the Temporal frontend (`T2M_TEMPORAL_ADDRESS`), then registers the namespace
   (`T2M_TEMPORAL_NAMESPACE`) unless it exists (`--no-namespace` on Temporal Cloud, where
   namespaces are made in the Cloud console or with tcld);
2. registers t2m's search attributes in it (`workflows.client.ensure_search_attributes`) and waits
   until the frontend accepts a query naming them (a server caches search attributes for a while:
   without this wait the first jobs could be refused);
3. applies the catalog's migrations (`t2m.catalog.db.connect`, under an advisory lock) when
   `T2M_DATABASE_URL` is set;
4. with `--create-bucket`, creates the bucket of `T2M_STORAGE_URL=s3://bucket[/prefix]` when it
   is missing (for a bundled S3 server; on AWS make the bucket with your infrastructure code).

Exits 0 when all is in place, 1 with one line on stderr otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar
from urllib.parse import urlparse

T = TypeVar("T")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="setup.py", description=__doc__.splitlines()[0])
    p.add_argument("--wait", type=float, default=120.0, help="seconds to wait for each service")
    p.add_argument("--retention-days", type=int, default=7, help="of a namespace this registers")
    p.add_argument(
        "--no-namespace", action="store_true", help="the namespace exists (Temporal Cloud)"
    )
    p.add_argument("--create-bucket", action="store_true", help="create the S3 bucket if missing")
    return p


def bucket_of(storage_url: str | None) -> str | None:
    """The bucket of an `s3://bucket[/prefix]` storage URL; None for local storage."""
    if not storage_url:
        return None
    url = urlparse(storage_url)
    if url.scheme != "s3":
        return None
    if not url.netloc:
        raise ValueError(f"T2M_STORAGE_URL={storage_url!r} names no bucket")
    return url.netloc


async def retry(what: str, step: Callable[[], Awaitable[T]], wait_s: float) -> T:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return await step()
        except Exception as e:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what}: {type(e).__name__}: {e}") from e
            print(f"setup: waiting for {what} ({type(e).__name__})", file=sys.stderr)
            await asyncio.sleep(2)


async def ensure_namespace(client, namespace: str, retention_days: int) -> bool:
    """Register `namespace` unless it exists; True when this call registered it."""
    from google.protobuf.duration_pb2 import Duration
    from temporalio.api.workflowservice.v1 import (
        DescribeNamespaceRequest,
        RegisterNamespaceRequest,
    )
    from temporalio.service import RPCError, RPCStatusCode

    try:
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=namespace)
        )
        return False
    except RPCError as e:
        if e.status != RPCStatusCode.NOT_FOUND:
            raise
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=namespace,
            workflow_execution_retention_period=Duration(seconds=retention_days * 86400),
        )
    )
    return True


async def search_attributes_usable(client) -> None:
    """Raises until a visibility query naming every t2m search attribute is accepted."""
    from temporalio.api.enums.v1 import IndexedValueType

    from workflows.search import SEARCH_ATTRIBUTES

    keyword = IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
    names = [n for n, t in SEARCH_ATTRIBUTES.items() if t == keyword]
    await client.count_workflows(" AND ".join(f"{name} = 'x'" for name in names))


def ensure_bucket(bucket: str) -> bool:
    """Create `bucket` (standard AWS_* configuration) unless it exists; True when created."""
    import boto3
    from botocore.exceptions import ClientError

    s3 = boto3.client("s3")
    try:
        s3.head_bucket(Bucket=bucket)
        return False
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
    s3.create_bucket(Bucket=bucket)
    return True


async def setup(args: argparse.Namespace) -> None:
    from t2m.catalog import db
    from t2m.config import get_settings
    from workflows.client import connect, ensure_search_attributes

    settings = get_settings()
    client = await retry(
        f"Temporal at {settings.temporal_address}", lambda: connect(settings), args.wait
    )
    if not args.no_namespace:
        made = await retry(
            "namespace registration",
            lambda: ensure_namespace(client, settings.temporal_namespace, args.retention_days),
            args.wait,
        )
        print(
            f"setup: namespace {settings.temporal_namespace}: {'registered' if made else 'exists'}"
        )
    # A namespace just registered takes a few seconds to reach every frontend: retry.
    await retry("search attributes", lambda: ensure_search_attributes(client), args.wait)
    await retry("search attributes in use", lambda: search_attributes_usable(client), args.wait)
    print("setup: search attributes registered")
    if settings.database_url:
        pool = await retry(
            "the catalog database", lambda: db.connect(settings.database_url or ""), args.wait
        )
        await pool.close()
        print("setup: catalog migrations applied")
    storage_url = getattr(settings, "storage_url", None) or os.environ.get("T2M_STORAGE_URL")
    bucket = bucket_of(str(storage_url) if storage_url else None)
    if args.create_bucket and bucket:

        async def make_bucket() -> bool:
            return await asyncio.to_thread(ensure_bucket, bucket)

        made = await retry(f"S3 bucket {bucket}", make_bucket, args.wait)
        print(f"setup: bucket {bucket}: {'created' if made else 'exists'}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        asyncio.run(setup(args))
    except Exception as e:
        print(f"setup failed: {e}", file=sys.stderr)
        code = 1
    else:
        code = 0
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # sdk-python#300: the SDK can abort at interpreter exit


if __name__ == "__main__":
    main()
