import re
from pathlib import Path

import av
import numpy as np
from PIL import Image

from t2m.media import compose as media
from t2m.media import languages
from t2m.media import speech as tts
from t2m.vocabulary.plan import Cue
from tests.media_checks import frame_at, make_clip, probe


def test_compose_holds_a_scene_until_its_narration_ends(tmp_path: Path) -> None:
    short = make_clip(tmp_path / "a.mp4", 1.0, (200, 30, 30))
    other = make_clip(tmp_path / "b.mp4", 2.0, (30, 30, 200), size=(640, 360))
    wav = tmp_path / "n.wav"
    spoken, cues = tts.synthesize("One sentence here. And a second, longer sentence.", "en-us", wav)
    assert spoken > 2.0  # longer than the 1 s clip, so the clip must be held

    out = tmp_path / "out.mp4"
    composed = media.compose(
        [media.SceneInput(short, wav, spoken, cues), media.SceneInput(other, None, 0.0, [])],
        out,
        subtitles=True,
    )
    p = probe(out)
    assert p.codecs == {"video": "h264", "audio": "aac", "subtitle": "mov_text"}
    first_slot = spoken + media.NARRATION_TAIL_S
    assert abs(composed.duration - (first_slot + 2.0)) < 0.2
    assert abs(p.duration - composed.duration) < 0.2
    assert p.audio_rms > 0.01
    assert len(p.cues) == len(cues) == 2
    assert all(0 <= s < e <= p.duration + 0.01 for s, e in p.cues)
    # The held part shows the first scene's last frame; the second scene follows at its own colour.
    held = frame_at(out, first_slot - 0.2)
    assert held[..., 0].mean() > 150 and held[..., 2].mean() < 80
    later = frame_at(out, first_slot + 1.0)
    assert later[..., 2].mean() > 150 and later.shape == held.shape  # rescaled to the first size


def test_silent_compose_has_no_audio_and_optional_subtitles(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "a.mp4", 1.0, (0, 200, 0))
    out = tmp_path / "out.mp4"
    cue = Cue(start=0.0, end=2.5, text="Read me")
    composed = media.compose([media.SceneInput(clip, None, 2.5, [cue])], out, subtitles=False)
    p = probe(out)
    assert p.codecs == {"video": "h264"}
    assert composed.duration >= 2.5  # held for the reading time


def test_thumbnail_is_a_frame_of_the_video(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "a.mp4", 1.0, (10, 120, 240))
    png = media.thumbnail(clip, tmp_path / "t.png", 0.5)
    image = np.asarray(Image.open(png).convert("RGB")).astype(int)
    assert np.abs(image - frame_at(clip, 0.5).astype(int)).mean() < 3


def test_srt_and_vtt() -> None:
    cues = [Cue(start=0.0, end=1.5, text="Hello"), Cue(start=61.25, end=3723.5, text="World")]
    assert media.to_srt(cues) == (
        "1\n00:00:00,000 --> 00:00:01,500\nHello\n\n2\n00:01:01,250 --> 01:02:03,500\nWorld\n"
    )
    assert media.to_vtt(cues).startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello\n")


def test_tts_cues_follow_the_audio(tmp_path: Path) -> None:
    duration, cues = tts.synthesize("First. Second one! Third?", "en-us", tmp_path / "x.wav")
    assert [c.text for c in cues] == ["First.", "Second one!", "Third?"]
    assert all(a.end < b.start for a, b in zip(cues, cues[1:], strict=False))
    assert abs(cues[-1].end - duration) < 0.01
    assert abs(len(media.read_audio(tmp_path / "x.wav")) / media.AUDIO_RATE - duration) < 0.05


def test_a_sentence_starting_with_a_dash_is_spoken_not_an_option(tmp_path: Path) -> None:
    """espeak-ng once took `-3 is…` for options (and `-w/PATH …` wrote a file there)."""
    text = f"-w{tmp_path}/written hello. -3 is negative."  # one sentence: `.` before `-` goes on
    duration, cues = tts.synthesize(text, "en-us", tmp_path / "x.wav")
    assert len(cues) == 1 and duration > 2.0 and not list(tmp_path.glob("written*"))


def test_unknown_voice_is_a_clear_error(tmp_path: Path) -> None:
    import pytest

    with pytest.raises(tts.VoiceError, match="unknown voice 'no-such-voice'"):
        tts.synthesize("Hello.", "no-such-voice", tmp_path / "x.wav")


