"""--concurrency bounds the HTTP requests the endpoint sees, not the callers that wait."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx2
import pytest

from agents.http_limit import BoundedTransport, RequestLimit, bounded_http_client
from agents.llm import LLMSettings, build_chat_model
from replay_server.protocol import Answer, ChatRequest
from replay_server.server import LocalOpenAIServer


class CountingHandler:
    """Answers after `hold` seconds, counting the requests it holds at once (one server
    thread per connection: what it holds is what the client has in flight)."""

    def __init__(self, hold: float) -> None:
        self.hold = hold
        self.now = 0
        self.peak = 0
        self.lock = threading.Lock()

    def __call__(self, request: ChatRequest) -> Answer:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        time.sleep(self.hold)
        with self.lock:
            self.now -= 1
        return Answer({"text": "ok"})


def test_http_limit_the_server_never_sees_more_than_the_limit() -> None:
    handler = CountingHandler(hold=0.05)
    with LocalOpenAIServer(handler) as server:
        settings = LLMSettings(model="test", base_url=server.base_url, api_key="sk-test")
        llm = build_chat_model(settings, max_in_flight=3)

        async def main() -> list[str]:
            answers = await asyncio.gather(*(llm.ainvoke(f"say ok {i}") for i in range(24)))
            return [str(a.content) for a in answers]

        answers = asyncio.run(main())
    assert answers == ['{"text": "ok"}'] * 24  # every caller got its whole answer
    assert handler.peak == 3  # 24 callers at once, 3 requests at a time


def test_http_limit_without_a_limit_the_callers_reach_the_server_at_once() -> None:
    # the same load without max_in_flight: shows the test above can fail
    handler = CountingHandler(hold=0.2)
    with LocalOpenAIServer(handler) as server:
        settings = LLMSettings(model="test", base_url=server.base_url, api_key="sk-test")
        llm = build_chat_model(settings)

        async def main() -> None:
            await asyncio.gather(*(llm.ainvoke(f"say ok {i}") for i in range(12)))

        asyncio.run(main())
    assert handler.peak > 3


class SlowInner(httpx2.AsyncBaseTransport):
    """A transport that answers after a pause, in two chunks, counting what it holds."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self.now += 1
        self.peak = max(self.peak, self.now)
        await asyncio.sleep(0.01)

        async def body() -> object:
            yield b'{"a": '
            await asyncio.sleep(0.01)  # the slot is held until the body is read
            yield b"1}"
            self.now -= 1

        return httpx2.Response(200, content=body())


def test_http_limit_a_slot_is_held_until_the_whole_body_is_read_and_serves_any_loop() -> None:
    inner = SlowInner()
    limit = RequestLimit(2)
    client = httpx2.AsyncClient(transport=BoundedTransport(inner, limit))

    async def main() -> list[object]:
        got = await asyncio.gather(*(client.get(f"http://x/{i}") for i in range(10)))
        return [r.json() for r in got]

    for _ in range(2):  # a second event loop gets slots of its own (a second run)
        assert asyncio.run(main()) == [{"a": 1}] * 10
    assert inner.peak == 2 and limit.peak == 2 and limit.in_flight == 0
    assert len([loop for loop in limit._slots if loop.is_closed()]) <= 1  # ended runs let go


def test_http_limit_rejects_a_limit_below_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        bounded_http_client(0)


def test_http_limit_first_sent_returns_while_the_answer_is_still_coming() -> None:
    from agents.http_limit import request_limit

    handler = CountingHandler(hold=0.5)
    with LocalOpenAIServer(handler) as server:
        settings = LLMSettings(model="test", base_url=server.base_url, api_key="sk-test")
        llm = build_chat_model(settings, max_in_flight=2)
        transport = request_limit(llm)
        assert transport is not None
        assert request_limit(build_chat_model(settings)) is None

        async def main() -> tuple[int, bool, float, str]:
            call = asyncio.ensure_future(llm.ainvoke("say ok"))
            t0 = time.monotonic()
            await transport.first_sent(call)
            waited = time.monotonic() - t0
            pending = not call.done()
            answer = await call
            return transport.sent, pending, waited, str(answer.content)

        sent, pending, waited, answer = asyncio.run(main())
    assert sent == 1 and pending and waited < 0.45 and answer == '{"text": "ok"}'


def test_http_limit_keeps_the_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # a transport given to the client's constructor would drop HTTPS_PROXY: the bounded
    # client wraps the transports the client chose, proxy mounts included
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    client = bounded_http_client(4)
    mounted = [t for t in client._mounts.values() if t is not None]
    assert mounted and all(isinstance(t, BoundedTransport) for t in mounted)
    assert isinstance(client._transport, BoundedTransport)
    assert {id(t.limit) for t in [*mounted, client._transport]} == {id(client.request_limit)}
