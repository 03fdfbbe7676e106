"""The local OpenAI-compatible server, driven through the real langchain-openai client.

Observed client behaviour on malformed answers (langchain-openai 1.7, openai 3.x), which the
translator must handle (see `test_openai_server_malformed_json`):
- json_schema: the openai client parses the content itself and RAISES pydantic.ValidationError
  (include_raw=True does not catch it, the error happens inside the model call);
- json_mode: include_raw=True gives parsed=None and parsing_error=OutputParserException; but a
  merely truncated or trailing-garbage object is repaired by the lenient partial-JSON parser;
- function_calling: invalid arguments land in raw.invalid_tool_calls and the result is
  parsed=None with parsing_error=None (no error is set!), so "parsed is None" is the test.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr

from mre.errors import RecordError
from replay_server import (
    Answer,
    ChatRequest,
    Drop,
    Garbage,
    HTTPError,
    LocalOpenAIServer,
    ReplayHandler,
    Reply,
    ScriptedHandler,
    ScriptExhaustedError,
    Sleep,
    approx_tokens,
)
from replay_server.cli import main

pytest.importorskip("langchain_openai")
openai = pytest.importorskip("openai")

REPO = Path(__file__).resolve().parents[2]
METHODS = ["json_schema", "function_calling", "json_mode"]


class Out(BaseModel):
    text: str


def chat(server: LocalOpenAIServer, **kwargs: Any) -> Any:
    from langchain_openai import ChatOpenAI

    kwargs.setdefault("max_retries", 0)
    return ChatOpenAI(
        model="test", base_url=server.base_url, api_key=SecretStr("sk-test"), **kwargs
    )


@contextmanager
def serve(handler: Any, **kwargs: Any) -> Iterator[LocalOpenAIServer]:
    # these prompts do not say "json"; the json-mention rule has its own tests
    kwargs.setdefault("enforce_json_mention", False)
    with LocalOpenAIServer(handler, **kwargs) as server:
        yield server


def structured(server: LocalOpenAIServer, method: str, prompt: Any = "hello", **kwargs: Any) -> Any:
    llm = chat(server, **kwargs).with_structured_output(Out, method=method, include_raw=True)
    return llm.invoke(prompt)


# ---------------------------------------------------------------------------------------------
# Methods and packaging
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_openai_server_structured_output_methods(method: str) -> None:
    with serve(lambda r: Answer({"text": f"echo: {r.last_user_text}"})) as server:
        result = structured(server, method, "こんにちは <e1>世界</e1>")
        assert result["parsing_error"] is None
        assert result["parsed"] == Out(text="echo: こんにちは <e1>世界</e1>")
        (request,) = server.requests
    assert request.method == method
    assert request.model == "test"
    assert request.last_user_text == "こんにちは <e1>世界</e1>"
    if method == "json_mode":
        assert request.schema is None
    else:
        assert request.schema is not None
        assert request.schema["required"] == ["text"]
    assert request.tool_name == ("Out" if method == "function_calling" else None)


def test_openai_server_plain_text_and_usage() -> None:
    prompt = "translate this sentence please"
    with serve(lambda r: Answer("plain answer")) as server:
        message = chat(server).invoke([("system", "be brief"), ("user", prompt)])
        (request,) = server.requests
    assert message.content == "plain answer"
    assert request.method == "text"
    assert request.system_text == "be brief"
    assert message.response_metadata["finish_reason"] == "stop"
    assert message.response_metadata["model_name"] == "test"
    usage = message.usage_metadata
    assert usage is not None
    assert usage["input_tokens"] == approx_tokens("be brief\n\n" + prompt)
    assert usage["output_tokens"] == approx_tokens("plain answer")
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


def test_openai_server_function_calling_packaging() -> None:
    with serve(lambda r: Answer({"text": "x"})) as server:
        result = structured(server, "function_calling")
    raw = result["raw"]
    assert raw.content == ""
    assert raw.response_metadata["finish_reason"] == "tool_calls"
    (call,) = raw.tool_calls
    assert call["name"] == "Out"
    assert call["args"] == {"text": "x"}
    assert call["id"].startswith("call_")


@pytest.mark.parametrize(
    ("method", "payload", "expect"),
    [
        ("json_mode", "not json at all", "parsing_error"),
        ("json_mode", '{"text": hi}', "parsing_error"),
        ("json_mode", '{"text": "hi"', "repaired"),  # lenient partial-JSON parsing
        ("function_calling", "not json at all", "invalid_tool_call"),
        ("function_calling", '{"text": "hi"', "invalid_tool_call"),
        ("json_schema", "not json at all", "raises"),
        ("json_schema", '{"text": "hi"', "raises"),
    ],
)
def test_openai_server_malformed_json(method: str, payload: str, expect: str) -> None:
    from langchain_core.exceptions import OutputParserException
    from pydantic import ValidationError

    with serve(lambda r: Answer(payload)) as server:
        if expect == "raises":
            with pytest.raises(ValidationError, match="Invalid JSON"):
                structured(server, method)
            return
        result = structured(server, method)
    if expect == "repaired":
        assert result["parsed"] == Out(text="hi")
        assert result["parsing_error"] is None
    elif expect == "parsing_error":
        assert result["parsed"] is None
        assert isinstance(result["parsing_error"], OutputParserException)
    else:
        assert result["parsed"] is None
        assert result["parsing_error"] is None
        (bad,) = result["raw"].invalid_tool_calls
        assert bad["name"] == "Out"
        assert bad["args"] == payload


# ---------------------------------------------------------------------------------------------
# Faults and retries
# ---------------------------------------------------------------------------------------------


def test_openai_server_429_retry_after_then_success() -> None:
    handler = ScriptedHandler([HTTPError(429, retry_after=1), Answer({"text": "ok"})])
    with serve(handler) as server:
        start = time.monotonic()
        result = structured(server, "json_schema", max_retries=1)
        elapsed = time.monotonic() - start
        requests = server.requests
    assert result["parsed"] == Out(text="ok")
    assert len(requests) == 2
    assert [r.attempt for r in requests] == [1, 2]
    assert elapsed >= 1.0
    assert handler.remaining == 0


@pytest.mark.parametrize(
    "fault",
    [HTTPError(500), HTTPError(503, body="upstream overloaded"), Drop()],
    ids=["500", "503-text-body", "drop"],
)
def test_openai_server_fault_then_success(fault: Reply) -> None:
    with serve(ScriptedHandler([fault, Answer({"text": "ok"})])) as server:
        result = structured(server, "function_calling", max_retries=2)
        assert len(server.requests) == 2
    assert result["parsed"] == Out(text="ok")


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (HTTPError(429, retry_after=1), "RateLimitError"),
        (HTTPError(500), "InternalServerError"),
        (HTTPError(400, body={"error": {"message": "bad prompt"}}), "BadRequestError"),
        (Drop(), "APIConnectionError"),
        (Sleep(5, then=Answer({"text": "late"})), "APITimeoutError"),
    ],
    ids=["429", "500", "400", "drop", "timeout"],
)
def test_openai_server_fault_without_retries_raises(fault: Reply, error: str) -> None:
    with serve(ScriptedHandler([fault], fallback=lambda r: Answer({"text": "fine"}))) as server:
        start = time.monotonic()
        with pytest.raises(getattr(openai, error)):
            structured(server, "json_mode", max_retries=0, timeout=0.5)
        assert time.monotonic() - start < 2.0
        # The server still works after the fault (a Drop or a timed-out Sleep breaks nothing).
        result = structured(server, "json_mode", max_retries=0, timeout=2.0)
        assert result["parsed"] == Out(text="fine")
        assert len(server.requests) == 2


def test_openai_server_garbage_body_raises() -> None:
    with serve(lambda r: Garbage()) as server, pytest.raises(ValueError):
        chat(server).invoke("hello")


def test_openai_server_attempt_counter_first_bad_then_good() -> None:
    def handler(request: ChatRequest) -> Reply:
        if request.attempt == 1:
            return Answer({"text": "draft without markers"})
        return Answer({"text": f"attempt {request.attempt}"})

    with serve(handler) as server:
        first = structured(server, "json_schema", "same prompt")
        second = structured(server, "json_schema", "same prompt")
        other = structured(server, "json_schema", "another prompt")
        assert server.calls["same prompt"] == 2
        assert [r.seq for r in server.requests] == [1, 2, 3]
    assert first["parsed"].text == "draft without markers"
    assert second["parsed"].text == "attempt 2"
    assert other["parsed"].text == "draft without markers"


def test_openai_server_script_exhausted_is_a_clear_500() -> None:
    with serve(ScriptedHandler([Answer({"text": "only one"})])) as server:
        assert structured(server, "json_mode")["parsed"] == Out(text="only one")
        with pytest.raises(openai.InternalServerError, match="exhausted"):
            structured(server, "json_mode", "second", max_retries=3)
        # x-should-retry: false -> the client does not retry a handler bug.
        assert len(server.requests) == 2
        (error,) = server.errors
    assert isinstance(error, ScriptExhaustedError)
    assert "request #2" in str(error)


@pytest.mark.parametrize(
    "reply",
    [{"text": "a dict, not an Answer"}, Sleep(0, then="late string")],  # type: ignore[arg-type]
    ids=["dict", "sleep-then-str"],
)
def test_openai_server_handler_returning_a_non_reply_is_a_clear_500(reply: Any) -> None:
    with serve(lambda r: reply) as server:
        with pytest.raises(openai.InternalServerError, match="not a Reply"):
            structured(server, "json_mode", max_retries=2)
        assert len(server.requests) == 1
        (error,) = server.errors
    assert isinstance(error, TypeError)


def test_openai_server_scripted_items_may_be_functions() -> None:
    handler = ScriptedHandler([lambda r: Answer({"text": r.last_user_text.upper()})])
    with serve(handler) as server:
        assert structured(server, "json_schema", "abc")["parsed"] == Out(text="ABC")


# ---------------------------------------------------------------------------------------------
# Concurrency and life cycle
# ---------------------------------------------------------------------------------------------


def test_openai_server_concurrent_requests_are_not_serialized() -> None:
    # no wall-clock bound (the machine may be loaded): count the requests in flight at once
    n, hold = 16, 0.5
    lock = threading.Lock()
    active = [0, 0]  # now, most at once

    def handler(request: ChatRequest) -> Reply:
        with lock:
            active[0] += 1
            active[1] = max(active[1], active[0])
        time.sleep(hold)
        with lock:
            active[0] -= 1
        return Answer({"text": request.last_user_text})

    async def run(server: LocalOpenAIServer) -> list[Any]:
        llm = chat(server).with_structured_output(Out, method="json_schema")
        return await asyncio.gather(*(llm.ainvoke(f"prompt {i}") for i in range(n)))

    with serve(handler) as server:
        results = asyncio.run(run(server))
        assert len(server.requests) == n
    assert [r.text for r in results] == [f"prompt {i}" for i in range(n)]
    assert active[1] >= 2, active


def test_openai_server_stop_is_clean_with_requests_in_flight() -> None:
    threads_before = set(threading.enumerate())
    server = LocalOpenAIServer(
        lambda r: Sleep(30, then=Answer({"text": "never"})), enforce_json_mention=False
    ).start()
    port = server.port
    errors: list[BaseException] = []

    def call() -> None:
        try:
            structured(server, "json_mode", timeout=60)
        except BaseException as e:
            errors.append(e)

    caller = threading.Thread(target=call)
    caller.start()
    deadline = time.monotonic() + 10
    while not server.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.requests, "the request never arrived"
    start = time.monotonic()
    server.stop()
    assert time.monotonic() - start < 2.0
    caller.join(5)
    assert not caller.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], openai.APIConnectionError)
    leftover = [t for t in set(threading.enumerate()) - threads_before if t.is_alive()]
    assert leftover == []
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    server.stop()  # idempotent


def test_openai_server_models_endpoint_and_unknown_path() -> None:
    with serve(lambda r: Answer("x"), models=["test", "other"]) as server:
        with urllib.request.urlopen(f"{server.base_url}/models", timeout=5) as resp:
            models = json.load(resp)
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"{server.base_url}/nope", timeout=5)
        info.value.close()
        assert info.value.code == 404
        bad = urllib.request.Request(
            f"{server.base_url}/chat/completions", data=b"{not json", method="POST"
        )
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(bad, timeout=5)
        info.value.close()
        assert info.value.code == 400
        assert server.requests == []
    assert [m["id"] for m in models["data"]] == ["test", "other"]


def test_openai_server_base_url_needs_start() -> None:
    server = LocalOpenAIServer(lambda r: Answer("x"))
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.base_url
    with server:
        assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
        assert server.port > 0


# ---------------------------------------------------------------------------------------------
# Replay
# ---------------------------------------------------------------------------------------------

REPLAY = [
    {
        "id": "a",
        "source": "東京の<e1>トヨタ</e1>",
        "target": "en",
        "text": "<e1>Toyota</e1> in Tokyo",
    },
    {
        "id": "b",
        "source": "東京の<e1>トヨタ</e1>が発表した。",
        "target": "en",
        "text": "<e1>Toyota</e1> of Tokyo announced.",
    },
    {
        "source": "東京の<e1>トヨタ</e1>が発表した。",
        "target": "zh",
        "text": "东京的<e1>丰田</e1>宣布了。",
    },
]


def prompt(source: str, target: str) -> list[tuple[str, str]]:
    return [
        ("system", f'Translate from source_lang="ja" to target_lang="{target}".'),
        ("user", f"Source:\n{source}\nAnswer with JSON."),
    ]


@pytest.fixture
def replay_file(tmp_path: Path) -> Path:
    path = tmp_path / "replay.jsonl"
    lines = [json.dumps(e, ensure_ascii=False) for e in REPLAY]
    path.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("source", "target", "expected"),
    [
        ("東京の<e1>トヨタ</e1>", "en", "<e1>Toyota</e1> in Tokyo"),
        ("東京の<e1>トヨタ</e1>が発表した。", "en", "<e1>Toyota</e1> of Tokyo announced."),
        ("東京の<e1>トヨタ</e1>が発表した。", "zh", "东京的<e1>丰田</e1>宣布了。"),
        ("東京の<e1>トヨタ</e1>", "zh", None),  # recorded for zh only with the longer source
        ("大阪の<e1>パナソニック</e1>", "en", None),
        ("東京の<e1>トヨタ</e1>", "de", None),
    ],
)
def test_openai_server_replay_matches_source_and_target(
    replay_file: Path, source: str, target: str, expected: str | None
) -> None:
    handler = ReplayHandler(replay_file)
    assert len(handler) == 3 and handler.targets == ["en", "zh"]
    with serve(handler) as server:
        if expected is None:
            with pytest.raises(openai.NotFoundError, match="no recorded answer for this prompt"):
                structured(server, "json_schema", prompt(source, target), max_retries=2)
            assert len(server.requests) == 1  # a 404 is not retried
        else:
            result = structured(server, "json_schema", prompt(source, target))
            assert result["parsed"] == Out(text=expected)


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("not json", "replay.jsonl:2: not JSON"),
        ('["a"]', "replay.jsonl:2: expected an object"),
        ('{"id": "x", "source": "s", "target": "en"}', "replay.jsonl:2: record 'x': field 'text'"),
        ('{"source": "", "target": "en", "text": "t"}', "field 'source'"),
    ],
)
def test_openai_server_replay_bad_file(tmp_path: Path, line: str, match: str) -> None:
    path = tmp_path / "replay.jsonl"
    good = json.dumps(REPLAY[0], ensure_ascii=False)
    path.write_text(f"{good}\n{line}\n", encoding="utf-8")
    with pytest.raises(RecordError, match=match):
        ReplayHandler(path)


def test_openai_server_cli_serves_replay(replay_file: Path) -> None:
    command = [sys.executable, "-m", "replay_server", "--replay", str(replay_file)]
    with subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            base_url = proc.stdout.readline().strip()
            assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
            messages = prompt(REPLAY[0]["source"], "en")
            body = {
                "model": "test",
                "messages": [{"role": role, "content": text} for role, text in messages],
                "response_format": {"type": "json_object"},
            }
            request = urllib.request.Request(
                f"{base_url}/chat/completions",
                data=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=5) as resp:
                completion = json.load(resp)
        finally:
            proc.send_signal(signal.SIGINT)
            _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0, stderr
    assert "3 entries" in stderr  # the INFO log of the load
    content = completion["choices"][0]["message"]["content"]
    assert json.loads(content) == {"text": REPLAY[0]["text"]}


def test_openai_server_cli_rejects_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--replay", str(tmp_path / "missing.jsonl")])
    assert info.value.code == 2


# ---------------------------------------------------------------------------------------------
# OpenAI's json_object rule; servers that ignore response_format
# ---------------------------------------------------------------------------------------------


def test_openai_server_json_mode_without_json_mention_is_openais_400() -> None:
    with LocalOpenAIServer(lambda r: Answer({"text": "never sent"})) as server:
        with pytest.raises(openai.BadRequestError) as info:
            structured(server, "json_mode", "translate this", max_retries=3)
        assert len(server.requests) == 1  # a 400 is not retried
    body = info.value.body
    assert isinstance(body, dict)
    assert body["message"] == (
        "'messages' must contain the word 'json' in some form, to use 'response_format' of "
        "type 'json_object'."
    )
    assert body["param"] == "messages" and body["type"] == "invalid_request_error"


@pytest.mark.parametrize("prompt", ["Answer in JSON.", "answer with a json object", "JsOn"])
def test_openai_server_json_mode_with_json_mention_is_answered(prompt: str) -> None:
    with LocalOpenAIServer(lambda r: Answer({"text": "ok"})) as server:
        result = structured(server, "json_mode", [("system", prompt), ("human", "hi")])
    assert result["parsed"] == Out(text="ok")


@pytest.mark.parametrize("method", ["json_schema", "function_calling", "text"])
def test_openai_server_json_mention_rule_only_for_json_object(method: str) -> None:
    with LocalOpenAIServer(lambda r: Answer({"text": "ok"})) as server:
        if method == "text":
            assert chat(server).invoke("hi").content == '{"text": "ok"}'
        else:
            assert structured(server, method, "hi")["parsed"] == Out(text="ok")


def test_openai_server_json_mention_rule_can_be_switched_off() -> None:
    with LocalOpenAIServer(lambda r: Answer({"text": "ok"}), enforce_json_mention=False) as s:
        assert structured(s, "json_mode", "translate this")["parsed"] == Out(text="ok")


FENCED = 'Sure! Here is the translation:\n```json\n{"text": "hi"}\n```\nAnything else?'


@pytest.mark.parametrize("method", ["json_schema", "json_mode"])
def test_openai_server_ignore_response_format_returns_free_text(method: str) -> None:
    seen: list[ChatRequest] = []

    def handler(request: ChatRequest) -> Reply:
        seen.append(request)
        return Answer(FENCED if request.response_format_ignored else {"text": "hi"})

    with LocalOpenAIServer(handler, ignore_response_format=True) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
        response_format: Any = (
            {"type": "json_object"}
            if method == "json_mode"
            else {
                "type": "json_schema",
                "json_schema": {"name": "Out", "schema": Out.model_json_schema()},
            }
        )
        completion = client.chat.completions.create(
            model="test",
            messages=[{"role": "user", "content": "translate this"}],  # no "json": not enforced
            response_format=response_format,
        )
    (request,) = seen
    assert request.response_format_ignored
    assert request.requested_method == method and request.method == "text"
    assert completion.choices[0].message.content == FENCED
    assert completion.choices[0].finish_reason == "stop"


def test_openai_server_ignore_response_format_keeps_tool_calls() -> None:
    seen: list[ChatRequest] = []

    def handler(request: ChatRequest) -> Reply:
        seen.append(request)
        return Answer({"text": "ok"})

    with LocalOpenAIServer(handler, ignore_response_format=True) as server:
        assert structured(server, "function_calling", "hi")["parsed"] == Out(text="ok")
    assert seen[0].method == "function_calling" and not seen[0].response_format_ignored


def test_openai_server_default_request_flags() -> None:
    seen: list[ChatRequest] = []

    def handler(request: ChatRequest) -> Reply:
        seen.append(request)
        return Answer({"text": "ok"})

    with LocalOpenAIServer(handler) as server:
        structured(server, "json_schema", "hi")
    assert seen[0].requested_method == "json_schema" and not seen[0].response_format_ignored


def test_openai_server_replay_finds_answers_by_prompt_structure(replay_file: Path) -> None:
    # any wording around the <source ...> element; the retry's feedback comes after it
    from replay_server import ReplayHandler as Handler

    handler = Handler(replay_file)
    entry = next(iter(handler.book))
    element = f'<source source_lang="ja" target_lang="{entry.target}">{entry.source}</source>'
    request = ChatRequest(
        model="m",
        method="json_schema",
        messages=[
            {"role": "system", "content": "Whatever the system prompt says."},
            {"role": "user", "content": f"Bitte übersetzen:\n{element}"},
            {"role": "user", "content": "<source>not this</source> try again"},
        ],
    )
    assert handler.find(request) == entry
    other = "de" if entry.target != "de" else "fr"
    request.messages[1]["content"] = element.replace(f'"{entry.target}"', f'"{other}"')
    assert handler.find(request) is None
