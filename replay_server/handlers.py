"""Handlers: what the local server answers. A handler is any callable from a
:class:`~replay_server.protocol.ChatRequest` to a :data:`~replay_server.protocol.Reply`.

- :class:`ScriptedHandler`: replies in order (an item may be a function), then a fallback;
- :class:`ReplayHandler`: recorded translations from a replay file (the offline demo); a
  subclass may override :meth:`ReplayHandler.answer` to plant faults on chosen entries.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from replay_server.protocol import Answer, ChatRequest, HTTPError, Reply, error_body
from replay_server.replay import ReplayBook, ReplayEntry, requested_targets

logger = logging.getLogger(__name__)

__all__ = ["CallCounter", "ReplayHandler", "ScriptExhaustedError", "ScriptedHandler"]


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


class ReplayHandler:
    """Answers translator prompts from a replay file (format and matching:
    :mod:`replay_server.replay`). No match: HTTP 404 ``no_recorded_answer`` whose message
    names the file, the targets asked and recorded, and the start of the prompt."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.book = ReplayBook.load(self.path)

    def __len__(self) -> int:
        return len(self.book)

    @property
    def targets(self) -> list[str]:
        return self.book.targets

    def find(self, request: ChatRequest) -> ReplayEntry | None:
        """The recorded entry that answers ``request``, or ``None``."""
        return self.book.find(request)

    def answer(self, entry: ReplayEntry, request: ChatRequest) -> Reply:
        """The reply for a request that matched ``entry`` (override to plant faults)."""
        return Answer({"text": entry.text})

    def __call__(self, request: ChatRequest) -> Reply:
        entry = self.find(request)
        if entry is None:
            message = (
                f"no recorded answer for this prompt in {self.path} "
                f"(target_lang in request: {requested_targets(request) or 'none'}; "
                f"recorded targets: {self.targets}; "
                f"last user message starts {request.last_user_text[:80]!r})"
            )
            logger.warning("replay: %s", message)
            return HTTPError(404, error_body(404, message, code="no_recorded_answer"))
        return self.answer(entry, request)
