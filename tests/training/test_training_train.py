"""training.train / training.infer on CPU: a two-step smoke test, a tiny model that learns a
synthetic MRE task, save -> load, resume, and import hygiene."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mre import Record
from mre.io import write_jsonl
from mre.oiellm import encode
from training import synthetic
from training.config import TrainConfig

REPO = Path(__file__).resolve().parents[2]

TINY_MODEL = dict(
    model_type="qwen2", hidden_size=64, intermediate_size=128, num_hidden_layers=2,
    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
    tie_word_embeddings=True,
)  # fmt: skip


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _tokenizer(records: list[Record], vocab: int = 300) -> Any:
    from training.tokenizer import train_bpe_tokenizer

    return train_bpe_tokenizer(["\n".join(encode(r)) for r in records], vocab)


# -- the tokenizer ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["東京都千代田区に本社を置く。/NER", "华为总部位于深圳。", "a:b;c/d#e\\f", "émoji 🙂 ok\n"],
)
def test_train_tokenizer_round_trips_any_script(text: str) -> None:
    tok = _tokenizer(synthetic.all_records()[:50])
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text
    assert tok.eos_token_id is not None and tok.pad_token_id is not None


# -- two steps: every trainable parameter moves and the loss falls ----------------------------


@pytest.mark.parametrize(("lora", "precision"), [(False, "fp32"), (True, "fp32"), (False, "bf16")])
def test_train_two_steps_change_every_parameter_and_lower_the_loss(
    lora: bool, precision: str
) -> None:
    import torch

    from training.data import build_examples
    from training.model import add_lora, build_model_from_config
    from training.packing import collate_packed, count_loss_tokens, pack_examples
    from training.train import AdamW, forward_loss

    records = synthetic.all_records()[:40]
    tok = _tokenizer(records)
    examples, _ = build_examples(records, tok, "plain", 128)
    rows, _ = pack_examples(examples, 128)
    batch = collate_packed(rows[:2], 128, tok.pad_token_id)
    model = build_model_from_config(TINY_MODEL, tok, seed=0)
    if lora:
        model = add_lora(model, r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"])
    if precision == "bf16":
        model.to(torch.bfloat16)
    cfg = TrainConfig(model_config=TINY_MODEL, lr=1e-2, weight_decay=0.1)
    optim = AdamW(model, cfg, master=precision == "bf16", fused=False)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    assert before and (frozen if lora else True)
    n_items = torch.tensor(count_loss_tokens(batch))
    losses = []
    for _ in range(2):
        loss = forward_loss(model, batch, "cpu", n_items)
        loss.backward()
        optim.step(1.0)
        optim.zero_grad()
        losses.append(loss.item())

    assert losses[1] < losses[0]
    for name, p in model.named_parameters():
        if name in before:
            assert not torch.equal(p, before[name]), f"{name} did not change"
        else:
            assert torch.equal(p, frozen[name]), f"frozen {name} changed"


# -- a tiny model learns the synthetic task; its saved copy generates the same ----------------


# The tests below share one trained model (the `learned` fixture): 5 s on 2 idle cores, up to
# ~130 s when four other jobs share them.
@pytest.fixture(scope="module")
def learned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, list[Record]]:
    """``training.train.main`` on the synthetic task: 160 steps of a 2-layer model (it reaches
    100% held-out exact match after 150 steps on the machine where this was written)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from training.train import main

    tmp = tmp_path_factory.mktemp("learn")
    train, held = synthetic.split(n_heldout=60, seed=0)
    write_jsonl(train, tmp / "train.jsonl")
    cfg = TrainConfig(
        model_config=TINY_MODEL,
        tokenizer_vocab_size=300,
        train_files=[str(tmp / "train.jsonl")],
        max_seq_len=128,
        rows_per_batch=8,
        max_steps=160,
        lr=8e-3,
        warmup_steps=10,
        device="cpu",
        precision="fp32",
        out_dir=str(tmp / "run"),
        log_every=50,
        progress=False,
    )
    return main(cfg), held


def test_train_tiny_model_learns_the_synthetic_task(learned: tuple[Any, list[Record]]) -> None:
    from training.infer import OIELLM

    result, held = learned
    assert result.steps == 160
    assert result.losses[-1] < result.losses[0] / 10
    model = OIELLM(result.model, result.tokenizer)
    predicted = model.extract(
        [r.text for r in held], "SCNM", "en", batch_size=32, max_new_tokens=40
    )
    exact = sum(
        p.label == g.label and p.spans == g.spans for p, g in zip(predicted, held, strict=True)
    )
    wrong = [
        p.meta["oiellm_output"]
        for p, g in zip(predicted, held, strict=True)
        if p.spans != g.spans or p.label != g.label
    ]
    assert exact / len(held) >= 0.9, (exact, wrong[:5])


