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

One encoder thread (`threads 1`), not x264's default of 1.5 per core: x264's bitstream depends on
its thread count, so with the default the same render key gave different packets on hosts of
different sizes (ranges of one split scene rendered on two such hosts are then not the whole
render's packets), and a render host runs one render per core (`render_concurrency`), so the
default's extra threads only contend with the other slots. Measured on the scene above, 2 cores:
two renders at once 12.3 → 9.7 s, their CPU 20.0 → 16.3 s; one render alone 11.8 → 12.6 s (a
render alone on an idle host is what split renders are for).
"""

X264_OPTIONS: dict[str, str] = {"crf": "23", "preset": "superfast", "threads": "1"}
