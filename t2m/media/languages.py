"""The language a video is spoken and subtitled in, and its codes: the request's `language` (a
style preference, e.g. `fr`, `pt-br`), else its voice's (`en-us` → `en`), else undetermined.

MP4 tags a stream's language with an ISO 639-2/T code (three letters, `und` when unknown), which
players show in their audio and subtitle menus; SRT/VTT files and `<track srclang>` use the short
code (BCP 47).
"""

from __future__ import annotations

import re

from t2m.media.festival import is_festival_voice

UNDETERMINED = "und"
ISO_639_2 = {
    "af": "afr", "ar": "ara", "bg": "bul", "bn": "ben", "ca": "cat", "cs": "ces", "cy": "cym",
    "da": "dan", "de": "deu", "el": "ell", "en": "eng", "eo": "epo", "es": "spa", "et": "est",
    "eu": "eus", "fa": "fas", "fi": "fin", "fr": "fra", "ga": "gle", "gl": "glg", "gu": "guj",
    "he": "heb", "hi": "hin", "hr": "hrv", "hu": "hun", "hy": "hye", "id": "ind", "is": "isl",
    "it": "ita", "ja": "jpn", "ka": "kat", "kn": "kan", "ko": "kor", "la": "lat", "lt": "lit",
    "lv": "lav", "mk": "mkd", "ml": "mal", "mr": "mar", "ms": "msa", "nb": "nob", "nl": "nld",
    "no": "nor", "pa": "pan", "pl": "pol", "pt": "por", "ro": "ron", "ru": "rus", "sk": "slk",
    "sl": "slv", "sq": "sqi", "sr": "srp", "sv": "swe", "sw": "swa", "ta": "tam", "te": "tel",
    "th": "tha", "tr": "tur", "uk": "ukr", "ur": "urd", "vi": "vie", "zh": "zho",
}  # fmt: skip
"""ISO 639-1 → ISO 639-2/T for the languages espeak-ng speaks most; others are `und`."""
_CODE = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{2,8}){0,2}")


def spoken_language(style: dict[str, str], voice: str | None) -> str:
    """The request's language as a short code (`en`, `pt-br`), or `und` when nothing says."""
    if language := style.get("language"):
        return language
    if is_festival_voice(voice):  # all US English
        return "en"
    if voice and _CODE.fullmatch(voice.lower()):
        return voice.lower().split("-")[0]
    return UNDETERMINED


def iso639_2(language: str) -> str:
    """The three-letter code MP4 tags a stream with: `fr-ca` → `fra`, `cmn` → `cmn`."""
    base = language.lower().split("-")[0]
    if len(base) == 3 and base.isalpha():
        return base
    return ISO_639_2.get(base, UNDETERMINED)
