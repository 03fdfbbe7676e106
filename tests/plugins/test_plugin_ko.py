"""The Korean plugin (plugins/mmm-lang-ko), installed the way a user installs a plugin.

What is checked: the entry point finds it (it is not a built-in), its tokenizer keeps the
token contract on Korean and mixed text, its glossary entries join the core's, and the whole
graph translates ja -> ko (and ja -> en + ko) through the CLI against the local
OpenAI-compatible server, with planted residue caught and repaired. The offline command of
the README's "Adding a language" section is run exactly as written there.

Install first: ``pip install ./plugins/mmm-lang-ko`` (the Makefile's set-up does it).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import word_tokenizers
from agents.markers import parse_markers
from graphs.finish import cross_target_findings
from graphs.translate import main
from mre import Record, Span, Task
from mre.glossary import labels, map_label
from replay_server.server import LocalOpenAIServer
from tests.llm_fakes import REPLAY, RecordedTranslator, kana_residue
from word_tokenizers import MissingBackendError
from word_tokenizers.languages import BUILTIN, ENTRY_POINT_GROUP
from word_tokenizers.scripts import script_of

_NOT_INSTALLED = "the Korean plugin is not installed; install it with: pip install ./plugins/mmm-lang-ko"
if importlib.util.find_spec("mmm_lang_ko") is None:
    if os.environ.get("CI"):  # CI installs it as a user would (make setup): missing is a failure
        raise ImportError(_NOT_INSTALLED)
    pytest.skip(_NOT_INSTALLED, allow_module_level=True)

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "plugin"
KO_INPUT = FIXTURES / "ko_input.jsonl"
KO_ANSWERS = FIXTURES / "ko_answers.jsonl"
README = ROOT / "README.md"


def recipe_text() -> str:
    """The README's "Adding a language" section: the recipe this module runs as written."""
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Adding a language")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


INPUT = {r["id"]: r for r in read(KO_INPUT)}
ANSWERS = {a["id"]: a for a in read(KO_ANSWERS)}


@pytest.fixture(scope="module")
def ko() -> word_tokenizers.Tokenizer:
    return word_tokenizers.get("ko")


# ---- registry ------------------------------------------------------------------------------


def test_plugin_ko_found_through_entry_point_not_builtin() -> None:
    eps = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert "ko" in eps, "no 'ko' entry point: is mmm-lang-ko installed?"
    assert eps["ko"].value == "mmm_lang_ko:LANGUAGE"
    assert eps["ko"].dist is not None and eps["ko"].dist.name == "mmm-lang-ko"
    assert "ko" not in BUILTIN
    assert "ko" in word_tokenizers.available_languages()
    language = word_tokenizers.get_language("ko")
    assert (language.code, language.name) == ("ko", "Korean")
    assert word_tokenizers.get("ko").lang == "ko"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("ja", {"Hiragana", "Katakana", "Han"}),  # Han is residue in Korean (see the plugin)
        ("zh", {"Han"}),
        ("en", set()),
    ],
)
def test_plugin_ko_residue_scripts_follow_the_source(source: str, expected: set[str]) -> None:
    ko_lang = word_tokenizers.get_language("ko")
    assert ko_lang.residue_scripts(word_tokenizers.get_language(source)) == expected
    # and the other way round: Hangul left in a translation out of Korean is residue
    assert "Hangul" in word_tokenizers.get_language(source).residue_scripts(ko_lang)


@pytest.mark.parametrize("char", ["가", "힣", "ㄱ", "ㅏ", "\u1100", "\u11a8", "\ua960", "\ud7b0"])
def test_plugin_ko_script_of_hangul(char: str) -> None:
    assert script_of(char) == "Hangul"


# ---- tokenizer -----------------------------------------------------------------------------

