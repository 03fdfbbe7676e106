"""The chat-completions protocol as the local server speaks it: the parsed request a handler
sees (:class:`ChatRequest`), the replies a handler returns (:class:`Answer` and the faults
:class:`HTTPError`, :class:`Sleep`, :class:`Drop`, :class:`Garbage`) and the JSON bodies the
server sends (:func:`completion_body`, :func:`error_body`). Standard library only.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "JSON_MENTION_MESSAGE",
    "Answer",
    "ChatRequest",
    "Drop",
    "Garbage",
    "HTTPError",
    "Handler",
    "Reply",
    "Sleep",
    "approx_tokens",
    "checked_reply",
    "completion_body",
    "content_text",
    "error_body",
    "json_mention_error",
]

# --------------------------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------------------------


def content_text(content: Any) -> str:
    """The text of a message ``content``: a string, or a list of parts ``{"type": "text", ...}``."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "\n".join(parts)
    return str(content)


def approx_tokens(text: str) -> int:
    """A rough token count (4 characters a token), at least 1 for non-empty text."""
    return (len(text) + 3) // 4


@dataclass
class ChatRequest:
    """One ``POST /v1/chat/completions`` as the handler sees it.

    ``method`` is what the client asked for: ``"json_schema"`` (``response_format.type ==
    "json_schema"``), ``"json_mode"`` (``json_object``), ``"function_calling"`` (tools present)
    or ``"text"``. ``schema`` is the JSON schema asked for (``json_schema``: the response
    format's schema; ``function_calling``: the tool's parameters), ``tool_name`` the tool the
    answer must call. ``seq`` numbers requests from 1 in arrival order; ``attempt`` counts
    requests with the same ``key`` (by default the last user message), from 1: the second
    time the same prompt arrives (a client retry, a re-ask) has ``attempt == 2``.
    ``requested_method`` is what the client asked for even when the server ignores
    ``response_format`` (then ``method == "text"`` and ``response_format_ignored`` is true).
    """

    model: str
    messages: list[dict[str, Any]]
    method: str
    schema: dict[str, Any] | None = None
    tool_name: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    seq: int = 0
    attempt: int = 1
    key: str = field(default="", repr=False)
    requested_method: str = ""
    response_format_ignored: bool = False

    def __post_init__(self) -> None:
        if not self.requested_method:
            self.requested_method = self.method

    def ignore_response_format(self) -> None:
        """Treat the request the way vLLM / llama.cpp / Ollama servers that accept and ignore
        ``response_format`` do: ``method`` becomes ``"text"`` (the answer is free text
        content), ``requested_method`` keeps what the client asked for and
        ``response_format_ignored`` is set. Tool calls (``function_calling``) are kept."""
        if self.method in ("json_schema", "json_mode"):
            self.requested_method = self.method
            self.method = "text"
            self.response_format_ignored = True

    @property
    def last_user_text(self) -> str:
        """The text of the last ``user`` message ("" when there is none)."""
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return content_text(message.get("content"))
        return ""

    @property
    def system_text(self) -> str:
        """The text of every ``system`` / ``developer`` message, joined by blank lines."""
        return "\n\n".join(
            content_text(m.get("content"))
            for m in self.messages
            if m.get("role") in ("system", "developer")
        )

    @property
    def all_text(self) -> str:
        """The text of every message, joined by blank lines."""
        return "\n\n".join(content_text(m.get("content")) for m in self.messages)

    @classmethod
    def from_body(
        cls, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> ChatRequest:
        """Parse a chat-completions request body; raises ``ValueError`` on a malformed one."""
        messages = body.get("messages")
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise ValueError("'messages' must be a list of objects")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise ValueError("'model' must be a non-empty string")
        method, schema, tool_name = _detect_method(body)
        return cls(
            model=model,
            messages=list(messages),
            method=method,
            schema=schema,
            tool_name=tool_name,
            raw=dict(body),
            headers=dict(headers or {}),
        )


def _detect_method(body: Mapping[str, Any]) -> tuple[str, dict[str, Any] | None, str | None]:
    """``(method, schema, tool_name)`` of a request body."""
    response_format = body.get("response_format")
    if isinstance(response_format, Mapping):
        kind = response_format.get("type")
        if kind == "json_schema":
            spec = response_format.get("json_schema") or {}
            schema = spec.get("schema") if isinstance(spec, Mapping) else None
            return "json_schema", schema if isinstance(schema, dict) else None, None
        if kind == "json_object":
            return "json_mode", None, None
    tools = body.get("tools")
    if isinstance(tools, list) and tools:
        functions = [
            t["function"]
            for t in tools
            if isinstance(t, Mapping) and isinstance(t.get("function"), Mapping)
        ]
        chosen = None
        tool_choice = body.get("tool_choice")
        if isinstance(tool_choice, Mapping):
            wanted = (tool_choice.get("function") or {}).get("name")
            chosen = next((f for f in functions if f.get("name") == wanted), None)
            if chosen is None and isinstance(wanted, str):
                return "function_calling", None, wanted
        if chosen is None and functions:
            chosen = functions[0]
        if chosen is None:
            return "function_calling", None, None
        params = chosen.get("parameters")
        return "function_calling", params if isinstance(params, dict) else None, chosen.get("name")
    return "text", None, None


# --------------------------------------------------------------------------------------------
# Replies
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """A completion. A ``dict`` payload is sent as JSON; a ``str`` payload is sent verbatim
    (as content, or as tool-call arguments), which is how malformed JSON is simulated.
    ``finish_reason`` overrides the natural one (``"stop"`` / ``"tool_calls"``), e.g. ``"length"``.
    """

    payload: dict[str, Any] | str
    finish_reason: str | None = None


@dataclass(frozen=True)
class HTTPError:
    """An HTTP error status. ``body``: ``None`` gives an OpenAI-style error object, a ``dict``
    is sent as JSON, a ``str`` verbatim. ``retry_after`` (seconds) sets the ``Retry-After``
    header; ``headers`` adds any other (e.g. ``{"x-should-retry": "false"}``)."""

    status: int
    body: dict[str, Any] | str | None = None
    retry_after: float | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Sleep:
    """Wait ``seconds`` (on top of the server's latency), then answer with ``then``."""

    seconds: float
    then: Reply


@dataclass(frozen=True)
class Drop:
    """Close the connection without sending anything."""


@dataclass(frozen=True)
class Garbage:
    """A 200 whose body is not a chat completion (by default not even JSON)."""

    body: str = "<html><body>502 Bad Gateway (not JSON)</body></html>"
    content_type: str = "application/json"


Reply = Answer | HTTPError | Sleep | Drop | Garbage
Handler = Callable[[ChatRequest], Reply]

_REASONS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "conflict_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    502: "server_error",
    503: "service_unavailable",
    504: "timeout_error",
}


