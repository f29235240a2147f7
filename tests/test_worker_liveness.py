"""`/health`'s judgement of Temporal's worker heartbeats (`workflows/worker_liveness.py`), on the
heartbeats and pollers as the server lists them; the end-to-end check (a SIGKILLed worker seen
gone) is `test_worker_kill`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.api.enums.v1 import WorkerStatus
from temporalio.api.taskqueue.v1 import PollerInfo
from temporalio.api.worker.v1 import WorkerHeartbeat

from workflows.worker_liveness import _polled_alive, judge_heartbeats

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def beat(
    identity: str,
    seconds_ago: float,
    interval_s: float,
    status: WorkerStatus.ValueType = WorkerStatus.WORKER_STATUS_RUNNING,
) -> WorkerHeartbeat:
    at, elapsed = Timestamp(), Duration()
    at.FromDatetime(NOW - timedelta(seconds=seconds_ago))
    elapsed.FromTimedelta(timedelta(seconds=interval_s))
    return WorkerHeartbeat(
        worker_identity=identity, heartbeat_time=at, elapsed_since_last_heartbeat=elapsed,
        status=status,
    )  # fmt: skip


def poller(identity: str, seconds_ago: float) -> PollerInfo:
    at = Timestamp()
    at.FromDatetime(NOW - timedelta(seconds=seconds_ago))
    return PollerInfo(identity=identity, last_access_time=at)


def test_each_worker_is_judged_by_its_own_heartbeat_interval() -> None:
    live, quiet = judge_heartbeats(
        [
            beat("t2m", 4, 5),  # t2m's workers beat every 5 s
            beat("t2m-killed", 20, 5),
            beat("sdk-default", 40, 60),  # another runtime's: every 60 s, 40 s ago is fresh
            beat("sdk-default-killed", 200, 60),
            beat("first-beat", 20, 0),  # no interval known yet: judged by t2m's
            beat("stopping", 1, 5, WorkerStatus.WORKER_STATUS_SHUTTING_DOWN),
        ],
        NOW,
    )
    assert live == {"t2m", "sdk-default"}
    assert quiet == {
        "t2m-killed": NOW - timedelta(seconds=15),
        "sdk-default-killed": NOW - timedelta(seconds=140),
        "first-beat": NOW - timedelta(seconds=15),
        "stopping": NOW + timedelta(seconds=4),
    }


def test_a_poll_counts_only_after_its_worker_went_quiet_and_while_fresh() -> None:
    _, quiet = judge_heartbeats([beat("killed", 30, 5), beat("1@pod", 30, 5)], NOW)
    assert not _polled_alive(poller("killed", 28), NOW, quiet)  # its last poll, before it died
    assert _polled_alive(poller("1@pod", 2), NOW, quiet)  # a restarted container, same identity
    assert _polled_alive(poller("busy", 100), NOW, quiet)  # no heartbeat listed: its polls decide
    assert not _polled_alive(poller("busy", 130), NOW, quiet)  # listed, but gone for > 120 s
