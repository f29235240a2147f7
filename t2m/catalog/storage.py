"""Artifact storage addressed by keys such as `jobs/<job>/video.mp4`.

Activities exchange keys, never bytes, so nothing heavy enters workflow history. `T2M_STORAGE_URL`
picks the backend: `file:///path` (`LocalStorage`, the embedded default under the data dir) or
`s3://bucket[/prefix]` (`S3Storage`), which every host of a deployment shares, so a render made on
one machine is composed on another and served by the API from a third. S3's endpoint, region and
credentials come only from the standard AWS configuration (AWS_ENDPOINT_URL, AWS_REGION,
AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profiles, instance roles), so AWS, MinIO, SeaweedFS, R2 and
GCS's S3 API need nothing t2m-specific beyond the URL.
"""

from __future__ import annotations

import logging
import mimetypes
import os
import shutil
import tempfile
import uuid
from pathlib import Path, PurePosixPath
from typing import Any, Protocol
from urllib.parse import urlparse

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from t2m.config import Settings
from t2m.errors import T2mError

CONTENT_TYPES = {".srt": "application/x-subrip", ".vtt": "text/vtt", ".wav": "audio/wav"}
MiB = 1024 * 1024


log = logging.getLogger(__name__)


class StorageUnavailable(T2mError):
    """Storage cannot be used as configured; the message is one line that says why."""


class Storage(Protocol):
    url: str

    def put_file(self, key: str, src: Path) -> None: ...
    def get_file(self, key: str, dest: Path) -> Path: ...
    def exists(self, key: str) -> bool: ...
    def size(self, key: str) -> int: ...
    def delete_prefix(self, prefix: str) -> None: ...
    def copy(self, src_key: str, dest_key: str) -> None: ...
    def check(self) -> None:
        """Raise `StorageUnavailable` unless objects can be stored here."""
        ...

    def url_for(
        self, key: str, expires_s: int, *, filename: str | None = None, attachment: bool = False
    ) -> str | None:
        """A URL a client fetches the object from directly until it expires (Range requests
        included), or None when the API must serve it from `path`."""
        ...

    def path(self, key: str) -> Path:
        """The object's file on this host, for the API to serve when `url_for` gives none."""
        ...


def content_type(key: str) -> str:
    suffix = PurePosixPath(key).suffix
    return CONTENT_TYPES.get(suffix) or mimetypes.guess_type(key)[0] or "application/octet-stream"


def _clean(key: str) -> str:
    """`key` as a relative path without `.`/`..` parts, or ValueError."""
    parts = PurePosixPath(key).parts
    if not key or key.startswith("/") or any(p in (".", "..") for p in parts):
        raise ValueError(f"storage key escapes the root: {key!r}")
    return "/".join(parts)


