"""Text work for the offline model: sentences, formulas (LaTeX or plain), spoken math, wrapping,
and removing TeX that reads or writes files from anything a request supplied."""

from __future__ import annotations

import re
import textwrap

from t2m.media.speech import ABBREVIATIONS, split_sentences

# TeX primitives and macros that touch files, the shell or TeX's own reading rules. The render jail
# already makes them harmless (openin_any=p, no shell escape); this keeps them out of code at all.
_TEX_IO = re.compile(
    r"\\(?:input|include|openin|openout|write|read|catcode|immediate|newread|newwrite|closein"
    r"|closeout|special|usepackage|documentclass|def|edef|gdef|xdef|let|csname|endcsname"
    r"|expandafter|jobname|verbatiminput|lstinputlisting|pdf|directlua|luaexec|shellescape"
    r"|makeatletter|endinput|scantokens|everyeof|loop|font)[A-Za-z@]*\d*",
    re.IGNORECASE,
)


def pace(style: dict[str, str]) -> str:
    """The style's pace; without one, the audience's: slow for beginners, fast for experts."""
    by_audience = {"beginner": "slow", "advanced": "fast", "expert": "fast"}
    return style.get("pace") or by_audience.get(style.get("audience", ""), "normal")


def strip_tex_io(text: str) -> str:
    """`text` without TeX commands that read or write files (`\\input`, `\\write18`, …) and without
    `^^` escapes (TeX's way to spell any character, a backslash included)."""
    previous = None
    while previous != text:
        previous = text
        text = re.sub(r"\^\^(?:[0-9a-f]{2}|.)?", "", _TEX_IO.sub("", text))
    return text


# --- sentences ------------------------------------------------------------------------------------

_ABBREVIATIONS = ("etc.", *ABBREVIATIONS)


def sentences(text: str) -> list[str]:
    """The complete sentences of `text`, in order, each ending in . ! or ? (one is added when a
    line or the text ends without it). Abbreviations, initials, factorials (`3! + 1`) and `$…$`
    do not end a sentence (`t2m.media.speech.split_sentences`, the splitter the narration's cues use)."""
    text = strip_tex_io(text)
    out: list[str] = []
    for line in re.split(r"\n\s*\n|\n(?=\s*[-*•\d])", text):
        line = re.sub(r"^\s*(?:[-*•]|\d+[.)])\s+", "", line)
        for part in split_sentences(line):
            if not re.search(r"\w", part):
                continue
            if part[-1] not in ".!?" and not part.endswith(('."', ".)", "?)", '?"', '!"')):
                part = part.rstrip(",;:") + "."
            out.append(part)
    return list(dict.fromkeys(out))  # a sentence said twice in the context is said once


def wrap(text: str, width: int) -> list[str]:
    """`text` as lines of at most `width` characters, broken between words (not inside a short
    formula), never cut."""
    for formula in find_formulas(text):
        if len(formula) <= width:
            text = text.replace(formula, formula.replace(" ", "\u00a0"))
    lines = textwrap.wrap(text, width=width, break_long_words=False, break_on_hyphens=False)
    return [line.replace("\u00a0", " ") for line in lines] or [""]


def screens(text: str, width: int, max_lines: int) -> list[str]:
    """`text` wrapped, split into screens of at most `max_lines` lines at clause boundaries where
    possible (a long sentence is shown in parts, one after another, never cut short)."""
    lines = wrap(text, width)
    if len(lines) <= max_lines:
        return ["\n".join(lines)]
    clauses = re.split(r"(?<=[,;:])\s+", text)
    parts: list[str] = []
    for clause in clauses:
        candidate = f"{parts[-1]} {clause}" if parts else clause
        if parts and len(wrap(candidate, width)) <= max_lines:
            parts[-1] = candidate
        else:
            parts.append(clause)
    out: list[str] = []
    for part in parts:
        part_lines = wrap(part, width)
        for i in range(0, len(part_lines), max_lines):
            out.append("\n".join(part_lines[i : i + max_lines]))
    return out


# --- formulas -------------------------------------------------------------------------------------

