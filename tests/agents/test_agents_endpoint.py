"""The endpoint probe over real HTTP: enforced, ignored, refused; cached for a rerun."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agents.cache import ResponseCache
from agents.endpoint import choose_method
from agents.llm import LLMSettings, build_chat_model
from replay_server.server import Answer, ChatRequest, HTTPError, LocalOpenAIServer, Reply


def enforcing(request: ChatRequest) -> Reply:
    return Answer({"text": "OK"})  # a schema-constrained model can only answer the shape


def free_text(request: ChatRequest) -> Reply:
    return Answer("OK")


def refuses_json_schema(request: ChatRequest) -> Reply:
    if request.method == "json_schema":
        return HTTPError(400, "response_format json_schema is not supported")
    return Answer({"answer": "OK"})


@pytest.mark.parametrize(
    ("handler", "ignore", "requested", "method", "enforced", "n_requests"),
    [
        (enforcing, False, "auto", "json_schema", True, 1),
        (free_text, True, "auto", "json_mode", False, 1),
        (free_text, True, "json_schema", "json_schema", False, 1),
        (refuses_json_schema, False, "auto", "json_mode", False, 2),
    ],
    ids=["enforced", "ignored-auto", "ignored-explicit", "refused-auto"],
)
def test_endpoint_probe_picks_the_method(
    tmp_path: Path,
    handler,
    ignore: bool,
    requested: str,
    method: str,
    enforced: bool,
    n_requests: int,
) -> None:
    cache = ResponseCache(tmp_path / "cache.sqlite")
    with LocalOpenAIServer(handler, ignore_response_format=ignore) as server:
        llm = build_chat_model(LLMSettings(base_url=server.base_url, api_key="sk", max_retries=0))

        async def twice() -> tuple:
            first = await choose_method(llm, requested, model="m", cache=cache)
            return first, await choose_method(llm, requested, model="m", cache=cache)

        info, again = asyncio.run(twice())
        assert len(server.requests) == n_requests  # the rerun is answered from the cache
        assert all("json" in r.all_text.lower() for r in server.requests)
    assert (info.method, info.schema_enforced) == (method, enforced)
    assert (again.method, again.schema_enforced) == (method, enforced)
    assert set(info.as_dict()) == {"method", "schema_enforced", "model", "detail"}
