"""Storage backends through one interface: the local directory and S3 (a real SeaweedFS that
checks signatures), selected by T2M_STORAGE_URL."""

from __future__ import annotations

import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from t2m.catalog.storage import LocalStorage, S3Storage, StorageUnavailable, get_storage
from t2m.config import Settings
from tests.seaweed import SeaweedFS, http_get

MiB = 1024 * 1024


@pytest.fixture(params=["file", pytest.param("s3", marks=pytest.mark.s3)])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> LocalStorage | S3Storage:
    if request.param == "file":
        return LocalStorage(tmp_path / "storage")
    s3: SeaweedFS = request.getfixturevalue("aws_env")
    return S3Storage(s3.bucket, f"test-{uuid.uuid4().hex[:8]}", part_size=5 * MiB)


def test_round_trip_exists_size_and_missing(
    storage: LocalStorage | S3Storage, tmp_path: Path
) -> None:
    src = tmp_path / "in.bin"
    src.write_bytes(os.urandom(70_000))
    assert not storage.exists("jobs/a/video.mp4")
    storage.put_file("jobs/a/video.mp4", src)
    assert storage.exists("jobs/a/video.mp4")
    assert storage.size("jobs/a/video.mp4") == 70_000
    out = storage.get_file("jobs/a/video.mp4", tmp_path / "out" / "deep" / "video.mp4")
    assert out.read_bytes() == src.read_bytes()
    with pytest.raises(FileNotFoundError):
        storage.get_file("jobs/a/nothing.mp4", tmp_path / "nothing.mp4")
    with pytest.raises(FileNotFoundError):
        storage.size("jobs/a/nothing.mp4")
    storage.put_file("jobs/a/video.mp4", tmp_path / "out" / "deep" / "video.mp4")  # overwrite
    assert storage.size("jobs/a/video.mp4") == 70_000


def test_delete_prefix_removes_that_job_only(
    storage: LocalStorage | S3Storage, tmp_path: Path
) -> None:
    src = tmp_path / "x.txt"
    src.write_text("x")
    for key in ("jobs/a/video.mp4", "jobs/a/scenes/0/narration.wav", "jobs/ab/video.mp4"):
        storage.put_file(key, src)
    storage.put_file("renders/r.mp4", src)
    storage.delete_prefix("jobs/a")
    assert not storage.exists("jobs/a/video.mp4")
    assert not storage.exists("jobs/a/scenes/0/narration.wav")
    assert storage.exists("jobs/ab/video.mp4"), "a sibling whose name extends the prefix stays"
    assert storage.exists("renders/r.mp4")
    storage.delete_prefix("jobs/nothing")  # nothing there: no error


def test_copy_makes_an_independent_object(
    storage: LocalStorage | S3Storage, tmp_path: Path
) -> None:
    src = tmp_path / "v.mp4"
    src.write_bytes(b"video" * 1000)
    storage.put_file("jobs/a/video.mp4", src)
    storage.copy("jobs/a/video.mp4", "jobs/b/video.mp4")
    storage.delete_prefix("jobs/a")
    assert storage.get_file("jobs/b/video.mp4", tmp_path / "b.mp4").read_bytes() == src.read_bytes()


def test_keys_cannot_escape(storage: LocalStorage | S3Storage, tmp_path: Path) -> None:
    src = tmp_path / "x.txt"
    src.write_text("x")
    for key in ("../outside.txt", "jobs/../../outside.txt", "/etc/passwd"):
        with pytest.raises(ValueError, match="escapes"):
            storage.put_file(key, src)


def test_health_check_passes(storage: LocalStorage | S3Storage) -> None:
    storage.check()


