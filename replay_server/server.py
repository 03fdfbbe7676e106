"""A local OpenAI-compatible chat server for tests, the offline replay demo and benchmarks.

It speaks the real protocol over real HTTP on 127.0.0.1, so the code under test uses the real
``langchain-openai`` / ``openai`` clients (retries, timeouts, structured output parsing).
What the server answers is decided by a *handler*, a callable from a parsed :class:`ChatRequest`
to a *reply*:

- :class:`Answer` -- a normal completion, packaged the way the request's method expects
  (``json_schema`` / ``json_mode``: JSON in ``message.content``; ``function_calling``: one tool
  call to the requested tool; ``text``: plain content);
- faults: :class:`HTTPError` (429 with ``Retry-After``, 500, 503...), :class:`Sleep` (answer late,
  to trigger client timeouts), :class:`Drop` (close the socket without an answer),
  :class:`Garbage` (200 with a body that is not a completion).

Handlers shipped here: :class:`ScriptedHandler` (replies in order, then a function) and
:class:`ReplayHandler` (recorded translations from a JSONL file: the offline demo).

Usage::

    with LocalOpenAIServer(ScriptedHandler([HTTPError(429, retry_after=1), Answer({"text": "hi"})])) as server:
        llm = ChatOpenAI(model="test", base_url=server.base_url, api_key="sk-test")
        ...
        assert len(server.requests) == 2

Command line (foreground server for manual demos)::

    python -m replay_server --replay FILE [--port N] [--latency S]

Standard library only.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from mre.errors import RecordError

logger = logging.getLogger(__name__)

__all__ = [
    "Answer",
    "CallCounter",
    "ChatRequest",
    "Drop",
    "Garbage",
    "HTTPError",
    "LocalOpenAIServer",
    "ReplayEntry",
    "ReplayHandler",
    "Reply",
    "ScriptExhaustedError",
    "ScriptedHandler",
    "Sleep",
    "approx_tokens",
]

# --------------------------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------------------------


def _content_text(content: Any) -> str:
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
                return _content_text(message.get("content"))
        return ""

    @property
    def system_text(self) -> str:
        """The text of every ``system`` / ``developer`` message, joined by blank lines."""
        return "\n\n".join(
            _content_text(m.get("content"))
            for m in self.messages
            if m.get("role") in ("system", "developer")
        )

    @property
    def all_text(self) -> str:
        """The text of every message, joined by blank lines."""
        return "\n\n".join(_content_text(m.get("content")) for m in self.messages)

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


# --------------------------------------------------------------------------------------------
# Handlers
# --------------------------------------------------------------------------------------------


class CallCounter:
    """A thread-safe counter per key: ``counter.next(key)`` returns 1, 2, 3... for each key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def next(self, key: str) -> int:
        with self._lock:
            n = self._counts.get(key, 0) + 1
            self._counts[key] = n
            return n

    def __getitem__(self, key: str) -> int:
        with self._lock:
            return self._counts.get(key, 0)


class ScriptExhaustedError(RuntimeError):
    """A :class:`ScriptedHandler` got a request after its script ran out."""


ScriptItem = Reply | Callable[[ChatRequest], Reply]