class LocalStorage:
    """Keys map to files under `root`; writes are atomic (temp file + rename)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.url = self.root.resolve().as_uri()

    def url_for(
        self, key: str, expires_s: int, *, filename: str | None = None, attachment: bool = False
    ) -> str | None:
        return None  # a directory on the API's host: the API serves the file itself

    def path(self, key: str) -> Path:
        p = (self.root / key).resolve()
        if not p.is_relative_to(self.root.resolve()):
            raise ValueError(f"storage key escapes the root: {key!r}")
        return p

    def put_file(self, key: str, src: Path) -> None:
        dest = self.path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        # A name of its own per write: two jobs with the same scene store one render key, maybe
        # at once on one worker; each write must land whole.
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.tmp")
        try:
            shutil.copyfile(src, tmp)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)

    def get_file(self, key: str, dest: Path) -> Path:
        src = self.path(key)
        if not src.is_file():
            raise FileNotFoundError(f"no object at key {key!r}")
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        return Path(dest)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def size(self, key: str) -> int:
        return self.path(key).stat().st_size

    def delete_prefix(self, prefix: str) -> None:
        p = self.path(prefix)
        if p.is_dir():
            shutil.rmtree(p)
        elif p.is_file():
            p.unlink()

    def copy(self, src_key: str, dest_key: str) -> None:
        self.put_file(dest_key, self.path(src_key))

    def check(self) -> None:
        probe = self.root / ".health" / uuid.uuid4().hex
        try:
            probe.parent.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as e:
            raise StorageUnavailable(f"storage {self.url} is not writable: {e}") from e


def _s3_client(max_attempts: int, endpoint_url: str | None = None) -> Any:
    """An S3 client from the standard AWS configuration, with boto3's standard-mode retries
    (exponential backoff with jitter) for throttling, 5xx and connection errors."""
    config = Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        signature_version="s3v4",
        connect_timeout=5,
        read_timeout=60,
    )
    return boto3.session.Session().client("s3", config=config, endpoint_url=endpoint_url)


class S3Storage:
    """Objects `<prefix>/<key>` in one bucket.

    Uploads go through boto3's transfer manager: files above `part_size` are sent as a multipart
    upload in parts of that size, several at once; downloads stream to a file (ranged GETs in
    parallel for large objects), never into memory. `max_attempts` is generous on purpose: a worker
    rides out a short S3 outage inside the call (heartbeating), and Temporal retries the activity
    if it lasts longer; the start-up and health checks use a short budget so they answer quickly.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        max_attempts: int = 10,
        part_size: int = 16 * MiB,
        public_endpoint: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = _clean(prefix) + "/" if prefix.strip("/") else ""
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self._s3 = _s3_client(max_attempts)
        self._probe = _s3_client(max_attempts=2)
        # Presigning is local (no request): a client for the endpoint browsers reach, if another.
        self._presign = _s3_client(2, public_endpoint) if public_endpoint else self._s3
        self._transfer = TransferConfig(
            multipart_threshold=part_size, multipart_chunksize=part_size, max_concurrency=4
        )

    def object_key(self, key: str) -> str:
        return self.prefix + _clean(key)

    def put_file(self, key: str, src: Path) -> None:
        self._s3.upload_file(
            str(src),
            self.bucket,
            self.object_key(key),
            ExtraArgs={"ContentType": content_type(key)},
            Config=self._transfer,
        )

    def get_file(self, key: str, dest: Path) -> Path:
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._s3.download_file(
                self.bucket, self.object_key(key), str(dest), Config=self._transfer
            )
        except ClientError as e:
            if _status(e) == 404:
                raise FileNotFoundError(f"no object at key {key!r}") from e
            raise
        return Path(dest)

    def _head(self, key: str) -> dict | None:
        try:
            return self._s3.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as e:
            if _status(e) == 404:
                return None
            raise

    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    def size(self, key: str) -> int:
        head = self._head(key)
        if head is None:
            raise FileNotFoundError(f"no object at key {key!r}")
        return int(head["ContentLength"])

    def delete_prefix(self, prefix: str) -> None:
        """Delete the object `prefix` and every object under `prefix/`."""
        base = self.object_key(prefix)
        keys = [base]
        pages = self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=base + "/"
        )
        for page in pages:
            keys += [obj["Key"] for obj in page.get("Contents", [])]
        for i in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[i : i + 1000]]
            self._s3.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})

    def copy(self, src_key: str, dest_key: str) -> None:
        """A server-side copy (multipart for large objects): the bytes never leave S3."""
        source = {"Bucket": self.bucket, "Key": self.object_key(src_key)}
        self._s3.copy(source, self.bucket, self.object_key(dest_key), Config=self._transfer)

    def url_for(
        self, key: str, expires_s: int, *, filename: str | None = None, attachment: bool = False
    ) -> str:
        """A presigned GET URL anyone holding it may use until it expires: the bytes never pass
        through the API."""
        params = {
            "Bucket": self.bucket,
            "Key": self.object_key(key),
            "ResponseContentType": content_type(key),
        }
        if filename or attachment:
            kind = "attachment" if attachment else "inline"
            name = f'; filename="{filename}"' if filename else ""
            params["ResponseContentDisposition"] = kind + name
        return self._presign.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=expires_s
        )

    def path(self, key: str) -> Path:
        raise StorageUnavailable(f"{key!r} is in S3, not on this host: serve it by `url_for`")

    def check(self) -> None:
        try:
            self._probe.head_bucket(Bucket=self.bucket)
        except NoCredentialsError as e:
            raise StorageUnavailable(
                f"storage {self.url}: no AWS credentials found (set AWS_ACCESS_KEY_ID and"
                " AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or use an instance role)"
            ) from e
        except ClientError as e:
            status = _status(e)
            if status == 404:
                why = f"bucket {self.bucket!r} does not exist"
            elif status in (401, 403):
                why = f"access to bucket {self.bucket!r} denied (check the AWS credentials)"
            else:
                why = f"{e}"
            raise StorageUnavailable(f"storage {self.url}: {why}") from e
        except BotoCoreError as e:
            raise StorageUnavailable(f"storage {self.url}: {e}") from e


def _status(e: ClientError) -> int:
    meta = e.response.get("ResponseMetadata", {})
    code = e.response.get("Error", {}).get("Code", "")
    if code in ("NoSuchKey", "NoSuchBucket", "404"):
        return 404
    return int(meta.get("HTTPStatusCode", 0))


def storage_from_url(url: str, public_endpoint: str | None = None) -> Storage:
    """The backend `url` names: `file:///path` or `s3://bucket[/prefix]`."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return LocalStorage(Path(parsed.path))
    if parsed.scheme == "s3" and parsed.netloc:
        return S3Storage(parsed.netloc, parsed.path.strip("/"), public_endpoint=public_endpoint)
    raise ValueError(f"unsupported storage URL {url!r}: use file:///path or s3://bucket[/prefix]")


def get_storage(settings: Settings) -> Storage:
    return storage_from_url(
        settings.storage_url or settings.storage_dir.resolve().as_uri(), settings.s3_public_endpoint
    )


def cached_bytes(storage: Storage, key: str, max_bytes: int | None = None) -> bytes | None:
    """A cache entry's bytes (a blocking storage read: run it in a thread); None when there is
    none, it is larger than `max_bytes`, or storage cannot be read: a cache is best effort, and
    an outage must not fail the paid call it saves."""
    try:
        if not storage.exists(key) or (max_bytes is not None and storage.size(key) > max_bytes):
            return None
        with tempfile.TemporaryDirectory() as tmp:
            return storage.get_file(key, Path(tmp) / "entry").read_bytes()
    except Exception as e:
        log.warning("cache entry %s not read: %s", key, e)
        return None


def keep_bytes(storage: Storage, key: str, data: bytes) -> None:
    """Store a cache entry (a blocking storage write: run it in a thread), best effort: failing
    the call for it would have the retry pay for the answer again."""
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "entry"
            path.write_bytes(data)
            storage.put_file(key, path)
    except Exception as e:
        log.warning("cache entry %s not stored: %s", key, e)
