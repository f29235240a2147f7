"""A topic file: a JSON list of topics (`theorem|topic`, `description|context`, optional
`difficulty`, `subfield`), read under a size limit and validated with one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)

from t2m.errors import T2mError
from t2m.vocabulary.text import Context, PlainText, Topic

if TYPE_CHECKING:
    pass


MAX_TOPICS = 100
"""Each topic travels in the eval's workflow input: 100 stay far below Temporal's 2 MiB payloads."""
MAX_TOPIC_FILE_BYTES = 8 * 1024 * 1024
"""Far above 100 topics at their longest: a bigger file (or a device) is refused unread."""


class EvalTopic(BaseModel):
    """One entry of a topic file; other keys (ids, remarks) a benchmark carries are ignored."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    theorem: Topic = Field(validation_alias=AliasChoices("theorem", "topic"))
    description: Context = Field(validation_alias=AliasChoices("description", "context"))
    difficulty: PlainText | None = Field(default=None, max_length=50)
    subfield: PlainText | None = Field(default=None, max_length=100)


class TopicFileError(T2mError, ValueError):
    """A topic file that is not a JSON list of valid topics; the message is one line."""


_ALIASES = {"theorem": "theorem (or topic)", "description": "description (or context)"}


def parse_topics(text: str, source: str = "topics") -> list[EvalTopic]:
    """The topics of a topic file's text, or TopicFileError naming the entry and the field."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise TopicFileError(f"{source}: not JSON: {e}") from None
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_TOPICS:
        raise TopicFileError(f"{source}: must be a JSON list of 1 to {MAX_TOPICS} topic objects")
    try:
        return TypeAdapter(list[EvalTopic]).validate_python(raw)
    except ValidationError as e:
        first = e.errors()[0]
        index, *field = first["loc"]
        entry = raw[int(index)]
        name = entry.get("theorem") or entry.get("topic") if isinstance(entry, dict) else None
        where = f"entry {int(index) + 1} of {len(raw)}" + (f" ({name!r})" if name else "")
        what = _ALIASES.get(str(field[0]), str(field[0])) + ": " if field else ""
        raise TopicFileError(f"{source}: {where}: {what}{first['msg']}") from None


def load_topics(path: Path) -> list[EvalTopic]:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_TOPIC_FILE_BYTES + 1)
        text = data.decode()
    except (OSError, UnicodeDecodeError) as e:
        raise TopicFileError(f"{path}: cannot be read: {e}") from None
    if len(data) > MAX_TOPIC_FILE_BYTES:
        raise TopicFileError(f"{path}: larger than {MAX_TOPIC_FILE_BYTES // 2**20} MiB")
    return parse_topics(text, str(path))
