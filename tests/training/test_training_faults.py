"""issue 15's four faults, each with a test that fails on the code before the fix:

1. a tokenizer trained on the spot comes back from disk the same (all of the shared data), and
   a resumed run on real data is bit-exact with the straight run;
2. bf16: the rotary buffers stay fp32, and the fp32 master weights are taken before the cast;
3. greedy decoding ignores the checkpoint's own sampling defaults (a repetition penalty);
4. flash-attention with packed rows and more than one row per batch is flattened or refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from training.config import TrainConfig

TINY = dict(
    model_type="qwen2", hidden_size=32, intermediate_size=64, num_hidden_layers=1,
    num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024,
    tie_word_embeddings=True,
)  # fmt: skip


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _shared_records(shared_data: Path) -> list[Any]:
    from training.data import load_records

    return load_records(sorted(str(p) for p in shared_data.rglob("*.jsonl")))


# -- 1. the tokenizer round trip and bit-exact resume --------------------------------------------


def test_training_tokenizer_save_load_tokenizes_every_shared_example_the_same(
    shared_data: Path, tmp_path: Path
) -> None:
    from training.build import _tokenizer_texts
    from training.data import make_example
    from training.model import build_model_from_config, load_tokenizer
    from training.tokenizer import train_bpe_tokenizer

    records = _shared_records(shared_data)
    tok = train_bpe_tokenizer(_tokenizer_texts(records), 1024)
    # saved next to a qwen2 model, as a run saves it: AutoTokenizer would pick Qwen2Tokenizer
    build_model_from_config(TINY, tok).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    back = load_tokenizer(str(tmp_path))
    differ = [r.id for r in records if make_example(r, tok, "plain") != make_example(r, back, "plain")]
    assert differ == [], f"{len(differ)} of {len(records)} examples tokenize differently"
    assert (back.eos_token_id, back.pad_token_id) == (tok.eos_token_id, tok.pad_token_id)


def test_training_resume_is_bit_exact_on_real_data(shared_data: Path, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    from mre.io import write_jsonl
    from training.train import main

    write_jsonl(_shared_records(shared_data)[:160], tmp_path / "train.jsonl")

    def cfg(out: str, **kw: Any) -> TrainConfig:
        values: dict[str, Any] = dict(
            model_config=TINY, tokenizer_vocab_size=512, train_files=[str(tmp_path / "train.jsonl")],
            max_seq_len=384, rows_per_batch=2, grad_accum=2, max_steps=4, lr=5e-3, warmup_steps=1,
            device="cpu", precision="fp32", out_dir=str(tmp_path / out), save_every=2,
            keep_checkpoints=5, log_every=1, progress=False,
        )  # fmt: skip
        values.update(kw)
        return TrainConfig(**values)

    straight = main(cfg("a"))
    resumed = main(cfg("b", resume=str(tmp_path / "a" / "checkpoints" / "step-0000002")))
    assert resumed.losses == straight.losses[2:]  # bit-exact, not approximately
    a = load_file(tmp_path / "a" / "final" / "model.safetensors")
    b = load_file(tmp_path / "b" / "final" / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


# -- 2. bf16: rotary buffers fp32, master weights from the fp32 model ----------------------------


def test_training_bf16_keeps_rope_fp32_and_masters_from_fp32_weights() -> None:
    import torch

    from training.build import place_model
    from training.distributed import Dist
    from training.model import build_model_from_config
    from training.tokenizer import train_bpe_tokenizer

    tok = train_bpe_tokenizer(["東京都千代田区 1984年 abc"] * 4, 300)
    model = build_model_from_config(TINY, tok, seed=0)
    fp32 = {n: p.detach().clone() for n, p in model.named_parameters()}
    inv_freq = {n: b.clone() for n, b in model.named_buffers() if n.endswith("inv_freq")}
    assert inv_freq
    cfg = TrainConfig(model_config=TINY, precision="bf16")
    model, optim = place_model(
        model, cfg, precision="bf16", device=torch.device("cpu"), dist=Dist()
    )
    for name, buf in model.named_buffers():
        if name.endswith("inv_freq"):
            assert buf.dtype == torch.float32 and torch.equal(buf, inv_freq[name])
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    for name, master in zip(names, optim.shadow, strict=True):
        assert master.dtype == torch.float32
        assert torch.equal(master, fp32[name]), f"{name}: master copy is not the fp32 weight"


# -- 3. greedy is greedy --------------------------------------------------------------------------


def test_training_generate_is_greedy_whatever_the_checkpoint_says() -> None:
    import torch

    from training.infer import OIELLM
    from training.model import build_model_from_config
    from training.tokenizer import train_bpe_tokenizer

    tok = train_bpe_tokenizer(["東京都千代田区に本社を置く。/NER\n人名;山田"] * 8, 300)
    model = build_model_from_config(TINY, tok, seed=3).eval()
    # what an instruction-tuned base ships: sampling defaults that bend greedy decoding
    model.generation_config.repetition_penalty = 5.0
    model.generation_config.no_repeat_ngram_size = 1
    oiellm = OIELLM(model, tok, device=torch.device("cpu"))
    inputs = ["東京都千代田区に本社を置く。/NER", "山田/NER"]
    got = oiellm.generate(inputs, batch_size=2, max_new_tokens=12)
    for x, gen in zip(inputs, got, strict=True):
        ids = tok(x + "\n")["input_ids"]
        out: list[int] = []
        with torch.no_grad():
            for _ in range(12):
                nxt = int(model(torch.tensor([ids + out])).logits[0, -1].argmax())
                if nxt == tok.eos_token_id:
                    break
                out.append(nxt)
        assert gen.n_tokens == len(out)
        assert gen.text == tok.decode(out, skip_special_tokens=True)
    assert model.generation_config.repetition_penalty == 5.0  # the model's own config is back


# -- 4. flash-attention and packed rows ---------------------------------------------------------


def _packed_batch(rows: int = 3, max_len: int = 24) -> dict[str, Any]:
    from training.packing import Example, collate_packed

    lengths = [[5, 7, 6], [9, 4], [3, 3, 3, 3]][:rows]
    packed = [
        [Example(ids=tuple(range(2, 2 + n)), n_prompt=2) for n in row] for row in lengths
    ]
    return collate_packed(packed, max_len, pad_id=0)


def test_training_flash_attention_with_packed_batches_is_flattened_or_refused() -> None:
    import torch
    from transformers.modeling_flash_attention_utils import _is_packed_sequence

    from training.attention import check_packing, flatten_for_varlen, packing_mode

    batch = _packed_batch()
    # the fault: transformers sees no packing in a batch of several rows ...
    assert not _is_packed_sequence(batch["position_ids"], batch["position_ids"].shape[0])
    assert packing_mode("flash_attention_2", 3) == "flatten"
    assert packing_mode("sdpa", 3) == "positions"
    assert packing_mode("flex_attention", 3) == "block_mask"
    with pytest.raises(ValueError, match="attends across examples"):
        check_packing("flash_attention_2", 3, "positions")
    check_packing("flash_attention_2", 3, "flatten")
    check_packing("flash_attention_2", 1, "positions")
    flat = flatten_for_varlen(batch)
    # ... and does in the flattened one, with the varlen lengths passed in
    assert flat["input_ids"].shape == (1, 3 * 24)
    assert _is_packed_sequence(flat["position_ids"], 1)
    # row 0: 5, 7, 6 + 6 padding; row 1: 9, 4 + 11 padding; row 2: 3 x 4 + 12 padding
    want = [0, 5, 12, 18, 24, 33, 37, 48, 51, 54, 57, 60, 72]
    assert flat["cu_seq_lens_q"].tolist() == want and flat["cu_seq_lens_q"].dtype == torch.int32
    assert flat["max_length_q"] == 12


def test_training_flattened_batch_has_the_same_loss() -> None:
    import torch

    from training.model import build_model_from_config
    from training.packing import count_loss_tokens
    from training.tokenizer import train_bpe_tokenizer
    from training.train import forward_loss

    tok = train_bpe_tokenizer(["abc def ghi"] * 4, 300)
    model = build_model_from_config(TINY, tok, seed=1).eval()
    batch = _packed_batch()
    n = torch.tensor(count_loss_tokens(batch))
    with torch.no_grad():
        rows = forward_loss(model, batch, "cpu", n, "positions")
        flat = forward_loss(model, batch, "cpu", n, "flatten")
    torch.testing.assert_close(rows, flat)


def test_training_flex_block_mask_is_block_diagonal_causal() -> None:
    import torch
    from torch.nn.attention.flex_attention import create_mask

    from training.attention import document_ids, packed_block_mask

    batch = _packed_batch()
    docs = document_ids(batch["position_ids"])
    assert docs[0, :19].tolist() == [0] * 5 + [1] * 7 + [2] * 6 + [3]
    block = packed_block_mask(batch["position_ids"], "cpu")
    dense = create_mask(block.mask_mod, 3, 1, 24, 24, device="cpu")[:, 0]
    i = torch.arange(24)
    want = (i[:, None] >= i[None, :]) & (docs[:, :, None] == docs[:, None, :])
    assert torch.equal(dense, want)


# -- a model that cannot be had fails before any data is read ------------------------------------


def test_training_unreachable_model_fails_before_loading_data(tmp_path: Path) -> None:
    from training.train import main

    cfg = TrainConfig(
        model="no-such-org/no-such-model-xyz", train_files=[str(tmp_path / "missing.jsonl")],
        out_dir=str(tmp_path / "run"), progress=False,
    )  # fmt: skip
    with pytest.raises(FileNotFoundError, match="no-such-org/no-such-model-xyz"):
        main(cfg)
    cfg = TrainConfig(
        model=str(tmp_path / "nothing-here"), train_files=[str(tmp_path / "missing.jsonl")],
        out_dir=str(tmp_path / "run"), progress=False,
    )  # fmt: skip
    with pytest.raises(FileNotFoundError, match="no such directory"):
        main(cfg)
