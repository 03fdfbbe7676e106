"""The reviewer agent over real HTTP (every --method) and the entity translation memory."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import word_tokenizers
from agents.aligner import align
from agents.findings import Code
from agents.llm import METHODS, LLMSettings, build_chat_model
from agents.memory import TranslationMemory, inconsistent_entities
from agents.reviewer import Reviewer, apply_review
from tests.agents.planted import MeaningHandler, load

JA = word_tokenizers.get_language("ja")


def test_memory_keeps_translations_across_reopen_and_counts_once(tmp_path: Path) -> None:
    path = tmp_path / "memory.sqlite"
    mem = TranslationMemory(path)
    assert mem.add("r1", "en", [("大岡昇平", "Shohei Ooka"), ("東京", "Tokyo")])
    assert not mem.add("r1", "en", [("大岡昇平", "Shohei Ooka")])  # a resumed pair: not twice
    assert mem.add("r2", "en", [("大岡昇平", "Ooka Shohei")])
    assert mem.add("r3", "en", [("大岡昇平", "Shohei Ooka")])
    mem.close()
    mem = TranslationMemory(path)
    assert mem.established("en", ["大岡昇平", "東京", "大阪"]) == {"大岡昇平": "Shohei Ooka", "東京": "Tokyo"}
    assert mem.established("zh", ["大岡昇平"]) == {}
    assert mem.inconsistent() == [
        {"target": "en", "source": "大岡昇平", "translations": {"Shohei Ooka": 2, "Ooka Shohei": 1}}
    ]
    mem.close()
    assert inconsistent_entities([("zh", "東京", "东京", 1)]) == []


def test_translator_is_told_established_translations() -> None:
    from agents.translator import Translator

    _, pairs = load()
    pair = pairs[0]
    llm = build_chat_model(LLMSettings(base_url="http://127.0.0.1:9/v1", api_key="sk-test"))
    msgs = Translator(llm, model_name="m").messages(
        pair.record, JA, word_tokenizers.get_language("en"), established={"豪助": "Gosuke"}
    )
    assert "豪助 -> Gosuke" in msgs[-1][1]


@pytest.mark.parametrize("method", METHODS)
def test_reviewer_over_http_repairs_a_widened_span(local_server: Any, method: str) -> None:
    _, pairs = load()
    pair = next(p for p in pairs if p.record.id == "stockmark-3489906" and p.target == "en")
    wrong = pair.correct.replace("<e1>Otto</e1> was buried", "<e1>Otto was buried</e1>")
    from agents.markers import mark

    handler = MeaningHandler({(mark(pair.record.text, pair.record.spans), "en"): (wrong, pair.correct)})
    tok = word_tokenizers.get("en").tokenize
    al = align(wrong, pair.record, tok)
    with local_server(handler) as server:
        llm = build_chat_model(LLMSettings(base_url=server.base_url, api_key="sk-test", method=method))
        reviewer = Reviewer(llm, model_name="planted", method=method)
        review = asyncio.run(reviewer(pair.record, JA, word_tokenizers.get_language("en"), al))
    assert review.error is None and review.usage.calls == 1
    assert [(v.index, v.correct) for v in review.verdicts] == [(1, False), (2, True)]
    applied = apply_review(review, pair.record, al)
    assert applied.alignment.projected[1].text == "Otto"
    assert applied.vouched == frozenset({1, 2})
    assert [f.code for f in applied.findings] == [Code.REVIEW_REPAIRED]
    assert handler.calls["review"] == 1
