"""Korean label names, keyed by the Japanese (pivot) label, per glossary of mmm-translate.

The core joins these to its rows by the Japanese label (``mre.glossary``): with this plugin
installed, ``map_label("Person", task="SCNM", source="en", target="ko") == "인명"``.

Names: the Sino-Korean reading of the Japanese label where Korean uses the same word (人名 ->
인명, 地名 -> 지명, 社会 -> 사회), the usual Korean term otherwise (その他の組織名 -> 기타 조직명,
イベント名 -> 이벤트명). SCPOS sentiment: 긍정 / 부정 / 중립, the terms of Korean sentiment
datasets (NSMC and others).
"""

from __future__ import annotations

from collections.abc import Mapping

_SCNM: dict[str, str] = {
    # topics (text labels)
    "社会": "사회",
    "文芸": "문예",
    "学問": "학문",
    "技術": "기술",
    "自然": "자연",
    # entity types (span labels)
    "人名": "인명",
    "法人名": "법인명",
    "政治的組織名": "정치 조직명",
    "その他の組織名": "기타 조직명",
    "地名": "지명",
    "施設名": "시설명",
    "製品名": "제품명",
    "イベント名": "이벤트명",
}

# Text labels (積極 / 消極) and word labels (ポジティブ / 中立 / ネガティブ) are separate rows
# of the core's SCPOS glossary, so 긍정 may serve both.
_SCPOS: dict[str, str] = {
    "積極": "긍정",
    "消極": "부정",
    "ポジティブ": "긍정",
    "中立": "중립",
    "ネガティブ": "부정",
}

#: task (or glossary file name) -> {Japanese label -> Korean label}.
GLOSSARY: Mapping[str, Mapping[str, str]] = {"SCNM": _SCNM, "SCPOS": _SCPOS}
