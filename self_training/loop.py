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

import dataclasses
import hashlib
import json
import logging
import math
import os
import sys
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mre.errors import MREError
from mre.record import Record
from training.config import build_config, cli_front, help_text, read_config

log = logging.getLogger(__name__)

StopMetric = Literal["tl_accuracy", "wl_f1", "all_accuracy"]
STEPS = ("translate", "pool", "train", "eval")
STATE_FILE = "state.json"
MODEL_DISAGREEMENT = "model_disagreement"  # agents.findings.Code.MODEL_DISAGREEMENT


def _h(help: str) -> dict[str, str]:
    return {"help": help}


@dataclass
class SelfTrainConfig:
    """Everything a self-training run needs; see training/configs/self_train*.yaml."""

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
        for key in ("train_files", "eval_files", "out_dir", "resume"):
            if key in self.train_overrides:
                problems.append(f"train_overrides.{key} is set by the loop; remove it")
        if problems:
            raise ValueError("invalid self-training config: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---- config reading -----------------------------------------------------------------------


def config_from_dict(values: Mapping[str, Any]) -> SelfTrainConfig:
    """A SelfTrainConfig from a mapping, every value checked against its field's type.

    Keys ``train_overrides.KEY`` (from the command line) set one training override.
    """
    return build_config(SelfTrainConfig, values, what="self-training config")


def load_config(path: str | Path | None, overrides: Sequence[str] = ()) -> SelfTrainConfig:
    """The config in the YAML file `path` with `key=value` / `--key value` overrides."""
    return read_config(SelfTrainConfig, path, overrides, what="self-training config")


# ---- the gold guard -----------------------------------------------------------------------


class GoldLeakError(MREError, RuntimeError):
    """A gold record would enter training."""


def text_key(text: str) -> str:
    """The text compared for gold overlap: NFKC, case folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


@dataclass
class GoldIndex:
    """What identifies a gold record: its ids (own and source) and its normalized text."""

    ids: set[str] = field(default_factory=set)
    texts: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, records: Iterable[Record]) -> GoldIndex:
        index = cls()
        for r in records:
            index.ids.add(r.id)
            source_id = r.meta.get("source_id")
            if isinstance(source_id, str) and source_id:
                index.ids.add(source_id)
            index.texts.add(text_key(r.text))
        return index

    def hit(self, record: Record) -> str | None:
        """Why `record` belongs to the gold set ("id" or "text"), or None."""
        source_id = record.meta.get("source_id")
        if record.id in self.ids or (isinstance(source_id, str) and source_id in self.ids):
            return "id"
        if text_key(record.text) in self.texts:
            return "text"
        return None

    def drop(self, records: Iterable[Record], what: str) -> tuple[list[Record], dict[str, int]]:
        """`records` without the gold ones (each logged); counts by reason."""
        kept: list[Record] = []
        dropped = {"id": 0, "text": 0}
        for r in records:
            why = self.hit(r)
            if why is None:
                kept.append(r)
                continue
            dropped[why] += 1
            log.warning(
                "%s: dropped record %r: it belongs to the gold set (by %s)", what, r.id, why
            )
        return kept, dropped

    def assert_clean(self, records: Iterable[Record], where: str) -> None:
        leaks = [f"{r.id} (by {why})" for r in records if (why := self.hit(r)) is not None]
        if leaks:
            raise GoldLeakError(
                f"{where}: {len(leaks)} gold records would enter training: {', '.join(leaks[:10])}"
            )


# ---- small helpers ------------------------------------------------------------------------


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _write_records(path: Path, records: Iterable[Record]) -> int:
    from mre.io import write_jsonl

    tmp = path.with_name(path.name + ".tmp")
    n = write_jsonl(records, tmp)
    os.replace(tmp, path)
    return n


def _read_records(paths: Iterable[str | Path], fmt: str = "jsonl") -> list[Record]:
    from mre.io import read_records

    return [r for p in paths for r in read_records(p, fmt=fmt, strict=True)]  # type: ignore[arg-type]


def _sha256(paths: Iterable[str | Path]) -> str:
    digest = hashlib.sha256()
    for p in paths:
        digest.update(Path(p).read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def round_dir(run: Path, r: int) -> Path:
    return run / f"round-{r:02d}"


def model_check_effect(translate_dir: Path, targets: Sequence[str]) -> dict[str, int]:
    """How many pairs the model check flipped: an attempt passed the rules and failed the model
    check (`model_disagreement` in its history); split into rejected (the model check is in
    the final reasons) and accepted after a retry."""
    out = {"records": 0, "rejected": 0, "accepted_after_retry": 0, "attempts": 0}
    for lang in targets:
        for status in ("accepted", "rejected"):
            for line in _read_jsonl(translate_dir / lang / f"{status}.jsonl"):
                history = (line.get("meta", {}) if status == "accepted" else line).get("history")
                flagged = sum(1 for codes in history or [] if MODEL_DISAGREEMENT in codes)
                if not flagged:
                    continue
                out["records"] += 1
                out["attempts"] += flagged
                if status == "accepted":
                    out["accepted_after_retry"] += 1
                elif MODEL_DISAGREEMENT in line.get("reasons", []):
                    out["rejected"] += 1
    return out


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


def should_stop(scores: Sequence[float], patience: int, min_improvement: float = 0.0) -> bool:
    """True when the last `patience` scores did not beat the best before them."""
    best = -math.inf
    since = 0
    for s in scores:
        if s > best + min_improvement:
            best, since = s, 0
        else:
            since += 1
    return bool(scores) and since >= patience


def cap_model_verified(pool_size: int, verified: int, candidates: int, cap: float) -> int:
    """How many of `candidates` model-verified records may join a pool of `pool_size` records,
    `verified` of them model-verified, keeping the verified share at or under `cap`."""
    allowed = 0
    while (
        allowed < candidates and (verified + allowed + 1) <= cap * (pool_size + allowed + 1) + 1e-9
    ):
        allowed += 1
    return allowed


# ---- the loop -----------------------------------------------------------------------------


class SelfTrain:
    """One run directory: its state, its gold set, and the steps of every round."""

    def __init__(self, cfg: SelfTrainConfig, environ: Mapping[str, str] | None = None) -> None:
        self.cfg = cfg
        self.environ = dict(environ or {})  # added to os.environ for the translation
        self.run = Path(cfg.out_dir)
        self.gold = _read_records(cfg.gold_files)
        if not self.gold:
            raise ValueError(f"the gold set {cfg.gold_files} is empty")
        self.calibration = (
            _read_records(cfg.calibration_files) if cfg.calibration_files else self.gold
        )
        self.guard = GoldIndex.of([*self.gold, *self.calibration])
        self.state: dict[str, Any] = {}

    # -- state

    def _frozen(self) -> dict[str, Any]:
        cfg = self.cfg
        return {
            "input": str(cfg.input),
            "source": cfg.source,
            "targets": list(cfg.targets),
            "records_per_round": cfg.records_per_round,
            "gold_sha256": _sha256(cfg.gold_files),
            "calibration_sha256": _sha256(cfg.calibration_files) if cfg.calibration_files else "",
        }

    def _load_state(self) -> None:
        path = self.run / STATE_FILE
        frozen = self._frozen()
        if path.is_file():
            self.state = json.loads(path.read_text(encoding="utf-8"))
            changed = [k for k, v in frozen.items() if self.state.get("frozen", {}).get(k) != v]
            if changed:
                raise ValueError(
                    f"{path}: {', '.join(changed)} changed since this run started (the gold set "
                    "is frozen, and so are the input slices); use a new out_dir"
                )
            done = sorted(int(r) for r, s in self.state["rounds"].items() if "eval" in s)
            log.info("resuming %s: rounds done %s", self.run, done)
        else:
            self.state = {"version": 1, "frozen": frozen, "rounds": {}}
        self.state.setdefault("starts", []).append({"max_rounds": self.cfg.max_rounds})

    def _save_state(self) -> None:
        _write_json(self.run / STATE_FILE, self.state)

    def _round_state(self, r: int) -> dict[str, Any]:
        rounds: dict[str, Any] = self.state["rounds"]
        return rounds.setdefault(str(r), {})

    def _scores(self) -> list[float]:
        out = []
        r = 1
        while "eval" in self.state["rounds"].get(str(r), {}):
            out.append(float(self.state["rounds"][str(r)]["eval"]["gold"][self.cfg.stop_metric]))
            r += 1
        return out

    # -- the run

    def source_records(self) -> list[Record]:
        """The input without gold records, in input order (the slices are cut from this)."""
        from mre.io import read_records

        reader = read_records(self.cfg.input, fmt=self.cfg.input_format, strict=False)  # type: ignore[arg-type]
        records = list(reader)
        if reader.stats.rejected:
            log.warning("%s: %d invalid input lines skipped", self.cfg.input, reader.stats.rejected)
        wrong = [r.id for r in records if r.lang != self.cfg.source]
        if wrong:
            raise ValueError(
                f"{self.cfg.input}: {len(wrong)} records are not in source language "
                f"{self.cfg.source!r} (first: {wrong[0]!r})"
            )
        kept, dropped = self.guard.drop(records, f"input {self.cfg.input}")
        self.state["input"] = {"records": len(records), "dropped_gold": dropped}
        return kept

    def __call__(self) -> dict[str, Any]:
        cfg = self.cfg
        self.run.mkdir(parents=True, exist_ok=True)
        self._load_state()
        _write_json(self.run / "config.json", cfg.to_dict())
        source = self.source_records()
        stop: dict[str, Any] | None = None
        r = 1
        while True:
            if r > 1 and should_stop(self._scores()[: r - 1], cfg.patience, cfg.min_improvement):
                stop = {"reason": "no_improvement", "after_round": r - 1}
                break
            if r > cfg.max_rounds:
                stop = {"reason": "max_rounds", "after_round": r - 1}
                break
            chunk = source[(r - 1) * cfg.records_per_round : r * cfg.records_per_round]
            if not chunk:
                stop = {"reason": "input_exhausted", "after_round": r - 1}
                break
            self.round(r, chunk)
            r += 1
        self.state["stopped"] = stop
        self._save_state()
        report = self.write_reports()
        log.info("stopped after round %s: %s", stop["after_round"], stop["reason"])
        return report

    def round(self, r: int, chunk: list[Record]) -> None:
        rdir = round_dir(self.run, r)
        rdir.mkdir(parents=True, exist_ok=True)
        state = self._round_state(r)
        for step in STEPS:
            if step in state:
                log.info("round %d: %s already done", r, step)
                continue
            log.info("round %d: %s", r, step)
            state[step] = getattr(self, f"_{step}")(r, rdir, chunk)
            self._save_state()
        self.write_reports()

    # -- steps

    def _verifier(self, r: int) -> Path | None:
        if not self.cfg.model_check or r == 1:
            return None
        return round_dir(self.run, r - 1) / "model" / "final"

    def _translate(self, r: int, rdir: Path, chunk: list[Record]) -> dict[str, Any]:
        from training.verifier_model import Calibration

        cfg = self.cfg
        input_path = rdir / "input.jsonl"
        _write_records(input_path, chunk)
        out = rdir / "translate"
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
        verifier = self._verifier(r)
        check: dict[str, Any] = {"enabled": verifier is not None}
        if verifier is not None:
            cal = Calibration.read(verifier)
            argv += ["--verifier-model", str(verifier)]
            check.update(checkpoint=str(verifier), threshold=cal.threshold, quantile=cal.quantile)
        rc = run_translate(argv, self.environ)
        if rc != 0:
            raise RuntimeError(f"round {r}: graphs.translate exited with {rc} (see the log above)")
        report = json.loads((out / "report.json").read_text(encoding="utf-8"))
        total = report["counts"]["total"]
        pairs = total["accepted"] + total["rejected"]
        check["flipped"] = model_check_effect(out, cfg.targets)
        return {
            "records": len(chunk),
            "accepted": total["accepted"],
            "rejected": total["rejected"],
            "acceptance": total["accepted"] / pairs if pairs else 0.0,
            "by_target": {t: report["counts"][t] for t in cfg.targets},
            "findings": report.get("findings", {}),
            "rejection_reasons": report.get("rejection_reasons", {}),
            "llm_calls": report.get("llm", {}).get("calls", 0),
            "model_check": check,
        }

    def _pool(self, r: int, rdir: Path, chunk: list[Record]) -> dict[str, Any]:
        cfg = self.cfg
        previous = _read_records([round_dir(self.run, r - 1) / "pool.jsonl"]) if r > 1 else []
        pool = list(previous)
        ids = {p.id for p in pool}
        dropped = {"id": 0, "text": 0}
        duplicates = 0

        def offer(records: list[Record], what: str) -> list[Record]:
            nonlocal duplicates
            kept, gone = self.guard.drop(records, what)
            for k in dropped:
                dropped[k] += gone[k]
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
            seeds = offer(_read_records(cfg.seed_files, fmt="auto"), "seed files")
            pool += [_tag(x, r, "seed", verified=False) for x in seeds]
        verified = self._verifier(r) is not None
        accepted = [
            Record.model_validate(line)
            for t in cfg.targets
            for line in _read_jsonl(rdir / "translate" / t / "accepted.jsonl")
        ]
        fresh = offer(accepted, f"round {r} accepted")
        held: list[Record] = []
        if verified:
            n_verified = sum(1 for p in pool if _is_verified(p))
            allowed = cap_model_verified(len(pool), n_verified, len(fresh), cfg.model_verified_cap)
            fresh, held = fresh[:allowed], fresh[allowed:]
            if held:
                log.warning(
                    "round %d: the model-verified cap %.2f holds back %d of %d accepted records",
                    r, cfg.model_verified_cap, len(held), len(held) + len(fresh),
                )  # fmt: skip
        pool += [_tag(x, r, "translated", verified=verified) for x in fresh]
        self.guard.assert_clean(pool, f"round {r} pool")
        if not {p.id for p in previous} <= {p.id for p in pool}:
            raise RuntimeError(f"round {r}: the pool lost records of round {r - 1}")
        _write_records(rdir / "pool.jsonl", pool)
        _write_records(rdir / "held_back.jsonl", held)
        n_verified = sum(1 for p in pool if _is_verified(p))
        return {
            "size": len(pool),
            "previous": len(previous),
            "added": len(pool) - len(previous),
            "seed_added": len(seeds),
            "translated_added": len(fresh),
            "model_verified": n_verified,
            "model_verified_share": n_verified / len(pool) if pool else 0.0,
            "cap": cfg.model_verified_cap,
            "held_back": len(held),
            "dropped_gold": dropped,
            "duplicates": duplicates,
        }

    def _train(self, r: int, rdir: Path, chunk: list[Record]) -> dict[str, Any]:
        from training.config import config_from_dict as train_config_from_dict
        from training.config import load_config as load_train_config
        from training.train import main as train_main

        pool_path = rdir / "pool.jsonl"
        pool = _read_records([pool_path])
        self.guard.assert_clean(pool, f"round {r} training data {pool_path}")
        gold_paths = {
            Path(p).resolve() for p in [*self.cfg.gold_files, *self.cfg.calibration_files]
        }
        if pool_path.resolve() in gold_paths:
            raise GoldLeakError(f"round {r}: the pool file {pool_path} is a gold file")
        base = load_train_config(self.cfg.train_config)
        values = {
            **base.to_dict(),
            **self.cfg.train_overrides,
            "train_files": [str(pool_path)],
            "eval_files": [],
            "out_dir": str(rdir / "model"),
            "resume": "auto",
        }
        tcfg = train_config_from_dict(values)
        if not self.cfg.progress:
            tcfg.progress = False
        if self.cfg.train_launcher:
            return {"records": len(pool), **self._launch_training(r, rdir, tcfg)}
        result = train_main(tcfg)
        return {
            "records": len(pool),
            "steps": result.steps,
            "first_loss": result.losses[0] if result.losses else None,
            "last_loss": result.losses[-1] if result.losses else None,
            "eval_loss": result.eval_loss,
            "final_dir": str(result.final_dir),
        }

    def _launch_training(self, r: int, rdir: Path, tcfg: Any) -> dict[str, Any]:
        """`{train_launcher} -m training.train --config round/train.yaml` in a child process
        (e.g. torchrun over every GPU of the node)."""
        import shlex
        import subprocess

        import yaml

        path = rdir / "train.yaml"
        path.write_text(yaml.safe_dump(tcfg.to_dict(), allow_unicode=True), encoding="utf-8")
        command = [
            *shlex.split(self.cfg.train_launcher),
            "-m",
            "training.train",
            "--config",
            str(path),
        ]
        log.info("round %d: %s", r, " ".join(command))
        rc = subprocess.run(command, check=False).returncode
        final = rdir / "model" / "final"
        if rc != 0 or not final.is_dir():
            raise RuntimeError(f"round {r}: training exited with {rc} ({' '.join(command)})")
        return {"steps": None, "first_loss": None, "last_loss": None, "eval_loss": None,
                "final_dir": str(final), "launcher": self.cfg.train_launcher}  # fmt: skip

    def _eval(self, r: int, rdir: Path, chunk: list[Record]) -> dict[str, Any]:
        from agents.model_check import OIELLMCheck
        from eval.metrics import score
        from training.infer import OIELLM
        from training.verifier_model import calibrate_from_predictions

        cfg = self.cfg
        final = rdir / "model" / "final"
        model = OIELLM.load(final, device=cfg.device or None)
        runner = OIELLMCheck(
            model, 1.0, batch_size=cfg.check_batch_size, max_new_tokens=cfg.check_max_new_tokens
        )
        preds = [
            p.model_copy(update={"id": g.id})
            for g, p in zip(self.gold, runner.predict(self.gold), strict=True)
        ]
        _write_records(rdir / "predictions.jsonl", preds)
        scores = score(self.gold, preds).to_dict()
        _write_json(rdir / "scores.json", scores)
        cal_preds = preds if self.calibration is self.gold else runner.predict(self.calibration)
        cal = calibrate_from_predictions(
            self.calibration,
            cal_preds,
            cfg.calibration_quantile,
            batch_size=cfg.check_batch_size,
            max_new_tokens=cfg.check_max_new_tokens,
            sources=cfg.calibration_files or cfg.gold_files,
        )
        cal.save(final)
        gold = {
            k: scores[k]
            for k in ("n", "tl_accuracy", "wl_precision", "wl_recall", "wl_f1", "all_accuracy")
        }
        log.info(
            "round %d gold: TL %.3f WL-F1 %.3f ALL %.3f; model-check threshold %.3f",
            r, gold["tl_accuracy"], gold["wl_f1"], gold["all_accuracy"], cal.threshold,
        )  # fmt: skip
        return {
            "gold": gold,
            "calibration": {
                "threshold": cal.threshold,
                "quantile": cal.quantile,
                "n": cal.n,
                "mean_disagreement": cal.mean_disagreement,
            },
        }

    # -- reports

    def round_report(self, r: int) -> dict[str, Any]:
        s = self.state["rounds"].get(str(r), {})
        tr, pool, train, ev = (s.get(k, {}) for k in STEPS)
        check = tr.get("model_check", {})
        scores = self._scores()
        improved = None
        if len(scores) >= r:
            improved = r == 1 or scores[r - 1] > max(scores[: r - 1]) + self.cfg.min_improvement
        return {
            "round": r,
            "done": [k for k in STEPS if k in s],
            "records": tr.get("records"),
            "accepted": tr.get("accepted"),
            "rejected": tr.get("rejected"),
            "acceptance": tr.get("acceptance"),
            "by_target": tr.get("by_target", {}),
            "findings": tr.get("findings", {}),
            "rejection_reasons": tr.get("rejection_reasons", {}),
            "llm_calls": tr.get("llm_calls"),
            "model_check": {k: v for k, v in check.items() if k != "flipped"},
            "flipped": check.get("flipped", {}),
            "pool": pool,
            "train": train,
            "gold": ev.get("gold", {}),
            "calibration": ev.get("calibration", {}),
            "stop_metric": self.cfg.stop_metric,
            "improved": improved,
        }

    def write_reports(self) -> dict[str, Any]:
        rounds = []
        for key in sorted(self.state["rounds"], key=int):
            rep = self.round_report(int(key))
            _write_json(round_dir(self.run, int(key)) / "report.json", rep)
            rounds.append(rep)
        scores = self._scores()
        best = max(range(len(scores)), key=lambda i: scores[i]) + 1 if scores else None
        report = {
            "run": str(self.run),
            "stop_metric": self.cfg.stop_metric,
            "best_round": best,
            "best_score": scores[best - 1] if best else None,
            "stopped": self.state.get("stopped"),
            "input": self.state.get("input", {}),
            "gold": {"files": self.cfg.gold_files, "n": len(self.gold)},
            "rounds": rounds,
        }
        _write_json(self.run / "report.json", report)
        if self.cfg.report:
            from eval.report import write_markdown_report

            try:
                write_markdown_report(self.run)
            except ImportError as err:  # matplotlib missing: the JSON report is still there
                log.warning("report.md not written: %s", err)
        return report


def _tag(record: Record, r: int, origin: str, *, verified: bool) -> Record:
    meta = {**record.meta, "self_train": {"round": r, "origin": origin, "model_verified": verified}}
    return record.model_copy(update={"meta": meta})


def _is_verified(record: Record) -> bool:
    info = record.meta.get("self_train")
    return bool(isinstance(info, dict) and info.get("model_verified"))


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
    for rep in report["rounds"]:
        gold = rep["gold"]
        print(
            f"round {rep['round']}: acceptance {rep['acceptance'] or 0:.3f}, pool "
            f"{rep['pool'].get('size')}, gold TL {gold.get('tl_accuracy', 0):.3f} WL-F1 "
            f"{gold.get('wl_f1', 0):.3f} ALL {gold.get('all_accuracy', 0):.3f}, flipped "
            f"{rep['flipped'].get('records', 0)}"
        )
    stop = report["stopped"]
    print(f"stopped after round {stop['after_round']}: {stop['reason']}; report: {cfg.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(cli())
