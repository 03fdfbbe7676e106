"""Chinese: jieba with POS tags (jieba.posseg), ICTCLAS/PKU tags mapped to Universal POS.

    >>> tok = word_tokenizers.get("zh")
    >>> [(t.text, t.pos) for t in tok.tokenize("这只猫很美丽")]
    [('这', 'PRON'), ('只', 'ADV'), ('猫', 'NOUN'), ('很', 'ADV'), ('美丽', 'ADJ')]

Offsets: `jieba.posseg` yields words with tags but no offsets, `jieba.tokenize` offsets but no
tags. Both compute offsets the same way, as running sums of the lengths of the words the
segmenter yields (it partitions the text); here the running sum is taken over posseg's own
words, and every word is checked against the text at its offset, so a word that would not sit
there raises instead of drifting. `lemma` and `norm` are the word itself (Chinese does not
inflect).

The tokenizer is a private `jieba.Tokenizer` (not jieba's global one) whose prefix-dictionary
cache lives in the project cache directory, `$MMM_CACHE_DIR/jieba` or
`~/.cache/mmm-translate/jieba`, not in the shared /tmp.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from word_tokenizers.base import MissingBackendError, Token, new_token
from word_tokenizers.languages import Language

log = logging.getLogger(__name__)

#: jieba (ICTCLAS / PKU) tag -> Universal POS. A second letter names the function a word has
#: in context (vn: verb used as a noun, ad: adjective used as an adverb), and decides.
# fmt: off
TAG_MAP: dict[str, str] = {
    "n": "NOUN", "ng": "NOUN", "nl": "NOUN", "ns": "PROPN", "nsf": "PROPN", "nt": "PROPN",
    "nz": "PROPN", "nr": "PROPN", "nr1": "PROPN", "nr2": "PROPN", "nrj": "PROPN",
    "nrf": "PROPN", "nrfg": "PROPN", "nrt": "PROPN", "j": "PROPN",  # j: abbreviation (北大)
    "t": "NOUN", "tg": "NOUN",  # time words
    "s": "NOUN", "f": "NOUN",  # place and direction words
    "v": "VERB", "vg": "VERB", "vi": "VERB", "vl": "VERB", "vf": "VERB", "vx": "VERB",
    "vq": "VERB", "vyou": "VERB", "vshi": "AUX", "vd": "ADV", "vn": "NOUN",
    "a": "ADJ", "ag": "ADJ", "al": "ADJ", "ad": "ADV", "an": "NOUN",
    "b": "ADJ", "bl": "ADJ", "bg": "ADJ", "z": "ADJ", "zg": "ADJ",  # distinguishing / state words
    "r": "PRON", "rr": "PRON", "rz": "PRON", "rzt": "PRON", "rzs": "PRON", "rzv": "PRON",
    "ry": "PRON", "ryt": "PRON", "rys": "PRON", "ryv": "PRON", "rg": "PRON",
    "m": "NUM", "mq": "NUM", "mg": "NUM", "q": "NOUN", "qv": "NOUN", "qt": "NOUN",  # UD: NOUN
    "qe": "NOUN", "qg": "NOUN",
    "d": "ADV", "df": "ADV", "dg": "ADV",
    "p": "ADP", "pba": "ADP", "pbei": "ADP",
    "c": "CCONJ", "cc": "CCONJ",
    "u": "PART", "ud": "PART", "ug": "PART", "uj": "PART", "ul": "PART", "uv": "PART",
    "uz": "PART", "ude1": "PART", "ude2": "PART", "ude3": "PART", "usuo": "PART",
    "udeng": "PART", "uyy": "PART", "udh": "PART", "uls": "PART", "uzhi": "PART",
    "ulian": "PART", "uzhe": "PART", "ule": "PART", "uguo": "PART",
    "e": "INTJ", "o": "INTJ", "y": "PART", "yg": "PART",
    "h": "NOUN", "k": "PART",  # prefix, suffix (们)
    "i": "X", "in": "X", "l": "X", "ln": "X", "g": "X", "jn": "PROPN",  # idioms, morphemes
    "eng": "X", "w": "PUNCT",
}
# fmt: on
#: Words the bundled jieba dictionary tags wrongly (美丽 and 新鲜 as place names...).
TAG_FIXES: dict[str, str] = {"美丽": "a", "新鲜": "a", "可怕": "a", "精彩": "a", "可爱": "a"}
_FIRST_LETTER = {
    "n": "NOUN", "v": "VERB", "a": "ADJ", "d": "ADV", "r": "PRON", "m": "NUM", "u": "PART",
    "p": "ADP", "c": "CCONJ", "q": "NOUN", "t": "NOUN",
}  # fmt: skip


@lru_cache(maxsize=8192)
def upos_of(tag: str, word: str) -> str:
    """Universal POS of a jieba tag. "x" (anything jieba cannot place) is decided from the
    characters: punctuation, symbols, numbers, else X."""
    upos = TAG_MAP.get(tag)
    if upos is not None:
        return upos
    if tag == "x":
        return _upos_of_chars(word)
    return _FIRST_LETTER.get(tag[:1], "X")


def _upos_of_chars(word: str) -> str:
    cats = {unicodedata.category(ch)[0] for ch in word}
    if cats == {"P"}:
        return "PUNCT"
    if cats <= {"S", "M"} and "S" in cats:
        return "SYM"
    if cats == {"N"}:
        return "NUM"
    return "X"


def cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where jieba keeps its prefix-dictionary cache: `$MMM_CACHE_DIR/jieba`, else
    `$XDG_CACHE_HOME/mmm-translate/jieba`, else `~/.cache/mmm-translate/jieba`."""
    env = os.environ if environ is None else environ
    if env.get("MMM_CACHE_DIR"):
        return Path(env["MMM_CACHE_DIR"]).expanduser() / "jieba"
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "mmm-translate" / "jieba"


