"""Label glossaries: shipped files are valid, every SCNM/SCPOS label maps both ways."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from typing import Any

import pytest

import word_tokenizers
from mre import glossary
from mre.glossary import Kind, available, glossary_problems, labels, map_label
from word_tokenizers import Language

SCNM_TYPES = [
    "人名",
    "法人名",
    "政治的組織名",
    "その他の組織名",
    "地名",
    "施設名",
    "製品名",
    "イベント名",
]
SCNM_TOPICS = ["社会", "文芸", "学問", "技術", "自然"]
SCPOS_TASKS = ["SCPOS:RW", "SCPOS:Adj&N", "SCPOS:Adj", "SCPOS:N"]


def _shipped(name: str) -> Any:
    path = resources.files("mre").joinpath("glossaries", f"{name}.json")
    return json.loads(path.read_text(encoding="utf-8"))


def test_glossary_ships_a_file_per_labelled_task_family() -> None:
    assert {"SCNM", "SCPOS"} <= set(available())


@pytest.mark.parametrize("name", available())
def test_glossary_shipped_file_is_valid(name: str) -> None:
    data = _shipped(name)
    assert glossary_problems(data) == []
    assert data["source"].strip()
    for kind in ("text_labels", "span_labels"):
        for row in data[kind]:
            assert all(row[lang].strip() for lang in ("ja", "en", "zh"))
        for lang in ("ja", "en", "zh"):
            column = [row[lang] for row in data[kind]]
            assert len(column) == len(set(column)), f"{name} {kind} {lang} has duplicates"


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        pytest.param([], "expected a JSON object", id="not_object"),
        pytest.param(
            {"task": "X", "text_labels": [], "span_labels": []},
            "missing key 'source'",
            id="no_source",
        ),
        pytest.param(
            {
                "task": "X",
                "source": "s",
                "text_labels": [],
                "span_labels": [{"ja": "人名", "en": "Person"}],
            },
            "span_labels[0]: missing or empty 'zh'",
            id="missing_zh",
        ),
        pytest.param(
            {
                "task": "X",
                "source": "s",
                "text_labels": [],
                "span_labels": [
                    {"ja": "人名", "en": "Person", "zh": "人名"},
                    {"ja": "地名", "en": "Person", "zh": "地名"},
                ],
            },
            "span_labels[1]: en label 'Person' already in row 0",
            id="duplicate_en",
        ),
        pytest.param(
            {
                "task": "X",
                "source": "s",
                "span_labels": [],
                "text_labels": [{"ja": "a", "en": "b", "zh": "c", "aliases": {"ja": "x"}}],
            },
            "aliases must map",
            id="bad_aliases",
        ),
    ],
)
def test_glossary_problems_finds_broken_documents(data: Any, problem: str) -> None:
    assert any(problem in p for p in glossary_problems(data))


@pytest.mark.parametrize(
    ("label", "kind"), [(t, "span") for t in SCNM_TYPES] + [(t, "text") for t in SCNM_TOPICS]
)
@pytest.mark.parametrize("target", ["en", "zh"])
def test_glossary_scnm_label_maps_and_maps_back(label: str, kind: Kind, target: str) -> None:
    mapped = map_label(label, task="SCNM", source="ja", target=target, kind=kind)
    assert mapped
    if target == "en":
        assert mapped != label
    assert map_label(mapped, task="SCNM", source=target, target="ja", kind=kind) == label


@pytest.mark.parametrize(
    ("label", "source", "target", "expected"),
    [
        ("人名", "ja", "en", "Person"),  # names from the OIELLM model card
        ("製品名", "ja", "en", "Product Name"),
        ("文芸", "ja", "en", "Literature"),
        ("政治的組織名", "ja", "zh", "政治组织名"),
        ("Product Name", "en", "zh", "产品名"),  # any pair, through the row
        ("产品名", "zh", "en", "Product Name"),
        ("person", "en", "ja", "人名"),  # case-insensitive fallback
        (" Person ", "en", "ja", "人名"),
        ("人名", "ja", "ja", "人名"),
    ],
)
def test_glossary_scnm_known_pairs(label: str, source: str, target: str, expected: str) -> None:
    assert map_label(label, task="SCNM", source=source, target=target) == expected


@pytest.mark.parametrize("task", SCPOS_TASKS)
@pytest.mark.parametrize(
    ("label", "kind", "en", "zh"),
    [
        ("ポジティブ", "span", "positive", "积极"),
        ("ネガティブ", "span", "negative", "消极"),
        ("中立", "span", "neutral", "中性"),
        ("ニュートラル", "span", "neutral", "中性"),  # alias
        ("積極", "text", "positive", "积极"),
        ("消極", "text", "negative", "消极"),
    ],
)
def test_glossary_scpos_sentiment_labels(
    task: str, label: str, kind: Kind, en: str, zh: str
) -> None:
    assert map_label(label, task=task, source="ja", target="en", kind=kind) == en
    assert map_label(label, task=task, source="ja", target="zh", kind=kind) == zh


def test_glossary_alias_is_never_a_target() -> None:
    assert map_label("neutral", task="SCPOS:N", source="en", target="ja") == "中立"


@pytest.mark.parametrize(
    ("label", "task", "source", "target"),
    [
        ("宇宙人名", "SCNM", "ja", "en"),  # unknown label
        ("人名", "SCNM", "ja", "xx"),  # unknown language
        ("Person", "SCNM", "ja", "en"),  # right label, wrong source language
        ("社会", "SCNM", "ja", "en"),  # a text label is not a span label
        ("人名", "TCONER", "ja", "en"),  # open-domain: no glossary
        ("人名", "TCREE", "ja", "en"),
    ],
)
def test_glossary_unmapped_gives_none(label: str, task: str, source: str, target: str) -> None:
    kind: Kind | None = "span" if label == "社会" else None
    assert map_label(label, task=task, source=source, target=target, kind=kind) is None


def test_glossary_unknown_task_raises() -> None:
    with pytest.raises(ValueError, match="unknown task"):
        map_label("人名", task="NER", source="ja", target="en")


@pytest.mark.parametrize(
    ("task", "lang", "kind", "expected"),
    [
        ("SCNM", "ja", "span", SCNM_TYPES),
        ("SCNM", "ja", "text", SCNM_TOPICS),
        ("SCPOS:Adj", "zh", "span", ["积极", "中性", "消极"]),
        ("TCONER", "en", "span", []),
    ],
)
def test_glossary_labels(task: str, lang: str, kind: Kind, expected: list[str]) -> None:
    assert labels(task, lang, kind) == expected


@pytest.fixture
def korean_plugin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fake plugin language "ko" whose glossary covers two SCNM labels."""
    ko = Language(
        code="ko",
        name="Korean",
        tokenizer=lambda **_: None,  # type: ignore[arg-type,return-value]
        scripts=frozenset({"Hangul"}),
        glossary={"SCNM": {"人名": "인명", "地名": "지명", "社会": "사회"}},
    )

    def get_language(code: str) -> Language:
        if code == "ko":
            return ko
        raise KeyError(code)

    monkeypatch.setattr(word_tokenizers, "get_language", get_language)
    glossary.clear_cache()
    yield
    glossary.clear_cache()


@pytest.mark.usefixtures("korean_plugin")
@pytest.mark.parametrize(
    ("label", "source", "target", "expected"),
    [
        ("人名", "ja", "ko", "인명"),
        ("Location", "en", "ko", "지명"),
        ("인명", "ko", "zh", "人名"),
        ("사회", "ko", "en", "Society"),
        ("法人名", "ja", "ko", None),  # the plugin does not cover it
        ("人名", "ja", "fr", None),  # no such language
    ],
)
def test_glossary_plugin_language_entries(
    label: str, source: str, target: str, expected: str | None
) -> None:
    assert map_label(label, task="SCNM", source=source, target=target) == expected


@pytest.mark.usefixtures("korean_plugin")
def test_glossary_plugin_labels() -> None:
    assert labels("SCNM", "ko") == ["인명", "지명"]
