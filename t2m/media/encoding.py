"""The one H.264 setting every clip of a video is encoded with: Manim's renders (whole or a range
of a split one, `t2m.render.runner`) and compose's re-encode of a scene that must be held longer
(`t2m.media.compose`). Clips are joined by packet copy only when their encoder setup matches, so
the setting is one value, and it is part of a render's cache key (`t2m.keys.render_key`): a
render made with another setting is made again rather than joined with a re-encode.

`superfast` instead of x264's default `medium` (measured on one 1080p60 scene of 10 animations,
900 frames, 2 cores, `bench/split_bench.py`'s scene): CPU 28.0 → 16.7 s (-40%), wall 20.2 →
11.6 s; 480p15 -10-20% and 720p30 -12% of the CPU (drawing dominates there); the frames closer
to a lossless render (PSNR 52.0 dB against 50.4), the file 1.8× larger (15 s of 1080p60: 1.01 MB,
0.54 Mbit/s). Manim's drawings are flat colours over a plain background: the slower presets' extra
search saves few bits on them.
"""

X264_OPTIONS: dict[str, str] = {"crf": "23", "preset": "superfast"}