_HANGUL = st.characters(min_codepoint=0xAC00, max_codepoint=0xD7A3)
_PIECES = st.one_of(
    st.text(_HANGUL, min_size=1, max_size=6),
    st.sampled_from(
        [
            "삼성전자가", "했다", "예쁜", "먹었어요", "가서", "일본 코카콜라", "됐어", "ㅋㅋㅋ",
            "ㄱㄴㄷ", "NHK", "Z33", "2024년", "😀", "👍🏽", "🇰🇷", "𠀀", "漢字", "テスト", "e\u0301",
            "\u200b", "https://example.com", "a@b.com", "#태그", "(", ")", ".", "!", "…", "‘", "’",
        ]
    ),
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=3),
)
_SPACES = st.sampled_from([" ", "  ", "\n", "\t", "\u3000", ""])
KOREAN_TEXT = st.lists(st.tuples(_PIECES, _SPACES), max_size=12).map(
    lambda parts: "".join(p + s for p, s in parts)
)


def assert_token_contract(text: str, tokens: list[word_tokenizers.Token]) -> None:
    covered = [False] * len(text)
    last_end = 0
    for t in tokens:
        assert text[t.start : t.end] == t.text, (text, t)
        assert t.start >= last_end, f"{t} overlaps or goes back in {text!r}"
        assert t.text and not any(ch.isspace() for ch in t.text), t
        assert t.pos, t
        last_end = t.end
        for i in range(t.start, t.end):
            covered[i] = True
    missed = [(i, ch) for i, ch in enumerate(text) if not ch.isspace() and not covered[i]]
    assert not missed, f"characters of {text!r} in no token: {missed}"


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=KOREAN_TEXT)
def test_plugin_ko_offsets_and_coverage(ko: word_tokenizers.Tokenizer, text: str) -> None:
    tokens = ko.tokenize(text)
    assert_token_contract(text, tokens)


@pytest.mark.parametrize(
    "text",
    [
        "나는 밥을 먹었다. 예쁜 꽃이 피었어요!",
        "일본 코카콜라 주식회사는 미국에 본사를 둔 더 코카콜라 컴퍼니의 일본 법인이다.",
        "😀한국어 テスト 漢字 ABC 123 𠀀가",  # astral characters count as one str index
        "  \u200b가\t나\n\n다 ",
        "삼성전자(三星電子)는 https://example.com 에서 #신제품 을 발표했다ㅋㅋ",
        "\u1112\u1161\u11ab\u1100\u116e\u11a8\u110b\u1165",  # NFD (conjoining jamo) 한국어
        "",
        "   ",
    ],
)
def test_plugin_ko_token_contract_on_hard_cases(ko: word_tokenizers.Tokenizer, text: str) -> None:
    assert_token_contract(text, ko.tokenize(text))


def test_plugin_ko_batch_equals_one_by_one(ko: word_tokenizers.Tokenizer) -> None:
    texts = [a["text"] for a in ANSWERS.values()] + ["", "가", " 나는 간다 "]
    texts = [parse_markers(t).text for t in texts]
    assert ko.tokenize_batch(texts) == [ko.tokenize(t) for t in texts]


