"""Entity spans of the real Japanese data against Sudachi tokens: the share on token boundaries.

Runs over every record of ../shared/data/stockmark-ner-ja/ner.jsonl (or $MMM_SHARED_DATA) and
prints the share of entity spans that are runs of whole tokens, per Sudachi split mode. No
threshold is asserted: the figure is a measurement of the data and the tokenizer (an entity
such as 千代田区 inside the mode-C word 東京都千代田区 is legitimately off the boundaries);
what is asserted is that the check ran over all of it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

import word_tokenizers
from word_tokenizers.spans import boundary_sets, on_boundaries

MODES = ("C", "B", "A")


def data_file() -> Path:
    env = os.environ.get("MMM_SHARED_DATA")
    base = Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data"
    return base / "stockmark-ner-ja" / "ner.jsonl"


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    path = data_file()
    if not path.is_file():
        pytest.skip(f"no shared Japanese data at {path} (set MMM_SHARED_DATA to its folder)")
    out = []
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if line.strip():
                record = json.loads(line)
                record["line"] = line_no
                out.append(record)
    return out


def test_word_tokenizers_data_entity_spans_on_japanese_token_boundaries(
    records: list[dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
    record_property: Any,
) -> None:
    texts = [r["text"] for r in records]
    n_entities = sum(len(r["entities"]) for r in records)
    shares: dict[str, float] = {}
    off_examples: list[str] = []
    for mode in MODES:
        tokens_of = word_tokenizers.get("ja", mode=mode).tokenize_batch(texts)
        assert len(tokens_of) == len(records)
        checked = on = 0
        for record, tokens in zip(records, tokens_of, strict=True):
            text = record["text"]
            for t in tokens:  # the offsets contract, on real text
                assert text[t.start : t.end] == t.text, (record["curid"], t)
            bounds = boundary_sets(tokens)
            for entity in record["entities"]:
                start, end = entity["span"]
                assert text[start:end] == entity["name"], (record["curid"], record["line"], entity)
                checked += 1
                if on_boundaries(bounds, start, end):
                    on += 1
                elif mode == "C" and len(off_examples) < 3:
                    cut = " | ".join(t.text for t in tokens if t.end > start and t.start < end)
                    off_examples.append(f"{entity['name']} ({cut})")
        assert checked == n_entities  # every entity of every record was looked at
        shares[mode] = on / checked if checked else 0.0
        assert 0.0 <= shares[mode] <= 1.0

    report = ", ".join(f"mode {m} {shares[m]:.2%}" for m in MODES)
    summary = (
        f"\n[word_tokenizers] {n_entities} entity spans in {len(records)} Japanese records "
        f"on Sudachi token boundaries: {report}; off in mode C, e.g. {'; '.join(off_examples)}"
    )
    for mode in MODES:
        record_property(f"ja_boundary_share_{mode}", round(shares[mode], 4))
    with capsys.disabled():
        print(summary)
    assert n_entities > 0
