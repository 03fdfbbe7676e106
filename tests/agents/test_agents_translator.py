"""The translator agent over real HTTP: structured-output methods, faults, cache, labels."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from agents.cache import ResponseCache
from agents.findings import Code, Severity
from agents.llm import LLMSettings, build_chat_model
from agents.translator import Translator
from mre import Record
from replay_server.server import Answer, Drop, HTTPError, LocalOpenAIServer, ScriptedHandler, Sleep
from word_tokenizers import get_language

JA, EN = get_language("ja"), get_language("en")
RECORD = Record(
    id="r1",
    lang="ja",
    task="SCNM",
    text="トヨタは愛知県の会社である。",
    label="技術",
    spans=[
        {"start": 0, "end": 3, "text": "トヨタ", "label": "法人名"},
        {"start": 4, "end": 7, "text": "愛知県", "label": "地名"},
    ],
)
GOOD = {"text": "<e1>Toyota</e1> is a company in <e2>Aichi Prefecture</e2>."}


def translator(
    server: LocalOpenAIServer,
    *,
    method: str = "json_schema",
    retries: int = 2,
    timeout: float = 10.0,
    cache: ResponseCache | None = None,
) -> Translator:
    settings = LLMSettings(
        model="test",
        base_url=server.base_url,
        api_key="sk-test",
        method=method,
        timeout=timeout,
        max_retries=retries,
    )  # type: ignore[arg-type]
    return Translator(
        build_chat_model(settings), model_name="test", method=settings.method, cache=cache
    )


@pytest.mark.parametrize("method", ["json_schema", "function_calling", "json_mode"])
def test_translator_structured_methods(method: str) -> None:
    # enforce_json_mention=False until the json_mode prompt says JSON (agents engineer)
    with LocalOpenAIServer(ScriptedHandler([Answer(GOOD)]), enforce_json_mention=False) as server:
        draft = asyncio.run(translator(server, method=method)(RECORD, JA, EN))
        [request] = server.requests
    assert draft.answer == GOOD["text"]
    assert draft.findings == []
    assert request.method == method
    assert draft.labels.text_label == "Technology"
    assert draft.labels.span_labels == ["Corporation", "Location"]
    assert draft.usage.calls == 1 and draft.usage.prompt_tokens > 0
    prompt = request.all_text
    assert "<e1>トヨタ</e1>は<e2>愛知県</e2>の会社である。" in prompt
    assert 'target_lang="en"' in prompt and "Japanese" in prompt and "English" in prompt


@pytest.mark.parametrize("method", ["json_schema", "function_calling", "json_mode"])
def test_translator_malformed_answer_is_a_finding(method: str) -> None:
    # enforce_json_mention=False until the json_mode prompt says JSON (agents engineer)
    handler = ScriptedHandler([Answer("{not json at all")])
    with LocalOpenAIServer(handler, enforce_json_mention=False) as server:
        draft = asyncio.run(translator(server, method=method)(RECORD, JA, EN))
    assert draft.answer is None
    [finding] = draft.findings
    assert finding.code == Code.ANSWER_MALFORMED and finding.severity == Severity.ERROR


@pytest.mark.parametrize(
    "fault",
    [HTTPError(429, retry_after=0.5), HTTPError(500), HTTPError(503), Drop()],
    ids=["429", "500", "503", "drop"],
)
def test_translator_transient_faults_are_retried(fault: object) -> None:
    with LocalOpenAIServer(ScriptedHandler([fault, Answer(GOOD)])) as server:  # type: ignore[list-item]
        t0 = time.monotonic()
        draft = asyncio.run(translator(server)(RECORD, JA, EN))
        elapsed = time.monotonic() - t0
        assert len(server.requests) == 2
    assert draft.answer == GOOD["text"] and draft.findings == []
    if isinstance(fault, HTTPError) and fault.retry_after:
        assert elapsed >= fault.retry_after  # Retry-After is honoured


def test_translator_gives_up_after_the_retry_cap() -> None:
    with LocalOpenAIServer(ScriptedHandler([], fallback=lambda r: HTTPError(500))) as server:
        draft = asyncio.run(translator(server, retries=2)(RECORD, JA, EN))
        assert len(server.requests) == 3  # first try + 2 retries
    [finding] = draft.findings
    assert finding.code == Code.LLM_ERROR and finding.severity == Severity.FATAL
    assert "500" in finding.message


def test_translator_timeout_is_an_llm_error() -> None:
    with LocalOpenAIServer(ScriptedHandler([Sleep(3.0, Answer(GOOD))])) as server:
        draft = asyncio.run(translator(server, retries=0, timeout=0.5)(RECORD, JA, EN))
    [finding] = draft.findings
    assert finding.code == Code.LLM_ERROR and "Timeout" in finding.message


def test_translator_unmapped_label_costs_no_call() -> None:
    odd = RECORD.model_copy(update={"label": "謎"})
    with LocalOpenAIServer(ScriptedHandler([])) as server:
        draft = asyncio.run(translator(server)(odd, JA, EN))
        assert server.requests == []
    [finding] = draft.findings
    assert finding.code == Code.LABEL_UNMAPPED and finding.severity == Severity.FATAL


def test_translator_feedback_and_cache(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "cache.sqlite")
    with LocalOpenAIServer(ScriptedHandler([Answer(GOOD)])) as server:
        t = translator(server, cache=cache)
        first = asyncio.run(t(RECORD, JA, EN))
        again = asyncio.run(t(RECORD, JA, EN))  # same messages: from the cache, no request
        assert len(server.requests) == 1
    assert again.answer == first.answer and again.usage.cache_hits == 1 and again.usage.calls == 0
    from agents.findings import Finding

    feedback = [Finding.error(Code.RESIDUE, "the English translation still contains 'ヨシダ'")]
    msgs = t.messages(RECORD, JA, EN, previous="<e1>ヨシダ</e1>", feedback=feedback)
    assert msgs[-1][0] == "human"
    assert "<previous><e1>ヨシダ</e1></previous>" in msgs[-1][1]
    assert "still contains 'ヨシダ'" in msgs[-1][1]
    assert json.dumps(msgs, ensure_ascii=False).count("<source ") == 1


# ---- issue 11: loose answers, retries that never repeat, the cache key ---------------------

FENCED = "Sure! Here it is:\n```json\n" + json.dumps(GOOD) + "\n```"


@pytest.mark.parametrize(
    ("method", "reply", "note"),
    [
        ("json_schema", FENCED, "fence"),
        ("json_mode", FENCED, "fence"),
        (
            "json_schema",
            "The translation: " + json.dumps({**GOOD, "lang": "en"}) + " Enjoy.",
            "prose",
        ),
        ("function_calling", "Sure: " + json.dumps(GOOD), "prose"),  # arguments that are not JSON
        ("json_mode", {**GOOD, "confidence": 0.9}, "extra keys"),
    ],
)
def test_translator_reads_loose_answers_tolerantly(method: str, reply: object, note: str) -> None:
    with LocalOpenAIServer(ScriptedHandler([Answer(reply)])) as server:  # type: ignore[arg-type]
        draft = asyncio.run(translator(server, method=method)(RECORD, JA, EN))
    assert draft.answer == GOOD["text"]
    [finding] = draft.findings
    assert finding.code == Code.ANSWER_NORMALIZED and finding.severity == Severity.INFO
    assert note in finding.message


def test_translator_unparsable_answer_is_not_cached(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "cache.sqlite")
    with LocalOpenAIServer(ScriptedHandler([Answer("no idea"), Answer(GOOD)])) as server:
        t = translator(server, cache=cache)

        async def twice() -> tuple:
            return await t(RECORD, JA, EN), await t(RECORD, JA, EN)

        bad, good = asyncio.run(twice())
        assert len(server.requests) == 2  # the bad answer was asked again, not replayed
    assert bad.answer is None and bad.findings[0].code == Code.ANSWER_MALFORMED
    assert good.answer == GOOD["text"] and len(cache) == 1


def test_translator_cache_key_covers_model_method_schema_temperature() -> None:
    from agents.cache import cache_key

    msgs = [("system", "s"), ("human", "h")]
    base = cache_key("m", "json_schema", msgs, schema={"a": 1}, temperature=0.0)
    variants = [
        cache_key("m2", "json_schema", msgs, schema={"a": 1}, temperature=0.0),
        cache_key("m", "json_mode", msgs, schema={"a": 1}, temperature=0.0),
        cache_key("m", "json_schema", msgs, schema={"a": 2}, temperature=0.0),
        cache_key("m", "json_schema", msgs, schema={"a": 1}, temperature=0.7),
        cache_key("m", "json_schema", [*msgs, ("human", "x")], schema={"a": 1}, temperature=0.0),
    ]
    assert len({base, *variants}) == 6
    assert base == cache_key("m", "json_schema", list(msgs), schema={"a": 1}, temperature=0.0)


def test_translator_retries_never_send_the_same_messages() -> None:
    """The same wrong answer every time: attempt 3 rewords the feedback, attempt 4 would
    repeat a request and stops with no_new_feedback, without a call."""
    from agents.findings import Finding

    bad = {"text": "<e1>Toyota</e1> is a company in Aichi Prefecture."}
    feedback = [Finding.error(Code.MARKER_MISSING, "marker <e2> is missing")]
    with LocalOpenAIServer(ScriptedHandler([], fallback=lambda r: Answer(bad))) as server:
        t = translator(server)

        async def attempts() -> list:
            drafts = [await t(RECORD, JA, EN)]
            for _ in range(3):
                drafts.append(
                    await t(
                        RECORD, JA, EN, previous=drafts[-1].answer or bad["text"], feedback=feedback
                    )
                )
            return drafts

        drafts = asyncio.run(attempts())
        requests = list(server.requests)
    assert len(requests) == 3
    bodies = [json.dumps(r.messages, ensure_ascii=False) for r in requests]
    assert len(set(bodies)) == 3
    assert "second time in a row" in bodies[2] and "second time in a row" not in bodies[1]
    last = drafts[-1]
    assert last.usage.calls == 0
    [finding] = last.findings
    assert finding.code == Code.NO_NEW_FEEDBACK and finding.severity == Severity.FATAL