FUNCTIONS = ("sqrt", "sin", "cos", "tan", "log", "ln", "exp", "sum", "lim", "max", "min", "det")
GREEK = (
    "alpha", "beta", "gamma", "delta", "epsilon", "theta", "lambda", "mu", "nu", "pi", "rho",
    "sigma", "tau", "phi", "omega", "Delta", "Sigma", "Omega", "Phi", "Gamma", "Lambda",
)  # fmt: skip
_UNICODE_MATH = {
    "π": r"\pi ", "θ": r"\theta ", "λ": r"\lambda ", "α": r"\alpha ", "β": r"\beta ",
    "γ": r"\gamma ", "δ": r"\delta ", "Δ": r"\Delta ", "μ": r"\mu ", "σ": r"\sigma ",
    "Σ": r"\sum ", "ω": r"\omega ", "Ω": r"\Omega ", "φ": r"\phi ", "ρ": r"\rho ", "ε": r"\epsilon ",
    "·": r" \cdot ", "×": r" \times ", "≤": r" \le ", "≥": r" \ge ", "≠": r" \neq ",
    "≈": r" \approx ", "→": r" \to ", "∞": r"\infty ", "√": r"\sqrt ", "²": "^2", "³": "^3",
    "∫": r"\int ", "∂": r"\partial ", "±": r" \pm ", "−": "-",
}  # fmt: skip
_RELATION = re.compile(r"^(?:=|==|<|>|<=|>=|!=|≤|≥|≈|≠)$")
_STOP = {"is", "in", "of", "to", "as", "at", "be", "by", "if", "it", "on", "or", "so", "we", "an",
         "the", "and", "law", "says", "gives", "where", "then", "with", "that", "this", "get",
         "no", "up", "do", "go", "he", "me", "us", "my", "its", "for", "has", "can", "not"}  # fmt: skip
_OPERATOR = re.compile(r"^(?:[-+*/·×^±−]|\|\|)$")


def _mathy(token: str, neighbour: str) -> bool:
    """Whether a whitespace-separated token can be part of a plain-text formula."""
    core = token.strip(",;:.") if token not in (".",) else token
    if not core or core.lower() in _STOP:
        return False
    if _RELATION.match(core) or _OPERATOR.match(core):
        return True
    if re.search(r"[\^_()\[\]{}\\+*/=<>|²³√πθλΔΣ·×]|\d", core):
        return bool(re.fullmatch(r"[\w\^()\[\]{}\\+\-*/=<>|'.,²³√πθλΔΣαβγδμσωφρε·×!]+", core))
    if core.lower() in FUNCTIONS or core in GREEK:
        return True
    if core == "a":  # the article, unless it stands between operators ("y = a x")
        return bool(_OPERATOR.match(neighbour) or _RELATION.match(neighbour))
    if re.fullmatch(r"[A-Za-z]", core):
        return True
    # short symbol groups: PV, nRT, mc, ma — not lower-case words such as "the", "gas"
    if re.fullmatch(r"[A-Z][a-z]+", core):  # a capitalised word: "For", "Then"
        return False
    return bool(re.fullmatch(r"[A-Za-z]{2,4}", core)) and (core != core.lower() or len(core) == 2)


def _plain_formulas(sentence: str) -> list[str]:
    tokens = sentence.split()
    found: list[str] = []
    used: set[int] = set()
    for i, tok in enumerate(tokens):
        if i in used or not re.search(r"(?<![<>!=])(=|<=|>=|≤|≥|≈|≠)(?!=)|^[<>]$", tok):
            continue
        if tok.rstrip(",;:.") in ("=",) or _RELATION.match(tok.rstrip(",;:.")):
            lo, hi = i, i
        else:
            lo, hi = i, i  # "x=3" written without spaces
        while lo > 0 and not tokens[lo - 1].endswith((",", ";", ":", ".")):
            if not _mathy(tokens[lo - 1], tokens[lo]):
                break
            lo -= 1
        while (
            hi + 1 < len(tokens)
            and not tokens[hi].endswith((",", ";", ":"))
            and (hi == i or not tokens[hi].endswith("."))
        ):
            if not _mathy(tokens[hi + 1], tokens[hi]):
                break
            hi += 1
        if lo == i and hi == i and tok.strip(",;:.") in ("=", "<", ">"):
            continue
        formula = " ".join(tokens[lo : hi + 1]).rstrip(",;:.")
        sides = re.split(r"=|<=|>=|≤|≥|≈|≠|<|>", formula)
        if len(sides) >= 2 and all(re.search(r"\w", s) for s in sides):
            found.append(formula)
            used.update(range(lo, hi + 1))
    return found + _expressions(tokens, used)


_STRONG = re.compile(r"\^|!|/|sqrt\(|√|_\w")
"""What makes a run of symbols an expression rather than words: powers, factorials, fractions,
roots, subscripts."""