class ChineseTokenizer:
    """jieba posseg over a private jieba dictionary; tags mapped to Universal POS."""

    lang = "zh"

    def __init__(self, backend: Any, hmm: bool = True) -> None:
        self.backend = backend  # jieba.posseg.POSTokenizer (_zh_hmm.HMMPOSTokenizer)
        self.hmm = hmm

    def __repr__(self) -> str:
        return f"ChineseTokenizer(hmm={self.hmm})"

    def tokenize(self, text: str) -> list[Token]:
        out: list[Token] = []
        append = out.append
        tag_map = TAG_MAP
        start = 0
        for pair in self.backend.cut(text, HMM=self.hmm):
            word: str = pair.word
            end = start + len(word)
            if not text.startswith(word, start):
                raise ValueError(
                    f"jieba word {word!r} is not at offset {start} of {text[:60]!r}: "
                    "its words do not partition the text"
                )
            if not word.isspace():
                tag: str = pair.flag
                pos = tag_map.get(tag)
                if pos is None:
                    pos = upos_of(tag, word)
                append(new_token(word, start, end, pos, word, word))
            start = end
        if start != len(text):
            raise ValueError(
                f"jieba words cover {start} of {len(text)} characters of {text[:60]!r}"
            )
        return out

    def tokenize_batch(self, texts: Iterable[str]) -> list[list[Token]]:
        return [self.tokenize(text) for text in texts]


def make_tokenizer(
    hmm: bool = True, cache: str | os.PathLike[str] | None = None
) -> ChineseTokenizer:
    """The Chinese word tokenizer. `hmm`: let jieba's HMM join unknown words; `cache`: the
    directory for jieba's dictionary cache (default: :func:`cache_dir`)."""
    if importlib.util.find_spec("jieba") is None:
        raise MissingBackendError("zh", "jieba", "zh")
    import jieba

    from word_tokenizers.lang._zh_hmm import HMMPOSTokenizer

    jieba_log = logging.getLogger("jieba")  # jieba logs every load at DEBUG to stderr
    if jieba_log.level < logging.WARNING:
        jieba_log.setLevel(logging.WARNING)
    directory = Path(cache) if cache is not None else cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    segmenter = jieba.Tokenizer()
    segmenter.tmp_dir = str(directory)
    segmenter.initialize()
    backend = HMMPOSTokenizer(segmenter)  # posseg, its HMM step faster (same words and tags)
    backend.word_tag_tab.update(TAG_FIXES)
    log.debug("jieba dictionary loaded, cache in %s", directory)
    return ChineseTokenizer(backend, hmm=hmm)


@lru_cache(maxsize=65536)
def romanize(text: str) -> str:
    """Toneless pinyin of `text` (pypinyin), syllables separated by spaces: 北京 -> "bei jing"."""
    if importlib.util.find_spec("pypinyin") is None:
        raise MissingBackendError("zh", "pypinyin (pinyin readings)", "zh")
    from pypinyin import lazy_pinyin

    return " ".join(" ".join(lazy_pinyin(text, errors="default")).split())


