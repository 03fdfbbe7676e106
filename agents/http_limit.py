"""At most N HTTP requests in flight: the run's `--concurrency`, enforced where it matters.

The runner keeps more pairs in progress than `--concurrency` so that a pair's own CPU work
(building the request, parsing and validating the answer, tokenizing, aligning, verifying,
checkpointing) happens while the endpoint's N slots stay busy with other pairs' requests. The
bound is on what the endpoint sees: the transport below holds a slot only from sending a
request to reading the whole answer. A retry (after the client's backoff) takes a slot again.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

import httpx2


class BoundedTransport(httpx2.AsyncBaseTransport):
    """An async transport that lets at most `limit` requests through at once (per event loop:
    a chat model can serve several runs, each `asyncio.run` with its own loop)."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"the request limit must be at least 1, got {limit}")
        self.inner = inner
        self.limit = limit
        self.in_flight = 0
        self.peak = 0  # the most requests in flight at once (tests and benches read it)
        self.sent = 0  # requests wholly sent, counted until the first (see `first_sent`)
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    def _slot(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        slot = self._slots.get(loop)
        if slot is None:
            slot = self._slots[loop] = asyncio.Semaphore(self.limit)
        return slot

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if not self.sent:  # until one is on the wire: note when a request body is sent
            request.extensions = {**request.extensions, "trace": self._tracer(request)}
        async with self._slot():
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            try:
                response = await self.inner.handle_async_request(request)
                try:  # the whole answer is read inside the slot: the server is done with it
                    body = b"".join([chunk async for chunk in response.aiter_raw()])
                finally:
                    await response.aclose()
            finally:
                self.in_flight -= 1
        return httpx2.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=httpx2.ByteStream(body),
            extensions=response.extensions,
        )

    def _tracer(self, request: httpx2.Request) -> Any:
        outer = request.extensions.get("trace")

        async def trace(name: str, info: dict[str, Any]) -> None:
            if name.endswith("send_request_body.complete"):
                self.sent += 1
            if outer is not None:
                await outer(name, info)

        return trace

    async def first_sent(self, until: asyncio.Future[Any], timeout: float = 5.0) -> None:
        """Return once a request has been wholly sent (or `until` is done, or `timeout`
        seconds have passed): a caller can then do blocking work while the answer comes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.sent and not until.done() and loop.time() < deadline:
            await asyncio.sleep(0.001)

    async def aclose(self) -> None:
        await self.inner.aclose()


def bounded_transport(llm: Any) -> BoundedTransport | None:
    """The `BoundedTransport` of a chat model built by `build_chat_model(max_in_flight=)`."""
    client = getattr(llm, "http_async_client", None)
    transport = getattr(client, "_transport", None)
    return transport if isinstance(transport, BoundedTransport) else None


def bounded_http_client(limit: int, **kwargs: Any) -> httpx2.AsyncClient:
    """openai's default async HTTP client (its timeouts, connection limits, redirects), with
    at most `limit` requests in flight."""
    import openai

    # openai's own connection limits (openai._constants.DEFAULT_CONNECTION_LIMITS)
    inner = httpx2.AsyncHTTPTransport(
        limits=httpx2.Limits(max_connections=1000, max_keepalive_connections=100)
    )
    return openai.DefaultAsyncHttpxClient(transport=BoundedTransport(inner, limit), **kwargs)