def _expressions(tokens: list[str], used: set[int]) -> list[str]:
    """Plain-text expressions without a relation, such as the series `x - x^3/3! + x^5/5!`: a run
    of formula tokens joined by operators (`+`, `-`, `/`…), one of them a power, a factorial, a
    fraction, a root or a subscript."""
    found: list[str] = []
    run: list[str] = []

    def close() -> None:
        while run and (_OPERATOR.match(run[0]) or run[0] == "a"):
            run.pop(0)
        while run and _OPERATOR.match(run[-1].rstrip(",;:.")):
            run.pop()
        formula = " ".join(run).rstrip(",;:.")
        if len(run) >= 3 and any(_OPERATOR.match(t) for t in run) and _STRONG.search(formula):
            found.append(formula)
        run.clear()

    for i, tok in enumerate(tokens):
        if i in used or not _mathy(tok, tokens[i - 1] if i else ""):
            close()
            continue
        run.append(tok)
        if tok.endswith((",", ";", ":", ".")):
            close()
    close()
    return found


def find_formulas(text: str) -> list[str]:
    """Formulas in `text`, in order: `$…$`, `\\(…\\)`, `\\[…\\]` spans, and plain-text equations such
    as `a^2 + b^2 = c^2`, `PV = nRT` or `I = I0 cos^2(theta)`."""
    text = strip_tex_io(text)
    found = [
        m.strip()
        for m in re.findall(r"\$\$?([^$]+)\$\$?|\\\((.+?)\\\)|\\\[(.+?)\\\]", text)
        for m in m
        if m.strip()
    ]
    plain = re.sub(r"\$\$?[^$]+\$\$?|\\\(.+?\\\)|\\\[.+?\\\]", " ", text)
    for sentence in split_sentences(plain):
        found += _plain_formulas(sentence)
    return list(dict.fromkeys(found))


def is_latex(formula: str) -> bool:
    return "\\" in formula or "{" in formula


_FRACTION = re.compile(r"(?<![\w^{}()!/])([\w.]+(?:\^(?:\w|\{\w+\}))?!?)/([\w.]+!?)(?![\w^(/])")
"""`x^3/3!` → `\\frac{x^3}{3!}`: a fraction of two plain atoms (a power above, a factorial below)."""


def to_latex(formula: str) -> str:
    """Plain-text math to LaTeX (`sqrt(x)` → `\\sqrt{x}`, `I0` → `I_0`, `theta` → `\\theta`,
    `cos` → `\\cos`, `*` → `\\cdot`, `^(..)` → `^{..}`); LaTeX passes through. File-touching TeX
    commands and characters LaTeX's math mode cannot take are removed."""
    tex = strip_tex_io(formula)
    for ch, rep in _UNICODE_MATH.items():
        tex = tex.replace(ch, rep)
    if not is_latex(formula):
        tex = re.sub(r"sqrt\(([^()]*)\)", r"\\sqrt{\1}", tex)
        tex = re.sub(r"\^\(([^()]*)\)", r"^{\1}", tex)
        tex = re.sub(r"\^(\d{2,})", r"^{\1}", tex)
        tex = re.sub(r"\b([A-Za-z])(\d+)\b", r"\1_\2", tex)
        tex = re.sub(rf"(?<![A-Za-z\\])({'|'.join(GREEK)})(?![A-Za-z])", r"\\\1", tex)
        fns = "|".join(f for f in FUNCTIONS if f != "sqrt")
        tex = re.sub(rf"(?<!\\)\b({fns})\b", r"\\\1", tex)
        tex = re.sub(r"<=", r" \\le ", tex)
        tex = re.sub(r">=", r" \\ge ", tex)
        tex = re.sub(r"!=", r" \\neq ", tex)
        tex = tex.replace("||", r" \| ").replace("*", r" \cdot ")
        tex = _FRACTION.sub(r"\\frac{\1}{\2}", tex)
        tex = re.sub(r"(?<!\\)([%#&$])", r"\\\1", tex)
    tex = tex.encode("ascii", "ignore").decode()
    return " ".join(tex.split())


def symbols(formula: str) -> list[str]:
    """The symbols a plain or LaTeX formula uses: `PV = nRT` → P, V, n, R, T; `I0` stays whole."""
    plain = re.sub(r"\\(?:frac|sqrt|left|right|cdot|times|mathrm|text)\b", " ", formula)
    out: list[str] = []
    for word in re.findall(r"\\?[A-Za-z]+(?:_?\{?\d+\}?|_[A-Za-z])?", plain):
        bare = word.lstrip("\\")
        if bare.lower() in FUNCTIONS:
            continue
        if bare in GREEK or re.fullmatch(r"[A-Za-z](?:_?\{?\d+\}?|_[A-Za-z])", bare):
            out.append(bare)
        elif len(bare) <= 4:
            out.extend(bare)
    return list(dict.fromkeys(out))


