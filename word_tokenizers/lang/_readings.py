"""Readings shared by the language plugins' evidence hooks: OpenCC script conversion.

OpenCC (PyPI `opencc`) ships the Japanese-shinjitai table (`jp2t`: 広 -> 廣, 沢 -> 澤) and the
traditional -> simplified one (`t2s`), so a kanji string and its simplified-Chinese form meet
in one spelling: 大岡昇平 -> 大冈升平, 東京都千代田区 -> 东京都千代田区. Converters are built once
per process; results are cached per string (entity strings repeat across a run).
"""

from __future__ import annotations

import importlib.util
from functools import cache, lru_cache
from typing import Any

from word_tokenizers.base import MissingBackendError


@cache
def _converter(config: str) -> Any:
    if importlib.util.find_spec("opencc") is None:
        raise MissingBackendError("ja", "opencc (kanji/hanzi script conversion)", "ja")
    import opencc

    return opencc.OpenCC(config)


#: Japanese forms OpenCC's tables leave as they are (舎 is 舍 in Chinese; 働, a kanji made in
#: Japan, is written 动 in 劳动), and traditional variants its t2s table keeps.
_JAPANESE_EXTRA = str.maketrans({"舎": "舍", "働": "动", "澁": "涩", "鬭": "斗", "闘": "斗"})


@lru_cache(maxsize=65536)
def simplified(text: str, *, japanese: bool = False) -> str:
    """`text` with Han characters in simplified-Chinese form (`japanese`: through the
    Japanese-shinjitai table first)."""
    if japanese:
        text = _converter("jp2t").convert(text)
    text = str(_converter("t2s").convert(text))
    return text.translate(_JAPANESE_EXTRA) if japanese else text
