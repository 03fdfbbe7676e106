"""What the model must return (field descriptions are part of the prompt), and how an answer
is read when the endpoint did not enforce that shape."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field


class TranslationAnswer(BaseModel):
    """The translator's structured answer (DESIGN contract 1: `text` is the one required field)."""

    text: str = Field(
        description=(
            "The complete translation of the source text. Every entity marker of the source, "
            "<e1>...</e1>, <e2>...</e2>, ..., appears exactly once around the translation of "
            "the same entity; markers may change order; nothing else is marked."
        )
    )
    notes: str | None = Field(
        default=None, description="Optional: anything the reviewer should know. Usually empty."
    )


# ---- reading an answer the way real endpoints send it ---------------------------------------

_FENCE_RE = re.compile(r"```[ \t]*(?:json|JSON|json5)?[ \t]*\r?\n?(.*?)```", re.S)
_ALLOWED_KEYS = set(TranslationAnswer.model_fields)
_MAX_OBJECT_STARTS = 200  # `{` positions tried in prose before giving up


@dataclass(frozen=True)
class ParsedAnswer:
    """An answer read tolerantly: the translation, what had to be normalised, or why not."""

    text: str | None
    normalized: tuple[str, ...] = ()
    error: str | None = None


def _from_object(obj: Any, normalized: list[str]) -> ParsedAnswer | None:
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        return None
    extra = sorted(set(obj) - _ALLOWED_KEYS)
    if extra:
        normalized.append(f"extra keys ignored: {', '.join(map(str, extra[:5]))}")
    return ParsedAnswer(text=obj["text"], normalized=tuple(normalized))


def parse_answer(content: Any) -> ParsedAnswer:
    """The `text` of an answer: a JSON object (or dict) as asked, or the first such object
    inside a ```json fence or inside prose. What had to be dug out is listed in `normalized`.
    """
    if isinstance(content, dict):
        got = _from_object(content, [])
        return got or ParsedAnswer(None, error=f"no string field `text` (keys: {sorted(content)})")
    if not isinstance(content, str):
        return ParsedAnswer(None, error=f"expected text, found {type(content).__name__}")
    stripped = content.strip()
    if not stripped:
        return ParsedAnswer(None, error="the answer is empty")
    try:
        got = _from_object(json.loads(stripped), [])
    except ValueError:
        got = None
    if got is not None:
        return got
    for fence in _FENCE_RE.finditer(stripped):
        try:
            got = _from_object(
                json.loads(fence.group(1).strip()), ["answer object inside a ``` fence"]
            )
        except ValueError:
            continue
        if got is not None:
            return got
    decoder = json.JSONDecoder()
    starts = [i for i, ch in enumerate(stripped) if ch == "{"][:_MAX_OBJECT_STARTS]
    for i in starts:
        try:
            obj, _ = decoder.raw_decode(stripped, i)
        except ValueError:
            continue
        got = _from_object(obj, ["answer object inside prose"])
        if got is not None:
            return got
    return ParsedAnswer(
        None, error=f"no JSON object with a string field `text` in {stripped[:80]!r}"
    )
