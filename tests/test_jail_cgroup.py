"""cgroup v2 per jail (t2m/jail/cgroup.py). This host has a v1/hybrid hierarchy and cannot
delegate, so these tests cover what runs everywhere: no setting keeps the fallback, a setting
naming an unusable directory refuses to render (never silently without the asked-for limits),
the wrapper really moves the jail's first process before it execs, and OOM kills are read."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from t2m.jail import cgroup as jail_cgroup
from t2m.render import sandbox


async def test_an_unusable_delegated_cgroup_refuses_to_render(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(jail_cgroup.ENV, str(tmp_path))  # a plain directory, not a cgroup
    with pytest.raises(sandbox.JailUnavailable, match="not a cgroup v2 directory"):
        await sandbox.check_jail()
    (tmp_path / "cgroup.controllers").write_text("cpu io\n")
    with pytest.raises(sandbox.JailUnavailable, match="lacks the memory, pids controller"):
        await sandbox.check_jail()


def test_without_a_setting_the_fallback_limits_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(jail_cgroup.ENV, raising=False)
    with jail_cgroup.jail_cgroup(1024, 64) as cg:
        assert cg is None
    assert jail_cgroup.enter(None, ["true"]) == ["true"]


def test_the_first_process_moves_itself_in_before_it_execs(tmp_path: Path) -> None:
    procs = tmp_path / "cgroup.procs"
    procs.write_text("")
    argv = jail_cgroup.enter(tmp_path, ["sh", "-c", "echo $$"])
    out = subprocess.run(argv, capture_output=True, text=True, check=True)
    assert procs.read_text().strip() == out.stdout.strip()  # the same process, after exec


def test_an_oom_kill_is_reported(tmp_path: Path) -> None:
    events = tmp_path / "memory.events"
    events.write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\noom_group_kill 0\n")
    assert not jail_cgroup.oom_killed(tmp_path)
    events.write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\noom_group_kill 1\n")
    assert jail_cgroup.oom_killed(tmp_path)
