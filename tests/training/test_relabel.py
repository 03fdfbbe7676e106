"""Choosing each span's label after its span (`training.relabel`): items are parsed and joined
back exactly, each item takes the label whose whole item the model scores highest (checked
against one-at-a-time scoring with a real tiny model), and spans never change."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")

TEXT = "鳥山は東京で則巻アラレを描いた。"
LABELS = ["人名", "地名", "法人名"]


@pytest.fixture(scope="module")
def tok() -> Any:
    from training.tokenizer import train_bpe_tokenizer

    return train_bpe_tokenizer([TEXT + "/NER\n/NER/:人名;鳥山:地名;東京:法人名;則巻アラレ"] * 8, 320)


@pytest.fixture(scope="module")
def model(tok: Any) -> Any:
    from training.model import build_model_from_config

    cfg = dict(
        model_type="qwen2", hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
    )  # fmt: skip
    return build_model_from_config(cfg, tok, seed=0).eval()


def test_relabel_split_and_join_items() -> None:
    from training.relabel import join_items, split_items

    out = "/NER/:人名;鳥山:地名;東京"
    head, items = split_items(out, "NER") or ("", [])
    assert head == "/NER/" and items == [("人名", "鳥山"), ("地名", "東京")]
    assert join_items(head, items) == out
    assert split_items("/NER/", "NER") == ("/NER/", [])
    assert split_items("人名;鳥山", "NER") is None  # no head
    assert split_items("/NER/:鳥山;作者;ドラゴンボール", "NER") is None  # a relation item
    assert split_items("/NER/:人名", "NER") is None  # a cut item
    assert split_items(out + ":", "NER") == (head, items)  # a trailing ':' as the decoder reads it


def _score_one(model: Any, prompt: list[int], cont: list[int]) -> float:
    ids = torch.tensor([prompt + cont])
    with torch.inference_mode():
        logp = model(input_ids=ids).logits.float().log_softmax(-1)[0]
    return float(sum(logp[len(prompt) - 1 + i, t] for i, t in enumerate(cont)))


def test_relabel_takes_the_label_of_the_most_likely_item(tok: Any, model: Any) -> None:
    from training.relabel import join_items, relabel, split_items

    outputs = ["/NER/:地名;鳥山:人名;東京:地名;則巻アラレ", "/NER/:法人名;東京", "/NER/", "junk"]
    prompts = [list(tok(TEXT + "/NER\n")["input_ids"])] * len(outputs)
    eos = tok.eos_token_id
    got = relabel(model, tok, prompts, outputs, "NER", LABELS, batch_size=3, end_id=eos)
    assert got[2:] == outputs[2:]  # nothing to relabel
    for out, new, prompt in zip(outputs[:2], got[:2], prompts[:2], strict=True):
        head, items = split_items(out, "NER") or ("", [])
        new_items = (split_items(new, "NER") or ("", []))[1]
        assert [s for _, s in new_items] == [s for _, s in items]  # spans as generated
        chosen: list[tuple[str, str]] = []
        for k, (_, span) in enumerate(items):  # one at a time, no padding
            last = k + 1 == len(items)
            scores = {}
            for label in LABELS:
                text = join_items(head, [*chosen, (label, span)]) + ("" if last else ":")
                ids = list(tok(text, add_special_tokens=False)["input_ids"])
                scores[label] = _score_one(model, prompt, [*ids, eos] if last else ids)
            chosen.append((max(scores, key=lambda x: scores[x]), span))
        assert new_items == chosen
    assert got[:2] != outputs[:2]  # this model (seed 0) disagrees with some generated label


def test_relabel_needs_two_labels(tok: Any, model: Any) -> None:
    from training.relabel import relabel

    outputs = ["/NER/:地名;鳥山"]
    prompts = [list(tok(TEXT + "/NER\n")["input_ids"])]
    assert relabel(model, tok, prompts, outputs, "NER", ["人名"]) == outputs


def test_labels_by_task_sorted_per_task_word() -> None:
    from mre import Record, Span
    from training.data import labels_by_task

    def rec(i: str, task: str, label: str, **kw: Any) -> Record:
        return Record(id=i, lang="ja", task=task, text="鳥山", spans=[
            Span(start=0, end=2, text="鳥山", label=label)], **kw)  # fmt: skip

    records = [rec("a", "SCNM", "人名"), rec("b", "SCNM", "地名"), rec("c", "TCREE", "作者"),
               rec("d", "TCREE", "trigger", meta={"event": True})]  # fmt: skip
    assert labels_by_task(records) == {
        "Event Extraction": ["trigger"], "NER": ["人名", "地名"], "Relation Extraction": ["作者"],
    }  # fmt: skip


def test_relabel_batched_scores_equal_one_at_a_time(tok: Any, model: Any) -> None:
    """Left padding and the kept logits: each row scores as it does alone (also with no pad
    token: padding sits under the mask)."""
    from training.relabel import sequence_logprobs

    prompt = list(tok(TEXT + "/NER\n")["input_ids"])
    conts = ["/NER/:人名;鳥山", "/NER/:人名;鳥山:地名;東京:法人名;則巻アラレ", "/NER/"]
    rows = [(prompt[k:], list(tok(c, add_special_tokens=False)["input_ids"])) for k, c in
            enumerate(conts)]  # fmt: skip
    got = sequence_logprobs(model, rows, tok.pad_token_id, batch_size=3)
    want = [_score_one(model, p, c) for p, c in rows]
    assert got == pytest.approx(want, abs=1e-4)
    assert sequence_logprobs(model, rows, None, batch_size=2) == pytest.approx(want, abs=1e-4)


def test_relabel_through_extract_uses_the_checkpoint_labels(
    tok: Any, model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OIELLM.extract(copy_spans=True) relabels finished outputs among its span_labels (as
    oiellm.json gives them) and leaves an output cut by the token limit as generated."""
    from training.infer import OIELLM, Generation

    made = [Generation("/NER/:X;鳥山:X;東京", True, 9), Generation("/NER/:X;鳥山", False, 5)]
    oiellm = OIELLM(model, tok, span_labels={"NER": LABELS})
    monkeypatch.setattr(oiellm, "generate", lambda *a, **k: list(made))
    done, cut = oiellm.extract([TEXT, TEXT], "SCNM", "ja", copy_spans=True)
    assert [s.text for s in done.spans] == ["鳥山", "東京"]
    assert {s.label for s in done.spans} <= set(LABELS)
    assert done.meta["oiellm_output"] != made[0].text
    assert cut.meta["oiellm_output"] == made[1].text
