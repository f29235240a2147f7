"""The models crossing the workflow boundary only gain fields with defaults and only loosen their
bounds (tests/boundary.py), compared with the checked-in snapshot; and the check itself catches
each kind of breaking change while letting compatible ones through."""

from __future__ import annotations

import json
from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field

from tests import boundary


def test_boundary_models_only_gain_defaulted_fields_and_keep_their_bounds() -> None:
    snapshot = boundary.load_snapshot()
    assert snapshot, f"{boundary.SNAPSHOT} is missing: `make schema-snapshot` writes it"
    found = boundary.problems(snapshot, boundary.current_schemas())
    assert not found, (
        "Models that cross the workflow boundary changed in a way that breaks running jobs"
        " (their histories hold payloads today's models must still accept):\n"
        + "\n".join(f"  - {p}" for p in found)
        + "\n"
        + boundary.REFRESH
    )


def test_every_crossing_model_is_in_the_snapshot() -> None:
    """Found from the workflows' and activities' signatures: inputs, results, queries, updates."""
    current = boundary.boundary_models()
    names = {key.rsplit(".", 1)[-1] for key in current}
    assert {
        "VideoRequest", "VideoResult", "JobStatus", "SceneStatus", "JobRecord", "Checkpoint",
        "EvalRequest", "EvalResult", "EvalProgress", "ReconcileRequest", "ReconcileReport",
        "RenderRequest", "RenderOutcome", "FixRequest", "Narration", "Judgement", "Artifacts",
    } <= names  # fmt: skip
    missing = set(current) - set(boundary.load_snapshot())
    assert not missing, f"new boundary models {sorted(missing)}: {boundary.REFRESH}"


def test_a_real_model_tightened_is_named_with_its_field() -> None:
    """As the check reads the project's own models: VideoRequest.max_fix_attempts capped lower
    and a required field added to JobStatus."""
    snapshot = boundary.load_snapshot()
    changed = json.loads(json.dumps(boundary.current_schemas()))
    request = changed["t2m.vocabulary.request.VideoRequest"]
    request["properties"]["max_fix_attempts"]["maximum"] = 5
    status = changed["t2m.vocabulary.job.JobStatus"]
    status["properties"]["held_by"] = {"type": "string"}
    status["required"].append("held_by")
    assert boundary.problems(snapshot, changed) == [
        "JobStatus.held_by: field added without a default (give it a default)",
        "VideoRequest.max_fix_attempts: bound tightened: maximum 10 → 5 (keep the bound)",
    ]


class Before(BaseModel):
    name: str
    count: int = Field(default=1, ge=1, le=10)
    quality: Literal["low", "medium", "high"] = "medium"
    note: str | None = None
    tags: list[str] = Field(default_factory=list)
    ratio: int = 0


class Removed(BaseModel):
    name: str
    count: int = Field(default=1, ge=1, le=10)
    quality: Literal["low", "medium", "high"] = "medium"
    tags: list[str] = Field(default_factory=list)
    ratio: int = 0


class AddedRequired(Before):
    owner: str


class TypeChanged(Before):
    count: str = "1"  # type: ignore[assignment]


class Tightened(Before):
    name: str = Field(max_length=5, pattern="^[a-z]+$")
    count: int = Field(default=1, ge=2, le=5)
    quality: Literal["low", "medium"] = "medium"
    note: str | None = Field(default=None, min_length=1)
    tags: list[str] = Field(default_factory=list, max_length=3)


class Forbidding(Before):
    model_config = ConfigDict(extra="forbid")


class Loosened(BaseModel):
    name: str | None = None
    count: int = Field(default=1, ge=0, le=20)
    quality: Literal["low", "medium", "high", "ultra"] = "medium"
    note: str | int | None = None
    tags: list[str] = Field(default_factory=list)
    ratio: float = 0
    added: str = ""
    added_optional: int | None = None


def check(new: type[BaseModel]) -> list[str]:
    old = {"x.Before": boundary.schema_of(Before)}
    return boundary.problems(old, {"x.Before": boundary.schema_of(new)})


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        (Removed, ["Before.note: field removed"]),
        (AddedRequired, ["Before.owner: field added without a default (give it a default)"]),
        (TypeChanged, ["Before.count: type changed from integer to string"]),
        (
            Tightened,
            [
                "Before.count: bound tightened: minimum 1 → 2",
                "Before.count: bound tightened: maximum 10 → 5",
                "Before.name: bound tightened: maxLength None → 5",
                "Before.name: bound tightened: pattern None → '^[a-z]+$'",
                "Before.note: bound tightened: minLength None → 1",
                "Before.quality: values removed: 'high'",
                "Before.tags: bound tightened: maxItems None → 3",
            ],
        ),
        (Forbidding, ["Before: now forbids extra fields"]),
    ],
)
def test_the_check_names_each_breaking_change(new: type[BaseModel], expected: list[str]) -> None:
    found = check(new)
    assert len(found) == len(expected), found
    for problem, start in zip(sorted(found), sorted(expected), strict=True):
        assert problem.startswith(start), (problem, start)


def test_loosening_and_defaulted_fields_pass() -> None:
    assert check(Loosened) == []
    assert check(Before) == []
