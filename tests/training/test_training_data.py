"""training.data: records -> tokenized examples; the loss covers the output only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mre import Record, Span, Task
from mre.io import write_jsonl
from mre.oiellm import encode
from training import synthetic
from training.data import build_examples, build_prompt, load_records, make_example, split_records
from training.packing import IGNORE_INDEX


@pytest.fixture(scope="module")
def tok() -> Any:
    from training.tokenizer import train_bpe_tokenizer

    return train_bpe_tokenizer(["\n".join(encode(r)) for r in synthetic.all_records()], 300)


def test_data_example_masks_the_prompt_and_ends_with_eos(tok: Any) -> None:
    record = synthetic.all_records()[0]
    input_text, output_text = encode(record)
    ex = make_example(record, tok, "plain")
    assert tok.decode(ex.ids[: ex.n_prompt]) == input_text + "\n"
    assert tok.decode(ex.ids[ex.n_prompt : -1]) == output_text
    assert ex.ids[-1] == tok.eos_token_id
    labels = ex.labels
    assert labels[: ex.n_prompt] == [IGNORE_INDEX] * ex.n_prompt
    assert labels[ex.n_prompt :] == list(ex.ids[ex.n_prompt :])


def test_data_chat_prompt_uses_the_template() -> None:
    from training.tokenizer import train_bpe_tokenizer

    chat_tok = train_bpe_tokenizer(["a b c"], 270)
    chat_tok.chat_template = (
        "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</{{ m['role'] }}>{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    assert build_prompt("x/NER", chat_tok, "chat") == "<user>x/NER</user><assistant>"
    assert build_prompt("x/NER", chat_tok, "plain") == "x/NER\n"
    plain_tok = train_bpe_tokenizer(["a b c"], 270)
    with pytest.raises(ValueError, match="chat template"):
        build_prompt("x/NER", plain_tok, "chat")
    with pytest.raises(ValueError, match="prompt_style"):
        build_prompt("x/NER", plain_tok, "fancy")


def test_data_too_long_records_are_dropped_not_cut(tok: Any) -> None:
    short, long_ = synthetic.all_records()[:2]
    long_ = Record(
        id="long",
        lang="en",
        task="SCNM",
        text="x " * 200 + "Bo",
        label="t",
        spans=[Span(start=400, end=402, text="Bo", label="PER")],
    )
    examples, dropped = build_examples([short, long_], tok, "plain", max_len=64)
    assert dropped == 1 and len(examples) == 1


def test_data_load_records_filters_tasks_and_langs(tmp_path: Path) -> None:
    en = synthetic.all_records()[:3]
    ja = [r.model_copy(update={"id": r.id + "-ja", "lang": "ja"}) for r in en[:2]]
    tc = [r.model_copy(update={"id": r.id + "-tc", "task": Task.TCONER}) for r in en[:1]]
    write_jsonl(en + ja, tmp_path / "a.jsonl")
    write_jsonl(tc, tmp_path / "b.jsonl")
    paths = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    assert len(load_records(paths)) == 6
    assert {r.lang for r in load_records(paths, langs=["ja"])} == {"ja"}
    assert [r.id for r in load_records(paths, tasks=["TCONER"])] == [tc[0].id]


def test_data_split_is_seeded_and_disjoint() -> None:
    records = synthetic.all_records()[:100]
    train, held = split_records(records, 0.1, seed=3)
    assert len(held) == 10 and len(train) == 90
    assert {r.id for r in train}.isdisjoint(r.id for r in held)
    assert split_records(records, 0.1, seed=3) == (train, held)
    assert split_records(records, 0.0) == (records, [])
