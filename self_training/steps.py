"""The four steps of a round: translate, pool, train, evaluate.

Each step is a function of the run (:class:`Run`: the config, the run directory, the gold
set and its guard), the round number and the round directory; it writes its files there and
returns its result (``self_training.state``), which the loop stores in ``state.json`` once
the step is done.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mre.record import Record
from self_training.config import SelfTrainConfig
from self_training.files import (
    read_records,
    round_dir,
    write_json,
    write_records,
)
from self_training.gold import GoldIndex, GoldLeakError
from self_training.policy import cap_model_verified
from self_training.state import (
    CalibrationResult,
    EvalResult,
    Flipped,
    GoldDropped,
    GoldScores,
    ModelCheckUse,
    PoolResult,
    TrainResult,
    TranslateResult,
)

if TYPE_CHECKING:
    from graphs.rows import AcceptedRow

log = logging.getLogger(__name__)

MODEL_DISAGREEMENT = "model_disagreement"  # agents.findings.Code.MODEL_DISAGREEMENT
SELF_TRAIN_META_KEY = "self_train"  # meta of a pool record: {"round", "origin", "model_verified"}


@dataclass(kw_only=True)
class Run:
    """What every step reads: the config, the run directory, the environment added for the
    translation child process, the gold set, the calibration slice and the gold guard."""

    cfg: SelfTrainConfig
    dir: Path
    environ: Mapping[str, str]
    gold: list[Record]
    calibration: list[Record]
    guard: GoldIndex

    def verifier(self, r: int) -> Path | None:
        """The checkpoint that verifies round `r`'s translations (the previous round's OIELLM),
        or None (round 1, or the model check is off)."""
        if not self.cfg.model_check or r == 1:
            return None
        return round_dir(self.dir, r - 1) / "model" / "final"


# ---- translate ----------------------------------------------------------------------------


def run_translate(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    """`python -m graphs.translate ARGV` in a child process; returns its exit status.

    A child process, not `graphs.translate.main` in this one: the round's translation runs
    exactly as a user's command would, and the child frees the model-check model (and the
    tokenizers) when it exits, before this process trains. `environ` is added to this
    process's environment (the API key and base URL are read from it, never logged).
    """
    import subprocess

    env = {**os.environ, **environ}
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    log.info("running python -m graphs.translate %s", " ".join(argv))
    return subprocess.run(
        [sys.executable, "-m", "graphs.translate", *argv], env=env, check=False
    ).returncode


def model_check_effect(translate_dir: Path, targets: Sequence[str]) -> dict[str, int]:
    """How many pairs the model check flipped: an attempt passed the rules and failed the model
    check (`model_disagreement` in its history); split into rejected (the model check is in
    the final reasons) and accepted after a retry."""
    from graphs.rows import ACCEPTED, REJECTED, read_accepted, read_rejected

    out = Flipped()

    def count(history: list[list[str]]) -> bool:
        flagged = sum(1 for codes in history if MODEL_DISAGREEMENT in codes)
        out.records += bool(flagged)
        out.attempts += flagged
        return bool(flagged)

    for lang in targets:
        accepted, rejected = translate_dir / lang / ACCEPTED, translate_dir / lang / REJECTED
        for row in read_accepted(accepted) if accepted.is_file() else []:
            if count(row.meta.history):
                out.accepted_after_retry += 1
        for rej in read_rejected(rejected) if rejected.is_file() else []:
            if count(rej.history) and MODEL_DISAGREEMENT in rej.reasons:
                out.rejected += 1
    return out.model_dump()


def translate_argv(run: Run, r: int, input_path: Path, out: Path) -> list[str]:
    """The `graphs.translate` command line of round `r`."""
    cfg = run.cfg
    argv = [
        "--input", str(input_path), "--format", "jsonl", "--source", cfg.source,
        "--target", *cfg.targets, "--out", str(out), "--method", cfg.method,
        "--concurrency", str(cfg.concurrency), "--max-attempts", str(cfg.max_attempts),
        "--timeout", str(cfg.timeout), "--log-level", logging.getLevelName(log.getEffectiveLevel()),
    ]  # fmt: skip
    if not cfg.progress:
        argv.append("--no-progress")
    for flag, value in (("--base-url", cfg.base_url), ("--model", cfg.model)):
        if value:
            argv += [flag, value]
    if cfg.replay:
        argv += ["--replay", cfg.replay]
    verifier = run.verifier(r)
    if verifier is not None:
        argv += ["--verifier-model", str(verifier)]
    return argv


def translate(run: Run, r: int, rdir: Path, chunk: list[Record]) -> TranslateResult:
    """Translate the round's source records (`chunk`) with `graphs.translate` into
    ``rdir/translate`` (a run dir that resumes by itself)."""
    from training.verifier_model import Calibration

    input_path = rdir / "input.jsonl"
    write_records(input_path, chunk)
    out = rdir / "translate"
    check = ModelCheckUse(enabled=False)
    verifier = run.verifier(r)
    if verifier is not None:
        cal = Calibration.read(verifier)
        check = ModelCheckUse(
            enabled=True, checkpoint=str(verifier), threshold=cal.threshold, quantile=cal.quantile
        )
    rc = run_translate(translate_argv(run, r, input_path, out), run.environ)
    if rc != 0:
        raise RuntimeError(f"round {r}: graphs.translate exited with {rc} (see the log above)")
    report_path = out / "report.json"
    report = json.loads(report_path.read_text(encoding="utf-8"))
    total = report["counts"]["total"]
    pairs = total["accepted"] + total["rejected"]
    check.flipped = Flipped.model_validate(model_check_effect(out, run.cfg.targets))
    return TranslateResult(
        records=len(chunk),
        accepted=total["accepted"],
        rejected=total["rejected"],
        acceptance=total["accepted"] / pairs if pairs else 0.0,
        by_target={t: report["counts"][t] for t in run.cfg.targets},
        findings=report.get("findings", {}),
        rejection_reasons=report.get("rejection_reasons", {}),
        llm_calls=report.get("llm", {}).get("calls", 0),
        model_check=check,
    )


# ---- pool ---------------------------------------------------------------------------------


def tag(record: Record, r: int, origin: str, *, verified: bool) -> Record:
    """`record` with ``meta.self_train``: the round it joined, its origin, model-verified."""
    info = {"round": r, "origin": origin, "model_verified": verified}
    return record.model_copy(update={"meta": {**record.meta, SELF_TRAIN_META_KEY: info}})


def is_model_verified(record: Record) -> bool:
    info = record.meta.get(SELF_TRAIN_META_KEY)
    return bool(isinstance(info, dict) and info.get("model_verified"))


def _accepted_rows(lang_dir: Path) -> list[AcceptedRow]:
    from graphs.rows import ACCEPTED, read_accepted

    path = lang_dir / ACCEPTED
    return list(read_accepted(path)) if path.is_file() else []


def pool(run: Run, r: int, rdir: Path) -> PoolResult:
    """The training pool after round `r`: the last round's pool, plus (round 1) the seed
    records, plus the round's accepted records up to the model-verified cap; gold records are
    dropped on the way in and the pool is checked once more before it is written."""
    cfg = run.cfg
    previous = read_records([round_dir(run.dir, r - 1) / "pool.jsonl"]) if r > 1 else []
    records = list(previous)
    ids = {p.id for p in records}
    dropped = GoldDropped()
    duplicates = 0

    def offer(candidates: list[Record], what: str) -> list[Record]:
        nonlocal duplicates
        kept, gone = run.guard.drop(candidates, what)
        dropped.id += gone["id"]
        dropped.text += gone["text"]
        fresh = []
        for rec in kept:
            if rec.id in ids:
                duplicates += 1
                continue
            ids.add(rec.id)
            fresh.append(rec)
        return fresh

    seeds: list[Record] = []
    if r == 1 and cfg.seed_files:
        seeds = offer(read_records(cfg.seed_files, fmt="auto"), "seed files")
        records += [tag(x, r, "seed", verified=False) for x in seeds]
    verified = run.verifier(r) is not None
    accepted = [
        Record.model_validate(row.to_json())  # the row's typed meta back to the record's dict
        for t in cfg.targets
        for row in _accepted_rows(rdir / "translate" / t)
    ]
    fresh = offer(accepted, f"round {r} accepted")
    held: list[Record] = []
    if verified:
        n_verified = sum(1 for p in records if is_model_verified(p))
        allowed = cap_model_verified(len(records), n_verified, len(fresh), cfg.model_verified_cap)
        fresh, held = fresh[:allowed], fresh[allowed:]
        if held:
            log.warning(
                "round %d: the model-verified cap %.2f holds back %d of %d accepted records",
                r, cfg.model_verified_cap, len(held), len(held) + len(fresh),
            )  # fmt: skip
    records += [tag(x, r, "translated", verified=verified) for x in fresh]
    run.guard.assert_clean(records, f"round {r} pool")
    if not {p.id for p in previous} <= {p.id for p in records}:
        raise RuntimeError(f"round {r}: the pool lost records of round {r - 1}")
    write_records(rdir / "pool.jsonl", records)
    write_records(rdir / "held_back.jsonl", held)
    n_verified = sum(1 for p in records if is_model_verified(p))
    return PoolResult(
        size=len(records),
        previous=len(previous),
        added=len(records) - len(previous),
        seed_added=len(seeds),
        translated_added=len(fresh),
        model_verified=n_verified,
        model_verified_share=n_verified / len(records) if records else 0.0,
        cap=cfg.model_verified_cap,
        held_back=len(held),
        dropped_gold=dropped,
        duplicates=duplicates,
    )


# ---- train --------------------------------------------------------------------------------


def train(run: Run, r: int, rdir: Path) -> TrainResult:
    """Train an OIELLM on the round's pool, from the base model (``rdir/model``; resumes from
    its last checkpoint), in this process or with ``train_launcher``."""
    from training.config import config_from_dict as train_config_from_dict
    from training.config import load_config as load_train_config
    from training.train import main as train_main

    pool_path = rdir / "pool.jsonl"
    records = read_records([pool_path])
    run.guard.assert_clean(records, f"round {r} training data {pool_path}")
    gold_paths = {Path(p).resolve() for p in [*run.cfg.gold_files, *run.cfg.calibration_files]}
    if pool_path.resolve() in gold_paths:
        raise GoldLeakError(f"round {r}: the pool file {pool_path} is a gold file")
    base = load_train_config(run.cfg.train_config)
    values = {
        **base.to_dict(),
        **run.cfg.train_overrides,
        "train_files": [str(pool_path)],
        "eval_files": [],
        "out_dir": str(rdir / "model"),
        "resume": "auto",
    }
    tcfg = train_config_from_dict(values)
    if not run.cfg.progress:
        tcfg.progress = False
    if run.cfg.train_launcher:
        final = launch_training(run.cfg.train_launcher, r, rdir, tcfg)
        return TrainResult(
            records=len(records), steps=None, first_loss=None, last_loss=None, eval_loss=None,
            final_dir=str(final), launcher=run.cfg.train_launcher,
        )  # fmt: skip
    result = train_main(tcfg)
    return TrainResult(
        records=len(records),
        steps=result.steps,
        first_loss=result.losses[0] if result.losses else None,
        last_loss=result.losses[-1] if result.losses else None,
        eval_loss=result.eval_loss,
        final_dir=str(result.final_dir),
    )


def launch_training(launcher: str, r: int, rdir: Path, tcfg: Any) -> Path:
    """`{launcher} -m training.train --config round/train.yaml` in a child process (e.g.
    torchrun over every GPU of the node); returns the final checkpoint directory."""
    import shlex
    import subprocess

    import yaml

    path = rdir / "train.yaml"
    path.write_text(yaml.safe_dump(tcfg.to_dict(), allow_unicode=True), encoding="utf-8")
    command = [*shlex.split(launcher), "-m", "training.train", "--config", str(path)]
    log.info("round %d: %s", r, " ".join(command))
    rc = subprocess.run(command, check=False).returncode
    final = rdir / "model" / "final"
    if rc != 0 or not final.is_dir():
        raise RuntimeError(f"round {r}: training exited with {rc} ({' '.join(command)})")
    return final


# ---- evaluate -----------------------------------------------------------------------------


def evaluate(run: Run, r: int, rdir: Path) -> EvalResult:
    """Score the round's OIELLM on the gold set (``predictions.jsonl``, ``scores.json``) and
    calibrate its model-check threshold on the calibration slice (``model_check.json``)."""
    from agents.model_check import OIELLMCheck
    from eval.metrics import score
    from training.infer import OIELLM
    from training.verifier_model import calibrate_from_predictions

    cfg = run.cfg
    final = rdir / "model" / "final"
    model = OIELLM.load(final, device=cfg.device or None)
    runner = OIELLMCheck(
        model, 1.0, batch_size=cfg.check_batch_size, max_new_tokens=cfg.check_max_new_tokens
    )
    preds = [
        p.model_copy(update={"id": g.id})
        for g, p in zip(run.gold, runner.predict(run.gold), strict=True)
    ]
    write_records(rdir / "predictions.jsonl", preds)
    scores = score(run.gold, preds).to_dict()
    write_json(rdir / "scores.json", scores)
    cal_preds = preds if run.calibration is run.gold else runner.predict(run.calibration)
    cal = calibrate_from_predictions(
        run.calibration,
        cal_preds,
        cfg.calibration_quantile,
        batch_size=cfg.check_batch_size,
        max_new_tokens=cfg.check_max_new_tokens,
        sources=cfg.calibration_files or cfg.gold_files,
    )
    cal.save(final)
    gold = GoldScores.model_validate({k: scores[k] for k in GoldScores.model_fields})
    log.info(
        "round %d gold: TL %.3f WL-F1 %.3f ALL %.3f; model-check threshold %.3f",
        r, gold.tl_accuracy, gold.wl_f1, gold.all_accuracy, cal.threshold,
    )  # fmt: skip
    return EvalResult(
        gold=gold,
        calibration=CalibrationResult(
            threshold=cal.threshold,
            quantile=cal.quantile,
            n=cal.n,
            mean_disagreement=cal.mean_disagreement,
        ),
    )
