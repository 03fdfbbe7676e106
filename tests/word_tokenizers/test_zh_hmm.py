"""The Chinese tokenizer's own posseg HMM (word_tokenizers/lang/_zh_hmm.py) gives exactly what
jieba.posseg gives: the same Viterbi routes, and the same words, offsets and tags on real text."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("jieba")

import jieba.posseg
from jieba.posseg import char_state_tab_P, emit_P, start_P, trans_P
from jieba.posseg.viterbi import viterbi as jieba_viterbi

import word_tokenizers
from word_tokenizers.lang import zh as zh_lang
from word_tokenizers.lang._zh_hmm import hmm_words, viterbi

ROOT = Path(__file__).resolve().parents[2]
HAN = re.compile(r"[\u4E00-\u9FFF]")
MARKER = re.compile(r"</?e\d+>")


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def chinese_texts() -> list[str]:
    """Every string holding Han characters in the examples and test fixtures (markers
    removed), and clauses and windows of them: a few thousand real strings."""
    texts: set[str] = set()
    files = [*(ROOT / "examples").glob("*.jsonl"), *(ROOT / "tests" / "fixtures").rglob("*.jsonl")]
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            texts.update(MARKER.sub("", s) for s in _strings(obj) if HAN.search(s))
    out = set(texts)
    for text in texts:
        out.update(p for p in re.split(r"[。，、；：！？,.;:!?\s]+", text) if p)
        for size in (5, 16):
            out.update(text[i : i + size] for i in range(0, max(1, len(text) - size + 1), 5))
    return sorted(out)


@pytest.fixture(scope="module")
def tokenizers() -> tuple[Any, Any]:
    """The project's Chinese tokenizer, and one on plain jieba.posseg over the same dictionary."""
    ours = word_tokenizers.get("zh")
    plain_backend = jieba.posseg.POSTokenizer(ours.backend.tokenizer)
    plain_backend.word_tag_tab.update(zh_lang.TAG_FIXES)
    return ours, zh_lang.ChineseTokenizer(plain_backend)


def test_same_tokens_as_jieba_posseg_on_real_text(tokenizers: tuple[Any, Any]) -> None:
    ours, plain = tokenizers
    texts = chinese_texts()
    assert len(texts) > 2000
    want = [plain.tokenize(text) for text in texts]
    for _ in range(2):  # the second pass reads the remembered HMM runs
        for text, tokens in zip(texts, want, strict=True):
            assert ours.tokenize(text) == tokens, text


def test_same_routes_as_jieba_viterbi_on_random_runs() -> None:
    """Known and unknown characters mixed (unknown ones may take any of the 256 states)."""
    chars = sorted(char_state_tab_P) + [chr(c) for c in range(0x4E00, 0x9FD6, 97)]
    rng = random.Random(7)
    for _ in range(800):
        run = "".join(rng.choice(chars) for _ in range(rng.randint(1, 14)))
        assert viterbi(run) == jieba_viterbi(run, char_state_tab_P, start_P, trans_P, emit_P), run


def test_hmm_words_partition_the_run() -> None:
    for run in ["希丁克", "戴夫托马斯", "圣安东尼奥马刺", "乌"]:
        assert "".join(w for w, _ in hmm_words(run)) == run


def test_tags_copied_from_posseg_equal_the_dictionary_file_and_stay_private() -> None:
    """The tokenizer copies the tags jieba.posseg read at import instead of parsing the file a
    second time: the same table as a fresh parse, and our TAG_FIXES do not leak into jieba's."""
    import jieba

    from word_tokenizers.lang._zh_hmm import HMMPOSTokenizer

    segmenter = jieba.Tokenizer()
    ours = HMMPOSTokenizer(segmenter)
    parsed = jieba.posseg.POSTokenizer(segmenter)  # parses the dictionary file
    assert ours.word_tag_tab == parsed.word_tag_tab and len(ours.word_tag_tab) > 300_000
    assert ours.word_tag_tab is not jieba.posseg.dt.word_tag_tab
    tok = zh_lang.make_tokenizer()
    for word, tag in zh_lang.TAG_FIXES.items():
        assert tok.backend.word_tag_tab[word] == tag
        assert jieba.posseg.dt.word_tag_tab.get(word) != tag or parsed.word_tag_tab.get(word) == tag
