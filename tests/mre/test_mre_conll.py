"""CoNLL/BIO export: tags on token boundaries, cut tokens reported, never shifted."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable
from pathlib import Path

import pytest

from mre import Record, read_records, to_conll, write_conll
from mre.conll import bio_tags
from word_tokenizers import Token, Tokenizer

SHARED_DATA = Path(
    os.environ.get("MMM_SHARED_DATA")
    or Path(__file__).resolve().parents[2].parent / "shared" / "data"
)
STOCKMARK = SHARED_DATA / "stockmark-ner-ja" / "ner.jsonl"
needs_stockmark = pytest.mark.skipif(
    not STOCKMARK.is_file(), reason=f"shared data not found at {STOCKMARK} (set MMM_SHARED_DATA)"
)


class WhitespaceTokenizer:
    """A fake tokenizer: every run of non-space characters is a token."""

    lang = "en"

    def tokenize(self, text: str) -> list[Token]:
        return [
            Token(m.group(), m.start(), m.end(), "X", m.group()) for m in re.finditer(r"\S+", text)
        ]

    def tokenize_batch(self, texts: Iterable[str]) -> list[list[Token]]:
        return [self.tokenize(t) for t in texts]


def _record(
    text: str, *spans: tuple[str, str], rid: str = "r1", label: str | None = None
) -> Record:
    """A record whose spans are found in order by their text (first occurrence after the last)."""
    out = []
    pos = 0
    for phrase, lab in spans:
        start = text.index(phrase, pos)
        out.append({"start": start, "end": start + len(phrase), "text": phrase, "label": lab})
        pos = start
    out.sort(key=lambda s: (s["start"], s["end"]))
    return Record.model_validate(
        {"id": rid, "lang": "en", "task": "TCONER", "text": text, "label": label, "spans": out}
    )


TOK = WhitespaceTokenizer()


@pytest.mark.parametrize(
    ("record", "tags", "problems"),
    [
        pytest.param(
            _record("Marlon Brando met Kazan .", ("Marlon Brando", "Person"), ("Kazan", "Person")),
            ["B-Person", "I-Person", "O", "B-Person", "O"],
            [],
            id="exact",
        ),
        pytest.param(
            _record("I saw On the Waterfront", ("On the Waterfront", "Product Name")),
            ["O", "O", "B-Product_Name", "I-Product_Name", "I-Product_Name"],
            [],
            id="label_with_space",
        ),
        pytest.param(
            _record("Kazan Spiegel", ("Kazan", "Person"), ("Spiegel", "Person")),
            ["B-Person", "B-Person"],
            [],
            id="adjacent_same_label",
        ),
        pytest.param(
            _record("NewYork city", ("New", "Location")),
            ["B-Location", "O"],
            [("cut_token", 0, "New", "NewYork")],
            id="cut_end",
        ),
        pytest.param(
            _record("the Tokyoites here", ("okyo", "Location")),
            ["O", "B-Location", "O"],
            [("cut_token", 0, "okyo", "Tokyoites")],
            id="cut_both_sides",
        ),
        pytest.param(
            _record("in NewYork city", ("York city", "Location")),
            ["O", "B-Location", "I-Location"],
            [("cut_token", 0, "York city", "NewYork")],
            id="cut_start",
        ),
        pytest.param(
            _record("Marlon Brando acted", ("Marlon Brando", "Person"), ("Brando", "Surname")),
            ["B-Person", "I-Person", "O"],
            [("overlap", 1, "Brando", "Brando")],
            id="nested",
        ),
        pytest.param(
            _record("a  b", (" ", "Gap")),
            ["O", "O"],
            [("no_token", 0, " ", None)],
            id="no_token",
        ),
    ],
)
def test_conll_bio_tags(
    record: Record, tags: list[str], problems: list[tuple[str, int, str, str | None]]
) -> None:
    got_tags, got_problems = bio_tags(record, TOK.tokenize(record.text))
    assert got_tags == tags
    assert [(p.kind, p.span_index, p.span_text, p.token) for p in got_problems] == problems
    assert all(p.record_id == record.id and str(p).startswith("record 'r1'") for p in got_problems)


def test_conll_keeps_spaces_when_asked() -> None:
    record = _record("On the Waterfront", ("On the Waterfront", "Product Name"))
    tags, _ = bio_tags(record, TOK.tokenize(record.text), space=" ")
    assert tags == ["B-Product Name", "I-Product Name", "I-Product Name"]


def test_conll_text_layout(tmp_path: Path) -> None:
    records = [
        _record("Kazan met Spiegel", ("Kazan", "Person"), rid="a", label="Literature"),
        _record("NewYork city", ("New", "Location"), rid="b"),
    ]
    text, problems = to_conll(records, tokenizer=TOK)
    assert text == (
        "# id = a\n# label = Literature\nKazan\tB-Person\nmet\tO\nSpiegel\tO\n"
        "\n"
        "# id = b\nNewYork\tB-Location\ncity\tO\n"
    )
    assert [(p.record_id, p.kind) for p in problems] == [("b", "cut_token")]
    path = tmp_path / "out" / "x.conll"
    assert write_conll(records, path, tokenizer=TOK) == problems
    assert path.read_text(encoding="utf-8") == text


def _ja_tokenizer() -> Tokenizer:
    import word_tokenizers

    try:
        return word_tokenizers.get("ja")
    except (KeyError, ImportError) as exc:  # the ja backend is not written or not installed
        pytest.skip(f"the ja word tokenizer is not available: {exc}")


@needs_stockmark
def test_conll_real_japanese_records_with_ja_tokenizer() -> None:
    tokenizer = _ja_tokenizer()
    records = list(itertools.islice(read_records(STOCKMARK), 300))
    text, problems = to_conll(records, "ja")
    blocks = text.split("\n\n")
    assert len(blocks) == len(records)
    for record, block in zip(records, blocks, strict=True):
        lines = block.strip("\n").split("\n")
        assert lines[0] == f"# id = {record.id}"
        rows = [line.split("\t") for line in lines[1:]]
        assert all(len(r) == 2 for r in rows)
        assert "".join(tok for tok, _ in rows) == re.sub(r"\s", "", record.text)
        mine = [p for p in problems if p.record_id == record.id]
        starts = sum(tag.startswith("B-") for _, tag in rows)
        untagged = sum(p.kind in ("no_token", "overlap") for p in mine)
        assert starts >= len(record.spans) - untagged
        assert {tag[2:] for _, tag in rows if tag != "O"} <= {s.label for s in record.spans}
    # every reported cut is a real one: the token does not sit inside the span
    by_id = {r.id: r for r in records}
    for p in problems:
        if p.kind == "cut_token":
            record = by_id[p.record_id]
            span = record.spans[p.span_index]
            cut = [t for t in tokenizer.tokenize(record.text) if t.text == p.token]
            assert any(t.start < span.start < t.end or t.start < span.end < t.end for t in cut)
