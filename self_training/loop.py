"""The self-training loop: ``python -m self_training --config FILE [key=value ...]``.

Rounds of

1. **translate** the round's slice of the source records (``graphs.translate``) with the rule
   verifier, plus the model check (the previous round's OIELLM, ``agents.model_check``) from
   round 2 on;
2. **pool**: add the accepted records to the training pool (accumulate, never replace);
3. **train** an OIELLM on the pool (``training.train``, from the base model every round);
4. **evaluate** it on the frozen gold set (TL / WL / ALL, ``eval.metrics``) and calibrate its
   model-check threshold on the gold slice (``model_check.json`` next to the checkpoint);
5. next round, until the gold score (``stop_metric``) has not improved for ``patience``
   rounds, ``max_rounds`` rounds are done, or the source records run out.

Round r translates source records ``[(r-1)*records_per_round, r*records_per_round)`` of the
input (after dropping records of the gold set), so every round brings new sentences.

Run directory::

    RUN/state.json                 what is done (resume), the frozen settings, the gold hash
    RUN/config.json                the resolved config of the last start
    RUN/round-01/input.jsonl       the round's source records
    RUN/round-01/translate/        a graphs.translate run dir (resumes by itself)
    RUN/round-01/pool.jsonl        the training pool after this round (a superset of the last)
    RUN/round-01/held_back.jsonl   model-verified records left out by the cap
    RUN/round-01/model/final/      the OIELLM (+ model_check.json: its calibrated threshold)
    RUN/round-01/predictions.jsonl its extraction on the gold set
    RUN/round-01/scores.json       eval.metrics scores on the gold set
    RUN/round-01/report.json       the round's figures
    RUN/report.json, report.md     every round (report.md and plots/ by ``eval.report``)

Rerunning with the same ``out_dir`` resumes: finished steps are skipped, an interrupted
translation resumes in its own run dir, an interrupted training resumes from its last
checkpoint (``resume=auto``). The input, source, targets, ``records_per_round`` and the gold
files are frozen in ``state.json``: changing them needs a new ``out_dir``.

The package, by concern: ``config`` (SelfTrainConfig), ``gold`` (the gold guard),
``policy`` (stop, cap), ``state`` (state.json as pydantic models), ``steps`` (translate,
pool, train, evaluate), ``report`` (the reports); this module runs the rounds.

Guards against a loop that confirms its own errors:

- the gold set (and the calibration slice) never enters training: input records, seed
  records and accepted records that belong to it -- by id (a record's ``id`` or
  ``meta.source_id`` equal to a gold ``id`` or gold ``meta.source_id``) or by text (equal after
  NFKC, case folding and whitespace collapsing) -- are dropped and logged, and the pool is
  checked again before every training (``GoldLeakError``);
- ``model_verified_cap``: at most this share of the pool may be records accepted with the
  model check on; the rest of a round's model-verified records is held back
  (``held_back.jsonl``, not offered again);
- the report shows per round the acceptance, the gold TL / WL / ALL and how many records the
  model check flipped (an attempt that passed the rules but failed the model check).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mre.record import Record
from self_training import steps
from self_training.config import SelfTrainConfig, load_config
from self_training.files import read_records, round_dir, sha256_of, write_json
from self_training.gold import GoldIndex
from self_training.policy import should_stop
from self_training.report import summary_lines, write_reports
from self_training.state import (
    STATE_FILE,
    STEPS,
    Frozen,
    GoldDropped,
    InputInfo,
    LoopState,
    Start,
    StateError,
    StepResult,
    Stopped,
)
from self_training.steps import model_check_effect
from training.config import cli_front, help_text

log = logging.getLogger(__name__)

__all__ = ["SelfTrain", "cli", "main", "model_check_effect"]


class SelfTrain:
    """One run directory: its state, its gold set, and the rounds."""

    def __init__(self, cfg: SelfTrainConfig, environ: Mapping[str, str] | None = None) -> None:
        gold = read_records(cfg.gold_files)
        if not gold:
            raise ValueError(f"the gold set {cfg.gold_files} is empty")
        calibration = read_records(cfg.calibration_files) if cfg.calibration_files else gold
        self.cfg = cfg
        self.ctx = steps.Run(
            cfg=cfg,
            dir=Path(cfg.out_dir),
            environ=dict(environ or {}),  # added to os.environ for the translation
            gold=gold,
            calibration=calibration,
            guard=GoldIndex.of([*gold, *calibration]),
        )
        self.state: LoopState | None = None

    @property
    def run(self) -> Path:
        """The run directory."""
        return self.ctx.dir

    # -- state

    def frozen(self) -> Frozen:
        cfg = self.cfg
        return Frozen(
            input=str(cfg.input),
            source=cfg.source,
            targets=list(cfg.targets),
            records_per_round=cfg.records_per_round,
            gold_sha256=sha256_of(cfg.gold_files),
            calibration_sha256=sha256_of(cfg.calibration_files) if cfg.calibration_files else "",
        )

    def load_state(self) -> LoopState:
        """Read state.json (refusing one whose frozen settings differ) or start a new one."""
        path = self.run / STATE_FILE
        frozen = self.frozen()
        if path.is_file():
            state = LoopState.read(path)
            was = state.frozen.model_dump()
            changed = [k for k, v in frozen.model_dump().items() if was.get(k) != v]
            if changed:
                raise StateError(
                    f"{path}: {', '.join(changed)} changed since this run started (the gold set "
                    "is frozen, and so are the input slices); use a new out_dir"
                )
            log.info("resuming %s: rounds done %s", self.run, state.done_rounds())
        else:
            state = LoopState(frozen=frozen)
        state.starts.append(Start(max_rounds=self.cfg.max_rounds))
        self.state = state
        return state

    def save_state(self) -> None:
        self._state.write(self.run / STATE_FILE)

    @property
    def _state(self) -> LoopState:
        if self.state is None:
            raise RuntimeError("the state is not loaded: call load_state() first")
        return self.state

    # -- the run

    def source_records(self) -> list[Record]:
        """The input without gold records, in input order (the slices are cut from this)."""
        from mre.io import read_records as read

        cfg = self.cfg
        reader = read(cfg.input, fmt=cfg.input_format, strict=False)  # type: ignore[arg-type]
        records = list(reader)
        if reader.stats.rejected:
            log.warning("%s: %d invalid input lines skipped", cfg.input, reader.stats.rejected)
        wrong = [r.id for r in records if r.lang != cfg.source]
        if wrong:
            raise ValueError(
                f"{cfg.input}: {len(wrong)} records are not in source language "
                f"{cfg.source!r} (first: {wrong[0]!r})"
            )
        kept, dropped = self.ctx.guard.drop(records, f"input {cfg.input}")
        self._state.input = InputInfo(records=len(records), dropped_gold=GoldDropped(**dropped))
        return kept

    def __call__(self) -> dict[str, Any]:
        cfg = self.cfg
        self.run.mkdir(parents=True, exist_ok=True)
        state = self.load_state()
        write_json(self.run / "config.json", cfg.to_dict())
        source = self.source_records()
        r = 1
        while True:
            if r > 1 and should_stop(
                state.scores(cfg.stop_metric)[: r - 1], cfg.patience, cfg.min_improvement
            ):
                stop = Stopped(reason="no_improvement", after_round=r - 1)
                break
            if r > cfg.max_rounds:
                stop = Stopped(reason="max_rounds", after_round=r - 1)
                break
            chunk = source[(r - 1) * cfg.records_per_round : r * cfg.records_per_round]
            if not chunk:
                stop = Stopped(reason="input_exhausted", after_round=r - 1)
                break
            self.round(r, chunk)
            r += 1
        state.stopped = stop
        self.save_state()
        report = self.write_reports()
        log.info("stopped after round %s: %s", stop.after_round, stop.reason)
        return report

    def round(self, r: int, chunk: list[Record]) -> None:
        """Run round `r`'s steps that are not done yet, saving the state after each."""
        rdir = round_dir(self.run, r)
        rdir.mkdir(parents=True, exist_ok=True)
        rs = self._state.round(r)
        for step in STEPS:
            if getattr(rs, step) is not None:
                log.info("round %d: %s already done", r, step)
                continue
            log.info("round %d: %s", r, step)
            result: StepResult
            if step == "translate":
                result = steps.translate(self.ctx, r, rdir, chunk)
            elif step == "pool":
                result = steps.pool(self.ctx, r, rdir)
            elif step == "train":
                result = steps.train(self.ctx, r, rdir)
            else:
                result = steps.evaluate(self.ctx, r, rdir)
            setattr(rs, step, result)
            self.save_state()
        self.write_reports()

    def write_reports(self) -> dict[str, Any]:
        return write_reports(self._state, self.cfg, self.run, len(self.ctx.gold))


def main(cfg: SelfTrainConfig, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Run (or resume) the loop as `cfg` says; returns the run report."""
    return SelfTrain(cfg, environ)()


def cli(argv: Sequence[str] | None = None) -> int:
    cfg = cli_front(
        argv,
        load_config,
        doc=__doc__,
        options="options (--config FILE, then key=value or --key value; train_overrides.KEY=V):\n"
        + help_text(SelfTrainConfig),
    )
    if isinstance(cfg, int):
        return cfg
    report = main(cfg, environ=os.environ)
    for line in summary_lines(report, cfg.out_dir):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(cli())
