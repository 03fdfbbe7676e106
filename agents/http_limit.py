"""At most N HTTP requests in flight: the run's `--concurrency`, enforced where it matters.

The runner keeps more pairs in progress than `--concurrency` so that a pair's own CPU work
(building the request, parsing and validating the answer, tokenizing, aligning, verifying,
checkpointing) happens while the endpoint's N slots stay busy with other pairs' requests. The
bound is on what the endpoint sees: the transport below holds a slot only from sending a
request to reading the whole answer. A retry (after the client's backoff) takes a slot again.
Answers are read whole before they are handed back: a client that streams gets its tokens
at the end.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2


class RequestLimit:
    """At most `limit` requests at once, per event loop (a chat model can serve several runs,
    each `asyncio.run` with its own loop), shared by every transport of one client."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"the request limit must be at least 1, got {limit}")
        self.limit = limit
        self.in_flight = 0
        self.peak = 0  # the most requests in flight at once (tests and benches read it)
        self.sent = 0  # requests wholly sent, counted until the first (see `first_sent`)
        self._slots: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}

    def slot(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        slot = self._slots.get(loop)
        if slot is None:
            for old in [x for x in self._slots if x.is_closed()]:  # runs that have ended
                del self._slots[old]
            slot = self._slots[loop] = asyncio.Semaphore(self.limit)
        return slot

    async def first_sent(self, until: asyncio.Future[Any], timeout: float = 5.0) -> None:
        """Return once a request has been wholly sent (or `until` is done, or `timeout`
        seconds have passed): a caller can then do blocking work while the answer comes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.sent and not until.done() and loop.time() < deadline:
            await asyncio.sleep(0.001)


class BoundedTransport(httpx2.AsyncBaseTransport):
    """An async transport that sends through `inner` within `limit`'s slots."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, limit: RequestLimit) -> None:
        self.inner = inner
        self.limit = limit

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        limit = self.limit
        if not limit.sent:  # until one is on the wire: note when a request body is sent
            request.extensions = {**request.extensions, "trace": _tracer(limit, request)}
        async with limit.slot():
            limit.in_flight += 1
            limit.peak = max(limit.peak, limit.in_flight)
            try:
                response = await self.inner.handle_async_request(request)
                try:  # the whole answer is read inside the slot: the server is done with it
                    body = b"".join([chunk async for chunk in response.aiter_raw()])
                finally:
                    await response.aclose()
            finally:
                limit.in_flight -= 1
        return httpx2.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=httpx2.ByteStream(body),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


def _tracer(limit: RequestLimit, request: httpx2.Request) -> Any:
    outer = request.extensions.get("trace")

    async def trace(name: str, info: dict[str, Any]) -> None:
        if name.endswith("send_request_body.complete"):
            limit.sent += 1
        if outer is not None:
            await outer(name, info)

    return trace


def bounded_http_client(limit: int, **kwargs: Any) -> httpx2.AsyncClient:
    """openai's default async HTTP client (its timeouts, connection limits, redirects, and the
    proxies, certificates and HTTP/2 settings it takes from `kwargs` and the environment),
    with at most `limit` requests in flight through any of its transports."""
    import openai

    shared = RequestLimit(limit)
    client = openai.DefaultAsyncHttpxClient(**kwargs)
    # the client's own transports (the default one, one per proxy mount) are wrapped rather
    # than replaced: a transport given to the constructor would drop the proxies from the
    # environment and the TLS options
    client._transport = BoundedTransport(client._transport, shared)
    client._mounts = {
        pattern: None if transport is None else BoundedTransport(transport, shared)
        for pattern, transport in client._mounts.items()
    }
    client.request_limit = shared  # type: ignore[attr-defined]
    return client


def request_limit(llm: Any) -> RequestLimit | None:
    """The `RequestLimit` of a chat model built by `build_chat_model(max_in_flight=)`."""
    found = getattr(getattr(llm, "http_async_client", None), "request_limit", None)
    return found if isinstance(found, RequestLimit) else None