def test_infer_cli_extracts_from_a_record_file(
    learned: tuple[Any, list[Record]], tmp_path: Path
) -> None:
    """``python -m training.infer --checkpoint DIR --input F --out G``: one record per input
    text, the same as extracting in memory, with the raw output kept in meta."""
    from mre.io import read_records
    from training.infer import OIELLM, OUTPUT_META_KEY
    from training.infer_cli import cli

    result, held = learned
    held = held[:5]
    write_jsonl(held, tmp_path / "in.jsonl")
    argv = ["--checkpoint", str(result.final_dir), "--input", str(tmp_path / "in.jsonl"),
            "--task", "SCNM", "--lang", "en", "--device", "cpu", "--max-new-tokens", "40"]  # fmt: skip
    assert cli([*argv, "--out", str(tmp_path / "out.jsonl")]) == 0
    got = list(read_records(tmp_path / "out.jsonl"))
    want = OIELLM.load(result.final_dir, device="cpu").extract(
        [r.text for r in held], "SCNM", "en", ids=[r.id for r in held], max_new_tokens=40
    )
    assert [r.id for r in got] == [r.id for r in held]
    assert [(r.spans, r.meta[OUTPUT_META_KEY]) for r in got] == [
        (r.spans, r.meta[OUTPUT_META_KEY]) for r in want
    ]


def test_train_saved_model_generates_the_same(learned: tuple[Any, list[Record]]) -> None:
    from training.data import labels_by_task
    from training.infer import OIELLM

    result, held = learned
    assert (result.final_dir / "oiellm.json").exists()
    saved = OIELLM.load(result.final_dir, device="cpu").span_labels
    assert set(labels_by_task(held)["NER"]) <= set(saved["NER"])  # the training labels
    held = held[:24]
    texts = [r.text for r in held]
    in_memory = OIELLM(result.model, result.tokenizer).generate(
        [encode(r)[0] for r in held], batch_size=24, max_new_tokens=40
    )
    loaded = OIELLM.load(result.final_dir, device="cpu")
    again = loaded.generate([encode(r)[0] for r in held], batch_size=7, max_new_tokens=40)
    assert [g.text for g in again] == [g.text for g in in_memory]
    records = loaded.extract(texts, "SCNM", "en", ids=[r.id for r in held])
    assert [r.id for r in records] == [r.id for r in held]


def test_train_batching_does_not_change_generations(learned: tuple[Any, list[Record]]) -> None:
    from training.infer import OIELLM

    result, held = learned
    model = OIELLM(result.model, result.tokenizer)
    inputs = [encode(r)[0] for r in held[:12]]
    one_by_one = [model.generate([x], max_new_tokens=40)[0].text for x in inputs]
    assert [g.text for g in model.generate(inputs, batch_size=12, max_new_tokens=40)] == one_by_one


def test_train_cut_off_generation_is_reported(learned: tuple[Any, list[Record]]) -> None:
    from training.infer import OIELLM

    result, held = learned
    ex = OIELLM(result.model, result.tokenizer).extract_with_errors(
        [held[0].text], "SCNM", "en", max_new_tokens=8
    )[0]
    assert not ex.complete
    assert any("cut off" in str(e) or "task word" in str(e) for e in ex.errors)


# -- checkpoints: resuming gives the run that never stopped -----------------------------------


