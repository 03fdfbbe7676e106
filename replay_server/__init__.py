"""The OpenAI-compatible server that serves recorded answers (the offline demo, users checking
their set-up, tests and the bench). Beside the layers: only tests, the bench and the CLI's
``--replay`` path import it."""

from replay_server.server import (
    Answer,
    CallCounter,
    ChatRequest,
    Drop,
    Garbage,
    HTTPError,
    LocalOpenAIServer,
    ReplayEntry,
    ReplayHandler,
    Reply,
    ScriptedHandler,
    ScriptExhaustedError,
    Sleep,
    approx_tokens,
    completion_body,
    error_body,
)

__all__ = [
    "Answer",
    "CallCounter",
    "ChatRequest",
    "Drop",
    "Garbage",
    "HTTPError",
    "LocalOpenAIServer",
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
