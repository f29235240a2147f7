"""The state of one video run, in one place: `VideoWorkflow` owns it, and the helpers that make
its scenes (`workflows/scene.py`) and redo them (`workflows/regenerate.py`) receive it.

Plain data (as in temporalio's samples, `message_passing/safe_message_handlers`): every field
is declared here once, and nothing here issues a Temporal command.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from t2m.vocabulary.job import JobStatus
from t2m.vocabulary.plan import SceneMedia, VideoPlan
from t2m.vocabulary.request import VideoRequest


@dataclass
class RunState:
    req: VideoRequest
    status: JobStatus
    """What the `status` query answers; replaced by its final copy when the job ends."""
    plan: VideoPlan | None = None
    done: dict[int, SceneMedia] = field(default_factory=dict)
    """Finished scenes by index (from an earlier run too): the checkpoint a retry reuses."""
    redoing: set[int] = field(default_factory=set)
    """Scenes an accepted update is redoing; the video is composed once this is empty."""
    redone: bool = False
    """Set once a scene was redone with feedback: the video is no longer what the request alone
    makes, so the catalog does not offer it to identical requests."""
    composing: bool = False
    """Set when the scenes are final (the video is being composed, or the job is ending failed
    or cancelled while its outcome is recorded): from then on an update is refused."""
    redos: list[asyncio.Task[None]] = field(default_factory=list)
    """The redos accepted and not yet awaited; the video is composed once all are over."""
    redos_accepted: int = 0
    """Redos accepted in this run, the count `MAX_REDOS` bounds (`redos` is emptied as they are
    awaited). Replay counts them again: the update handler runs for each accepted update."""
    writes: int = 0
    """Catalog writes made: their sequence numbers."""
    started: asyncio.Task[None] | None = None
    """The catalog write of the start, which the final write waits for."""
    publisher: asyncio.Task[None] | None = None
    """Keeps the run's memo status current (runs started before it have none)."""

    @classmethod
    def of(cls, req: VideoRequest, job_id: str) -> RunState:
        """A run's state before it starts: queued, with the plan of the run it resumes."""
        status = JobStatus(job_id=job_id, status="queued", max_cost_usd=req.max_cost_usd)
        return cls(req=req, status=status, plan=req.resume.plan if req.resume else None)

    def feedback(self, index: int) -> str:
        """The feedback a new version's run makes scene `index` with ("" for other scenes)."""
        again = self.req.regenerate
        return again.feedback if again is not None and again.index == index else ""

    def version(self) -> int:
        """The version of the video this run makes: the first, or the one after `previous`."""
        again = self.req.regenerate
        return again.previous.version + 1 if again is not None else 1
