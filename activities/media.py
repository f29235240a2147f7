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
import json
import tempfile
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
from t2m.catalog.tenancy import Tenancy
from t2m.config import Settings
from t2m.errors import ErrorKind
from t2m.jail.limits import JailUnavailable
from t2m.keys import (
    copied_artifact,
    narration_key,
    render_key,
    scene_preview_key,
    version_prefix,
)
from t2m.media import compose as media
from t2m.media import festival, languages, speech_audio, subtitles
from t2m.media import jailed as media_jail
from t2m.media import provider_speech as speech
from t2m.media import speech as tts
from t2m.media.voices import is_provider_voice
from t2m.render import sandbox
from t2m.vocabulary.plan import Artifacts, Cue, Narration
from t2m.vocabulary.usage import Usage


def min_seconds(narration_s: float) -> float:
    """How long a scene's render must last: its narration and a short tail."""
    return narration_s + media.NARRATION_TAIL_S if narration_s > 0 else 0.0


class MediaActivities:
    def __init__(
        self, settings: Settings, storage: Storage, tenancy: Tenancy | None = None
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.tenancy = tenancy
        """Where provider speech is booked; None without a catalog (the CLI's own stack)."""

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
            preview = await self._preview(req, key)
            return RenderOutcome(
                ok=True, video_key=key, layout_issues=issues, reused=True, preview_key=preview
            )
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
                    f"render jail unavailable: {e}", type=ErrorKind.JAIL_UNAVAILABLE
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
            ok=True,
            video_key=key,
            duration_s=duration,
            layout_issues=result.layout,
            preview_key=await self._preview(req, key),
        )

    async def _preview(self, req: RenderRequest, video_key: str) -> str | None:
        """The render joined with its narration as compose joins a scene (in a media jail), so
        the scene can be watched before the whole video exists. Kept under the job (deleted with
        it), keyed by both inputs; a silent scene's preview is its render. None when it could not
        be made: a preview is a courtesy and never fails the render. A range of a split render
        has none (it is a part of the scene, not the scene)."""
        if req.span is not None:
            return None
        if req.narration_key is None:
            return video_key
        key = scene_preview_key(req.job_id, video_key, req.narration_key)
        if await self._exists(key):
            return key
        with tempfile.TemporaryDirectory(prefix="t2m-preview-") as tmp:
            jailed = Path(tmp) / "job"
            jailed.mkdir()
            video = await self._get(video_key, jailed / "scene-0.mp4")
            audio = await self._get(req.narration_key, jailed / "scene-0.wav")
            scene = media.SceneInput(video, audio, req.narration_s, [])
            try:
                out, _ = await media_jail.compose(
                    [scene], jailed, subtitles=False, on_tick=activity.heartbeat
                )
            except media_jail.MediaFailed as e:
                activity.logger.warning("no preview for scene %d: %s", req.scene_index, e)
                return None
            await self._put(key, out)
        return key

    @activity.defn(name="narrate_scene")
    @heartbeats
    async def narrate_scene(self, req: NarrateRequest) -> Narration:
        if req.voice is None or not req.text.strip():  # silent: a scene with nothing to say
            return _reading_cues(req.text)
        key = narration_key(req.job_id, req.text, req.voice)
        timings_key = key.removesuffix(".wav") + ".json"
        with tempfile.TemporaryDirectory(prefix="t2m-tts-") as tmp:
            if await self._exists(key) and await self._exists(timings_key):
                timings = await self._get(timings_key, Path(tmp) / "timings.json")
                kept = Narration.model_validate_json(timings.read_text())
                reused = Usage(calls=kept.usage.calls, cached_calls=kept.usage.calls)
                return kept.model_copy(update={"audio_key": key, "usage": reused})
            if is_provider_voice(req.voice) or festival.is_festival_voice(req.voice):
                narration = await self._speak(req, key, Path(tmp))
                wav = Path(tmp) / "job" / "narration.wav"
            else:
                wav = Path(tmp) / "narration.wav"
                try:
                    duration, cues = await asyncio.to_thread(
                        tts.synthesize, req.text, req.voice, wav
                    )
                except tts.VoiceError as e:
                    raise ApplicationError(
                        str(e), type=ErrorKind.VOICE_ERROR, non_retryable=True
                    ) from e
                narration = Narration(audio_key=key, duration_s=duration, cues=cues)
            await self._put(key, wav)
            timings = Path(tmp) / "timings.json"
            timings.write_text(narration.model_dump_json())
            await self._put(timings_key, timings)  # last: its presence says the audio is whole
        return narration

    async def _speak(self, req: NarrateRequest, key: str, tmp: Path) -> Narration:
        """Narrate with a provider voice (each sentence's audio cached, or asked for and booked
        on the job, then decoded, measured and joined in a media jail) or a Festival voice
        (spoken, measured and joined in a media jail)."""
        assert req.voice is not None
        sentences = tts.split_sentences(req.text)
        if not sentences:
            raise ApplicationError(
                "the narration text is empty", type=ErrorKind.VOICE_ERROR, non_retryable=True
            )
        jailed = tmp / "job"
        jailed.mkdir()
        longest = [speech_audio.longest_s(s) for s in sentences]
        usage = Usage()
        try:
            if festival.is_festival_voice(req.voice):
                if why := festival.problem(req.voice):
                    raise speech.SpeechError(why)
                _, durations = await media_jail.festival_speech(
                    sentences, req.voice, longest, jailed, tts.SENTENCE_GAP_S, activity.heartbeat
                )
            else:
                spoken = await self._speech(req).speak(req.voice, sentences)
                usage = spoken.usage
                parts = []
                for i, audio in enumerate(spoken.audio):
                    parts.append(jailed / f"sentence-{i}.audio")
                    parts[-1].write_bytes(audio)
                _, durations = await media_jail.join_speech(
                    parts, longest, jailed, tts.SENTENCE_GAP_S, activity.heartbeat
                )
        except speech.SpeechError as e:
            raise ApplicationError(str(e), type=ErrorKind.VOICE_ERROR, non_retryable=True) from e
        except media_jail.MediaFailed as e:
            raise ApplicationError(str(e), type=ErrorKind.MEDIA_FAILED, non_retryable=True) from e
        cues, t = [], 0.0
        for sentence, d in zip(sentences, durations, strict=True):
            cues.append(Cue(start=round(t, 3), end=round(t + d, 3), text=sentence))
            t += d + tts.SENTENCE_GAP_S
        duration = t - tts.SENTENCE_GAP_S
        return Narration(audio_key=key, duration_s=duration, cues=cues, usage=usage)

    def _speech(self, req: NarrateRequest) -> speech.SpeechClient:
        """The speech client for the calling job: its owner's cache partition (one for all
        when the operator shares caches), its spend booked on its row."""
        cache = self.storage if self.settings.llm_cache else None
        if self.tenancy is None:
            return speech.SpeechClient(cache)
        tenancy, job_id = self.tenancy, req.job_id

        async def book(cost_usd: float) -> None:
            try:
                await tenancy.book_spend(job_id, cost_usd)
            except Exception as e:  # the audio is paid for: failing would pay again
                activity.logger.warning("spend of %s not booked (%s): %s", job_id, cost_usd, e)

        scope = "" if self.settings.share_caches_across_owners else f"owner:{req.owner or job_id}"
        return speech.SpeechClient(cache, scope, book)

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
                    inputs,
                    jailed,
                    subtitles=req.subtitles,
                    language=languages.iso639_2(req.language),
                    on_tick=activity.heartbeat,
                )
            except media_jail.MediaFailed as e:
                raise ApplicationError(
                    str(e), type=ErrorKind.MEDIA_FAILED, non_retryable=True
                ) from e
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
                raise ApplicationError(
                    str(e), type=ErrorKind.MEDIA_FAILED, non_retryable=True
                ) from e
            await self._put(key, png)
        return key

    @activity.defn(name="finalize_video")
    @heartbeats
    async def finalize_video(self, req: FinalizeRequest) -> int:
        """Check every artifact landed in storage; return the video's size in bytes."""
        missing = [k for k in req.keys if not await self._exists(k)]
        if missing:
            raise ApplicationError(
                f"artifacts missing from storage: {missing}", type=ErrorKind.ARTIFACTS_MISSING
            )
        return await asyncio.to_thread(self.storage.size, req.keys[0])

    @activity.defn(name="copy_artifacts")
    @heartbeats
    async def copy_artifacts(self, req: CopyArtifactsRequest) -> Artifacts:
        """Give a job its own copy of a finished identical job's artifacts (the whole-result
        cache), so deleting either job never takes the other's video away. A source that is gone
        from storage fails at once (`REUSED_GONE`, non-retryable: the workflow makes the video
        anew); anything else (storage unreachable) is retried."""
        src, copied = req.source, req.source.model_copy(update={"version": 1})
        for field in ("video_key", "srt_key", "vtt_key", "thumbnail_key"):
            key = getattr(src, field)
            if key:
                new_key = copied_artifact(req.job_id, key)
                try:
                    await asyncio.to_thread(self.storage.copy, key, new_key)
                except Exception as e:
                    if await self._exists(key):
                        raise
                    gone = f"the identical job's {key} is gone from storage"
                    raise ApplicationError(
                        gone, type=ErrorKind.REUSED_GONE, non_retryable=True
                    ) from e
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