class ScriptedHandler:
    """Answers from ``replies`` in order (an item may be a function of the request), then from
    ``fallback`` for every later request; without a fallback, a request past the script raises
    :class:`ScriptExhaustedError` (the server answers 500 with ``x-should-retry: false`` and
    keeps the error in ``server.errors``)."""

    def __init__(
        self,
        replies: Iterable[ScriptItem] = (),
        fallback: Callable[[ChatRequest], Reply] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._replies: list[ScriptItem] = list(replies)
        self._total = len(self._replies)
        self._fallback = fallback

    @property
    def remaining(self) -> int:
        with self._lock:
            return len(self._replies)

    def __call__(self, request: ChatRequest) -> Reply:
        with self._lock:
            item = self._replies.pop(0) if self._replies else None
        if item is None:
            if self._fallback is None:
                raise ScriptExhaustedError(
                    f"script of {self._total} replies exhausted at request #{request.seq} "
                    f"(last user message: {request.last_user_text[:80]!r})"
                )
            return self._fallback(request)
        if callable(item):
            return item(request)
        return item


@dataclass(frozen=True)
class ReplayEntry:
    """One recorded translation: the marked ``source``, the ``target`` code, the marked ``text``."""

    source: str
    target: str
    text: str
    line: int = 0


class ReplayHandler:
    """Answers translator prompts from a JSONL file of recorded translations.

    Each line is ``{"source": ..., "target": "en", "text": ...}`` (extra keys ignored). A
    request matches an entry when the entry's ``source`` occurs in a user message and
    the literal ``target_lang="<target>"`` occurs somewhere in the request; the longest matching
    source wins. No match: HTTP 404 ``no recorded answer for this prompt``.
    """

    TARGET_PATTERN = 'target_lang="{code}"'

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._by_target: dict[str, list[ReplayEntry]] = {}
        for entry in self._read(self.path):
            self._by_target.setdefault(entry.target, []).append(entry)
        for entries in self._by_target.values():
            # Longest source first, so the first hit is the best; stable on file order.
            entries.sort(key=lambda e: -len(e.source))
        logger.info(
            "replay %s: %d entries for targets %s",
            self.path,
            len(self),
            sorted(self._by_target),
        )

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_target.values())

    @property
    def targets(self) -> list[str]:
        return sorted(self._by_target)

    @staticmethod
    def _read(path: Path) -> Iterable[ReplayEntry]:
        seen: dict[tuple[str, str], int] = {}
        with path.open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise RecordError(f"not JSON: {e}", path=str(path), line=lineno) from e
                if not isinstance(obj, dict):
                    raise RecordError(
                        f"expected an object, got {type(obj).__name__}", path=str(path), line=lineno
                    )
                record_id = str(obj["id"]) if "id" in obj else None
                for key in ("source", "target", "text"):
                    value = obj.get(key)
                    if not isinstance(value, str) or not value:
                        raise RecordError(
                            f"expected a non-empty string, got {value!r}",
                            path=str(path),
                            line=lineno,
                            record_id=record_id,
                            field=key,
                        )
                pair = (obj["source"], obj["target"])
                if pair in seen:
                    logger.warning(
                        "%s:%d: duplicate of line %d (same source and target), ignored",
                        path,
                        lineno,
                        seen[pair],
                    )
                    continue
                seen[pair] = lineno
                yield ReplayEntry(obj["source"], obj["target"], obj["text"], lineno)

    def find(self, request: ChatRequest) -> ReplayEntry | None:
        """The recorded entry that answers ``request``, or ``None``."""
        # every user message: on a retry the last one is the feedback, the source is earlier
        user = "\n\n".join(
            _content_text(m.get("content")) for m in request.messages if m.get("role") == "user"
        )
        everything = request.all_text
        best: ReplayEntry | None = None
        for target, entries in self._by_target.items():
            if self.TARGET_PATTERN.format(code=target) not in everything:
                continue
            for entry in entries:
                if best is not None and len(entry.source) <= len(best.source):
                    break
                if entry.source in user:
                    best = entry
                    break
        return best

    def __call__(self, request: ChatRequest) -> Reply:
        entry = self.find(request)
        if entry is None:
            targets = re.findall(r'target_lang="([^"]*)"', request.all_text)
            message = (
                f"no recorded answer for this prompt in {self.path} "
                f"(target_lang in request: {targets or 'none'}; recorded targets: {self.targets}; "
                f"last user message starts {request.last_user_text[:80]!r})"
            )
            logger.warning("replay: %s", message)
            return HTTPError(404, error_body(404, message, code="no_recorded_answer"))
        return Answer({"text": entry.text})


# --------------------------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------------------------


