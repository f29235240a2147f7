"""Model-driven activities (queue `<prefix>-llm`): thin wrappers over `t2m.authoring.steps` and `t2m.authoring.docs`.

Each heartbeats while it waits for the provider (`activities.heartbeat`), so a dead worker's call
is retried within its heartbeat timeout and a cancelled job's call is cancelled. Transient model
trouble (rate limits, timeouts, 5xx) raises as-is, so Temporal retries it with backoff; a model
that cannot be used or a plan that will not validate fails at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeat import heartbeats
from activities.messages import (
    CodeRequest,
    CodeResult,
    CritiqueRequest,
    CritiqueResult,
    DocQueriesRequest,
    DocQueriesResult,
    DocsRequest,
    FixRequest,
    PlanResult,
    StoryboardRequest,
    StoryboardResult,
)
from t2m.authoring import docs as rag
from t2m.authoring import steps as authoring
from t2m.authoring.llm import ModelClient, ModelError
from t2m.catalog.storage import Storage
from t2m.catalog.tenancy import Tenancy
from t2m.errors import ErrorKind
from t2m.media import jailed as media_jail
from t2m.vocabulary.request import VideoRequest

CRITIQUE_FRAMES = 3
OWNER_LOOKUP_S = 5.0
"""How long a model call waits for the catalog to name its job's owner (its cache partition)."""


@contextlib.contextmanager
def _fatal_when_unusable() -> Iterator[None]:
    """A model that cannot be used, or a plan that will not validate, fails the job at once;
    anything else (rate limits, timeouts) propagates for Temporal's retry policy."""
    try:
        yield
    except (ModelError, authoring.PlanError) as e:
        raise ApplicationError(str(e), type=e.kind, non_retryable=True) from e


class LLMActivities:
    def __init__(
        self,
        client: ModelClient,
        storage: Storage,
        data_dir: Path,
        tenancy: Tenancy | None = None,
        share_cache: bool = False,
    ) -> None:
        self.client = client
        self.storage = storage
        self.data_dir = data_dir
        self.tenancy = tenancy
        """None without a catalog (the CLI's own stack, one user): one cache, nothing booked."""
        self.share_cache = share_cache
        self._owners: dict[str, str] = {}

    async def _model(self, owner: str | None = None) -> ModelClient:
        """The model client for the calling job: the cache partition of its owner (`owner`, else
        the catalog's; the job's own while its row is not written yet or the catalog cannot
        say: a database outage delays the catalog, never the video; one for all when the
        operator shares caches), its spend booked on its row as each call completes."""
        job_id = activity.info().workflow_id or ""
        if self.tenancy is None:  # no catalog: the CLI's own stack, one user's
            return self.client
        tenancy = self.tenancy
        if len(self._owners) > 10_000:
            self._owners.clear()
        if owner is not None:
            self._owners[job_id] = owner
        elif job_id not in self._owners and (found := await self._owner_of(tenancy, job_id)):
            self._owners[job_id] = found
        owner = self._owners.get(job_id)
        scope = f"owner:{owner}" if owner is not None else f"job:{job_id}"

        async def book(cost_usd: float) -> None:
            try:
                await tenancy.book_spend(job_id, cost_usd)
            except Exception as e:  # the answer is paid for: failing the call would pay again
                activity.logger.warning("spend of %s not booked (%s): %s", job_id, cost_usd, e)

        return self.client.scoped("" if self.share_cache else scope, book)

    @staticmethod
    async def _owner_of(tenancy: Tenancy, job_id: str) -> str | None:
        """The job's owner, or None when the catalog does not answer in time."""
        try:
            return await asyncio.wait_for(tenancy.owner_of(job_id), OWNER_LOOKUP_S)
        except Exception as e:
            activity.logger.warning("owner of %s unknown, its own cache used: %s", job_id, e)
            return None

    @activity.defn(name="plan_video")
    @heartbeats
    async def plan_video(self, req: VideoRequest) -> PlanResult:
        with _fatal_when_unusable():
            model = req.planner_model or req.model
            plan, usage = await authoring.plan_video(
                await self._model(req.owner), model, req.topic, req.context, req.style_preferences
            )
        return PlanResult(plan=plan, usage=usage)

    @activity.defn(name="storyboard_scene")
    @heartbeats
    async def storyboard_scene(self, req: StoryboardRequest) -> StoryboardResult:
        with _fatal_when_unusable():
            board, usage = await authoring.storyboard_scene(
                await self._model(), req.model, req.topic, req.scene, req.scene_count, req.style
            )
        return StoryboardResult(storyboard=board, usage=usage)

    @activity.defn(name="retrieve_docs")
    @heartbeats
    async def retrieve_docs(self, req: DocsRequest) -> str:
        """The Manim docs that answer the queries best, deduplicated, as prompt-ready text."""
        return await asyncio.to_thread(rag.answer, self.data_dir, req.queries, req.k)

    @activity.defn(name="doc_queries_for_error")
    @heartbeats
    async def doc_queries_for_error(self, req: DocQueriesRequest) -> DocQueriesResult:
        with _fatal_when_unusable():
            queries, usage = await authoring.doc_queries_for_error(
                await self._model(), req.model, req.topic, req.code, req.error, req.style
            )
        return DocQueriesResult(queries=queries, usage=usage)

    @activity.defn(name="write_scene_code")
    @heartbeats
    async def write_scene_code(self, req: CodeRequest) -> CodeResult:
        with _fatal_when_unusable():
            code, usage = await authoring.write_scene_code(
                await self._model(),
                req.model,
                req.topic,
                req.scene,
                req.scene_count,
                req.storyboard,
                req.docs,
                req.cues,
                req.style,
                req.feedback,
            )
        return CodeResult(code=code, usage=usage)

    @activity.defn(name="fix_scene_code")
    @heartbeats
    async def fix_scene_code(self, req: FixRequest) -> CodeResult:
        with _fatal_when_unusable():
            code, usage = await authoring.fix_scene_code(
                await self._model(),
                req.model,
                req.topic,
                req.scene,
                req.code,
                req.error,
                req.attempt,
                req.docs,
                req.cues,
                req.style,
                req.feedback,
            )
        return CodeResult(code=code, usage=usage)

    @activity.defn(name="critique_scene")
    @heartbeats
    async def critique_scene(self, req: CritiqueRequest) -> CritiqueResult:
        with tempfile.TemporaryDirectory(prefix="t2m-critique-") as tmp:
            video = await asyncio.to_thread(
                self.storage.get_file, req.video_key, Path(tmp) / "scene.mp4"
            )
            try:
                frames = await media_jail.sample_frames(
                    video, Path(tmp) / "frames", CRITIQUE_FRAMES, activity.heartbeat
                )
            except media_jail.MediaFailed as e:  # the render's video, refused by its decoder
                raise ApplicationError(
                    f"the scene's frames could not be read: {e}",
                    type=ErrorKind.MEDIA_FAILED,
                    non_retryable=True,
                ) from e
            with _fatal_when_unusable():
                critique, usage = await authoring.critique_frames(
                    await self._model(), req.model, req.scene, frames, req.style
                )
        return CritiqueResult(critique=critique, usage=usage)

    def all(self) -> list:
        return [
            self.plan_video,
            self.storyboard_scene,
            self.retrieve_docs,
            self.doc_queries_for_error,
            self.write_scene_code,
            self.fix_scene_code,
            self.critique_scene,
        ]
