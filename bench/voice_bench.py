"""Offline voices compared: espeak-ng (t2m's default) against the English voices Debian ships.

Run: .venv/bin/python bench/voice_bench.py [--no-jail]. Each engine speaks the same ~40 narration
sentences typical of t2m (numbers, formulas read as words, abbreviations, long sentences, odd
punctuation, non-ASCII) one sentence per file, as t2m does for exact cues, then a set of hostile or
odd inputs one at a time (empty, symbols only, control characters, Scheme and SSML lookalikes, a
300-word run-on sentence). An engine that is not installed is skipped with a line saying so.

Nobody listens here, so naturalness is only measured by proxies (numpy, no model):

- rate: words a minute of speech on the plain sentences (no digits or symbols, where the written
  word count is the spoken one), leading/trailing silence trimmed; human narration ~150-160.
- F0 sd / F0 p5-p95: spread of the pitch of voiced 10 ms frames within a sentence, in semitones
  (an autocorrelation tracker, 60-400 Hz), mean over sentences. Read human speech spreads ~2-4
  semitones (sd), a monotone voice much less; a larger spread is not better past that.
- Q rise: how much the pitch of the last quarter of a question's voiced frames is above the rest
  of it, minus the same for statements (semitones): does the voice mark questions?
- pauses: internal silences of at least 120 ms per `, ; : ( —` inside a sentence (1.0 = a pause
  at every mark) and pauses where there is no mark, per sentence.
- rate Hz / >4k %: the sample rate and the share of energy above 4 kHz (bandwidth; a 8 kHz voice
  has none).

Robustness: failures (error, no file, silence, timeout), wall time and real-time factor (wall
time / audio length) per sentence, memory, and whether the engine runs in t2m's media jail
(`t2m.jail.bwrap.run_python` under `SPEECH_LIMITS`: no network, read-only /usr, a real
unprivileged uid, memory/CPU/wall limits).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from t2m.media.festival import speak

SENTENCES = [
    "Let's find the derivative of x cubed.",
    "The power rule says we bring the exponent down and subtract one.",
    "So the derivative of x cubed is three x squared.",
    "Now consider the series x cubed over three factorial, plus x to the fifth over five factorial.",
    "The area of a circle of radius 2 is 4 pi, about 12.57 square units.",
    "Pi is approximately 3.14159, and e is approximately 2.71828.",
    "In 1687, Newton published the Principia.",
    "We have 1,000,000 grains of sand, or ten to the sixth.",
    "The angle is 45 degrees, which is pi over 4 radians.",
    "What happens when n goes to infinity?",
    "Does the sum converge, or does it diverge?",
    "Why does the square root of two have no fraction that equals it?",
    "Notice how the curve bends upward, then flattens, then rises again.",
    "First, we draw the axes; second, we plot the points; third, we connect them.",
    "The result, as we will see, is surprisingly simple.",
    "Here's the key idea: every even number greater than two is a sum of two primes.",
    "This is the Goldbach conjecture (it is still unproven).",
    "Compare this with Fig. 3, i.e. the graph of the sine function.",
    "Dr. Smith and Prof. Jones proved it in Eq. 7, e.g. by induction.",
    "The vectors u and v are orthogonal, i.e. their dot product is zero.",
    "The probability is 0.5, or 50%.",
    "The matrix A has eigenvalues 2 and -3.",
    "f(x) = x^2 + 3x - 4 factors as (x + 4)(x - 1).",
    "So x equals 1 or x equals minus 4.",
    "The integral from 0 to 1 of x squared dx is one third.",
    "Euler's identity links e, i, pi, one and zero in a single equation.",
    "Let epsilon be greater than zero; then there is a delta such that the inequality holds.",
    "A triangle's angles always add up to 180 degrees.",
    "The golden ratio, phi, is about 1.618.",
    "Watch the point move along the unit circle as theta increases from zero to two pi, tracing "
    "out the sine wave on the right while its shadow on the horizontal axis traces the cosine, "
    "and notice that the two curves are the same shape, just shifted by a quarter turn.",
    "Zeno's paradox — Achilles and the tortoise — is resolved by a convergent series.",
    "Gödel's incompleteness theorem and Poincaré's conjecture are famous results.",
    "The set of naturals is ℕ, and the reals are ℝ.",
    "That's it!",
    "Wow.",
    "Ready?",
    "Let's recap: derivative, integral, limit.",
    "In the next scene, we'll see why this works.",
    "The Fibonacci numbers 1, 1, 2, 3, 5, 8, 13 grow like powers of phi.",
    "Thanks for watching, and see you next time.",
]
HOSTILE = [
    "",
    "   ",
    "...",
    "?!",
    "$$",
    "∫∑∏√∞≈≠≤≥",
    "数学是美丽的。",
    "مرحبا بالعالم",
    "😀🎉🚀",
    "Bell \x07 escape \x1b[31m red \x1b[0m tab\tend.",
    '(system "touch /tmp/t2m-voice-pwned") (quit)',
    '"; (quit) "',
    'back\\slash \\" quote \\n newline',
    '<speak><break time="100s"/>tag</speak>',
    "-v xx --help",
    "12345678901234567890123456789012345678901234567890",
    "1e308 and 0x1F and 1/0 and NaN.",
    "https://example.com/a?b=c&d=e#f",
    "a " * 300,
    "word, " * 100,
]
PUNCT = re.compile(r"[,;:(—]")
PLAIN = re.compile(r"[A-Za-z ,.'?!;:]+")
TIMEOUT_S = 60


@dataclass
class Engine:
    name: str
    needs: str  # the executable that must be installed
    batch: Callable[[list[str], Path], list[Path]]  # sentences -> one WAV each
    package: str


@dataclass
class Result:
    engine: str
    failures: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    audio_s: float = 0.0
    peak_rss_mb: float = 0.0
    rate: int = 0
    high_share: float = 0.0
    f0_sd: list[float] = field(default_factory=list)
    f0_range: list[float] = field(default_factory=list)
    f0_median: list[float] = field(default_factory=list)
    rise_q: list[float] = field(default_factory=list)
    rise_s: list[float] = field(default_factory=list)
    plain_words: int = 0
    plain_speech_s: float = 0.0
    marks: int = 0
    pauses_at_marks: int = 0
    stray_pauses: int = 0
    hostile_failures: list[str] = field(default_factory=list)
    hostile_wall_max: float = 0.0
    jail: str = "not run"


def _run(argv: list[str], cwd: Path) -> None:
    proc = subprocess.run(
        argv, cwd=cwd, capture_output=True, timeout=TIMEOUT_S, stdin=subprocess.DEVNULL
    )
    if proc.returncode != 0:
        raise RuntimeError(f"exit {proc.returncode}: {proc.stderr.decode(errors='replace')[-200:]}")


def espeak(sentences: list[str], work: Path) -> list[Path]:
    out = []
    for i, s in enumerate(sentences):
        out.append(work / f"part-{i}.wav")
        _run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(out[-1]), s], work)
    return out


def flite(voice: str) -> Callable[[list[str], Path], list[Path]]:
    def run(sentences: list[str], work: Path) -> list[Path]:
        out = []
        for i, s in enumerate(sentences):
            (work / f"s-{i}.txt").write_text(s)
            out.append(work / f"part-{i}.wav")
            _run(["flite", "-voice", voice, "-f", f"s-{i}.txt", "-o", out[-1].name], work)
        return out

    return run


def festival(voice: str) -> Callable[[list[str], Path], list[Path]]:
    """Festival as installed (rate 1.0, text as given): one process for every sentence, each to
    its own file; the sentences are string literals read as data (`load FILE t` evaluates
    nothing), never spliced into code."""

    def run(sentences: list[str], work: Path) -> list[Path]:
        as_data = [
            '"' + " ".join(s.split()).replace("\\", "\\\\").replace('"', '\\"') + '"'
            for s in sentences
        ]
        (work / "sentences.scm").write_text("\n".join(as_data))
        (work / "speak.scm").write_text(
            f"({voice})\n(set! t2m_i 0)\n"
            "(mapcar (lambda (s) (utt.save.wave (utt.synth (eval (list 'Utterance 'Text s)))"
            ' (format nil "part-%d.wav" t2m_i) \'riff) (set! t2m_i (+ t2m_i 1)))'
            ' (load "sentences.scm" t))\n'
        )
        _run(["festival", "--batch", "speak.scm"], work)
        return [work / f"part-{i}.wav" for i in range(len(sentences))]

    return run


def t2m_festival(sentences: list[str], work: Path) -> list[Path]:
    """t2m's Festival voice, as narration speaks it: `t2m.media.festival` (HTS rate 0.9, text
    folded to ASCII)."""
    return speak(sentences, "festival:us_slt", work)


ENGINES = [
    Engine("espeak-ng en-us", "espeak-ng", espeak, "espeak-ng"),
    Engine("festival:us_slt (t2m)", "festival", t2m_festival, "festvox-us-slt-hts"),
    Engine(
        "festival slt-hts raw",
        "festival",
        festival("voice_cmu_us_slt_arctic_hts"),
        "festvox-us-slt-hts",
    ),
    Engine("festival kal", "festival", festival("voice_kal_diphone"), "festvox-kallpc16k"),
    Engine("festival ked", "festival", festival("voice_ked_diphone"), "festvox-kdlpc16k"),
    Engine("flite slt", "flite", flite("slt"), "flite"),
    Engine("flite rms", "flite", flite("rms"), "flite"),
    Engine("flite awb", "flite", flite("awb"), "flite"),
    Engine("flite kal16", "flite", flite("kal16"), "flite"),
]
VOICE_FILES = {
    "festvox-us-slt-hts": "/usr/share/festival/voices/us/cmu_us_slt_arctic_hts",
    "festvox-kallpc16k": "/usr/share/festival/voices/english/kal_diphone",
    "festvox-kdlpc16k": "/usr/share/festival/voices/english/ked_diphone",
}


SIZES = {
    "espeak-ng (+ libespeak-ng1, espeak-ng-data)": ("espeak-ng", "libespeak-ng1", "espeak-ng-data"),
    "festival + festvox-us-slt-hts with what they pull onto t2m's image": (
        *("festival", "festvox-us-slt-hts", "festlex-cmu", "festlex-poslex", "libestools2.5"),
        *("alsa-utils", "libfftw3-single3", "libsamplerate0", "kmod", "libatopology2"),
    ),
    "festvox-kallpc16k (voice only)": ("festvox-kallpc16k",),
    "festvox-kdlpc16k (voice only)": ("festvox-kdlpc16k",),
    "flite (+ libflite1, its voices)": ("flite", "libflite1"),
}
"""Installed sizes (dpkg) of what each engine needs."""


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as w:
        rate, n, width, ch = w.getframerate(), w.getnframes(), w.getsampwidth(), w.getnchannels()
        data = w.readframes(n)
    assert width == 2, width
    x = np.frombuffer(data, "<i2").astype(np.float32) / 32768.0
    return x.reshape(-1, ch).mean(axis=1), rate


def frame_rms(x: np.ndarray, rate: int, hop_s: float = 0.01) -> np.ndarray:
    hop = int(rate * hop_s)
    n = len(x) // hop
    return np.sqrt((x[: n * hop].reshape(n, hop) ** 2).mean(axis=1) + 1e-12)


def f0_track(x: np.ndarray, rate: int) -> np.ndarray:
    """F0 (Hz) of voiced 10 ms hops, 0 where unvoiced: normalised autocorrelation of 40 ms frames."""
    hop, size = int(rate * 0.01), int(rate * 0.04)
    lo, hi = int(rate / 400), int(rate / 60)
    rms = frame_rms(x, rate)
    loud = np.percentile(rms, 95) if rms.size else 0.0
    out = np.zeros(max(0, (len(x) - size) // hop))
    for k in range(out.size):
        frame = x[k * hop : k * hop + size]
        if rms[min(k + 2, rms.size - 1)] < 0.1 * loud:
            continue
        frame = frame - frame.mean()
        spec = np.fft.rfft(frame, 2 * size)
        ac = np.fft.irfft(spec * np.conj(spec))[:size]
        if ac[0] <= 0:
            continue
        ac = ac / ac[0]
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.5:
            out[k] = rate / lag
    return out


def semitones(f: np.ndarray) -> np.ndarray:
    return 12 * np.log2(f / np.median(f))


def analyse(res: Result, sentence: str, path: Path) -> None:
    x, rate = read_wav(path)
    res.rate = rate
    if x.size == 0 or np.abs(x).max() < 1e-3:
        res.failures.append(f"silent: {sentence[:30]!r}")
        return
    spec = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(x.size, 1 / rate)
    res.high_share += float(spec[freqs > 4000].sum() / spec.sum()) / len(SENTENCES)
    rms = frame_rms(x, rate)
    silent = rms < max(np.percentile(rms, 95) * 0.03, 1e-4)
    voiced = np.flatnonzero(~silent)
    first, last = voiced[0], voiced[-1]
    inner = silent[first : last + 1]
    pauses, run = 0, 0
    for s in inner:
        run = run + 1 if s else 0
        if run == 12:  # 120 ms
            pauses += 1
    marks = len(PUNCT.findall(sentence.rstrip(".!?")))
    res.marks += marks
    res.pauses_at_marks += min(pauses, marks)
    res.stray_pauses += max(0, pauses - marks)
    if PLAIN.fullmatch(sentence):
        res.plain_words += len(sentence.split())
        res.plain_speech_s += (last - first + 1) * 0.01
    f0 = f0_track(x, rate)
    f0 = f0[f0 > 0]
    if f0.size >= 10:
        st = semitones(f0)
        res.f0_sd.append(float(st.std()))
        res.f0_range.append(float(np.percentile(st, 95) - np.percentile(st, 5)))
        res.f0_median.append(float(np.median(f0)))
        q = f0.size * 3 // 4
        rise = float(np.median(semitones(f0)[q:]) - np.median(semitones(f0)[:q]))
        (res.rise_q if sentence.endswith("?") else res.rise_s).append(rise)


RSS_CODE = """
import resource, sys, tempfile
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import voice_bench as vb
engine = next(e for e in vb.ENGINES if e.name == sys.argv[2])
with tempfile.TemporaryDirectory() as tmp:
    engine.batch(vb.SENTENCES[:3], Path(tmp))
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
"""


def peak_rss_mb(engine: Engine) -> float:
    """The largest resident size of the engine's processes speaking three sentences."""
    here = str(Path(__file__).parent)
    argv = [sys.executable, "-c", RSS_CODE, here, engine.name]
    return float(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)


