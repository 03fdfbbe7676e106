"""Exonyms: places written in katakana whose established English and Chinese names are not
their sound (アメリカ -> United States / 美国, ドイツ -> Germany / 德国). The Japanese plugin's
extra entity evidence: a span that is one of the entity's established names scores 1.0; any
other span gets no opinion from this table (None), so the other evidence decides."""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from word_tokenizers.languages import Language

# katakana: (English names, Chinese names)
# fmt: off
EXONYMS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "アメリカ": (("united states", "america", "us", "u.s.", "usa", "united states of america"), ("美国", "美利坚")),
    "アメリカ合衆国": (("united states", "united states of america", "usa", "us", "u.s.", "america"), ("美国", "美利坚合众国")),
    "イギリス": (("united kingdom", "uk", "u.k.", "britain", "great britain", "england"), ("英国",)),
    "ドイツ": (("germany", "west germany", "east germany"), ("德国",)),
    "フランス": (("france",), ("法国",)),
    "オランダ": (("netherlands", "holland"), ("荷兰",)),
    "スペイン": (("spain",), ("西班牙",)),
    "イタリア": (("italy",), ("意大利",)),
    "ロシア": (("russia",), ("俄罗斯", "俄国")),
    "スイス": (("switzerland",), ("瑞士",)),
    "スウェーデン": (("sweden",), ("瑞典",)),
    "ギリシャ": (("greece",), ("希腊",)),
    "トルコ": (("turkey", "türkiye"), ("土耳其",)),
    "エジプト": (("egypt",), ("埃及",)),
    "オーストラリア": (("australia",), ("澳大利亚", "澳洲")),
    "ブラジル": (("brazil",), ("巴西",)),
    "メキシコ": (("mexico",), ("墨西哥",)),
    "インド": (("india",), ("印度",)),
    "ベルギー": (("belgium",), ("比利时",)),
    "ポーランド": (("poland",), ("波兰",)),
    "オーストリア": (("austria",), ("奥地利",)),
    "ノルウェー": (("norway",), ("挪威",)),
    "デンマーク": (("denmark",), ("丹麦",)),
    "フィンランド": (("finland",), ("芬兰",)),
    "ハンガリー": (("hungary",), ("匈牙利",)),
    "アイルランド": (("ireland",), ("爱尔兰",)),
    "ポルトガル": (("portugal",), ("葡萄牙",)),
    "スコットランド": (("scotland",), ("苏格兰",)),
    "ソ連": (("soviet union", "ussr"), ("苏联",)),
    "ソビエト連邦": (("soviet union", "ussr"), ("苏联",)),
    "ニュージーランド": (("new zealand",), ("新西兰",)),
    "アルゼンチン": (("argentina",), ("阿根廷",)),
    "ベトナム": (("vietnam", "viet nam"), ("越南",)),
    "タイ": (("thailand",), ("泰国",)),
    "フィリピン": (("philippines",), ("菲律宾",)),
    "インドネシア": (("indonesia",), ("印度尼西亚", "印尼")),
    "ヨーロッパ": (("europe",), ("欧洲",)),
    "アフリカ": (("africa",), ("非洲",)),
    "アジア": (("asia",), ("亚洲",)),
    "パリ": (("paris",), ("巴黎",)),
    "ローマ": (("rome",), ("罗马",)),
    "モスクワ": (("moscow",), ("莫斯科",)),
    "ニューヨーク": (("new york", "new york city"), ("纽约",)),
    "ワシントン": (("washington", "washington, d.c."), ("华盛顿",)),
    # Chinese names by meaning rather than sound
    "サンフランシスコ": (("san francisco",), ("旧金山", "三藩市")),
    "アイスランド": (("iceland",), ("冰岛",)),
    "ソルトレイクシティ": (("salt lake city",), ("盐湖城",)),
    "ケンブリッジ": (("cambridge",), ("剑桥",)),
    "オックスフォード": (("oxford",), ("牛津",)),
    "ホワイトハウス": (("white house", "the white house"), ("白宫",)),
    "シリコンバレー": (("silicon valley",), ("硅谷",)),
    "ゴールドコースト": (("gold coast",), ("黄金海岸",)),
    "パールハーバー": (("pearl harbor", "pearl harbour"), ("珍珠港",)),
    "ニューオーリンズ": (("new orleans",), ("新奥尔良",)),
    "ニューデリー": (("new delhi",), ("新德里",)),
    "ケープタウン": (("cape town",), ("开普敦",)),
    "ハリウッド": (("hollywood",), ("好莱坞",)),
}
# fmt: on


def _norm(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).strip().lower()
    return text[4:] if text.startswith("the ") else text


def exonym_evidence(entity: str, source: Language, span: str, target: Language) -> float | None:
    """1.0 when `span` is an established name of the place `entity`; else no opinion."""
    names = EXONYMS.get(unicodedata.normalize("NFKC", entity).strip())
    if names is None:
        return None
    wanted = names[0] if target.code == "en" else names[1] if target.code == "zh" else ()
    return 1.0 if _norm(span) in wanted else None