def tone(path: Path, seconds: float, freq: float = 440.0) -> Path:
    """A mono 16-bit WAV: a sine tone from the first sample, standing in for narration."""
    import wave

    t = np.arange(round(seconds * 22050)) / 22050
    samples = (0.5 * np.sin(2 * np.pi * freq * t) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(22050)
        w.writeframes(samples.tobytes())
    return path


def video_packets(path: Path) -> list[bytes]:
    import av

    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(video=0) if p.size]


def test_scenes_rendered_to_their_narration_are_joined_without_re_encoding(tmp_path: Path) -> None:
    red = make_clip(tmp_path / "a.mp4", 2.0, (200, 30, 30))
    blue = make_clip(tmp_path / "b.mp4", 3.0, (30, 30, 200))
    scenes = [
        media.SceneInput(red, tone(tmp_path / "a.wav", 1.5), 1.5, []),
        media.SceneInput(blue, tone(tmp_path / "b.wav", 1.0, 660.0), 1.0, []),  # animation longer
    ]
    out = tmp_path / "out.mp4"
    composed = media.compose(scenes, out, subtitles=False)
    assert video_packets(out) == video_packets(red) + video_packets(blue)  # bit-identical
    assert abs(composed.duration - 5.0) < 1e-6  # each scene keeps its own length

    # The second narration starts on the frame the second scene starts: find both in the file.
    import av

    with av.open(str(out)) as c:
        boundary = next(
            f.time for f in c.decode(video=0) if f.to_ndarray(format="rgb24")[..., 2].mean() > 150
        )
    with av.open(str(out)) as c:
        audio = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
        rate = c.streams.audio[0].sample_rate
    window = rate // 200  # 5 ms
    rms = np.sqrt(np.mean(audio[: len(audio) // window * window].reshape(-1, window) ** 2, 1))
    after_first = int(1.7 * rate / window)  # the first tone ended at 1.5 s
    onset = (after_first + np.flatnonzero(rms[after_first:] > 0.1)[0]) * window / rate
    assert boundary is not None and abs(onset - boundary) <= 1 / 15  # within one frame


def test_a_scene_shorter_than_its_narration_is_held_and_only_it_is_re_encoded(
    tmp_path: Path,
) -> None:
    short = make_clip(tmp_path / "a.mp4", 1.0, (200, 30, 30))
    fits = make_clip(tmp_path / "b.mp4", 2.0, (30, 30, 200))
    scenes = [
        media.SceneInput(short, tone(tmp_path / "a.wav", 2.0), 2.0, []),
        media.SceneInput(fits, None, 0.0, []),
    ]
    out = tmp_path / "out.mp4"
    composed = media.compose(scenes, out, subtitles=False)
    assert abs(composed.duration - (2.0 + media.NARRATION_TAIL_S + 2.0)) < 0.1
    assert video_packets(out)[-len(video_packets(fits)) :] == video_packets(fits)
    held = frame_at(out, 2.2)
    assert held[..., 0].mean() > 150  # still the first scene's last frame


async def test_real_renders_padded_to_their_narration_are_joined_by_packet_copy(
    tmp_path: Path,
) -> None:
    """The jail pads each render to its narration (whole frames); compose must then copy them."""
    from t2m.render import sandbox

    code = "from manim import *\n\nclass Scene1(Scene):\n    def construct(self):\n"
    scenes = []
    for i, shape in enumerate(("Circle", "Square")):
        wav = tmp_path / f"{i}.wav"
        spoken, cues = tts.synthesize("A short narrated line. Then a second one.", "en-us", wav)
        result = await sandbox.render(
            code + f"        self.play(Create({shape}()), run_time=0.5)\n",
            "low",
            tmp_path / f"scene-{i}",
            timeout_s=120,
            cpu_s=120,
            min_seconds=spoken + media.NARRATION_TAIL_S,
        )
        assert result.ok and result.video is not None, result.error
        assert media.video_duration(result.video) >= spoken + media.NARRATION_TAIL_S
        scenes.append(media.SceneInput(result.video, wav, spoken, cues))
    out = tmp_path / "out.mp4"
    media.compose(scenes, out, subtitles=True)
    assert video_packets(out) == video_packets(scenes[0].video) + video_packets(scenes[1].video)


async def test_a_held_render_is_re_encoded_as_renders_are_and_the_rest_copied(
    tmp_path: Path,
) -> None:
    """A real render shorter than its narration is re-encoded by compose with the renders' own
    x264 setting (`t2m.media.encoding`), so its neighbour is still joined by packet copy (with
    another setting every scene would be re-encoded)."""
    from t2m.render import sandbox

    code = "from manim import *\n\nclass Scene1(Scene):\n    def construct(self):\n"
    videos = []
    for i, shape in enumerate(("Circle", "Square")):
        result = await sandbox.render(
            code + f"        self.play(Create({shape}()), run_time=1.0)\n",
            "low", tmp_path / f"scene-{i}", timeout_s=120, cpu_s=120,
        )  # fmt: skip
        assert result.ok and result.video is not None, result.error
        videos.append(result.video)
    sei = re.search(rb"x264 - core \d+ .{0,200}options: ([ -~]+)", videos[0].read_bytes())
    assert sei and b" subme=1 " in sei.group(1) and b" ref=1 " in sei.group(1)  # superfast
    assert b" threads=1 " in sei.group(1)  # the same packets whatever the host's cores
    scenes = [
        media.SceneInput(videos[0], tone(tmp_path / "a.wav", 0.5), 0.5, []),  # fits as it is
        media.SceneInput(videos[1], tone(tmp_path / "b.wav", 3.0), 3.0, []),  # held 2.4 s more
    ]
    out = tmp_path / "out.mp4"
    composed = media.compose(scenes, out, subtitles=False)
    assert abs(composed.duration - (1.0 + 3.0 + media.NARRATION_TAIL_S)) < 0.1
    first = video_packets(videos[0])
    assert video_packets(out)[: len(first)] == first


def _fading_clip(path: Path, fps: int = 15) -> Path:
    """Black, a fade in to a striped card, the card held, a fade out, black: like scenes joined."""
    import av

    card = np.zeros((180, 320, 3), dtype=np.uint8)
    card[:, ::20] = card[:, 1::20] = (250, 250, 250)
    card[60:120, 80:240] = (30, 160, 230)
    levels = [0.0] * 15 + [i / 15 for i in range(15)] + [1.0] * 30 + [1 - i / 15 for i in range(15)]
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = 320, 180, "yuv420p"
        for i, level in enumerate(levels + [0.0] * 15):
            f = av.VideoFrame.from_ndarray((card * level).astype(np.uint8), format="rgb24")
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


def test_thumbnail_shows_content_not_a_fade_or_black(tmp_path: Path) -> None:
    """Suggested on a black frame (as at 2.0 s, between scenes), the thumbnail is the held card."""
    clip = _fading_clip(tmp_path / "f.mp4")
    for at_s in (0.5, 1.5, 4.5):  # black, mid fade-in, mid fade-out
        png = media.best_thumbnail(clip, tmp_path / "t.png", at_s, media.video_duration(clip))
        image = np.asarray(Image.open(png).convert("L")).astype(float)
        held = frame_at(clip, 3.0).astype(float).mean(axis=2)
        assert image.std() > 40  # not uniform
        assert np.abs(image - held).mean() < 4  # the fully shown card, not a faded one


def test_audio_and_subtitle_streams_carry_the_language(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "a.mp4", 1.0, (0, 200, 0))
    wav = tmp_path / "n.wav"
    spoken, cues = tts.synthesize("Bonjour tout le monde.", "fr", wav)
    out = tmp_path / "out.mp4"
    scene = media.SceneInput(clip, wav, spoken, cues)
    media.compose([scene], out, subtitles=True, language=languages.iso639_2("fr-ca"))
    with av.open(str(out)) as c:
        tags = {s.type: s.metadata.get("language") for s in c.streams}
    assert tags == {"video": "und", "audio": "fra", "subtitle": "fra"}


def test_the_language_comes_from_the_request() -> None:
    assert languages.spoken_language({"language": "pt-br"}, "en-us") == "pt-br"
    assert languages.spoken_language({}, "de") == "de"
    assert languages.spoken_language({}, "en-us") == "en"
    assert languages.spoken_language({}, None) == "und"
    assert [languages.iso639_2(c) for c in ("en", "pt-br", "zh", "cmn", "xx", "und")] == [
        "eng", "por", "zho", "cmn", "und", "und",
    ]  # fmt: skip
