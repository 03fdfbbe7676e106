"""Kind words: the word that says what sort of place or thing an entity is (空港 airport, 公園
park, 県 prefecture). The Japanese plugin's extra entity evidence: a span that names another
kind (Korakuen Stadium for 恩施許家坪空港, Enshi Xujiaping Airport for ドナー記念州立公園) and
not the entity's own is another entity's name: 0.0. Otherwise no opinion (None): a kind word
left out says nothing (Ehime for 愛媛県).

Only kind words that end a name and are not part of one are listed: not 川, 山, 島, 城 (石川,
富山, 福島 and 茨城 are names that Ishikawa Prefecture, Toyama Prefecture... translate).
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from word_tokenizers.languages import Language

# the entity's last word: (English words, Chinese words) that translate it
# fmt: off
KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "空港": (("airport", "aerodrome", "airfield", "air base"), ("机场", "空港")),
    "飛行場": (("airfield", "aerodrome", "airport", "air base"), ("机场", "飞行场")),
    "駅": (("station", "stop", "halt"), ("站", "驿")),
    "公園": (("park", "gardens", "garden"), ("公园",)),
    "球場": (("stadium", "ballpark", "field", "park", "ground", "grounds"), ("球场", "体育场")),
    "競技場": (("stadium", "arena", "ground", "grounds", "field"), ("竞技场", "体育场", "运动场")),
    "県": (("prefecture",), ("县",)),
    "市": (("city", "municipality"), ("市",)),
    "大学": (("university", "college", "institute"), ("大学", "学院")),
    "病院": (("hospital", "clinic", "infirmary"), ("医院", "病院")),
    "博物館": (("museum",), ("博物馆",)),
    "美術館": (("museum", "gallery"), ("美术馆", "博物馆")),
    "図書館": (("library",), ("图书馆",)),
    "劇場": (("theatre", "theater", "playhouse"), ("剧场", "剧院")),
    "神社": (("shrine",), ("神社",)),
    "修道院": (("abbey", "monastery", "convent", "priory"), ("修道院",)),
    "教会": (("church", "chapel", "cathedral"), ("教堂", "教会")),
    "銀行": (("bank",), ("银行",)),
    "鉄道": (("railway", "railroad", "rail", "railways"), ("铁路", "铁道")),
    "戦争": (("war",), ("战争",)),
    "選手権": (("championship", "championships", "grand prix", "cup"), ("锦标赛", "选手权")),
    "砦": (("fort", "fortress", "stronghold"), ("堡", "要塞", "砦")),
}
# fmt: on

# words that name a kind only loosely ("field", "cup") do not make a span another kind's
_LOOSE = frozenset({"stop", "halt", "field", "ground", "grounds", "garden", "gardens", "cup",
                    "rail", "institute", "grand prix", "park"})
_EN_ALL = frozenset(w for en, _ in KINDS.values() for w in en) - _LOOSE
_ZH_ALL = frozenset(w for _, zh in KINDS.values() for w in zh)



@lru_cache(maxsize=65536)
def _kind_of(entity: str) -> str | None:
    text = unicodedata.normalize("NFKC", entity).strip()
    ends = [k for k in KINDS if text.endswith(k) and len(text) > len(k)]
    return max(ends, key=len) if ends else None


def _en_words(span: str) -> set[str]:
    words = re.findall(r"[a-z]+", unicodedata.normalize("NFKC", span).lower())
    return set(words) | {f"{a} {b}" for a, b in itertools.pairwise(words)}


def kind_evidence(entity: str, source: Language, span: str, target: Language) -> float | None:
    """0.0 when `span` names a kind of place or thing that is not the entity's (and not its
    own kind too); else no opinion."""
    kind = _kind_of(entity)
    if kind is None:
        return None
    en, zh = KINDS[kind]
    if target.code == "en":
        words = _en_words(span)
        if words & set(en):
            return None
        return 0.0 if words & _EN_ALL else None
    if target.code == "zh":
        text = unicodedata.normalize("NFKC", span).strip()
        if any(w in text for w in zh):
            return None
        return 0.0 if any(text.endswith(w) for w in _ZH_ALL) else None
    return None