def test_large_files_go_up_in_parts_and_stream_down(aws_env: SeaweedFS, tmp_path: Path) -> None:
    """Above the part size an upload is multipart (S3's ETag says how many parts)."""
    storage = S3Storage(aws_env.bucket, f"big-{uuid.uuid4().hex[:8]}", part_size=5 * MiB)
    src = tmp_path / "big.mp4"
    src.write_bytes(os.urandom(12 * MiB))
    t0 = time.monotonic()
    storage.put_file("renders/big.mp4", src)
    t1 = time.monotonic()
    out = storage.get_file("renders/big.mp4", tmp_path / "back.mp4")
    t2 = time.monotonic()
    print(f"12 MiB: upload {t1 - t0:.2f} s, download {t2 - t1:.2f} s")
    assert out.read_bytes() == src.read_bytes()
    head = aws_env.client().head_object(
        Bucket=aws_env.bucket, Key=storage.object_key("renders/big.mp4")
    )
    assert head["ETag"].strip('"').endswith("-3"), head["ETag"]
    assert head["ContentType"] == "video/mp4"


def test_presigned_urls_serve_ranges_and_attachments_then_expire(
    aws_env: SeaweedFS, tmp_path: Path
) -> None:
    storage = S3Storage(aws_env.bucket, f"sign-{uuid.uuid4().hex[:8]}")
    src = tmp_path / "v.mp4"
    src.write_bytes(bytes(range(256)) * 40)
    storage.put_file("jobs/j/video.mp4", src)

    status, body, headers = http_get(
        storage.url_for("jobs/j/video.mp4", 60), {"Range": "bytes=100-199"}
    )
    assert status == 206 and body == src.read_bytes()[100:200]
    assert headers["Content-Type"] == "video/mp4"
    url = storage.url_for("jobs/j/video.mp4", 60, filename="j.mp4", attachment=True)
    status, body, headers = http_get(url)
    assert status == 200 and len(body) == src.stat().st_size
    assert headers["Content-Disposition"] == 'attachment; filename="j.mp4"'
    status, _, _ = http_get(url.replace("X-Amz-Signature=", "X-Amz-Signature=0"))
    assert status == 403, "a tampered signature is refused"
    short = storage.url_for("jobs/j/video.mp4", 1)
    time.sleep(2.1)
    assert http_get(short)[0] == 403, "an expired URL is refused"


def test_check_names_bad_credentials_and_missing_buckets(
    aws_env: SeaweedFS, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(StorageUnavailable, match="bucket 'no-such-bucket' does not exist"):
        S3Storage("no-such-bucket").check()
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    with pytest.raises(StorageUnavailable, match="denied") as e:
        S3Storage(aws_env.bucket).check()
    assert "\n" not in str(e.value)
    with pytest.raises(Exception, match="SignatureDoesNotMatch|Forbidden|403"):
        S3Storage(aws_env.bucket, max_attempts=1).exists("anything")


def test_the_url_selects_the_backend(tmp_path: Path) -> None:
    default = get_storage(Settings(data_dir=tmp_path / "data"))
    assert isinstance(default, LocalStorage) and default.root == tmp_path / "data" / "storage"
    chosen = get_storage(Settings(storage_url=f"file://{tmp_path}/elsewhere"))
    assert isinstance(chosen, LocalStorage) and chosen.root == tmp_path / "elsewhere"
    s3 = get_storage(Settings(storage_url="s3://media/t2m/prod"))
    assert isinstance(s3, S3Storage) and (s3.bucket, s3.prefix) == ("media", "t2m/prod/")
    assert s3.object_key("jobs/a/video.mp4") == "t2m/prod/jobs/a/video.mp4"
    with pytest.raises(ValueError, match="s3://bucket"):
        Settings(storage_url="https://example.com/bucket")


def test_writers_of_one_key_at_once_each_land_whole(tmp_path: Path) -> None:
    """Two jobs with the same scene code render to one `renders/` key; a worker with two render
    slots may store both at once. Each write lands whole (the key holds one of them, never a mix)
    and neither fails."""
    storage = LocalStorage(tmp_path / "storage")
    sources = []
    for i in range(4):
        src = tmp_path / f"render-{i}.mp4"
        src.write_bytes(bytes([i]) * (4 << 20))
        sources.append(src)
    with ThreadPoolExecutor(len(sources)) as pool:
        for _ in range(10):
            list(pool.map(lambda src: storage.put_file("renders/same.mp4", src), sources))
            stored = storage.path("renders/same.mp4").read_bytes()
            assert stored in {src.read_bytes() for src in sources}
    assert [p.name for p in storage.path("renders/same.mp4").parent.iterdir()] == ["same.mp4"]
