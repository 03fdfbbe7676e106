"""The optimizer of a run (AdamW with optional fp32 master weights) and its learning-rate schedule.

bf16 training keeps the weights the model computes with in bf16 and an fp32 master copy in the
optimizer. The master copy must be taken from the fp32 weights **before** the model is cast
(``AdamW`` first, then :func:`cast_model`): a copy taken after the cast only holds bf16 values
widened to fp32, and every update smaller than a bf16 ulp of the initial weight would be lost
from the first step.
"""

from __future__ import annotations

import math
from typing import Any

from training.config import TrainConfig

#: Buffers that stay fp32 when a model is cast to bf16: the rotary frequencies. Cast, they give
#: wrong angles (0.3 rad at position 320), and inference (which loads them fp32) would see other
#: positions than training did.
FP32_BUFFER_SUFFIXES = ("inv_freq",)


def cast_model(model: Any, dtype: Any) -> Any:
    """``model`` cast to ``dtype`` in place, its rotary ``inv_freq`` buffers kept fp32.

    Parameters keep their identity (``Module.to`` swaps their data), so an optimizer built
    before the cast still holds them.
    """
    import torch

    kept: list[tuple[Any, str, Any]] = []
    for module in model.modules():
        for name, buf in list(module._buffers.items()):
            if buf is not None and name.endswith(FP32_BUFFER_SUFFIXES) and buf.is_floating_point():
                kept.append((module, name, buf.detach().to(torch.float32).clone()))
        # transformers keeps a plain-attribute copy for dynamic RoPE types; keep it fp32 too
        orig = getattr(module, "original_inv_freq", None)
        if isinstance(orig, torch.Tensor):
            kept.append((module, "original_inv_freq", orig.detach().to(torch.float32).clone()))
    model.to(dtype=dtype)
    for module, name, value in kept:
        device = next((p.device for p in model.parameters()), value.device)
        if name in module._buffers:
            module._buffers[name] = value.to(device)
        else:
            setattr(module, name, value.to(device))
    return model


class AdamW:
    """AdamW (fused on CUDA) over the trainable parameters, with weight-decay groups.

    ``master=True`` keeps an fp32 copy of the parameters, taken when the optimizer is built
    (build it before casting the model to bf16): gradients are copied to the fp32 copy, the
    step runs there, and the result is copied back to the bf16 weights, so updates far smaller
    than a bf16 ulp are not lost. The forward and backward run in bf16 with no autocast casts.
    """

    def __init__(self, model: Any, cfg: TrainConfig, *, master: bool, fused: bool) -> None:
        import torch

        self.params = [p for p in model.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError("the model has no trainable parameters")
        self.master = master
        self.shadow = (
            [p.detach().to(torch.float32, copy=True) for p in self.params]
            if master
            else list(self.params)
        )
        decay = [s for p, s in zip(self.params, self.shadow, strict=True) if p.ndim >= 2]
        no_decay = [s for p, s in zip(self.params, self.shadow, strict=True) if p.ndim < 2]
        groups = [{"params": decay, "weight_decay": cfg.weight_decay}]
        if no_decay:
            groups.append({"params": no_decay, "weight_decay": 0.0})
        self.opt = torch.optim.AdamW(
            groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=fused or None
        )

    def set_lr(self, lr: float) -> None:
        for group in self.opt.param_groups:
            group["lr"] = lr

    def step(self, grad_clip: float) -> float:
        """One update; returns the gradient norm before clipping (0.0 when not measured)."""
        import torch

        if self.master:
            for p, s in zip(self.params, self.shadow, strict=True):
                s.grad = None if p.grad is None else p.grad.detach().float()
        norm = 0.0
        if grad_clip > 0:
            norm = float(torch.nn.utils.clip_grad_norm_(self.shadow, grad_clip))
        self.opt.step()
        if self.master:
            with torch.no_grad():
                torch._foreach_copy_(self.params, self.shadow)
        return norm

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None
        if self.master:
            for s in self.shadow:
                s.grad = None

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"opt": self.opt.state_dict()}
        if self.master:
            state["master"] = [s.detach().cpu() for s in self.shadow]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        import torch

        self.opt.load_state_dict(state["opt"])
        if self.master and "master" in state:
            with torch.no_grad():
                for s, saved in zip(self.shadow, state["master"], strict=True):
                    s.copy_(saved)
                torch._foreach_copy_(self.params, self.shadow)


def lr_at(step: int, cfg: TrainConfig, total_steps: int) -> float:
    """Linear warm-up to ``lr``, then cosine decay to ``lr * min_lr_ratio`` at the last step."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(1, total_steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + 0.5 * (cfg.lr - floor) * (1 + math.cos(math.pi * progress))
