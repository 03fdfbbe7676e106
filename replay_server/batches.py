"""The files and batches endpoints of the local server (the OpenAI Batch API, in memory).

- ``POST /v1/files`` (multipart: ``purpose``, ``file``), ``GET /v1/files/{id}``,
  ``GET /v1/files/{id}/content``;
- ``POST /v1/batches`` (``input_file_id``, ``endpoint``, ``completion_window``, ``metadata``),
  ``GET /v1/batches/{id}``, ``GET /v1/batches`` (newest first, ``limit`` / ``after``),
  ``POST /v1/batches/{id}/cancel``.

A batch completes :attr:`BatchSettings.delay` seconds after it was created: then every input
line is answered by the server's handler (as if it came to ``/v1/chat/completions``), answers go
to the output file, error replies (an :class:`~replay_server.protocol.HTTPError`, the
json-mention rule...) to the error file. :attr:`BatchSettings.fates` picks another end for the
n-th batch created (1-based): ``"expired"`` (the first half of the lines answered, the rest
``batch_expired`` error lines), ``"failed"`` (no lines run, ``errors`` set) or ``"cancelled"``.
A file over :attr:`BatchSettings.max_requests` lines or :attr:`BatchSettings.max_bytes` bytes
fails validation, as on OpenAI. ``upload_delay`` / ``create_delay`` / ``download_delay`` slow a
stage down (the create delay runs *after* the batch is accepted) so tests can kill a client
in the middle of it; :meth:`BatchAPI.wait_for` waits for a stage to start.
Standard library only.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from replay_server.protocol import error_body

__all__ = ["BatchAPI", "BatchSettings", "LineAnswer"]

#: ``(custom_id, body) -> (HTTP status, JSON body)``: how one input line is answered.
LineAnswer = Callable[[str, dict[str, Any], str], tuple[int, dict[str, Any]]]

TERMINAL = ("completed", "failed", "expired", "cancelled")


@dataclass
class BatchSettings:
    """How the local batches behave (see the module docstring)."""

    delay: float = 0.2
    fates: Mapping[int, str] = field(default_factory=dict)
    max_requests: int = 50_000
    max_bytes: int = 200 * 1024 * 1024
    upload_delay: float = 0.0
    create_delay: float = 0.0
    download_delay: float = 0.0


@dataclass
class _File:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int

    def obj(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }


class BatchAPI:
    """In-memory files and batches; ``answer`` runs one input line through the handler."""

    def __init__(self, answer: LineAnswer, settings: BatchSettings | None = None) -> None:
        self.answer = answer
        self.settings = settings or BatchSettings()
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self.files: dict[str, _File] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self._order = itertools.count(1)
        self._numbers: dict[str, int] = {}
        self._created_mono: dict[str, float] = {}
        self.events: Counter[str] = Counter()
        #: custom_id -> how many batches that did not fail validation held it
        self.submitted: Counter[str] = Counter()

    # -- observation (tests) ------------------------------------------------------------------

    def _event(self, kind: str) -> None:
        with self._changed:
            self.events[kind] += 1
            self._changed.notify_all()

    def wait_for(self, kind: str, count: int = 1, timeout: float = 30.0) -> bool:
        """Wait until stage ``kind`` (``upload``, ``create``, ``created``, ``download``,
        ``retrieve``) started ``count`` times; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self.events[kind] >= count, timeout)

    # -- routing --------------------------------------------------------------------------------

    def handle(
        self,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        wait: Callable[[float], bool],
    ) -> tuple[int, bytes, str]:
        """``(status, body, content type)`` for one request under ``/v1/files`` or
        ``/v1/batches``; ``wait(seconds)`` sleeps (True when the server is stopping)."""
        parts = [p for p in path.split("/") if p]
        if parts and parts[0] == "v1":
            parts = parts[1:]
        try:
            status, payload = self._route(method, parts, parse_qs(query), headers, body, wait)
        except _Fail as e:
            status, payload = e.status, error_body(e.status, e.message, param=e.param)
        if isinstance(payload, bytes):
            return status, payload, "application/octet-stream"
        return status, json.dumps(payload, ensure_ascii=False).encode("utf-8"), "application/json"

    def _route(
        self,
        method: str,
        parts: list[str],
        query: dict[str, list[str]],
        headers: Mapping[str, str],
        body: bytes,
        wait: Callable[[float], bool],
    ) -> tuple[int, Any]:
        if parts[:1] == ["files"]:
            if method == "POST" and len(parts) == 1:
                self._event("upload")
                if wait(self.settings.upload_delay):
                    raise _Fail(503, "server stopping")
                return 200, self._upload(headers.get("content-type", ""), body).obj()
            if method == "GET" and len(parts) == 2:
                return 200, self._file(parts[1]).obj()
            if method == "GET" and len(parts) == 3 and parts[2] == "content":
                self._event("download")
                if wait(self.settings.download_delay):
                    raise _Fail(503, "server stopping")
                return 200, self._file(parts[1]).data
        if parts[:1] == ["batches"]:
            if method == "POST" and len(parts) == 1:
                self._event("create")
                batch = self._create(_json(body))
                self._event("created")
                if wait(self.settings.create_delay):
                    raise _Fail(503, "server stopping")
                return 200, batch
            if method == "GET" and len(parts) == 1:
                return 200, self._list(query)
            if method == "GET" and len(parts) == 2:
                self._event("retrieve")
                return 200, self._retrieve(parts[1])
            if method == "POST" and len(parts) == 3 and parts[2] == "cancel":
                return 200, self._cancel(parts[1])
        raise _Fail(404, f"unknown path {'/'.join(parts)!r} for {method}")

    # -- files ----------------------------------------------------------------------------------

    def _upload(self, content_type: str, body: bytes) -> _File:
        if not content_type.startswith("multipart/form-data"):
            raise _Fail(400, "expected multipart/form-data with 'purpose' and 'file'")
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
        )
        fields: dict[str, tuple[str | None, bytes]] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            data = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(data, bytes):
                fields[name] = (part.get_filename(), data)
        if "file" not in fields:
            raise _Fail(400, "missing the 'file' field", param="file")
        purpose = fields.get("purpose", (None, b""))[1].decode("utf-8")
        if purpose != "batch":
            raise _Fail(400, f"purpose {purpose!r}: only 'batch' is supported", param="purpose")
        filename, data = fields["file"]
        with self._lock:
            f = _File(
                f"file-{uuid.uuid4().hex[:24]}",
                filename or "upload.jsonl",
                purpose,
                data,
                int(time.time()),
            )
            self.files[f.id] = f
        return f

    def _file(self, file_id: str) -> _File:
        with self._lock:
            f = self.files.get(file_id)
        if f is None:
            raise _Fail(404, f"no such file: {file_id}")
        return f

    # -- batches --------------------------------------------------------------------------------

    def _create(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = params.get("input_file_id")
        if params.get("endpoint") != "/v1/chat/completions":
            raise _Fail(400, "only endpoint /v1/chat/completions is supported", param="endpoint")
        if params.get("completion_window") != "24h":
            raise _Fail(400, "completion_window must be '24h'", param="completion_window")
        source = self._file(str(file_id))
        now = int(time.time())
        batch: dict[str, Any] = {
            "id": f"batch_{uuid.uuid4().hex[:24]}",
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "errors": None,
            "input_file_id": source.id,
            "completion_window": "24h",
            "status": "in_progress",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": now,
            "in_progress_at": now,
            "expires_at": now + 24 * 3600,
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": params.get("metadata"),
        }
        lines, errors = self._validate(source)
        with self._lock:
            number = next(self._order)
            self._numbers[batch["id"]] = number
            self._created_mono[batch["id"]] = time.monotonic()
            if errors:
                batch.update(
                    status="failed", failed_at=now, errors={"object": "list", "data": errors}
                )
            else:
                batch["request_counts"]["total"] = len(lines)
                for custom_id, _ in lines:
                    self.submitted[custom_id] += 1
            batch["_lines"] = lines
            self.batches[batch["id"]] = batch
        return _public(batch)

    def _validate(
        self, source: _File
    ) -> tuple[list[tuple[str, dict[str, Any]]], list[dict[str, Any]]]:
        lines: list[tuple[str, dict[str, Any]]] = []
        errors: list[dict[str, Any]] = []
        if len(source.data) > self.settings.max_bytes:
            errors.append(
                _err(
                    "file_too_large",
                    f"the file has {len(source.data)} bytes, over "
                    f"the limit of {self.settings.max_bytes}",
                    None,
                )
            )
        seen: set[str] = set()
        for lineno, raw in enumerate(source.data.decode("utf-8").splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
                custom_id, body = obj["custom_id"], obj["body"]
                if obj.get("url") != "/v1/chat/completions" or obj.get("method") != "POST":
                    raise ValueError("method must be POST and url /v1/chat/completions")
                if not isinstance(custom_id, str) or not isinstance(body, dict):
                    raise ValueError("custom_id must be a string and body an object")
            except (ValueError, KeyError, TypeError) as e:
                errors.append(_err("invalid_request", f"line {lineno}: {e}", lineno))
                continue
            if custom_id in seen:
                errors.append(
                    _err(
                        "duplicate_custom_id",
                        f"line {lineno}: custom_id {custom_id!r} repeats",
                        lineno,
                    )
                )
            seen.add(custom_id)
            lines.append((custom_id, body))
        if len(lines) > self.settings.max_requests:
            errors.append(
                _err(
                    "too_many_requests",
                    f"{len(lines)} requests, over the limit of {self.settings.max_requests}",
                    None,
                )
            )
        return lines, errors

    def _advance(self, batch: dict[str, Any]) -> None:
        """Finish ``batch`` when its time has come (called under the lock)."""
        if batch["status"] in TERMINAL:
            return
        if batch["status"] == "cancelling":
            self._finish(batch, "cancelled", answered=0)
            return
        if time.monotonic() - self._created_mono[batch["id"]] < self.settings.delay:
            return
        fate = self.settings.fates.get(self._numbers[batch["id"]], "completed")
        lines = batch["_lines"]
        if fate == "failed":
            now = int(time.time())
            batch.update(
                status="failed",
                failed_at=now,
                errors={
                    "object": "list",
                    "data": [
                        _err("server_error", "the batch failed (planted by the local server)", None)
                    ],
                },
            )
        elif fate == "expired":
            self._finish(batch, "expired", answered=len(lines) // 2)
        elif fate == "cancelled":
            self._finish(batch, "cancelled", answered=0)
        else:
            self._finish(batch, "completed", answered=len(lines))

    def _finish(self, batch: dict[str, Any], status: str, *, answered: int) -> None:
        out: list[str] = []
        err: list[str] = []
        for i, (custom_id, body) in enumerate(batch["_lines"]):
            line_id = f"batch_req_{uuid.uuid4().hex[:24]}"
            if i < answered:
                code, response = self.answer(custom_id, body, batch["id"])
                row = {
                    "id": line_id,
                    "custom_id": custom_id,
                    "error": None,
                    "response": {
                        "status_code": code,
                        "request_id": f"req_{uuid.uuid4().hex[:24]}",
                        "body": response,
                    },
                }
                (out if code == 200 else err).append(json.dumps(row, ensure_ascii=False))
            else:
                code_name = "batch_expired" if status == "expired" else "batch_cancelled"
                row = {
                    "id": line_id,
                    "custom_id": custom_id,
                    "response": None,
                    "error": {
                        "code": code_name,
                        "message": f"this request could not be executed before "
                        f"the batch was {status}",
                    },
                }
                err.append(json.dumps(row, ensure_ascii=False))
        now = int(time.time())
        for kind, rows in (("output_file_id", out), ("error_file_id", err)):
            if rows:
                f = _File(
                    f"file-{uuid.uuid4().hex[:24]}",
                    f"{batch['id']}_{kind[:-8]}.jsonl",
                    "batch_output",
                    ("\n".join(rows) + "\n").encode("utf-8"),
                    now,
                )
                self.files[f.id] = f
                batch[kind] = f.id
        failed = len(batch["_lines"]) - sum(1 for r in out)
        batch["request_counts"] = {
            "total": len(batch["_lines"]),
            "completed": len(out),
            "failed": failed,
        }
        batch.update(status=status, finalizing_at=now, **{f"{status}_at": now})

    def _retrieve(self, batch_id: str) -> dict[str, Any]:
        with self._lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                raise _Fail(404, f"no such batch: {batch_id}")
            self._advance(batch)
            return _public(batch)

    def _list(self, query: dict[str, list[str]]) -> dict[str, Any]:
        limit = int((query.get("limit") or ["20"])[0])
        afters = query.get("after")
        after = afters[0] if afters else None
        with self._lock:
            ordered = sorted(self.batches.values(), key=lambda b: -self._numbers[b["id"]])
            if after is not None:
                ids = [b["id"] for b in ordered]
                ordered = ordered[ids.index(after) + 1 :] if after in ids else []
            page = ordered[:limit]
            for batch in page:
                self._advance(batch)
            data = [_public(b) for b in page]
        return {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": len(ordered) > limit,
        }

    def _cancel(self, batch_id: str) -> dict[str, Any]:
        with self._lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                raise _Fail(404, f"no such batch: {batch_id}")
            if batch["status"] not in TERMINAL:
                batch.update(status="cancelling", cancelling_at=int(time.time()))
            return _public(batch)


class _Fail(Exception):
    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param = status, message, param


def _json(body: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise _Fail(400, f"bad request: {e}") from e
    if not isinstance(obj, dict):
        raise _Fail(400, "the request body must be a JSON object")
    return obj


def _err(code: str, message: str, line: int | None) -> dict[str, Any]:
    return {"code": code, "message": message, "param": None, "line": line}


def _public(batch: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in batch.items() if not k.startswith("_")}