@pytest.mark.parametrize(
    ("text", "word", "pos", "lemma"),
    [
        ("예쁜 꽃이 피었다.", "예쁜", "ADJ", "예쁘다"),  # 예쁘 + ᆫ share a character: one token
        ("예쁜 꽃이 피었다.", "꽃", "NOUN", "꽃"),
        ("삼성전자가 새 제품을 발표했다.", "삼성전자", "PROPN", "삼성전자"),
        ("삼성전자가 새 제품을 발표했다.", "제품", "NOUN", "제품"),
        ("삼성전자가 새 제품을 발표했다.", "새", "DET", "새"),
        ("삼성전자가 새 제품을 발표했다.", "했", "VERB", "하"),  # 하 + 었 contracted
        ("나는 빨리 달렸다.", "빨리", "ADV", "빨리"),
        ("나는 빨리 달렸다.", "나", "PRON", "나"),
        ("나는 빨리 달렸다.", "는", "ADP", "는"),
    ],
)
def test_plugin_ko_pos_and_lemma(
    ko: word_tokenizers.Tokenizer, text: str, word: str, pos: str, lemma: str
) -> None:
    tokens = {t.text: t for t in ko.tokenize(text)}
    assert word in tokens, f"{word!r} is not a token of {text!r}: {list(tokens)}"
    assert (tokens[word].pos, tokens[word].lemma) == (pos, lemma)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        # particles are tokens of their own, so an entity span can stop before them
        ("김영삼 대통령도 중국을 방문했다.", ["김영삼", "대통령", "도", "중국", "을", "방문", "했", "다", "."]),
        # a multi-word dictionary entry is cut at the space
        ("일본 코카콜라 주식회사는", ["일본", "코카콜라", "주식회사", "는"]),
    ],
)
def test_plugin_ko_morpheme_tokens(ko: word_tokenizers.Tokenizer, text: str, words: list[str]) -> None:
    assert [t.text for t in ko.tokenize(text)] == words


@pytest.mark.parametrize(
    ("tag", "upos"), [("NNG", "NOUN"), ("VV-I", "VERB"), ("VA-R", "ADJ"), ("JKO", "ADP"), ("USER0", "X")]
)
def test_plugin_ko_tag_map(tag: str, upos: str) -> None:
    from mmm_lang_ko import upos_of_tag

    assert upos_of_tag(tag) == upos


@pytest.mark.parametrize("missing", ["kiwipiepy", "kiwipiepy_model"])
def test_plugin_ko_missing_backend_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    from mmm_lang_ko import tokenizer

    real = importlib.util.find_spec
    monkeypatch.setattr(
        tokenizer.importlib.util,
        "find_spec",
        lambda name, *a: None if name == missing else real(name, *a),
    )
    with pytest.raises(MissingBackendError, match=r"pip install kiwipiepy kiwipiepy-model") as err:
        tokenizer.make_tokenizer()
    assert err.value.lang == "ko"


# ---- glossary ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "source", "task", "expected"),
    [
        ("人名", "ja", "SCNM", "인명"),
        ("法人名", "ja", "SCNM", "법인명"),
        ("その他の組織名", "ja", "SCNM", "기타 조직명"),
        ("イベント名", "ja", "SCNM", "이벤트명"),
        ("社会", "ja", "SCNM", "사회"),
        ("Person", "en", "SCNM", "인명"),  # any pair: en -> ko joins through the ja pivot
        ("product name", "en", "SCNM", "제품명"),  # case-insensitive source
        ("地名", "zh", "SCNM", "지명"),
        ("ポジティブ", "ja", "SCPOS:Adj", "긍정"),
        ("中立", "ja", "SCPOS:N", "중립"),
    ],
)
def test_plugin_ko_glossary_maps_to_korean(label: str, source: str, task: str, expected: str) -> None:
    assert map_label(label, task=task, source=source, target="ko") == expected


def test_plugin_ko_glossary_covers_every_core_label() -> None:
    for task, kind in [("SCNM", "span"), ("SCNM", "text"), ("SCPOS:RW", "span"), ("SCPOS:RW", "text")]:
        assert len(labels(task, "ko", kind)) == len(labels(task, "ja", kind)) > 0  # type: ignore[arg-type]
    assert map_label("인명", task="SCNM", source="ko", target="en") == "Person"
    assert map_label("法人名", task="TCONER", source="ja", target="ko") is None  # open-domain


# ---- the whole graph through the CLI -------------------------------------------------------


def run_cli(args: list[str], base_url: str) -> int:
    return main(
        [*args, "--base-url", base_url, "--no-progress", "--log-level", "WARNING"],
        environ={"OPENAI_API_KEY": "sk-test"},
    )