def test_train_resume_continues_exactly(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    from training.train import main

    train, _ = synthetic.split(n_heldout=0)
    write_jsonl(train[:120], tmp_path / "train.jsonl")
    small = dict(TINY_MODEL, hidden_size=32, intermediate_size=64, num_hidden_layers=1)

    def cfg(out: str, **kw: Any) -> TrainConfig:
        values: dict[str, Any] = dict(
            model_config=small, tokenizer_vocab_size=300, train_files=[str(tmp_path / "train.jsonl")],
            max_seq_len=96, rows_per_batch=2, grad_accum=2, max_steps=4, lr=5e-3, warmup_steps=1,
            device="cpu", precision="fp32", out_dir=str(tmp_path / out), save_every=2,
            keep_checkpoints=5, log_every=1, progress=False,
        )  # fmt: skip
        values.update(kw)
        return TrainConfig(**values)

    straight = main(cfg("a"))
    ckpt = tmp_path / "a" / "checkpoints" / "step-0000002"
    assert (ckpt / "trainer_state.pt").exists() and (ckpt / "oiellm.json").exists()
    resumed = main(cfg("b", resume=str(ckpt)))
    assert resumed.losses == pytest.approx(straight.losses[2:], rel=1e-5)
    a = load_file(tmp_path / "a" / "final" / "model.safetensors")
    b = load_file(tmp_path / "b" / "final" / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)
    # resume=auto picks the latest checkpoint of out_dir: step 4, so nothing is left to do
    again = main(cfg("a", resume="auto"))
    assert again.steps == 4 and again.losses == []


# -- importing needs no torch ---------------------------------------------------------------------


def test_train_modules_import_without_torch() -> None:
    code = (
        "import sys, mre.oiellm, training.config, training.data, training.packing, "
        "training.model, training.train, training.infer, training.tokenizer, training.synthetic; "
        "heavy = [m for m in ('torch', 'transformers', 'peft') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_train_cli_rejects_bad_config_with_exit_code_2(capsys: pytest.CaptureFixture[str]) -> None:
    from training.train import cli

    assert cli(["--config", str(REPO / "training/configs/tiny.yaml"), "max_stpes=3"]) == 2
    assert "did you mean 'max_steps'" in capsys.readouterr().err


# -- fine-tuning a base model from a local path, with LoRA ---------------------------------------


def test_train_lora_fine_tune_of_a_local_base_with_checkpointing(tmp_path: Path) -> None:
    from training.infer import OIELLM
    from training.model import build_model_from_config
    from training.train import main

    train, held = synthetic.split(n_heldout=4)
    write_jsonl(train[:60], tmp_path / "train.jsonl")
    tok = _tokenizer(train)
    small = dict(TINY_MODEL, hidden_size=32, intermediate_size=64, num_hidden_layers=1)
    build_model_from_config(small, tok, seed=0).save_pretrained(tmp_path / "base")
    tok.save_pretrained(tmp_path / "base")

    def cfg(**kw: Any) -> TrainConfig:
        values: dict[str, Any] = dict(
            model=str(tmp_path / "base"), lora=True, lora_r=4, lora_alpha=8,
            gradient_checkpointing=True,
            lora_target_modules=["q_proj", "v_proj"], train_files=[str(tmp_path / "train.jsonl")],
            max_seq_len=96, rows_per_batch=2, max_steps=2, lr=1e-2, device="cpu",
            precision="fp32", out_dir=str(tmp_path / "run"), save_every=1, progress=False,
        )  # fmt: skip
        values.update(kw)
        return TrainConfig(**values)

    result = main(cfg())
    step1 = tmp_path / "run" / "checkpoints" / "step-0000001"
    assert (step1 / "adapter_config.json").exists()  # step checkpoints hold the adapter
    final = tmp_path / "run" / "final"
    assert not (final / "adapter_config.json").exists()  # the final model is merged
    loaded = OIELLM.load(final, device="cpu")
    in_memory = OIELLM(result.model.merge_and_unload(), result.tokenizer)
    inputs = [encode(r)[0] for r in held]
    expected = [g.text for g in in_memory.generate(inputs, max_new_tokens=12)]
    assert [g.text for g in loaded.generate(inputs, max_new_tokens=12)] == expected
    adapter = OIELLM.load(step1, device="cpu")  # a LoRA checkpoint loads too
    assert len(adapter.generate(inputs[:1], max_new_tokens=4)) == 1
    resumed = main(cfg(resume=str(step1), out_dir=str(tmp_path / "run2")))
    assert resumed.losses == pytest.approx(result.losses[1:], rel=1e-5)


# -- several processes: DDP and FSDP2 over gloo on CPU --------------------------------------------


@pytest.mark.slow
def test_train_ddp_and_fsdp_agree(tmp_path: Path) -> None:
    """torchrun with 2 CPU processes: DDP and FSDP2 give the same losses and the same model."""
    import torch
    from safetensors.torch import load_file

    train, _ = synthetic.split(n_heldout=0)
    write_jsonl(train[:200], tmp_path / "train.jsonl")
    small = dict(TINY_MODEL, hidden_size=32, intermediate_size=64)
    overrides = [
        f"model_config={small}", "tokenizer_vocab_size=300",
        f"train_files=[{tmp_path / 'train.jsonl'}]", "max_seq_len=128", "rows_per_batch=2",
        "grad_accum=2", "max_steps=3", "lr=5e-3", "device=cpu", "precision=fp32",
        "progress=false", "log_every=1",
    ]  # fmt: skip
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    losses = {}
    for mode in ("ddp", "fsdp"):
        out = tmp_path / mode
        cmd = [*torchrun, "-m", "training.train", *overrides, f"out_dir={out}",
               f"fsdp={mode == 'fsdp'}"]  # fmt: skip
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        losses[mode] = [
            line.split(" loss ")[1].split()[0]
            for line in proc.stderr.splitlines()
            if " loss " in line and "step " in line
        ]
        assert len(losses[mode]) == 3, proc.stderr[-2000:]
    assert losses["ddp"] == losses["fsdp"]
    a = load_file(tmp_path / "ddp" / "final" / "model.safetensors")
    b = load_file(tmp_path / "fsdp" / "final" / "model.safetensors")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)
