"""Activities that touch media and storage: render, narrate, compose, thumbnail, finalize.

They exchange storage keys only. Renders are keyed by a hash of (code, quality, manim version), so
a retried activity, a retried job or an identical scene in another job reuses the finished video
(and its layout check findings, kept beside it), whichever host made it when storage is S3.
Narrations are keyed by a hash of (text, voice, TTS engine) under their job, so a redo that fails
leaves the audio its scene keeps untouched. Every activity heartbeats while it runs
(`activities.heartbeat`); storage calls run in a thread: an S3 call may spend a while in boto3's
retries during an outage, and must hold up neither the worker's event loop nor heartbeats.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import tempfile
from importlib.metadata import version
from pathlib import Path

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeat import heartbeats
from activities.messages import (
    ComposeRequest,
    ComposeResult,
    CopyArtifactsRequest,
    FinalizeRequest,
    NarrateRequest,
    RenderOutcome,
    RenderRequest,
    ThumbnailRequest,
)
from t2m.catalog.storage import Storage
from t2m.config import Settings
from t2m.jail.bwrap import JailUnavailable
from t2m.media import compose as media
from t2m.media import jailed as media_jail
from t2m.media import speech as tts
from t2m.media import subtitles
from t2m.models import Artifacts, Cue, Narration
from t2m.render import sandbox

MANIM_VERSION = version("manim")


def render_key(
    code: str, quality: str, min_seconds: float = 0.0, class_name: str = "", span: str = ""
) -> str:
    """Where a render lives; `span` (FIRST,LAST) for one range of a split render."""
    blob = f"{MANIM_VERSION}\0{quality}\0{min_seconds:.3f}\0{code}"
    if class_name:
        blob += f"\0{class_name}"
    if span:
        blob += f"\0span {span}"
    return f"renders/{hashlib.sha256(blob.encode()).hexdigest()[:32]}.mp4"


def narration_key(job_id: str, text: str, voice: str) -> str:
    """Where a narration lives: keyed by what it says and how (text, voice, TTS engine), so a
    redo that narrates anew never overwrites the audio a kept scene still uses."""
    blob = f"{tts.engine_version()}\0{voice}\0{text}"
    return f"jobs/{job_id}/narration/{hashlib.sha256(blob.encode()).hexdigest()[:32]}.wav"


def version_prefix(job_id: str, version: int) -> str:
    """Where a version of a job's video lives: `jobs/<id>` (the first), `jobs/<id>/v<n>`."""
    return f"jobs/{job_id}" if version == 1 else f"jobs/{job_id}/v{version}"


def min_seconds(narration_s: float) -> float:
    """How long a scene's render must last: its narration and a short tail."""
    return narration_s + media.NARRATION_TAIL_S if narration_s > 0 else 0.0


