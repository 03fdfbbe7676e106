"""Checkpoints: model + tokenizer (``save_pretrained``), the OIELLM meta file, and the trainer
state (optimizer, step, data position, RNG) that ``resume`` needs.

A checkpoint is written to ``DIR.tmp`` and renamed into place, so a run killed while saving
leaves the previous checkpoint whole.
"""

from __future__ import annotations

import logging
import random
import shutil
from pathlib import Path
from typing import Any

from mre.files import atomic_write_json
from training.config import TrainConfig
from training.distributed import Dist
from training.optim import AdamW
from training.sampler import RowStream

logger = logging.getLogger(__name__)

#: Written next to every saved model: how ``training.infer`` must build prompts.
OIELLM_META_FILE = "oiellm.json"
TRAINER_STATE_FILE = "trainer_state.pt"


def write_oiellm_meta(
    directory: Path, cfg: TrainConfig, span_labels: dict[str, list[str]] | None = None
) -> None:
    """``oiellm.json``: the prompt style and, when known, the span labels of the training
    records by task word (``training.relabel`` chooses among them)."""
    meta: dict[str, Any] = {"format": "oiellm", "prompt_style": cfg.prompt_style}
    if span_labels:
        meta["span_labels"] = span_labels
    atomic_write_json(directory / OIELLM_META_FILE, meta)


def unwrap(model: Any) -> Any:
    """The plain model under torch.compile and DDP wrappers."""
    model = getattr(model, "_orig_mod", model)  # torch.compile
    return getattr(model, "module", model)  # DDP


def rng_state() -> dict[str, Any]:
    import torch

    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import torch

    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    directory: Path,
    *,
    model: Any,
    tokenizer: Any,
    optim: AdamW | None,
    cfg: TrainConfig,
    step: int,
    stream: RowStream | None,
    dist: Dist,
    merge_lora: bool = False,
    span_labels: dict[str, list[str]] | None = None,
) -> None:
    """Model + tokenizer (``save_pretrained``), OIELLM meta and, with ``optim``, the trainer
    state. Written to a temporary directory first, then renamed into place."""
    import torch

    raw = unwrap(model)
    state_dict = None
    optim_state = optim.state_dict() if optim is not None and not cfg.fsdp else None
    if dist.world > 1 and cfg.fsdp:
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            get_model_state_dict,
            get_optimizer_state_dict,
        )

        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        state_dict = get_model_state_dict(raw, options=options)
        if optim is not None:
            optim_state = {"opt": get_optimizer_state_dict(raw, optim.opt, options=options)}
    if not dist.main:
        return
    tmp = directory.with_name(directory.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    to_save = raw
    if merge_lora and hasattr(raw, "merge_and_unload"):
        import copy

        to_save = copy.deepcopy(raw).merge_and_unload()
    to_save.save_pretrained(tmp, state_dict=state_dict)
    tokenizer.save_pretrained(tmp)
    write_oiellm_meta(tmp, cfg, span_labels)
    if optim_state is not None:
        torch.save(
            {
                "step": step,
                "optimizer": optim_state,
                "stream": stream.state_dict() if stream is not None else None,
                "rng": rng_state(),
                "config": cfg.to_dict(),
            },
            tmp / TRAINER_STATE_FILE,
        )
    if directory.exists():
        shutil.rmtree(directory)
    tmp.rename(directory)


def load_trainer_state(source: Path) -> dict[str, Any]:
    import torch

    state: dict[str, Any] = torch.load(
        source / TRAINER_STATE_FILE, map_location="cpu", weights_only=False
    )
    return state


def find_latest_checkpoint(out_dir: Path) -> Path | None:
    ckpts = sorted((out_dir / "checkpoints").glob("step-*"))
    ckpts = [c for c in ckpts if (c / TRAINER_STATE_FILE).exists()]
    return ckpts[-1] if ckpts else None


def prune_checkpoints(out_dir: Path, keep: int) -> None:
    ckpts = sorted((out_dir / "checkpoints").glob("step-*"))
    ckpts = [c for c in ckpts if not c.name.endswith(".tmp")]
    for old in ckpts[: max(0, len(ckpts) - keep)]:
        shutil.rmtree(old, ignore_errors=True)


def resume_dir(cfg: TrainConfig) -> Path | None:
    """The checkpoint to resume from (``resume=auto``: the latest one, if any)."""
    if not cfg.resume:
        return None
    if cfg.resume == "auto":
        found = find_latest_checkpoint(Path(cfg.out_dir))
        if found is None:
            logger.info("resume=auto: no checkpoint in %s, starting fresh", cfg.out_dir)
        return found
    path = Path(cfg.resume)
    if not (path / TRAINER_STATE_FILE).exists():
        raise FileNotFoundError(f"resume={cfg.resume}: no {TRAINER_STATE_FILE} there")
    return path