def bench(engine: Engine) -> Result:
    res = Result(engine.name)
    with tempfile.TemporaryDirectory(prefix="t2m-voice-") as tmp:
        work = Path(tmp)
        start = time.perf_counter()
        try:
            parts = engine.batch(SENTENCES, work)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            res.failures.append(f"batch: {e}")
            return res
        res.wall_s = time.perf_counter() - start
        for sentence, part in zip(SENTENCES, parts, strict=True):
            if not part.exists():
                res.failures.append(f"no file: {sentence[:30]!r}")
                continue
            with wave.open(str(part)) as w:
                res.audio_s += w.getnframes() / w.getframerate()
            analyse(res, sentence, part)
    for text in HOSTILE:
        with tempfile.TemporaryDirectory(prefix="t2m-voice-") as tmp:
            start = time.perf_counter()
            label = repr(text[:24])
            try:
                [part] = engine.batch([text], Path(tmp))
                if not part.exists():
                    res.hostile_failures.append(f"{label}: no file")
                else:
                    with wave.open(str(part)) as w:
                        frames = w.getnframes()
                    if frames == 0 and text.strip(" .?!$"):
                        res.hostile_failures.append(f"{label}: empty audio")
            except (RuntimeError, subprocess.TimeoutExpired, wave.Error, EOFError) as e:
                res.hostile_failures.append(f"{label}: {str(e)[:80]}")
            res.hostile_wall_max = max(res.hostile_wall_max, time.perf_counter() - start)
    if os.path.exists("/tmp/t2m-voice-pwned"):
        res.hostile_failures.append("a Scheme lookalike RAN (/tmp/t2m-voice-pwned exists)")
    res.peak_rss_mb = peak_rss_mb(engine)
    return res


