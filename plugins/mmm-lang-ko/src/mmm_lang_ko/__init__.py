"""Korean for mmm-translate: a language plugin found through the entry-point group
``word_tokenizers.languages`` (``ko = "mmm_lang_ko:LANGUAGE"``).

    pip install ./plugins/mmm-lang-ko          # from a checkout of mmm-translate
    >>> import word_tokenizers
    >>> "ko" in word_tokenizers.available_languages()
    True

Importing this module imports no backend: kiwipiepy loads when the tokenizer is first built.
"""

from __future__ import annotations

from mmm_lang_ko.glossary import GLOSSARY
from mmm_lang_ko.romanize import romanize
from mmm_lang_ko.tokenizer import KiwiMissingError, KoreanTokenizer, make_tokenizer, upos_of_tag
from word_tokenizers.languages import Language

__all__ = ["GLOSSARY", "LANGUAGE", "KiwiMissingError", "KoreanTokenizer", "make_tokenizer", "romanize", "upos_of_tag"]

__version__ = "0.1.0"

#: Korean text is written in Hangul. Latin is tolerated (product names, acronyms: "LG", "PC").
#: Han is NOT tolerated, on purpose: hanja survive in Korean only as rare glosses in
#: parentheses (사기(詐欺)), while in a translation from Japanese or Chinese a Han character is
#: almost always source text the translator left untranslated (東京 for 도쿄). So Han is
#: residue in ja -> ko and zh -> ko, and a translator that wants a gloss is asked to drop it.
#:
#: length_factor: Korean characters (spaces included) per Japanese character, measured on the
#: eight hand translations of demo records in tests/fixtures/plugin/ko_answers.jsonl of the
#: mmm-translate repository: 0.88 to 1.30, mean 1.14 (Korean spends characters on spaces and
#: on particles, and writes kanji compounds as one syllable a character).
LANGUAGE = Language(
    code="ko",
    name="Korean",
    tokenizer=make_tokenizer,
    scripts=frozenset({"Hangul"}),
    foreign_ok=frozenset({"Latin"}),
    glossary=GLOSSARY,
    length_factor=1.14,
    romanize=romanize,
    generic_words=frozenset("주식회사 회사 그룹 대학교 대학 학교 연구소 은행 병원 역 공항 현 시 구 군 도 섬 산 강 호".split()),
    edge_words=frozenset("은 는 이 가 을 를 에 에서 의 와 과 로 으로 도 및".split()),
)