class _DropConnection(Exception):
    """Close the connection without answering."""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # `LocalOpenAIServer.stop` joins the handler threads itself
    request_queue_size = 1024
    allow_reuse_address = True
    owner: LocalOpenAIServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints tracebacks to stderr; a client that hangs up is routine here.
        logger.debug("connection from %s failed", client_address, exc_info=True)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes
    server_version = "LocalOpenAI/1.0"
    timeout = 120  # idle keep-alive connections are closed after this many seconds
    server: _HTTPServer

    # -- plumbing -------------------------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.owner._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _send_json(self, status: int, obj: Any, headers: Mapping[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj, ensure_ascii=False).encode("utf-8"), headers=headers)

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- routes ---------------------------------------------------------------------------------

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        if path in ("/v1/models", "/models"):
            created = int(self.server.owner.started_at)
            data = [
                {"id": m, "object": "model", "created": created, "owned_by": "local"}
                for m in self.server.owner.models
            ]
            self._send_json(200, {"object": "list", "data": data})
        else:
            self._send_json(404, error_body(404, f"unknown path {self.path!r}"))

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        if path not in ("/v1/chat/completions", "/chat/completions"):
            self._send_json(404, error_body(404, f"unknown path {self.path!r}"))
            return
        no_retry = {"x-should-retry": "false"}
        try:
            body = json.loads(raw.decode("utf-8"))
            if not isinstance(body, dict):
                raise ValueError("the request body must be a JSON object")
            if body.get("stream"):
                raise ValueError("streaming is not supported by the local test server")
            request = ChatRequest.from_body(body, {k.lower(): v for k, v in self.headers.items()})
        except (UnicodeDecodeError, ValueError) as e:
            self.close_connection = True  # whatever was not read must not poison keep-alive
            self._send_json(400, error_body(400, f"bad request: {e}"), headers=no_retry)
            return
        owner = self.server.owner
        if owner.ignore_response_format:
            request.ignore_response_format()
        elif owner.enforce_json_mention and (error := json_mention_error(request)) is not None:
            owner._record(request)
            self._send_json(400, error, headers=no_retry)
            return
        try:
            owner._record(request)
            reply = _checked(owner.handler(request))
        except Exception as e:
            logger.exception("handler failed on request #%d", request.seq)
            owner._record_error(e)
            message = f"handler failed on request #{request.seq}: {type(e).__name__}: {e}"
            self._send_json(500, error_body(500, message, code="handler_error"), headers=no_retry)
            return
        if owner.latency > 0 and owner._wait(owner.latency):
            self._drop()  # the server is stopping
            return
        try:
            self._reply(request, reply)
        except _DropConnection:
            self._drop()
        except (BrokenPipeError, ConnectionResetError) as e:
            # The client gave up (e.g. its timeout fired during a Sleep).
            logger.debug("request #%d: client went away: %s", request.seq, e)
            self.close_connection = True

    def _reply(self, request: ChatRequest, reply: Reply) -> None:
        owner = self.server.owner
        if isinstance(reply, Sleep):
            if owner._wait(reply.seconds):
                raise _DropConnection
            self._reply(request, reply.then)
        elif isinstance(reply, Answer):
            self._send_json(200, completion_body(request, reply))
        elif isinstance(reply, HTTPError):
            headers = dict(reply.headers)
            if reply.retry_after is not None:
                headers["Retry-After"] = f"{reply.retry_after:g}"
            if reply.body is None:
                body = json.dumps(error_body(reply.status, f"simulated HTTP {reply.status}"))
            elif isinstance(reply.body, str):
                body = reply.body
            else:
                body = json.dumps(reply.body, ensure_ascii=False)
            self._send(reply.status, body.encode("utf-8"), headers=headers)
        elif isinstance(reply, Drop):
            raise _DropConnection
        elif isinstance(reply, Garbage):
            self._send(200, reply.body.encode("utf-8"), content_type=reply.content_type)
        else:  # pragma: no cover - _checked() rejects anything else
            raise TypeError(f"handler returned {reply!r}, not a Reply")


def _checked(reply: Any) -> Reply:
    """``reply`` if it is a Reply (a Sleep's ``then`` included); ``TypeError`` otherwise."""
    inner = reply
    while isinstance(inner, Sleep):
        inner = inner.then
    if not isinstance(inner, Answer | HTTPError | Drop | Garbage):
        raise TypeError(f"the handler returned {reply!r}, not a Reply")
    return reply