def error_body(
    status: int, message: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """An OpenAI-style error object."""
    return {
        "error": {
            "message": message,
            "type": _REASONS.get(
                status, "server_error" if status >= 500 else "invalid_request_error"
            ),
            "param": param,
            "code": code,
        }
    }


#: OpenAI's 400 for ``response_format: {"type": "json_object"}`` without "json" in the messages.
JSON_MENTION_MESSAGE = (
    "'messages' must contain the word 'json' in some form, to use 'response_format' of type "
    "'json_object'."
)


def json_mention_error(request: ChatRequest) -> dict[str, Any] | None:
    """OpenAI's error body when ``request`` asks for ``json_object`` and no message mentions
    "json" (any case); ``None`` when the request is fine."""
    if request.requested_method != "json_mode" or "json" in request.all_text.lower():
        return None
    return error_body(400, JSON_MENTION_MESSAGE, param="messages")


def completion_body(request: ChatRequest, answer: Answer) -> dict[str, Any]:
    """The chat-completion object that answers ``request`` with ``answer``'s payload."""
    payload = answer.payload
    text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    message: dict[str, Any] = {"role": "assistant", "refusal": None}
    if request.method == "function_calling":
        message["content"] = None
        message["tool_calls"] = [
            {
                "id": f"call_{uuid.uuid4().hex[:24]}",
                "type": "function",
                "function": {"name": request.tool_name or "answer", "arguments": text},
            }
        ]
        finish_reason = "tool_calls"
    else:
        message["content"] = text
        finish_reason = "stop"
    prompt_tokens = max(1, approx_tokens(request.all_text))
    completion_tokens = approx_tokens(text)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.model,
        "system_fingerprint": "fp_local",
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": answer.finish_reason or finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def checked_reply(reply: Any) -> Reply:
    """``reply`` if it is a Reply (a Sleep's ``then`` included); ``TypeError`` otherwise."""
    inner = reply
    while isinstance(inner, Sleep):
        inner = inner.then
    if not isinstance(inner, Answer | HTTPError | Drop | Garbage):
        raise TypeError(f"the handler returned {reply!r}, not a Reply")
    return reply