JAIL_CODE = """
import sys, json
sys.path.insert(0, "/job")
import voice_bench as vb
engine = next(e for e in vb.ENGINES if e.name == sys.argv[1])
from pathlib import Path
parts = engine.batch(vb.SENTENCES[:3], Path("/job"))
print(json.dumps([p.stat().st_size for p in parts]))
"""


async def jailed(engine: Engine) -> str:
    """Speak three sentences in t2m's media jail (SPEECH_LIMITS); 'ok' or why not."""
    from t2m.jail import bwrap
    from t2m.media.jailed import SPEECH_LIMITS, _env

    with tempfile.TemporaryDirectory(prefix="t2m-voice-jail-") as tmp:
        work = Path(tmp) / "job"
        work.mkdir()
        shutil.copy(__file__, work / "voice_bench.py")
        log = Path(tmp) / "log"
        start = time.perf_counter()
        r = await bwrap.run_python(
            ["-I", "-B", "-c", JAIL_CODE, engine.name], work, log, env=_env(), limits=SPEECH_LIMITS
        )
        wall = time.perf_counter() - start
        ok = r.returncode == 0 and r.violation is None
        return f"ok {wall:.1f}s" if ok else f"FAILED: {r.violation or r.log.strip()[-120:]}"


def installed_kb(package: str) -> int | None:
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${Installed-Size}", package], capture_output=True, text=True
    )
    return int(out.stdout) if out.returncode == 0 and out.stdout.isdigit() else None


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-jail", action="store_true", help="skip the jailed run")
    parser.add_argument("--only", help="engines whose name contains this")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}; {len(SENTENCES)} sentences, "
          f"{len(HOSTILE)} hostile inputs")  # fmt: skip
    results = []
    for engine in ENGINES:
        if args.only and args.only not in engine.name:
            continue
        voice_dir = VOICE_FILES.get(engine.package)
        if shutil.which(engine.needs) is None or (voice_dir and not os.path.isdir(voice_dir)):
            print(f"skip {engine.name}: not installed (apt-get install {engine.package})")
            continue
        res = bench(engine)
        if not args.no_jail and os.geteuid() == 0:
            res.jail = asyncio.run(jailed(engine))
        results.append(res)
        for f in res.failures + res.hostile_failures:
            print(f"  {engine.name}: {f}")
    head = ("engine", "fail", "hostile", "RTF", "s/sent", "wpm", "F0 sd", "F0 5-95", "F0 Hz",
            "Q rise", "pause@mark", "stray", "Hz", ">4k %", "jail")  # fmt: skip
    rows = []
    for r in results:
        n = len(SENTENCES)
        rows.append((
            r.engine, str(len(r.failures)), f"{len(r.hostile_failures)}/{len(HOSTILE)}",
            f"{r.wall_s / r.audio_s:.3f}" if r.audio_s else "-",
            f"{r.wall_s / n:.3f}",
            f"{60 * r.plain_words / r.plain_speech_s:.0f}" if r.plain_speech_s else "-",
            f"{mean(r.f0_sd):.2f}", f"{mean(r.f0_range):.1f}", f"{mean(r.f0_median):.0f}",
            f"{mean(r.rise_q) - mean(r.rise_s):+.1f}",
            f"{r.pauses_at_marks}/{r.marks}", str(r.stray_pauses), str(r.rate),
            f"{100 * r.high_share:.1f}", r.jail,
        ))  # fmt: skip
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    for row in (head, *rows):
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    for r in results:
        print(f"{r.engine}: slowest hostile input {r.hostile_wall_max:.2f}s, peak RSS "
              f"{r.peak_rss_mb:.0f} MB")  # fmt: skip
    for what, packages in SIZES.items():
        sizes = {p: installed_kb(p) for p in packages}
        missing = [p for p, kb in sizes.items() if kb is None]
        total = sum(kb for kb in sizes.values() if kb) / 1024
        print(
            f"{what}: {total:.1f} MB installed" + (f" (not installed: {missing})" * bool(missing))
        )
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
