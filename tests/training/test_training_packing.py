"""training.packing: first-fit packing, collation, and isolation of packed examples."""

from __future__ import annotations

import random

import pytest

from training.packing import (
    IGNORE_INDEX,
    Example,
    collate_packed,
    collate_padded,
    count_loss_tokens,
    pack,
    pack_examples,
)


@pytest.mark.parametrize(
    ("lengths", "max_len"),
    [([5, 3, 2, 8, 1], 8), ([1] * 50, 7), ([7, 7, 7], 7), (list(range(1, 40)), 40), ([], 4)],
)
def test_packing_pack_places_every_example_once_within_capacity(
    lengths: list[int], max_len: int
) -> None:
    rows = pack(lengths, max_len)
    flat = sorted(i for row in rows for i in row)
    assert flat == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in row) <= max_len for row in rows)
    # first-fit decreasing never needs more than 11/9 OPT + 1 rows; OPT >= total / max_len
    assert len(rows) <= 11 / 9 * (sum(lengths) / max_len) + 1 + 1e-9


def test_packing_pack_rejects_examples_longer_than_a_row() -> None:
    with pytest.raises(ValueError, match="example 1 has length 9"):
        pack([3, 9], 8)


def test_packing_stats_report_padding_waste() -> None:
    examples = [Example(ids=tuple(range(n)), n_prompt=1) for n in (6, 6, 4)]
    rows, stats = pack_examples(examples, 10, seed=1)
    assert stats.rows == len(rows) == 2
    assert stats.tokens == 16 and stats.capacity == 20
    assert stats.padding_waste == pytest.approx(0.2)
    assert "padding waste 20.0%" in str(stats)


def test_packing_collate_resets_positions_and_masks_prompts() -> None:
    a = Example(ids=(10, 11, 12, 13), n_prompt=2)
    b = Example(ids=(20, 21, 22), n_prompt=1)
    batch = collate_packed([[a, b]], max_len=9, pad_id=0)
    assert batch["input_ids"].tolist() == [[10, 11, 12, 13, 20, 21, 22, 0, 0]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3, 0, 1, 2, 0, 1]]
    x = IGNORE_INDEX
    assert batch["labels"].tolist() == [[x, x, 12, 13, x, 21, 22, x, x]]
    assert batch["n_tokens"] == 7
    assert count_loss_tokens(batch) == 4
    padded = collate_padded([a, b], pad_id=0)
    assert padded["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    assert count_loss_tokens(padded) == 4


def _tiny_model(attn: str):  # type: ignore[no-untyped-def]
    from training.model import build_model_from_config

    class Tok:  # just what build_model_from_config reads
        pad_token_id, eos_token_id, bos_token_id = 0, 1, None

        def __len__(self) -> int:
            return 97

    config = dict(
        model_type="qwen2",
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    model = build_model_from_config(config, Tok(), attn_implementation=attn, seed=0)
    return model.eval()


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packing_examples_in_a_row_do_not_see_each_other(attn: str) -> None:
    """Each example's logits in a packed row equal its logits computed alone."""
    import torch

    rng = random.Random(0)
    examples = [
        Example(ids=tuple(rng.randrange(2, 97) for _ in range(n)), n_prompt=n // 2)
        for n in (9, 5, 13)
    ]
    model = _tiny_model(attn)
    batch = collate_packed([examples], max_len=32, pad_id=0)
    with torch.no_grad():
        packed = model(
            input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False
        ).logits[0]
        start = 0
        for ex in examples:
            alone = model(input_ids=torch.tensor([ex.ids])).logits[0]
            torch.testing.assert_close(packed[start : start + len(ex)], alone, atol=1e-5, rtol=1e-4)
            start += len(ex)
        # and the check can fail: with a KV cache (transformers then ignores the position
        # resets when building the mask) the second example sees the first
        mixed = model(
            input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=True
        ).logits[0]
        alone = model(input_ids=torch.tensor([examples[1].ids])).logits[0]
        assert not torch.allclose(mixed[9:14], alone, atol=1e-3)
