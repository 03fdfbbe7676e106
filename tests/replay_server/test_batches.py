"""The local server's files and batches endpoints, driven through the real `openai` client."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from replay_server import (
    Answer,
    BatchSettings,
    ChatRequest,
    HTTPError,
    LocalOpenAIServer,
    Reply,
)

openai = pytest.importorskip("openai")

SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "Out",
        "schema": {
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "required": ["text"],
        },
    },
}


def line(custom_id: str, prompt: str, **body: Any) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {
            "model": "test",
            "messages": [{"role": "user", "content": prompt}],
            "response_format": SCHEMA,
            **body,
        },
    }


def echo(request: ChatRequest) -> Reply:
    if "bad" in request.last_user_text:
        return HTTPError(400)
    if "busy" in request.last_user_text:
        return HTTPError(503)
    return Answer({"text": request.last_user_text.upper()})


def client(server: LocalOpenAIServer) -> Any:
    return openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)


def submit(c: Any, lines: list[dict[str, Any]], **metadata: str) -> Any:
    data = "".join(json.dumps(x) + "\n" for x in lines).encode()
    f = c.files.create(file=("in.jsonl", data, "application/jsonl"), purpose="batch")
    assert c.files.retrieve(f.id).bytes == len(data)
    assert c.files.content(f.id).content == data
    return c.batches.create(
        input_file_id=f.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata=metadata or None,
    )


def wait_done(c: Any, batch_id: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = c.batches.retrieve(batch_id)
        if batch.status in ("completed", "failed", "expired", "cancelled"):
            return batch
        time.sleep(0.02)
    raise AssertionError(f"batch {batch_id} still {batch.status}")


def rows(c: Any, file_id: str | None) -> dict[str, dict[str, Any]]:
    if file_id is None:
        return {}
    text = c.files.content(file_id).text
    return {r["custom_id"]: r for r in map(json.loads, text.splitlines())}


def test_batches_complete_after_the_delay_with_outputs_and_error_lines() -> None:
    with LocalOpenAIServer(echo, batches=BatchSettings(delay=0.3)) as server:
        c = client(server)
        lines = [line("a", "hello"), line("b", "bad one"), line("c", "world"), line("d", "busy")]
        lines.append(line("e", "no mention", response_format={"type": "json_object"}))
        batch = submit(c, lines, run="r1")
        assert batch.status == "in_progress" and batch.metadata == {"run": "r1"}
        assert c.batches.retrieve(batch.id).status == "in_progress"
        assert server.requests == []  # nothing runs before the delay
        done = wait_done(c, batch.id)
        out, err = rows(c, done.output_file_id), rows(c, done.error_file_id)
        assert len(server.requests) == 5
        assert {r.headers["x-batch-id"] for r in server.requests} == {batch.id}
    assert done.status == "completed"
    assert done.request_counts.model_dump() == {"total": 5, "completed": 2, "failed": 3}
    assert sorted(out) == ["a", "c"] and sorted(err) == ["b", "d", "e"]
    body = out["a"]["response"]["body"]
    assert json.loads(body["choices"][0]["message"]["content"]) == {"text": "HELLO"}
    assert body["usage"]["prompt_tokens"] > 0
    assert err["b"]["response"]["status_code"] == 400
    assert err["d"]["response"]["status_code"] == 503
    assert "must contain the word 'json'" in err["e"]["response"]["body"]["error"]["message"]
    assert dict(server.batches.submitted) == {k: 1 for k in "abcde"}


def test_batches_planted_fates_expired_failed_cancelled() -> None:
    settings = BatchSettings(delay=0.05, fates={1: "expired", 2: "failed"})
    with LocalOpenAIServer(echo, batches=settings) as server:
        c = client(server)
        lines = [line(f"r{i}", f"text {i}") for i in range(4)]
        expired = wait_done(c, submit(c, lines).id)
        failed = wait_done(c, submit(c, lines).id)
        third = submit(c, lines)
        cancelling = c.batches.cancel(third.id)
        cancelled = wait_done(c, third.id)
        fourth = wait_done(c, submit(c, lines).id)
        out, err = rows(c, expired.output_file_id), rows(c, expired.error_file_id)
    assert expired.status == "expired" and sorted(out) == ["r0", "r1"]
    assert {r["error"]["code"] for r in err.values()} == {"batch_expired"} and len(err) == 2
    assert failed.status == "failed" and failed.output_file_id is None
    assert failed.errors is not None and failed.errors.data[0].code == "server_error"
    assert cancelling.status == "cancelling" and cancelled.status == "cancelled"
    assert fourth.status == "completed" and fourth.request_counts.completed == 4


def test_batches_over_the_file_limits_fail_validation() -> None:
    settings = BatchSettings(delay=0.0, max_requests=2, max_bytes=10_000)
    with LocalOpenAIServer(echo, batches=settings) as server:
        c = client(server)
        many = submit(c, [line(f"r{i}", "x") for i in range(3)])
        big = submit(c, [line("big", "x" * 20_000)])
        dup = submit(c, [line("same", "x"), line("same", "y")])
        ok = submit(c, [line("r1", "x"), line("r2", "y")])
    assert many.status == "failed" and many.errors.data[0].code == "too_many_requests"
    assert big.status == "failed" and big.errors.data[0].code == "file_too_large"
    assert dup.status == "failed" and dup.errors.data[0].code == "duplicate_custom_id"
    assert ok.status == "in_progress"


def test_batches_list_newest_first_with_pages() -> None:
    with LocalOpenAIServer(echo, batches=BatchSettings(delay=0.0)) as server:
        c = client(server)
        made = [submit(c, [line("a", "x")], n=str(i)).id for i in range(5)]
        first = c.batches.list(limit=2)
        listed = [b.id for b in c.batches.list(limit=2)]  # the client follows `after`
        page = [b.id for b in first.data]
    assert page == made[::-1][:2] and first.has_more
    assert listed == made[::-1]


def test_batches_unknown_ids_and_bad_uploads_are_clear_errors() -> None:
    with LocalOpenAIServer(echo) as server:
        c = client(server)
        with pytest.raises(openai.NotFoundError, match="no such batch"):
            c.batches.retrieve("batch_nope")
        with pytest.raises(openai.NotFoundError, match="no such file"):
            c.files.content("file-nope")
        with pytest.raises(openai.BadRequestError, match="purpose"):
            c.files.create(file=("x.jsonl", b"{}\n"), purpose="assistants")