def marked_entities(marked: str) -> dict[int, str]:
    """Marker index -> the text it wraps, in a recorded answer."""
    parsed = parse_markers(marked)
    return {i: parsed.text[s:e] for i, [(s, e), *_] in parsed.found.items()}


def han_residue(text: str) -> str:
    """The translator leaves the source's kanji name in the Korean text."""
    return re.sub(r"<e1>.*?</e1>", "<e1>金泳三</e1>", text, count=1)


PLANTS: dict[tuple[str, str], Callable[[str], str]] = {
    ("stockmark-100969", "ko"): kana_residue,  # <e1>ヨシダ</e1>: katakana in Korean
    ("stockmark-82811", "ko"): han_residue,
}


def test_plugin_ko_graph_ja_to_ko(tmp_path: Path) -> None:
    out = tmp_path / "out"
    handler = RecordedTranslator(plants=PLANTS, path=KO_ANSWERS)
    with LocalOpenAIServer(handler) as server:
        rc = run_cli(
            ["--input", str(KO_INPUT), "--source", "ja", "--target", "ko", "--out", str(out)],
            server.base_url,
        )
        # translation requests only (the start-up endpoint probe has no recorded answer)
        n_requests = len([r for r in server.requests if handler.entry(r) is not None])
    assert rc == 0
    accepted = {r["meta"]["source_id"]: r for r in read(out / "ko" / "accepted.jsonl")}
    assert read(out / "ko" / "rejected.jsonl") == []
    assert sorted(accepted) == sorted(INPUT)
    for rid, rec in accepted.items():
        source = INPUT[rid]
        assert rec["lang"] == "ko" and rec["task"] == "SCNM"
        assert rec["label"] == map_label(source["label"], task="SCNM", source="ja", target="ko")
        assert rec["text"] == parse_markers(ANSWERS[rid]["text"]).text
        # every span lands exactly on what the recorded answer marked, with the Korean label
        want = marked_entities(ANSWERS[rid]["text"])
        assert sorted(s["text"] for s in rec["spans"]) == sorted(want.values())
        for span in rec["spans"]:
            assert rec["text"][span["start"] : span["end"]] == span["text"]
        want_labels = sorted(
            str(map_label(s["label"], task="SCNM", source="ja", target="ko")) for s in source["spans"]
        )
        assert sorted(s["label"] for s in rec["spans"]) == want_labels
        Record.model_validate(rec)
    for (rid, _), plant in PLANTS.items():
        meta = accepted[rid]["meta"]
        assert meta["attempts"] == 2, f"planted {plant.__name__} on {rid} was not retried"
        assert "residue" in meta["history"][0] and meta["history"][1] == []
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["counts"]["ko"] == {"accepted": len(INPUT), "rejected": 0}
    assert report["findings"]["residue"] == len(PLANTS)
    assert report["attempts"] == {"1": len(INPUT) - len(PLANTS), "2": len(PLANTS)}
    assert report["llm"]["calls"] == len(INPUT) + len(PLANTS) == n_requests


def test_plugin_ko_graph_ja_to_en_and_ko_cross_target(tmp_path: Path) -> None:
    # English answers from the demo replay, Korean ones from the plugin fixtures
    replay = tmp_path / "replay.jsonl"
    lines = [json.dumps(x, ensure_ascii=False) for x in read(REPLAY) if x["id"] in INPUT]
    replay.write_text("\n".join([*lines, *KO_ANSWERS.read_text("utf-8").split("\n")]), "utf-8")
    bad = "stockmark-2364"
    handler = RecordedTranslator(always_bad={(bad, "ko"): kana_residue}, path=replay)
    out = tmp_path / "out"
    with LocalOpenAIServer(handler) as server:
        rc = run_cli(
            ["--input", str(KO_INPUT), "--source", "ja", "--target", "en", "ko", "--out", str(out)],
            server.base_url,
        )
    assert rc == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    n = len(INPUT)
    assert report["counts"]["en"] == {"accepted": n, "rejected": 0}
    assert report["counts"]["ko"] == {"accepted": n - 1, "rejected": 1}
    assert report["cross_target"]["all_accepted"] == n - 1
    assert report["cross_target"]["split"] == 1
    assert report["cross_target"]["split_records"] == [
        {"id": bad, "targets": {"en": "accepted", "ko": "rejected"}}
    ]
    [rejected] = read(out / "ko" / "rejected.jsonl")
    assert rejected["key"] == bad and rejected["reasons"] == ["residue"]
    assert rejected["attempts"] == 3 and rejected["other_targets"] == {"en": "accepted"}
    for rec in read(out / "ko" / "accepted.jsonl"):
        assert rec["meta"]["other_targets"] == {"en": "accepted"}
    en = {r["meta"]["source_id"]: r for r in read(out / "en" / "accepted.jsonl")}
    assert en[bad]["meta"]["other_targets"] == {"ko": "rejected"}


