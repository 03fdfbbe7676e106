"""What a self-training run is told: :class:`SelfTrainConfig`, read from YAML plus overrides.

The config is a typed dataclass read by the same machinery as ``training.train``'s
(``training.config``): every value is checked against its field's type, unknown keys get a
"did you mean" hint, and ``train_overrides.KEY=VALUE`` on the command line sets one
training override. Shipped configs: ``self_training/configs/self_train*.yaml``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from training.config import build_config, read_config

StopMetric = Literal["tl_accuracy", "wl_f1", "all_accuracy"]

#: The training config keys that the loop sets per round (never from train_overrides).
LOOP_SET_TRAIN_KEYS = ("train_files", "eval_files", "out_dir", "resume")


def _h(help: str) -> dict[str, str]:
    return {"help": help}


@dataclass
class SelfTrainConfig:
    """Everything a self-training run needs; see self_training/configs/self_train*.yaml."""

    # --- data
    input: str = field(default="", metadata=_h("source records (JSONL, stockmark or MMM json)"))
    input_format: str = field(default="auto", metadata=_h("auto, jsonl, stockmark or mmm"))
    source: str = field(default="ja", metadata=_h("source language code"))
    targets: list[str] = field(default_factory=lambda: ["en"], metadata=_h("target languages"))
    records_per_round: int = field(
        default=1000, metadata=_h("source records translated per round (new ones every round)")
    )
    gold_files: list[str] = field(
        default_factory=list,
        metadata=_h(
            "the frozen gold set: canonical JSONL target-language records; never trained on"
        ),
    )
    calibration_files: list[str] = field(
        default_factory=list,
        metadata=_h(
            "gold slice for the model-check threshold (empty: gold_files); never trained on"
        ),
    )
    seed_files: list[str] = field(
        default_factory=list,
        metadata=_h("records added to the pool in round 1 (e.g. the source-language dataset)"),
    )
    # --- the LLM endpoint (OPENAI_API_KEY / OPENAI_BASE_URL are read from the environment)
    base_url: str = field(default="", metadata=_h("OpenAI-compatible endpoint"))
    model: str = field(default="", metadata=_h("chat model name (empty: graphs.translate's)"))
    method: str = field(default="json_schema", metadata=_h("structured-output method"))
    replay: str = field(default="", metadata=_h("serve recorded answers (offline demo)"))
    concurrency: int = field(default=8, metadata=_h("pairs in flight"))
    max_attempts: int = field(default=3, metadata=_h("LLM attempts per pair"))
    timeout: float = field(default=60.0, metadata=_h("seconds per LLM request"))
    # --- the model check
    model_check: bool = field(
        default=True, metadata=_h("use the previous round's OIELLM as verifier from round 2 on")
    )
    calibration_quantile: float = field(
        default=0.9, metadata=_h("threshold = this quantile of disagreement on the gold slice")
    )
    model_verified_cap: float = field(
        default=0.5, metadata=_h("max share of the pool accepted with the model check on")
    )
    check_batch_size: int = field(default=16, metadata=_h("OIELLM batch size (eval, check)"))
    check_max_new_tokens: int = field(
        default=256, metadata=_h("OIELLM generation limit (eval, check)")
    )
    device: str = field(default="", metadata=_h("OIELLM device for eval and check (empty: auto)"))
    # --- training
    train_config: str = field(
        default="training/configs/tiny.yaml", metadata=_h("training.train config file")
    )
    train_launcher: str = field(
        default="",
        metadata=_h(
            "empty: train in this process; else a command that runs `-m training.train` in a "
            "child process, e.g. 'torchrun --nproc-per-node 8'"
        ),
    )
    train_overrides: dict[str, Any] = field(
        default_factory=dict,
        metadata=_h("TrainConfig values over the file's (train_files/out_dir are set per round)"),
    )
    # --- the loop
    max_rounds: int = field(default=3, metadata=_h("stop after this many rounds"))
    patience: int = field(
        default=1, metadata=_h("stop when the gold score has not improved for this many rounds")
    )
    stop_metric: StopMetric = field(
        default="wl_f1",
        metadata=_h("gold score that must improve: tl_accuracy, wl_f1, all_accuracy"),
    )
    min_improvement: float = field(
        default=0.0, metadata=_h("a round improves when its score beats the best by more than this")
    )
    out_dir: str = field(default="runs/self-train", metadata=_h("the run directory"))
    progress: bool = field(default=False, metadata=_h("show progress bars"))
    report: bool = field(default=True, metadata=_h("write report.md with plots after every round"))

    def __post_init__(self) -> None:
        problems = []
        if not self.input:
            problems.append("input is required (the source records)")
        if not self.gold_files:
            problems.append("gold_files is required (the frozen gold set)")
        if not self.targets:
            problems.append("targets must name at least one language")
        if self.source in self.targets:
            problems.append(f"target {self.source!r} is the source language")
        for name in ("records_per_round", "max_rounds", "patience", "max_attempts"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("model_verified_cap", "calibration_quantile"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"{name} must be in [0, 1], got {getattr(self, name)}")
        for key in LOOP_SET_TRAIN_KEYS:
            if key in self.train_overrides:
                problems.append(f"train_overrides.{key} is set by the loop; remove it")
        if problems:
            raise ValueError("invalid self-training config: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def config_from_dict(values: Mapping[str, Any]) -> SelfTrainConfig:
    """A SelfTrainConfig from a mapping, every value checked against its field's type.

    Keys ``train_overrides.KEY`` (from the command line) set one training override.
    """
    return build_config(SelfTrainConfig, values, what="self-training config")


def load_config(path: str | Path | None, overrides: Sequence[str] = ()) -> SelfTrainConfig:
    """The config in the YAML file `path` with `key=value` / `--key value` overrides."""
    return read_config(SelfTrainConfig, path, overrides, what="self-training config")
