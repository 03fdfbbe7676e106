"""The endpoint probe: one short request at start-up tells whether the endpoint enforces the
answer's schema for a structured-output method, and `--method auto` picks a method from it.

A server that enforces the schema answers a JSON object (json_schema: `{"text": ...}`;
function_calling: a tool call) whatever the words ask; one that accepts `response_format`
and ignores it (vLLM, llama.cpp, Ollama are known to) answers the words: plain `OK`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from agents.llm import Method
from agents.prompts import PROBE_SYSTEM, PROBE_USER

if TYPE_CHECKING:
    from agents.cache import ResponseCache

log = logging.getLogger(__name__)

PROBE_MESSAGES: Sequence[tuple[str, str]] = (("system", PROBE_SYSTEM), ("human", PROBE_USER))
PROBE_MAX_TOKENS = 32


@dataclass(frozen=True)
class EndpointInfo:
    """What the probe found. `schema_enforced` is None when the probe got no answer."""

    method: Method
    schema_enforced: bool | None
    model: str
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def enforced(out: Any, method: Method) -> bool:
    """Whether the probe's answer is the schema's shape rather than the words asked for."""
    if isinstance(out, dict):  # function_calling: {raw, parsed, parsing_error}
        calls = getattr(out.get("raw"), "tool_calls", None) or []
        return any(isinstance((c.get("args") or {}).get("text"), str) for c in calls)
    content = getattr(out, "content", out)
    try:
        value = json.loads(content) if isinstance(content, str) else None
    except ValueError:
        return False
    if method == "json_mode":  # json_object enforces JSON, never a schema
        return False
    return isinstance(value, dict) and isinstance(value.get("text"), str)


async def probe(
    llm: Any, method: Method, *, model: str, cache: ResponseCache | None = None
) -> EndpointInfo:
    """One short request with `method`; the result is cached (a rerun probes nothing)."""
    from agents.cache import cache_key
    from agents.translator import structured_runnable

    key = cache_key(model, f"probe:{method}", PROBE_MESSAGES, temperature=None)
    if cache is not None and (hit := cache.get(key)) is not None:
        return EndpointInfo(
            method=method,
            schema_enforced=hit.get("schema_enforced"),
            model=model,
            detail=str(hit.get("detail", "")) + " (cached)",
        )
    import openai

    runnable = structured_runnable(llm.bind(max_tokens=PROBE_MAX_TOKENS), method)
    try:
        out = await runnable.ainvoke(list(PROBE_MESSAGES))
    except (openai.APIError, ValueError) as exc:
        detail = f"probe failed: {type(exc).__name__}: {str(exc)[:200]}"
        # a 4xx is the endpoint's settled answer (kept, so a rerun asks nothing); a dropped
        # connection or a 5xx may pass, so the next run probes again
        if cache is not None and isinstance(exc, openai.APIStatusError) and exc.status_code < 500:
            cache.put(key, {"schema_enforced": None, "detail": detail})
        return EndpointInfo(method=method, schema_enforced=None, model=model, detail=detail)
    ok = enforced(out, method)
    raw = out.get("raw") if isinstance(out, dict) else out
    shown = str(getattr(raw, "content", "") or getattr(raw, "tool_calls", ""))[:80]
    detail = f"probe answer: {shown!r}"
    if cache is not None:
        cache.put(key, {"schema_enforced": ok, "detail": detail})
    return EndpointInfo(method=method, schema_enforced=ok, model=model, detail=detail)


async def choose_method(
    llm: Any, requested: str, *, model: str, cache: ResponseCache | None = None
) -> EndpointInfo:
    """Probe `requested` (or, for "auto", json_schema) and pick the method to run with.

    auto: json_schema when the endpoint enforces it or the probe got no answer (nothing
    better is known); json_mode, whose prompt shows the answer's shape, when it is ignored.
    """
    method: Method = "json_schema" if requested == "auto" else requested  # type: ignore[assignment]
    info = await probe(llm, method, model=model, cache=cache)
    if info.schema_enforced is None:
        log.warning("endpoint probe got no answer (%s); assuming %s works", info.detail, method)
        return info
    if method == "json_mode":
        log.info("json_mode: the prompt shows the answer's shape; answers read tolerantly")
        return info
    if not info.schema_enforced:
        if requested == "auto" and method != "json_mode":
            log.warning(
                "the endpoint does not enforce the %s schema (%s): using json_mode with the "
                "answer's shape in the prompt and the tolerant parser",
                method,
                info.detail,
            )
            return EndpointInfo("json_mode", False, model, info.detail + f"; {method} ignored")
        log.warning(
            "the endpoint does not enforce the answer's schema for %s (%s): the prompt shows "
            "the shape and answers are read with the tolerant parser",
            method,
            info.detail,
        )
    return info
