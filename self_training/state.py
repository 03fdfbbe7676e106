"""The run's state (``RUN/state.json``) as pydantic models: what is done, what each step
found, and the settings frozen at the first start.

The file is the one earlier versions wrote (``{"version": 1, "frozen", "rounds": {"1":
{"translate", "pool", "train", "eval"}}, "starts", "input", "stopped"}``), so a run started
before the split resumes. A step is done when its entry is present; every entry is the
step's result, which the round report shows as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_serializer
from pydantic_core.core_schema import SerializerFunctionWrapHandler

from mre.errors import MREError
from self_training.files import write_json

STATE_FILE = "state.json"
STATE_VERSION = 1
Step = Literal["translate", "pool", "train", "eval"]
STEPS: tuple[Step, ...] = ("translate", "pool", "train", "eval")
StopReason = Literal["no_improvement", "max_rounds", "input_exhausted"]


class StateError(MREError, ValueError):
    """state.json cannot be read, or belongs to another run."""


class _Model(BaseModel):
    """Strict about unknown keys; fields named in `_omit_none` are left out while None
    (they were absent, not null, in the files earlier versions wrote)."""

    model_config = ConfigDict(extra="forbid")
    _omit_none: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _serialize(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for key in self._omit_none:
            if data.get(key) is None:
                data.pop(key, None)
        return data


class Frozen(_Model):
    """Settings that a resumed run must share with the first start."""

    input: str
    source: str
    targets: list[str]
    records_per_round: int
    gold_sha256: str
    calibration_sha256: str = ""


class GoldDropped(_Model):
    """Records kept out because they belong to the gold set, by reason."""

    id: int = 0
    text: int = 0


class Flipped(_Model):
    """Pairs whose history has an attempt that passed the rules and failed the model check."""

    records: int = 0
    rejected: int = 0
    accepted_after_retry: int = 0
    attempts: int = 0


class ModelCheckUse(_Model):
    """Whether the round translated with the model check, with which checkpoint and threshold."""

    _omit_none = ("checkpoint", "threshold", "quantile", "flipped")
    enabled: bool
    checkpoint: str | None = None
    threshold: float | None = None
    quantile: float | None = None
    flipped: Flipped | None = None


class TranslateResult(_Model):
    records: int
    accepted: int
    rejected: int
    acceptance: float
    by_target: dict[str, dict[str, int]]
    findings: dict[str, int]
    rejection_reasons: dict[str, int]
    llm_calls: int
    model_check: ModelCheckUse


class PoolResult(_Model):
    size: int
    previous: int
    added: int
    seed_added: int
    translated_added: int
    model_verified: int
    model_verified_share: float
    cap: float
    held_back: int
    dropped_gold: GoldDropped
    duplicates: int


class TrainResult(_Model):
    _omit_none = ("launcher",)
    records: int
    steps: int | None
    first_loss: float | None
    last_loss: float | None
    eval_loss: float | None
    final_dir: str
    launcher: str | None = None


class GoldScores(_Model):
    n: int
    tl_accuracy: float
    wl_precision: float
    wl_recall: float
    wl_f1: float
    all_accuracy: float


class CalibrationResult(_Model):
    threshold: float
    quantile: float
    n: int
    mean_disagreement: float | None


class EvalResult(_Model):
    gold: GoldScores
    calibration: CalibrationResult


StepResult = TranslateResult | PoolResult | TrainResult | EvalResult


class RoundState(_Model):
    """One round: each step's result once the step is done."""

    _omit_none = STEPS
    translate: TranslateResult | None = None
    pool: PoolResult | None = None
    train: TrainResult | None = None
    eval: EvalResult | None = None

    def done(self) -> list[Step]:
        return [s for s in STEPS if getattr(self, s) is not None]


class InputInfo(_Model):
    records: int
    dropped_gold: GoldDropped


class Start(_Model):
    max_rounds: int


class Stopped(_Model):
    reason: StopReason
    after_round: int


class LoopState(_Model):
    """Everything ``state.json`` holds."""

    _omit_none = ("input", "stopped")
    version: int = STATE_VERSION
    frozen: Frozen
    rounds: dict[int, RoundState] = {}
    starts: list[Start] = []
    input: InputInfo | None = None
    stopped: Stopped | None = None

    def round(self, r: int) -> RoundState:
        """Round `r`'s state, created empty the first time."""
        return self.rounds.setdefault(r, RoundState())

    def scores(self, metric: str) -> list[float]:
        """The gold score `metric` of rounds 1, 2, ... up to the first round not evaluated."""
        out = []
        r = 1
        while (ev := self.rounds.get(r, RoundState()).eval) is not None:
            out.append(float(getattr(ev.gold, metric)))
            r += 1
        return out

    def done_rounds(self) -> list[int]:
        return sorted(r for r, s in self.rounds.items() if s.eval is not None)

    @classmethod
    def read(cls, path: Path) -> LoopState:
        try:
            state = cls.model_validate_json(path.read_bytes())
        except ValidationError as err:
            raise StateError(f"{path}: not a self-training state file: {err}") from None
        if state.version != STATE_VERSION:
            raise StateError(
                f"{path}: state version {state.version}, this code reads {STATE_VERSION}"
            )
        return state

    def write(self, path: Path) -> None:
        """Write atomically (a kill leaves the old file or the new one, never half of one)."""
        write_json(path, self.model_dump(mode="json"))