class MediaActivities:
    def __init__(self, settings: Settings, storage: Storage) -> None:
        self.settings = settings
        self.storage = storage

    async def _put(self, key: str, src: Path) -> None:
        await asyncio.to_thread(self.storage.put_file, key, src)

    async def _get(self, key: str, dest: Path) -> Path:
        return await asyncio.to_thread(self.storage.get_file, key, dest)

    async def _exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.storage.exists, key)

    @activity.defn(name="render_scene")
    @heartbeats
    async def render_scene(self, req: RenderRequest) -> RenderOutcome:
        at_least = min_seconds(req.narration_s)
        span = f"{req.span[0]},{req.span[1]}" if req.span else ""
        key = render_key(req.code, req.quality, at_least, req.class_name, span)
        findings_key = key.removesuffix(".mp4") + ".layout.json"
        log = activity.logger
        if await self._exists(key) and await self._exists(findings_key):
            log.info("render reused job=%s scene=%d key=%s", req.job_id, req.scene_index, key)
            with tempfile.TemporaryDirectory() as tmp:
                findings = await self._get(findings_key, Path(tmp) / "layout.json")
                issues = json.loads(findings.read_text())
            return RenderOutcome(ok=True, video_key=key, layout_issues=issues, reused=True)
        log.info(
            "render start job=%s scene=%d span=%s key=%s", req.job_id, req.scene_index, span, key
        )
        with tempfile.TemporaryDirectory(prefix="t2m-render-") as workdir:
            try:
                result = await sandbox.render(
                    req.code,
                    req.quality,
                    Path(workdir),
                    timeout_s=self.settings.render_timeout_s,
                    cpu_s=self.settings.render_cpu_s,
                    on_tick=activity.heartbeat,
                    min_seconds=at_least,
                    scene_class=req.class_name,
                    span=span,
                )
            except JailUnavailable as e:  # this host's trouble, not the code's: retry elsewhere
                raise ApplicationError(
                    f"render jail unavailable: {e}", type="JailUnavailable"
                ) from e
            if not result.ok or result.video is None:
                log.info("render failed job=%s scene=%d", req.job_id, req.scene_index)
                return RenderOutcome(ok=False, error=result.error)
            await self._put(key, result.video)
            findings = Path(workdir) / "layout.json"
            findings.write_text(json.dumps(result.layout))
            await self._put(findings_key, findings)
            duration = result.duration_s  # measured by the jailed check of the video
        log.info(
            "render done job=%s scene=%d span=%s key=%s", req.job_id, req.scene_index, span, key
        )
        return RenderOutcome(
            ok=True, video_key=key, duration_s=duration, layout_issues=result.layout
        )

    @activity.defn(name="narrate_scene")
    @heartbeats
    async def narrate_scene(self, req: NarrateRequest) -> Narration:
        if req.voice is None:
            return _reading_cues(req.text)
        key = narration_key(req.job_id, req.text, req.voice)
        timings_key = key.removesuffix(".wav") + ".json"
        with tempfile.TemporaryDirectory(prefix="t2m-tts-") as tmp:
            if await self._exists(key) and await self._exists(timings_key):
                timings = await self._get(timings_key, Path(tmp) / "timings.json")
                kept = Narration.model_validate_json(timings.read_text())
                return kept.model_copy(update={"audio_key": key})
            wav = Path(tmp) / "narration.wav"
            try:
                duration, cues = await asyncio.to_thread(tts.synthesize, req.text, req.voice, wav)
            except tts.VoiceError as e:
                raise ApplicationError(str(e), type="VoiceError", non_retryable=True) from e
            narration = Narration(audio_key=key, duration_s=duration, cues=cues)
            await self._put(key, wav)
            timings = Path(tmp) / "timings.json"
            timings.write_text(narration.model_dump_json())
            await self._put(timings_key, timings)  # last: its presence says the audio is whole
        return narration

    @activity.defn(name="compose_video")
    @heartbeats
    async def compose_video(self, req: ComposeRequest) -> ComposeResult:
        prefix = version_prefix(req.job_id, req.version)
        with tempfile.TemporaryDirectory(prefix="t2m-compose-") as tmp:
            work = Path(tmp)
            jailed = work / "job"  # only the inputs: the jail's whole view
            jailed.mkdir()
            inputs = []
            for i, scene in enumerate(req.scenes):
                video = await self._get(scene.video_key, jailed / f"scene-{i}.mp4")
                audio = None
                if scene.narration.audio_key:
                    audio = await self._get(scene.narration.audio_key, jailed / f"scene-{i}.wav")
                narration = scene.narration
                cues = subtitles.broadcast(narration.cues)  # ≤ 2 lines × 42 chars, ≤ 7 s
                inputs.append(media.SceneInput(video, audio, narration.duration_s, cues))
            try:  # in a jail with limits, killed on cancel: never on the loop or in a thread
                out, composed = await media_jail.compose(
                    inputs, jailed, subtitles=req.subtitles, on_tick=activity.heartbeat
                )
            except media_jail.MediaFailed as e:
                raise ApplicationError(str(e), type="MediaFailed", non_retryable=True) from e
            await self._put(f"{prefix}/video.mp4", out)
            srt_key = vtt_key = None
            if req.subtitles:
                (work / "video.srt").write_text(media.to_srt(composed.cues))
                (work / "video.vtt").write_text(media.to_vtt(composed.cues))
                srt_key, vtt_key = f"{prefix}/video.srt", f"{prefix}/video.vtt"
                await self._put(srt_key, work / "video.srt")
                await self._put(vtt_key, work / "video.vtt")
        return ComposeResult(
            video_key=f"{prefix}/video.mp4",
            srt_key=srt_key,
            vtt_key=vtt_key,
            duration_s=composed.duration,
        )

    @activity.defn(name="make_thumbnail")
    @heartbeats
    async def make_thumbnail(self, req: ThumbnailRequest) -> str:
        key = f"{version_prefix(req.job_id, req.version)}/thumbnail.png"
        with tempfile.TemporaryDirectory(prefix="t2m-thumb-") as tmp:
            jailed = Path(tmp) / "job"
            jailed.mkdir()
            video = await self._get(req.video_key, jailed / "video.mp4")
            try:
                png = await media_jail.thumbnail(video, jailed, req.at_s, activity.heartbeat)
            except media_jail.MediaFailed as e:
                raise ApplicationError(str(e), type="MediaFailed", non_retryable=True) from e
            await self._put(key, png)
        return key

    @activity.defn(name="finalize_video")
    @heartbeats
    async def finalize_video(self, req: FinalizeRequest) -> int:
        """Check every artifact landed in storage; return the video's size in bytes."""
        missing = [k for k in req.keys if not await self._exists(k)]
        if missing:
            raise ApplicationError(f"artifacts missing from storage: {missing}")
        return await asyncio.to_thread(self.storage.size, req.keys[0])

    @activity.defn(name="copy_artifacts")
    @heartbeats
    async def copy_artifacts(self, req: CopyArtifactsRequest) -> Artifacts:
        """Give a job its own copy of a finished identical job's artifacts (the whole-result
        cache), so deleting either job never takes the other's video away."""
        src, copied = req.source, req.source.model_copy(update={"version": 1})
        for field in ("video_key", "srt_key", "vtt_key", "thumbnail_key"):
            key = getattr(src, field)
            if key:
                new_key = f"jobs/{req.job_id}/{key.rsplit('/', 1)[-1]}"
                await asyncio.to_thread(self.storage.copy, key, new_key)
                setattr(copied, field, new_key)
        return copied


def _reading_cues(text: str) -> Narration:
    """Subtitle timings for a silent video: sentences paced at narration speed."""
    cues, t = [], 0.0
    for sentence in tts.split_sentences(text):
        d = max(1.0, len(sentence.split()) * 60 / tts.WORDS_PER_MINUTE)
        cues.append(Cue(start=round(t, 3), end=round(t + d, 3), text=sentence))
        t += d + tts.SENTENCE_GAP_S
    return Narration(audio_key=None, duration_s=t, cues=cues)
