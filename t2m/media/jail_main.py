"""Runs inside a media jail (`t2m.media.jailed`): one piece of media work on files in /job, its
answer written to /job/out.json. The worker never parses a render's output itself.

Usage: python -m t2m.media.jail_main probe VIDEO QUALITY LONGEST_S
       python -m t2m.media.jail_main compose SPEC_JSON
       python -m t2m.media.jail_main thumbnail VIDEO OUT_PNG AT_S
       python -m t2m.media.jail_main frames VIDEO OUT_DIR COUNT
       python -m t2m.media.jail_main speech SPEC_JSON
       python -m t2m.media.jail_main festival SPEC_JSON
       python -m t2m.media.jail_main join OUT_VIDEO QUALITY LONGEST_S RANGE_VIDEO...
(join also checks the joined video as probe does: one jail instead of two after a split render)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = "out.json"


def main(argv: list[str]) -> int:
    op, args = argv[0], argv[1:]
    if op == "probe":
        answer: dict = _probe(Path(args[0]), args[1], float(args[2]))
    elif op == "compose":
        from t2m.media import compose as media
        from t2m.vocabulary.plan import Cue

        spec = json.loads(Path(args[0]).read_text())
        scenes = [
            media.SceneInput(
                Path(s["video"]),
                Path(s["audio"]) if s["audio"] else None,
                float(s["audio_duration"]),
                [Cue(**c) for c in s["cues"]],
            )
            for s in spec["scenes"]
        ]
        composed = media.compose(
            scenes,
            Path(spec["out"]),
            subtitles=bool(spec["subtitles"]),
            language=str(spec.get("language", "und")),
        )
        cues = [c.model_dump() for c in composed.cues]
        answer = {"ok": True, "duration_s": composed.duration, "cues": cues}
    elif op == "join":
        from t2m.media import compose as media

        media.join([Path(a) for a in args[3:]], Path(args[0]))
        answer = _probe(Path(args[0]), args[1], float(args[2]))
    elif op == "thumbnail":
        from t2m.media import compose as media

        video = Path(args[0])
        media.best_thumbnail(video, Path(args[1]), float(args[2]), media.video_duration(video))
        answer = {"ok": True}
    elif op == "frames":  # for a vision model: the critique, the eval's judge
        from t2m.media import compose as media

        media.sample_frames(Path(args[0]), Path(args[1]), int(args[2]))
        answer = {"ok": True}
    elif op in ("speech", "festival"):
        from t2m.media import compose as media
        from t2m.media import festival, speech_audio

        spec = json.loads(Path(args[0]).read_text())
        try:
            if op == "festival":  # speak first, then check and join as a provider's answers
                spoken = Path(spec["work"])
                spec["parts"] = festival.speak(spec["sentences"], spec["voice"], spoken)
            durations = speech_audio.join(
                [Path(p) for p in spec["parts"]],
                [float(s) for s in spec["longest_s"]],
                Path(spec["out"]),
                media.AUDIO_RATE,
                float(spec["gap_s"]),
            )
        except (speech_audio.BadAudio, festival.FestivalFailed) as e:
            answer = {"ok": False, "error": str(e)}
        else:
            answer = {"ok": True, "durations": durations}
    else:
        print(f"unknown operation {op!r}", file=sys.stderr)
        return 2
    Path(OUT).write_text(json.dumps(answer))
    return 0


def _probe(video: Path, quality: str, longest_s: float) -> dict:
    from t2m.media import probe as media_probe

    try:
        facts = media_probe.check(video, quality, longest_s)
    except media_probe.BadVideo as e:
        return {"ok": False, "error": str(e)}
    return {"ok": True, "duration_s": facts.duration_s, "frames": facts.frames}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