def _record(rid: str, lang: str, text: str, spans: list[tuple[str, str]], label: str) -> Record:
    out = []
    for surface, span_label in spans:
        start = text.index(surface)
        out.append(Span(start=start, end=start + len(surface), text=surface, label=span_label))
    return Record(id=rid, lang=lang, task=Task.SCNM, text=text, label=label, spans=out)


def test_plugin_ko_cross_target_check_names_the_wrong_target() -> None:
    source = _record("s1", "ja", "三木はフォードに会った。", [("三木", "人名"), ("フォード", "人名")], "社会")
    en = _record("s1.en", "en", "Miki met Ford.", [("Miki", "Person"), ("Ford", "Person")], "Society")
    ko_ok = _record("s1.ko", "ko", "미키는 포드를 만났다.", [("미키", "인명"), ("포드", "인명")], "사회")
    ko_bad = _record("s1.ko", "ko", "미키는 포드를 만났다.", [("미키", "인명"), ("포드", "지명")], "사회")
    assert cross_target_findings(source, {"en": en, "ko": ko_ok}) == {}
    found = cross_target_findings(source, {"en": en, "ko": ko_bad, "zh": None})
    assert list(found) == ["ko"]
    assert found["ko"][0].code == "cross_target_mismatch" and "지명" in found["ko"][0].message


# ---- the recipe ----------------------------------------------------------------------------


def recipe_commands() -> list[list[str]]:
    """The offline `python -m graphs.translate ... --replay ...` lines of the recipe."""
    text = recipe_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    lines = [ln.strip() for block in blocks for ln in block.replace("\\\n", " ").splitlines()]
    return [
        shlex.split(ln)
        for ln in lines
        if re.match(r"\S*python -m graphs\.translate ", ln) and "--replay" in ln
    ]


def test_plugin_ko_recipe_installs_what_ci_installs() -> None:
    text = recipe_text()
    assert "pip install ./plugins/mmm-lang-ko" in text
    assert 'ko = "mmm_lang_ko:LANGUAGE"' in text
    pyproject = (ROOT / "plugins" / "mmm-lang-ko" / "pyproject.toml").read_text(encoding="utf-8")
    assert 'ko = "mmm_lang_ko:LANGUAGE"' in pyproject


def test_plugin_ko_recipe_offline_run_works_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    [command] = recipe_commands()
    assert command[0].endswith("python") and command[1:3] == ["-m", "graphs.translate"]
    args = command[3:]
    out = Path(args[args.index("--out") + 1])
    assert not out.is_absolute()
    monkeypatch.chdir(tmp_path)  # the command's relative --out lands in tmp_path ...
    args = [str(ROOT / a) if (ROOT / a).is_file() else a for a in args]  # ... its inputs in ROOT
    assert main([*args, "--no-progress", "--log-level", "WARNING"], environ={}) == 0
    report = json.loads((tmp_path / out / "report.json").read_text(encoding="utf-8"))
    assert report["counts"]["ko"] == {"accepted": len(INPUT), "rejected": 0}