#: Pinyin syllables that transliterate a bare consonant (克 ke for "k", 斯 si for "s"): written
#: with the epenthetic vowel a Japanese reading gives the same consonant (ク ku, ス su, ド do).
_BARE_CONSONANT = {
    "ke": "ku", "ge": "gu", "le": "ru", "re": "ru", "he": "hu", "de": "do", "te": "to",
    "se": "su", "ze": "zu", "ce": "tsu", "si": "su", "zi": "zu", "ci": "tsu", "shi": "shu",
    "zhi": "ju", "chi": "chu", "ri": "ru", "er": "ru", "fu": "fu", "bu": "bu", "mu": "mu",
}  # fmt: skip
#: Initials whose sound in transliterations differs from their pinyin letter: x writes both
#: "h" (希丁克 Hiddink) and "s" (西), so it is left out; j is "k"/"g" (加拿大 Canada).
_INITIALS = {"x": "", "q": "ch", "j": "k", "zh": "j", "c": "ts"}
#: Finals as a foreign name's vowels: 托 tuo "to", 奥 ao "o", 丁 ding "din".
_FINALS = {
    "uo": "o", "ao": "o", "ou": "o", "ong": "on", "eng": "en", "ing": "in", "ang": "an",
    "iang": "ian", "ian": "ien", "iao": "io", "ei": "e", "v": "yu", "ve": "yue",
}  # fmt: skip
_SYLLABLE = re.compile(r"(zh|ch|sh|[bpmfdtnlgkhjqxrzcsyw]?)([a-z]*)$")


@lru_cache(maxsize=4096)
def _sound(syllable: str) -> str:
    bare = _BARE_CONSONANT.get(syllable)
    if bare is not None:
        return bare
    m = _SYLLABLE.match(syllable)
    if m is None:
        return syllable
    initial, final = m.groups()
    return _INITIALS.get(initial, initial) + _FINALS.get(final, final)


@lru_cache(maxsize=65536)
def sound_reading(text: str) -> str:
    """How a Chinese transliteration sounds, in the Latin spelling a Japanese or Western name
    would use: pinyin with the transliteration conventions undone (希丁克 "xi ding ke" ->
    "i din ku", close to Hiddink and ヒディンク "hidinku"). Latin words pass through; used as
    the language's reading for entity evidence."""
    words = []
    for word in romanize(text).split():
        if word.isascii() and word.isalpha() and word.islower():
            words.append(_sound(word))
        else:
            words.append(word)
    return " ".join(words)


def han_form(text: str) -> str:
    """Han characters in simplified form (OpenCC t2s): traditional and simplified compare."""
    from word_tokenizers.lang._readings import simplified

    return simplified(text)


#: Words that name the kind of an entity, not the entity: dropped before readings are compared.
GENERIC_WORDS = frozenset(
    "股份有限公司 有限公司 株式会社 集团 公司 大学 学校 研究所 银行 医院 站 机场 县 省 市 区 町 村 "
    "州 国 岛 山 河 湖 线 号 社".split()
)

#: Characters of the standard transliteration tables (Xinhua's 外国人名译名手册 and the like)
#: that carry sound, not meaning, in foreign names: 希丁克, 戴夫·托马斯, 圣安东尼奥.
SOUND_CHARS = frozenset(
    "阿埃艾爱安昂奥澳巴拜班邦保堡鲍贝本比彼毕宾波玻伯勃博布查柴达代戴丹道德登邓迪狄蒂丁东"
    "敦杜多厄恩尔法凡范菲斐费芬丰冯弗伏福富盖甘冈戈格葛贡古瓜圭哈海汉豪浩赫亨洪胡华怀惠霍"
    "基吉加佳迦贾坚杰捷金津卡开凯坎康考柯科克肯孔库夸奎昆拉莱兰朗劳勒雷蕾里理利莉丽列林琳"
    "灵留隆卢鲁陆路伦罗洛马玛迈麦曼芒毛梅门蒙孟米密缅明摩莫默姆穆纳娜乃奈南内妮尼宁纽努诺"
    "欧帕派潘庞佩彭皮平珀蒲普齐奇恰乔切钦琴丘屈让热仁瑞若萨塞赛桑瑟森沙莎山尚舍什施史士舒"
    "斯松宋苏索塔泰坦汤唐陶特滕提汀廷图托瓦万旺威韦维温文翁沃乌伍武西希锡席夏谢辛欣休修许"
    "雅亚扬耶叶伊依因音英尤于约泽扎詹兹佐"
)

LANGUAGE = Language(
    code="zh",
    name="Chinese",
    tokenizer=make_tokenizer,
    scripts=frozenset({"Han"}),
    foreign_ok=frozenset({"Latin"}),
    length_factor=0.75,  # median zh/ja length of the demo translations: 0.75
    romanize=sound_reading,
    han_form=han_form,
    generic_words=GENERIC_WORDS,
    sound_chars=SOUND_CHARS,
    edge_words=frozenset("的 了 和 与 及 在 是 于 从 对 把 被 将 为 也 并 而".split()),
)
