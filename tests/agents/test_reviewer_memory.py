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


def test_memory_owners_and_a_claimed_span_is_a_doubt(tmp_path: Path) -> None:
    """A span the run accepted as another entity's translation is a substituted-name doubt:
    retried once, kept when the translator repeats it, silent when the memory vouches."""
    from agents.translator import LabelMap
    from agents.verifier import Decision, verify

    mem = TranslationMemory(tmp_path / "memory.sqlite")
    mem.add("r1", "en", [("マロン製菓", "Marron Seika"), ("豪助", "Gosuke")])
    mem.add("r2", "en", [("米国", "United States"), ("アメリカ", "United States")])
    assert mem.owners("en", ["Marron Seika", "United States", "Tokyo"]) == {
        "Marron Seika": {"マロン製菓"},
        "United States": {"米国", "アメリカ"},
    }
    mem.close()

    _, pairs = load()
    pair = next(p for p in pairs if p.record.id == "stockmark-200389" and p.target == "en")
    tok = word_tokenizers.get("en").tokenize
    good = align(pair.correct, pair.record, tok)
    wrong_text = pair.correct.replace(good.projected[1].text, "Marron Seika")
    wrong = align(wrong_text, pair.record, tok)
    en = word_tokenizers.get_language("en")
    labels = LabelMap(span_labels=["x"] * len(pair.record.spans), text_label="x")
    claimed = {1: "マロン製菓"}

    def run(al: Any, **kw: Any) -> Any:
        return verify(pair.record, JA, en, al, labels, attempt=1, max_attempts=3, **kw)

    first = run(wrong, claimed=claimed)
    found = [f for f in first.findings if f.code == Code.ENTITY_SUBSTITUTED]
    assert first.decision == Decision.RETRY and found
    assert "マロン製菓" in found[0].message and "Marron Seika" in found[0].message
    again = run(wrong, claimed=claimed, previous=first.findings)
    assert again.decision == Decision.ACCEPT
    assert [f.code for f in again.findings if f.code == Code.DOUBT_KEPT] == [Code.DOUBT_KEPT]
    assert run(wrong, claimed=claimed, vouched=frozenset({1})).decision == Decision.ACCEPT
    assert run(good).decision == Decision.ACCEPT
