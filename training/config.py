"""The training configuration: a typed dataclass read from YAML plus command-line overrides.

``python -m training.train --config training/configs/tiny.yaml max_steps=50 --lr 1e-3``:
overrides are ``key=value`` or ``--key value`` / ``--key=value``; values are read as YAML
scalars (``true``, ``3``, ``[a, b]``) and checked against the field's type.

The reading machinery (``build_config``, ``read_config``, ``help_text``, ``cli_front``) works for
any config dataclass; ``self_training`` reads its ``SelfTrainConfig`` with it.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

Precision = Literal["auto", "fp32", "bf16", "bf16-pure", "autocast"]
PromptStyle = Literal["plain", "chat"]
C = TypeVar("C")  # a config dataclass


def _h(help: str) -> dict[str, str]:
    """Field metadata holding the help string (shown by ``--help``)."""
    return {"help": help}


@dataclass
class TrainConfig:
    """Everything an OIELLM training run needs; see training/configs/*.yaml."""

    # --- model and tokenizer
    model: str = field(
        default="", metadata=_h("base model: hub id or local path; empty: build from model_config")
    )
    model_config: dict[str, Any] = field(
        default_factory=dict,
        metadata=_h("transformers config for a model built from scratch (model_type plus sizes)"),
    )
    tokenizer: str = field(
        default="", metadata=_h("tokenizer hub id or path; empty: the model's, or train one")
    )
    tokenizer_vocab_size: int = field(
        default=1024, metadata=_h("vocabulary size of a tokenizer trained on the spot")
    )
    prompt_style: PromptStyle = field(
        default="plain",
        metadata=_h("plain: input + separator; chat: the tokenizer's chat template"),
    )
    attn_implementation: str = field(
        default="auto",
        metadata=_h(
            "auto, sdpa, eager, flash_attention_2, flex_attention (packing works with all)"
        ),
    )
    # --- data
    train_files: list[str] = field(
        default_factory=list,
        metadata=_h("accepted JSONL files of records (any languages and tasks)"),
    )
    eval_files: list[str] = field(
        default_factory=list,
        metadata=_h("held-out JSONL files; empty: split eval_fraction off train"),
    )
    eval_fraction: float = field(
        default=0.0, metadata=_h("fraction of the training records held out when no eval_files")
    )
    tasks: list[str] = field(
        default_factory=list, metadata=_h("keep only these tasks (empty: all)")
    )
    langs: list[str] = field(
        default_factory=list, metadata=_h("keep only these languages (empty: all)")
    )
    max_seq_len: int = field(
        default=2048, metadata=_h("length of a packed row in tokens; longer examples are dropped")
    )
    # --- optimisation
    rows_per_batch: int = field(default=8, metadata=_h("packed rows per micro-batch (per device)"))
    grad_accum: int = field(default=1, metadata=_h("micro-batches per optimizer step"))
    max_steps: int = field(default=0, metadata=_h("optimizer steps; 0: run `epochs` epochs"))
    max_minutes: float = field(
        default=0.0,
        metadata=_h(
            "stop after this many minutes of training (0: no limit); the schedule "
            "still decays over max_steps / epochs"
        ),
    )
    epochs: float = field(
        default=1.0, metadata=_h("epochs over the training rows when max_steps is 0")
    )
    lr: float = field(default=2e-5, metadata=_h("peak learning rate"))
    min_lr_ratio: float = field(
        default=0.1, metadata=_h("final learning rate as a fraction of lr (cosine decay)")
    )
    warmup_steps: int = field(default=0, metadata=_h("linear warm-up steps"))
    weight_decay: float = field(
        default=0.0, metadata=_h("AdamW weight decay (not applied to norms and biases)")
    )
    beta1: float = field(default=0.9, metadata=_h("AdamW beta1"))
    beta2: float = field(default=0.95, metadata=_h("AdamW beta2"))
    grad_clip: float = field(default=1.0, metadata=_h("clip the gradient norm to this (0: off)"))
    # --- speed
    device: str = field(
        default="auto", metadata=_h("auto (cuda if present), cpu, cuda, cuda:1, ...")
    )
    precision: Precision = field(
        default="auto",
        metadata=_h(
            "auto (bf16 on CUDA, fp32 on CPU), fp32, bf16 (bf16 weights, fp32 master copy in "
            "the optimizer), bf16-pure (bf16 weights and optimizer), autocast (fp32 + autocast)"
        ),
    )
    compile: bool = field(
        default=False, metadata=_h("torch.compile the model (never together with liger)")
    )
    liger: bool = field(
        default=False, metadata=_h("use liger-kernel if importable (never together with compile)")
    )
    gradient_checkpointing: bool = field(
        default=False, metadata=_h("recompute activations in the backward pass")
    )
    fsdp: bool = field(
        default=False, metadata=_h("with WORLD_SIZE>1: shard with FSDP2 instead of DDP")
    )
    # --- LoRA
    lora: bool = field(
        default=False, metadata=_h("train LoRA adapters (peft) instead of every weight")
    )
    lora_r: int = field(default=16, metadata=_h("LoRA rank"))
    lora_alpha: int = field(default=32, metadata=_h("LoRA alpha"))
    lora_dropout: float = field(default=0.05, metadata=_h("LoRA dropout"))
    lora_target_modules: list[str] = field(
        default_factory=lambda: [
            "q_proj",
            "k_proj",
            "v_proj",
            "o_proj",
            "gate_proj",
            "up_proj",
            "down_proj",
        ],
        metadata=_h("module names that get LoRA adapters"),
    )
    # --- run
    out_dir: str = field(
        default="runs/oiellm", metadata=_h("where checkpoints and the final model go")
    )
    save_every: int = field(
        default=0, metadata=_h("save a checkpoint every N steps (0: only at the end)")
    )
    keep_checkpoints: int = field(default=2, metadata=_h("how many step checkpoints to keep"))
    resume: str = field(
        default="", metadata=_h("empty: start fresh; auto: latest checkpoint in out_dir; or a path")
    )
    log_every: int = field(default=10, metadata=_h("log loss and throughput every N steps"))
    eval_every: int = field(
        default=0, metadata=_h("evaluate the loss on the eval rows every N steps (0: at the end)")
    )
    seed: int = field(default=0, metadata=_h("random seed (model init, data order)"))
    progress: bool = field(default=True, metadata=_h("show a tqdm progress bar"))

    def __post_init__(self) -> None:
        problems = []
        if self.compile and self.liger:
            problems.append(
                "compile and liger cannot be combined (liger under torch.compile crashed with "
                "an illegal memory access on H200); choose one"
            )
        if not self.model and not self.model_config:
            problems.append("set either model (hub id or path) or model_config")
        if self.max_seq_len < 8:
            problems.append(f"max_seq_len must be at least 8, got {self.max_seq_len}")
        for name in ("rows_per_batch", "grad_accum"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.eval_fraction < 1.0:
            problems.append(f"eval_fraction must be in [0, 1), got {self.eval_fraction}")
        if problems:
            raise ValueError("invalid training config: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _field_types(cls: type[Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in typing.get_type_hints(cls).items() if k in names}


def _coerce(name: str, value: Any, tp: Any) -> Any:
    """``value`` as the type ``tp`` of field ``name``; raises ValueError saying what came."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ValueError(f"{name}: expected one of {list(choices)}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        raise TypeError(f"{name}: union types are not supported in config dataclasses")
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ValueError(f"{name}: expected true or false, got {value!r}")
    if tp is int:
        try:  # 3, "3" and 3.0 are integers; True, 3.5 and "3.0" are not
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise ValueError
            number = int(value)
            if isinstance(value, float) and value != number:
                raise ValueError
            return number
        except (ValueError, OverflowError):
            raise ValueError(
                f"{name}: expected an integer, got {value!r} (expected a number with no fraction)"
            ) from None
    if tp is float:
        if isinstance(value, bool):
            raise ValueError(f"{name}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name}: expected a number, got {value!r}") from None
    if tp is str:
        if value is None:
            return ""
        if isinstance(value, dict | list):
            raise ValueError(f"{name}: expected a string, got {value!r}")
        return str(value)
    if origin is list:
        if value is None:
            return []
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ValueError(f"{name}: expected a list, got {value!r}")
        (item_tp,) = typing.get_args(tp)
        return [_coerce(name, v, item_tp) for v in value]
    if origin is dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValueError(f"{name}: expected a mapping, got {value!r}")
        return dict(value)
    raise TypeError(f"{name}: unsupported field type {tp!r}")


def build_config(cls: type[C], values: Mapping[str, Any], *, what: str = "config") -> C:
    """A ``cls`` (a config dataclass) from a mapping, every value checked against its field's
    type; ``what`` names the config in the unknown-key error.

    A key ``FIELD.KEY`` (from the command line) sets one entry of the mapping field ``FIELD``.
    """
    types_ = _field_types(cls)
    kwargs: dict[str, Any] = {}
    dotted: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        head, _, sub = key.partition(".")
        if sub and typing.get_origin(types_.get(head)) is dict:
            dotted.setdefault(head, {})[sub] = value
            continue
        if key not in types_:
            close = difflib.get_close_matches(key, sorted(types_), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown {what} key {key!r}{hint}")
        kwargs[key] = _coerce(key, value, types_[key])
    for head, entries in dotted.items():
        kwargs[head] = {**kwargs.get(head, {}), **entries}
    return cls(**kwargs)


def config_from_dict(values: Mapping[str, Any]) -> TrainConfig:
    """A TrainConfig from a mapping (YAML), every value checked against its field's type."""
    return build_config(TrainConfig, values)


def parse_overrides(args: Sequence[str]) -> dict[str, Any]:
    """``["a=1", "--b", "2", "--c=x"]`` -> ``{"a": 1, "b": 2, "c": "x"}`` (values as YAML)."""
    import yaml

    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--"):
            key = arg[2:]
            if "=" in key:
                key, raw = key.split("=", 1)
            elif i + 1 < len(args):
                i += 1
                raw = args[i]
            else:
                raise ValueError(f"override {arg!r} has no value")
        elif "=" in arg:
            key, raw = arg.split("=", 1)
        else:
            raise ValueError(f"override {arg!r} is not key=value or --key value")
        out[key.replace("-", "_")] = yaml.safe_load(raw) if raw != "" else ""
        i += 1
    return out


def read_config(
    cls: type[C],
    path: str | Path | None,
    overrides: Sequence[str] = (),
    *,
    what: str = "config",
) -> C:
    """The ``cls`` in the YAML file ``path`` (None: defaults) with ``overrides`` applied."""
    import yaml

    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as err:
            raise ValueError(f"{path}: cannot read the config: {err}") from err
        if loaded is not None and not isinstance(loaded, dict):
            raise ValueError(f"{path}: the config must be a mapping, got {type(loaded).__name__}")
        values.update(loaded or {})
    values.update(parse_overrides(overrides))
    try:
        return build_config(cls, values, what=what)
    except ValueError as err:
        where = f"{path}: " if path is not None else ""
        raise ValueError(f"{where}{err}") from err


def load_config(path: str | Path | None, overrides: Sequence[str] | None = None) -> TrainConfig:
    """The TrainConfig in the YAML file ``path`` (None: defaults) with ``overrides`` applied."""
    return read_config(TrainConfig, path, overrides or ())


def help_text(cls: type[Any] = TrainConfig) -> str:
    """One line per field of the config dataclass ``cls``: name, type, default, help."""
    lines = []
    types_ = _field_types(cls)
    for f in dataclasses.fields(cls):
        if f.default_factory is not dataclasses.MISSING:
            default: Any = f.default_factory()
        else:
            default = f.default
        tp = getattr(types_[f.name], "__name__", str(types_[f.name]))
        lines.append(f"  {f.name} ({tp}, default {default!r}): {f.metadata.get('help', '')}")
    return "\n".join(lines)


def cli_front(
    argv: Sequence[str] | None,
    load: Callable[[str | None, list[str]], C],
    *,
    doc: str | None,
    options: str,
) -> C | int:
    """The shared start of a ``--config FILE [key=value | --key value ...]`` command line: the
    config ``load(path, overrides)`` returns, or the exit code when there is nothing to run
    (0 after ``-h`` / ``--help``, which prints ``doc`` and ``options``; 2 after an error)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "-h" in args or "--help" in args:
        print(doc)
        print(options)
        return 0
    path = None
    if "--config" in args:
        i = args.index("--config")
        if i + 1 >= len(args):
            print("error: --config needs a file", file=sys.stderr)
            return 2
        path = args[i + 1]
        del args[i : i + 2]
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return load(path, args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
