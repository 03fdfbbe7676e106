"""The OpenAI-compatible server that serves recorded answers (the offline demo, users checking
their set-up, tests and the bench). Beside the layers: only tests, the bench and the CLI's
``--replay`` path import it.

- :mod:`replay_server.protocol`: request and reply shapes, response and error bodies;
- :mod:`replay_server.handlers`: what to answer (scripted replies, recorded translations);
- :mod:`replay_server.replay`: the recorded-answer file and how a request finds its entry;
- :mod:`replay_server.batches`: the files and batches endpoints (the Batch API, in memory);
- :mod:`replay_server.server`: the HTTP server (:class:`LocalOpenAIServer`);
- :mod:`replay_server.cli`: ``python -m replay_server --replay FILE``.
"""

from replay_server.batches import BatchAPI, BatchSettings
from replay_server.handlers import CallCounter, ReplayHandler, ScriptedHandler, ScriptExhaustedError
from replay_server.protocol import (
    Answer,
    ChatRequest,
    Drop,
    Garbage,
    HTTPError,
    Reply,
    Sleep,
    approx_tokens,
    completion_body,
    error_body,
)
from replay_server.replay import ReplayBook, ReplayEntry
from replay_server.server import LocalOpenAIServer

__all__ = [
    "Answer",
    "BatchAPI",
    "BatchSettings",
    "CallCounter",
    "ChatRequest",
    "Drop",
    "Garbage",
    "HTTPError",
    "LocalOpenAIServer",
    "ReplayBook",
    "ReplayEntry",
    "ReplayHandler",
    "Reply",
    "ScriptExhaustedError",
    "ScriptedHandler",
    "Sleep",
    "approx_tokens",
    "completion_body",
    "error_body",
]