class LocalOpenAIServer:
    """An OpenAI-compatible chat server on 127.0.0.1 in a background thread.

    ``handler`` decides every answer; ``latency`` seconds are added before every answer (the
    waits run in parallel: one thread per connection); ``key`` picks what counts as "the same
    prompt" for :attr:`ChatRequest.attempt` (default: the last user message). ``requests`` and
    ``errors`` (exceptions raised by the handler) are kept for assertions.

    ``enforce_json_mention`` (default on): like OpenAI, a ``json_object`` request whose
    messages never say "json" gets HTTP 400 (the request is recorded, the handler not called).
    ``ignore_response_format``: behave like vLLM / llama.cpp / Ollama servers that accept
    ``response_format`` and ignore it: the handler sees ``method == "text"`` (and
    ``requested_method``, ``response_format_ignored``) and its answer goes back as free text
    content, whatever it is (JSON in prose, a fenced block...); no json-mention check.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        latency: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        models: Iterable[str] = ("test",),
        key: Callable[[ChatRequest], str] | None = None,
        enforce_json_mention: bool = True,
        ignore_response_format: bool = False,
    ) -> None:
        self.handler = handler
        self.enforce_json_mention = enforce_json_mention
        self.ignore_response_format = ignore_response_format
        self.latency = latency
        self.host = host
        self.port = port
        self.models = list(models)
        self.key = key or (lambda r: r.last_user_text)
        self.started_at = time.time()
        self.calls = CallCounter()
        self._lock = threading.Lock()
        self._requests: list[ChatRequest] = []
        self._errors: list[BaseException] = []
        self._seq = itertools.count(1)
        self._connections: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle -----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the server is not started")
        return f"http://{self.host}:{self.port}/v1"

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def start(self) -> LocalOpenAIServer:
        if self._httpd is not None:
            raise RuntimeError("the server is already started")
        self._stopping.clear()
        httpd = _HTTPServer((self.host, self.port), _RequestHandler)
        httpd.owner = self
        self.port = httpd.server_address[1]
        self.started_at = time.time()
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"LocalOpenAIServer:{self.port}",
            daemon=True,
        )
        self._thread.start()
        logger.info("local OpenAI server on %s", self.base_url)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, close every connection and the listening socket, join the threads."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._stopping.set()  # wakes handlers waiting on latency / Sleep
        httpd.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        httpd.server_close()
        if thread is not None:
            thread.join(timeout)
        deadline = time.monotonic() + timeout
        with self._lock:
            threads, self._threads = self._threads, []
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in threads if t.is_alive()]
        if alive:
            logger.warning("local OpenAI server: %d handler threads still running", len(alive))
        self._httpd = None
        self._thread = None
        logger.info("local OpenAI server on port %d stopped", self.port)

    def __enter__(self) -> LocalOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- assertions -----------------------------------------------------------------------------

    @property
    def requests(self) -> list[ChatRequest]:
        """The requests received so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions the handler raised (each was answered with a 500)."""
        with self._lock:
            return list(self._errors)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._errors.clear()

    # -- called from handler threads ------------------------------------------------------------

    def _record(self, request: ChatRequest) -> None:
        request.key = self.key(request)
        with self._lock:
            request.seq = next(self._seq)
            self._requests.append(request)
        request.attempt = self.calls.next(request.key)

    def _record_error(self, error: BaseException) -> None:
        with self._lock:
            self._errors.append(error)

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
                # Reap finished handler threads now and then; stop() joins the live ones.
                if len(self._threads) > 64:
                    self._threads = [t for t in self._threads if t.is_alive()]
                self._threads.append(threading.current_thread())
            else:
                self._connections.discard(conn)

    def _wait(self, seconds: float) -> bool:
        """Sleep ``seconds``; True when the server started stopping meanwhile."""
        return self._stopping.wait(seconds) if seconds > 0 else self._stopping.is_set()


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m replay_server",
        description="Serve recorded translations on an OpenAI-compatible endpoint (offline demo).",
    )
    parser.add_argument(
        "--replay", required=True, type=Path, help="JSONL of {source, target, text}"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(message)s"
    )
    try:
        handler = ReplayHandler(args.replay)
    except (OSError, RecordError) as e:
        parser.error(str(e))
    server = LocalOpenAIServer(handler, latency=args.latency, host=args.host, port=args.port)
    server.start()
    print(server.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
