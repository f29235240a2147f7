"""How a job's stage and percentage follow from its scenes: plain arithmetic on `JobStatus`,
kept out of the workflow class so it is tested on its own in microseconds."""

from __future__ import annotations

from t2m.vocabulary.job import STAGES, JobStatus, SceneState, Stage

# Share of the overall percentage each part of the job carries; scenes split theirs evenly.
PLAN_WEIGHT, SCENES_WEIGHT, COMPOSE_WEIGHT = 10.0, 75.0, 10.0
SCENE_PROGRESS: dict[SceneState, float] = {
    "pending": 0.0,
    "storyboarding": 0.05,
    "narrating": 0.1,
    "retrieving": 0.12,
    "generating_code": 0.15,
    "rendering": 0.4,
    "reviewing": 0.8,
    "fixing": 0.5,
    "done": 1.0,
    "failed": 1.0,
}
SCENE_STAGE: dict[SceneState, Stage] = {
    "pending": "planning",
    "storyboarding": "planning",
    "retrieving": "retrieving",
    "generating_code": "generating_code",
    "fixing": "generating_code",
    "rendering": "rendering",
    "reviewing": "rendering",
    "narrating": "narrating",
}
SCENE_STAGES: frozenset[str] = frozenset(SCENE_STAGE.values())
STAGE_FLOOR: dict[str, float] = {
    "composing": PLAN_WEIGHT + SCENES_WEIGHT,
    "uploading": PLAN_WEIGHT + SCENES_WEIGHT + COMPOSE_WEIGHT,
    "completed": 100.0,
}
"""The percentage a job has reached when it enters a stage after its scenes."""


def scenes_stage(status: JobStatus) -> Stage | None:
    """The earliest stage any scene is still in (None when no scene is active)."""
    active = [SCENE_STAGE[s.state] for s in status.scenes if s.state in SCENE_STAGE]
    return min(active, key=STAGES.index) if active else None


def scenes_percentage(status: JobStatus) -> float:
    """Planning's share plus each scene's share, by how far the scene has come."""
    if not status.scenes:
        return PLAN_WEIGHT
    done = sum(SCENE_PROGRESS[s.state] for s in status.scenes) / len(status.scenes)
    return round(PLAN_WEIGHT + SCENES_WEIGHT * done, 1)


def enter_stage(status: JobStatus, stage: Stage) -> None:
    """Move `status` to `stage`: the stages before it are completed, the percentage its floor."""
    status.current_stage = stage
    status.stages_completed = list(STAGES[: STAGES.index(stage)])
    if stage in STAGE_FLOOR:
        status.percentage = STAGE_FLOOR[stage]


def final(
    status: JobStatus, outcome: str, error: str | None, retryable: bool | None = None
) -> JobStatus:
    """A copy of `status` as the job ended: completed, failed or cancelled."""
    update = {"status": outcome, "error": error, "retryable": retryable}
    ended = status.model_copy(deep=True, update=update)
    if outcome == "completed":
        enter_stage(ended, "completed")
    return ended
