"""Rules for the text people send: one line or several, never a control character or a lone
surrogate, and user names."""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, StringConstraints


def _bad_char(value: str, allowed: str) -> str | None:
    """A lone surrogate or a control character (other than those in `allowed`), described."""
    for ch in value:
        kind = unicodedata.category(ch)
        if kind == "Cs":
            return f"a lone surrogate (U+{ord(ch):04X})"
        if kind == "Cc" and ch not in allowed:
            return f"a control character (U+{ord(ch):04X})"
    return None


def plain_text(value: str) -> str:
    """One line of text: no control characters and no lone surrogates.

    They cannot be stored (PostgreSQL refuses NUL, UTF-8 refuses lone surrogates) and have no
    business in a title, a name or a model; refusing them here gives a 422 naming the field.
    """
    bad = _bad_char(value, "")
    if bad:
        raise ValueError(f"must not contain {bad}")
    return value


def multiline_text(value: str) -> str:
    """Like `plain_text`, but line breaks and tabs are allowed."""
    bad = _bad_char(value, "\n\t\r")
    if bad:
        raise ValueError(f"must not contain {bad}")
    return value


USER_NAME_MAX = 200


def user_name(value: str) -> str:
    """A user (job owner) name, from an API key or a JWT's `sub`.

    `*` is the admins' "everyone" in job listings, so it may not appear in a name; nor may control
    characters, lone surrogates or surrounding whitespace.
    """
    if not value or len(value) > USER_NAME_MAX:
        raise ValueError(f"a user name has 1 to {USER_NAME_MAX} characters")
    if value != value.strip():
        raise ValueError("a user name must not start or end with whitespace")
    bad = "'*'" if "*" in value else _bad_char(value, "")
    if bad:
        raise ValueError(f"a user name must not contain {bad}")
    return value


PlainText = Annotated[str, AfterValidator(plain_text)]
Topic = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=500),
    AfterValidator(plain_text),
]
Context = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=2000), AfterValidator(multiline_text)
]