def legend(formula: str, text: str) -> list[tuple[str, str]]:
    """(symbol, meaning) for each symbol of `formula` that `text` names: "where P is the
    pressure", "I0 is the initial intensity", "theta denotes the angle", "c: the hypotenuse"."""
    found = []
    for sym in symbols(formula):
        spelled = re.escape(sym).replace("_", "_?")
        m = re.search(
            rf"(?<![\w^\\]){spelled}(?![\w^])\s*(?:is|are|denotes|means|represents|stands for|"
            rf"est|désigne|ist|es|:)\s+(?!\d)([^,;.()=]{{3,80}})",
            text,
        )
        if not m:
            continue
        meaning = re.split(r"\s+(?:and|or|while|whereas|et|und|y)\s+", m.group(1).strip())[0]
        meaning = re.sub(r"^(?:the|a|an|le|la|les|l'|der|die|das|el)\s+", "", meaning)
        if 3 <= len(meaning) <= 50 and not re.search(r"[=^*/+]", meaning):
            found.append((sym, meaning))
    return found


# --- speech ---------------------------------------------------------------------------------------

_SPOKEN = {
    "en": {"^2": " squared", "^3": " cubed", "^": " to the power ", "=": " equals ", "+": " plus ",
           "-": " minus ", "*": " times ", "/": " over ", "sqrt": "the square root of ",
           "!": " factorial"},
    "fr": {"^2": " au carré", "^3": " au cube", "^": " puissance ", "=": " égale ", "+": " plus ",
           "-": " moins ", "*": " fois ", "/": " sur ", "sqrt": "la racine carrée de ",
           "!": " factorielle"},
    "de": {"^2": " Quadrat", "^3": " hoch drei", "^": " hoch ", "=": " gleich ", "+": " plus ",
           "-": " minus ", "*": " mal ", "/": " durch ", "sqrt": "die Wurzel aus ",
           "!": " Fakultät"},
    "es": {"^2": " al cuadrado", "^3": " al cubo", "^": " elevado a ", "=": " igual a ",
           "+": " más ", "-": " menos ", "*": " por ", "/": " entre ", "sqrt": "la raíz de ",
           "!": " factorial"},
}  # fmt: skip


def spoken_formula(formula: str, language: str = "en") -> str:
    words = _SPOKEN.get(language.split("-")[0], _SPOKEN["en"])
    s = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"(\1)/(\2)", formula)
    s = re.sub(r"(?<=[\w)}])!(?!=)", words["!"] + " ", s)
    s = re.sub(r"\\[a-zA-Z]+", lambda m: m.group(0)[1:] + " ", s).replace("{", "").replace("}", "")
    s = re.sub(r"sqrt\s*\(?", words["sqrt"], s)
    for key in ("^2", "^3", "^", "=", "+", "*", "/"):
        s = s.replace(key, words[key])
    s = re.sub(r"\s-\s|(?<=\w)-(?=\w)", words["-"], s)
    s = re.sub(r"[_()|\[\]]", " ", s)
    return " ".join(s.split())


def spoken(sentence: str, language: str = "en") -> str:
    """A written sentence as it is read aloud: formulas in words, no abbreviation dots that a
    sentence splitter would take for a sentence's end, no markup."""
    out = sentence
    for formula in find_formulas(sentence):
        said = spoken_formula(formula, language).replace("\\", "")
        pattern = r"\$\$?\s*" + re.escape(formula) + r"\s*\$\$?|" + re.escape(formula)
        out = re.sub(pattern, said, out, count=1)
    out = out.replace("e.g.", "for example").replace("i.e.", "that is").replace("etc.", "and so on")
    for abbr in _ABBREVIATIONS:  # "Dr. Smith", "vs. B": no dot a splitter takes for an end
        out = out.replace(abbr, abbr.replace(".", ""))
    out = re.sub(r"\b([A-Z])\.(?=\s+[A-Z])", r"\1", out)
    out = re.sub(r"[$\\{}]", "", out)
    return " ".join(out.split())


def without_formulas(sentence: str, formulas: list[str]) -> str:
    """`sentence` as written beside its typeset `formulas`, each left out rather than shown twice
    (raw beside typeset): a formula ending the sentence becomes a colon ("In a right triangle:"),
    one inside it "the formula above". A sentence that is only formulas is kept as it is."""
    out = sentence
    for formula in formulas:
        m = re.search(r"\$\$?\s*" + re.escape(formula) + r"\s*\$\$?|" + re.escape(formula), out)
        if m is None:
            continue
        if re.search(r"\w", out[m.end() :]):
            out = out[: m.start()] + "the formula above" + out[m.end() :]
        else:
            out = out[: m.start()].rstrip(" ,;:") + ":"
    return " ".join(out.split()) if re.search(r"\w", out.rstrip(":")) else sentence


def on_screen(sentence: str) -> str:
    """A sentence as written on screen: `$…$` markers dropped, the math itself kept."""
    return " ".join(re.sub(r"\$\$?([^$]+)\$\$?", r"\1", strip_tex_io(sentence)).split())
