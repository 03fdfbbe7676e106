"""Build the chat model from settings. Environment variables are read by the entry point only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from langchain_openai import ChatOpenAI

Method = Literal["json_schema", "function_calling", "json_mode"]
METHODS: tuple[Method, ...] = ("json_schema", "function_calling", "json_mode")


class EndpointNotConfigured(RuntimeError):
    """No LLM endpoint: the message says how to configure one."""


HOW_TO_CONFIGURE = """\
no LLM endpoint is configured. Do one of:
  - OpenAI:   export OPENAI_API_KEY=sk-...            (and optionally --model gpt-4o-mini)
  - a local OpenAI-compatible server (vLLM, llama.cpp server, Ollama):
              --base-url http://127.0.0.1:8000/v1 --model NAME   (or export OPENAI_BASE_URL=...)
  - the offline demo with recorded answers:
              --replay examples/replay.jsonl"""


@dataclass(frozen=True)
class LLMSettings:
    """Where and how to call the chat model. `api_key` is never logged or shown in repr."""

    model: str = "gpt-4o-mini"
    base_url: str | None = None
    api_key: str | None = None
    method: Method = "json_schema"
    temperature: float = 0.0
    timeout: float = 60.0
    max_retries: int = 6  # transport retries with backoff (429 honours Retry-After, 5xx, drops)

    def __repr__(self) -> str:
        key = "set" if self.api_key else "unset"
        return (
            f"LLMSettings(model={self.model!r}, base_url={self.base_url!r}, api_key=<{key}>, "
            f"method={self.method!r}, timeout={self.timeout}, max_retries={self.max_retries})"
        )

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str],
        *,
        model: str | None = None,
        base_url: str | None = None,
        **overrides: object,
    ) -> LLMSettings:
        """Settings from CLI values, falling back to OPENAI_BASE_URL / OPENAI_API_KEY."""
        url = base_url or environ.get("OPENAI_BASE_URL") or None
        key = environ.get("OPENAI_API_KEY") or None
        if url is None and key is None:
            raise EndpointNotConfigured(HOW_TO_CONFIGURE)
        if key is None:  # local servers accept any key; the client insists on one
            key = "sk-local"
        kwargs: dict[str, object] = {"base_url": url, "api_key": key}
        if model:
            kwargs["model"] = model
        kwargs.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**kwargs)  # type: ignore[arg-type]


def build_chat_model(settings: LLMSettings, *, max_in_flight: int | None = None) -> ChatOpenAI:
    """A langchain-openai ChatOpenAI for `settings` (real HTTP, retries with backoff).

    `max_in_flight`: at most that many HTTP requests at once, however many callers wait
    (`agents.http_limit`); None: no bound of its own (the caller bounds its calls).
    """
    import openai
    from langchain_openai import ChatOpenAI
    from pydantic import SecretStr

    if max_in_flight is None:
        http = openai.DefaultAsyncHttpxClient(timeout=settings.timeout)
    else:
        from agents.http_limit import bounded_http_client

        http = bounded_http_client(max_in_flight, timeout=settings.timeout)

    return ChatOpenAI(
        model=settings.model,
        base_url=settings.base_url,
        api_key=SecretStr(settings.api_key) if settings.api_key else None,
        temperature=settings.temperature,
        timeout=settings.timeout,
        max_retries=settings.max_retries,
        # a client of its own: langchain's default one is cached per process and bound to
        # the first event loop, so a second run in the same process would fail
        http_async_client=http,
    )
