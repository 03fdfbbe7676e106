"""The HTTP side of the local OpenAI-compatible server: :class:`LocalOpenAIServer` serves
``POST /v1/chat/completions`` (answered by a handler, see :mod:`replay_server.handlers`),
``GET /v1/models``, and the files and batches endpoints (:mod:`replay_server.batches`) on
127.0.0.1 in a background thread, over real HTTP, so code under test uses the real
``openai`` / ``langchain-openai`` clients (retries, timeouts, structured output parsing).

Usage::

    with LocalOpenAIServer(ScriptedHandler([HTTPError(429, retry_after=1), Answer({"text": "hi"})])) as server:
        llm = ChatOpenAI(model="test", base_url=server.base_url, api_key="sk-test")
        ...
        assert len(server.requests) == 2

Standard library only.
"""

from __future__ import annotations

import itertools
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from replay_server.batches import BatchAPI, BatchSettings
from replay_server.handlers import (  # ReplayHandler, ScriptedHandler: imported from here before the split
    CallCounter,
    ReplayHandler,
    ScriptedHandler,
)
from replay_server.protocol import (
    Answer,
    ChatRequest,
    Drop,
    Garbage,
    Handler,
    HTTPError,
    Reply,
    Sleep,
    checked_reply,
    completion_body,
    error_body,
    json_mention_error,
)

logger = logging.getLogger(__name__)

__all__ = [
    "Answer",
    "ChatRequest",
    "Drop",
    "Garbage",
    "HTTPError",
    "LocalOpenAIServer",
    "ReplayHandler",
    "Reply",
    "ScriptedHandler",
    "Sleep",
]



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

    def _batch_api(self, method: str, raw: bytes = b"") -> bool:
        """Serve ``/v1/files...`` and ``/v1/batches...``; False for any other path."""
        path, _, query = self.path.partition("?")
        if not path.rstrip("/").startswith(("/v1/files", "/v1/batches", "/files", "/batches")):
            return False
        owner = self.server.owner
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, body, content_type = owner.batches.handle(
            method, path, query, headers, raw, owner._wait
        )
        try:
            self._send(status, body, content_type=content_type)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        return True

    def do_GET(self) -> None:
        if self._batch_api("GET"):
            return
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
        if self._batch_api("POST", raw):
            return
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
        reply = owner.reply_for(request)
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
        else:  # pragma: no cover - checked_reply() rejects anything else
            raise TypeError(f"handler returned {reply!r}, not a Reply")


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
        batches: BatchSettings | None = None,
    ) -> None:
        self.handler = handler
        self.batches = BatchAPI(self._answer_line, batches)
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

    # -- answering ------------------------------------------------------------------------------

    def reply_for(self, request: ChatRequest) -> Reply:
        """Record ``request`` and decide its reply: the server's rules (json mention), then the
        handler; a handler that raises gives a 500 (kept in :attr:`errors`)."""
        no_retry = {"x-should-retry": "false"}
        if self.ignore_response_format:
            request.ignore_response_format()
        elif self.enforce_json_mention and (error := json_mention_error(request)) is not None:
            self._record(request)
            return HTTPError(400, error, headers=no_retry)
        try:
            self._record(request)
            return checked_reply(self.handler(request))
        except Exception as e:
            logger.exception("handler failed on request #%d", request.seq)
            self._record_error(e)
            message = f"handler failed on request #{request.seq}: {type(e).__name__}: {e}"
            return HTTPError(500, error_body(500, message, code="handler_error"), headers=no_retry)

    def _answer_line(
        self, custom_id: str, body: dict[str, Any], batch_id: str
    ) -> tuple[int, dict[str, Any]]:
        """One batch input line, answered as the same chat request would be: (status, body)."""
        try:
            request = ChatRequest.from_body(
                body, {"x-batch-id": batch_id, "x-custom-id": custom_id}
            )
        except ValueError as e:
            return 400, error_body(400, f"bad request: {e}")
        reply = self.reply_for(request)
        while isinstance(reply, Sleep):  # no one waits on a batch line
            reply = reply.then
        if isinstance(reply, Answer):
            return 200, completion_body(request, reply)
        if isinstance(reply, HTTPError):
            if isinstance(reply.body, dict):
                return reply.status, reply.body
            message = reply.body or f"simulated HTTP {reply.status}"
            return reply.status, error_body(reply.status, message)
        kind = "dropped connection" if isinstance(reply, Drop) else "a body that is not JSON"
        return 500, error_body(500, f"simulated server fault: {kind}")

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

