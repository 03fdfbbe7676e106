"""Text-level (TL), word-level (WL) and ALL metrics over MRE mix records. Pure: no I/O.

Definitions (issue 5), and the choices made where the issue leaves room:

- **Matching.** Predictions are matched to gold records by `id`. A gold record with no
  prediction counts as wrong everywhere: TL wrong (if it has a label), every gold pair is a
  false negative, ALL wrong. A prediction whose `id` is not in gold is ignored for every
  metric and only counted (`extra_predictions`). Duplicate ids, in gold or in predictions,
  are an error (`ValueError` naming the id): a score must not depend on which copy wins.
  Breakdowns use the *gold* record's `lang` and `task`.
- **Normalization.** Labels (text-level and word-level) and span texts are compared after
  `unicodedata.normalize("NFKC", s).strip()`: full-width ＡＢＣ equals ABC, half-width ｶﾀｶﾅ
  equals カタカナ, a trailing space does not matter. Case is *kept* (no casefold): "Apple" and
  "apple" are different entities in English and Chinese/Japanese have no case, so exact match
  after NFKC is the strictest comparison that still forgives encoding variants.
  Inner whitespace is kept as is.
- **TL** (text-level accuracy): the share of gold records *that have a label* whose
  prediction has the same label. Gold records with `label: null` (e.g. stockmark NER) are
  left out of TL; `tl_n` says how many records TL is over.
- **WL** (word-level): precision, recall and F1 over (label, span text) pairs, micro-averaged
  over all matched and missing records. Offsets are ignored. Pairs are **multisets**: a
  prediction holding the same pair twice where gold has it once gives one true positive and
  one false positive; gold holding it twice and the prediction once gives one TP, one FN.
  Relations are not scored here.
- **ALL**: a record counts only when its text label and its whole multiset of pairs are both
  right. When the gold label is null, only the pairs have to be right. Over all gold records
  (`all_n == n`).
- **Zero division** gives 0.0 (precision with no predicted pairs, accuracy over no records,
  F1 when P + R == 0); the counts (`n`, `tl_n`, `tp`, `fp`, `fn`, `support`) are always
  reported next to the fraction so a 0.0 can be told apart from "nothing to score".
- **Breakdowns**: `by_lang`, `by_task`, `by_lang_task` (key `"{lang}/{task}"`) hold the same
  TL/WL/ALL figures per group; `by_label` holds P/R/F1 and support (gold pairs) per
  normalized word-level label, over all records.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mre.pairs import Counts, Pair, compare_pairs, normalize, pair_multiset
from mre.record import Record


def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


@dataclass
class GroupScores:
    """TL, WL and ALL figures over one group of gold records (all, one language, one task)."""

    n: int = 0
    missing: int = 0
    tl_n: int = 0
    tl_correct: int = 0
    all_correct: int = 0
    wl: Counts = field(default_factory=Counts)

    @property
    def tl_accuracy(self) -> float:
        return _ratio(self.tl_correct, self.tl_n)

    @property
    def all_accuracy(self) -> float:
        return _ratio(self.all_correct, self.n)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "missing_predictions": self.missing,
            "tl_accuracy": self.tl_accuracy,
            "tl_n": self.tl_n,
            "tl_correct": self.tl_correct,
            "wl_precision": self.wl.precision,
            "wl_recall": self.wl.recall,
            "wl_f1": self.wl.f1,
            "wl_tp": self.wl.tp,
            "wl_fp": self.wl.fp,
            "wl_fn": self.wl.fn,
            "all_accuracy": self.all_accuracy,
            "all_correct": self.all_correct,
        }


@dataclass
class Scores:
    """The result of `score`: overall figures plus breakdowns. `to_dict()` is the JSON."""

    overall: GroupScores
    by_lang: dict[str, GroupScores]
    by_task: dict[str, GroupScores]
    by_lang_task: dict[str, GroupScores]
    by_label: dict[str, Counts]
    extra_predictions: int

    def to_dict(self) -> dict[str, Any]:
        out = self.overall.to_dict()
        out["matched"] = self.overall.n - self.overall.missing
        out["extra_predictions"] = self.extra_predictions
        out["by_lang"] = {k: v.to_dict() for k, v in sorted(self.by_lang.items())}
        out["by_task"] = {k: v.to_dict() for k, v in sorted(self.by_task.items())}
        out["by_lang_task"] = {k: v.to_dict() for k, v in sorted(self.by_lang_task.items())}
        out["by_label"] = {k: v.to_dict() for k, v in sorted(self.by_label.items())}
        return out


def index_by_id(records: Iterable[Record], what: str = "records") -> dict[str, Record]:
    """Records keyed by id; a repeated id is a ValueError naming it."""
    out: dict[str, Record] = {}
    for record in records:
        if record.id in out:
            raise ValueError(f"duplicate id {record.id!r} in {what}")
        out[record.id] = record
    return out


@dataclass(frozen=True)
class RecordResult:
    """How one gold record fared. `tl_correct` is None when the gold label is null."""

    tl_correct: bool | None
    all_correct: bool
    by_label: dict[str, Counts]
    missing: bool


def score_record(gold: Record, pred: Record | None) -> RecordResult:
    """Score one gold record against its prediction (None: no prediction)."""
    gold_pairs = pair_multiset(gold)
    pred_pairs: Counter[Pair] = pair_multiset(pred) if pred is not None else Counter()
    by_label = compare_pairs(gold_pairs, pred_pairs)
    tl_correct: bool | None = None
    if gold.label is not None:
        tl_correct = (
            pred is not None
            and pred.label is not None
            and normalize(pred.label) == normalize(gold.label)
        )
    pairs_right = pred is not None and gold_pairs == pred_pairs
    all_correct = pairs_right and tl_correct is not False
    return RecordResult(tl_correct, all_correct, by_label, pred is None)


def _add(group: GroupScores, result: RecordResult) -> None:
    group.n += 1
    group.missing += int(result.missing)
    if result.tl_correct is not None:
        group.tl_n += 1
        group.tl_correct += int(result.tl_correct)
    group.all_correct += int(result.all_correct)
    for counts in result.by_label.values():
        group.wl.add(counts)


def score(gold: Sequence[Record], pred: Sequence[Record]) -> Scores:
    """TL / WL / ALL scores of `pred` against `gold` (see the module docstring)."""
    gold_by_id = index_by_id(gold, "gold")
    pred_by_id = index_by_id(pred, "predictions")
    overall = GroupScores()
    by_lang: dict[str, GroupScores] = {}
    by_task: dict[str, GroupScores] = {}
    by_lang_task: dict[str, GroupScores] = {}
    by_label: dict[str, Counts] = {}
    for gid, g in gold_by_id.items():
        result = score_record(g, pred_by_id.get(gid))
        task = str(g.task)
        for group in (
            overall,
            by_lang.setdefault(g.lang, GroupScores()),
            by_task.setdefault(task, GroupScores()),
            by_lang_task.setdefault(f"{g.lang}/{task}", GroupScores()),
        ):
            _add(group, result)
        for label, counts in result.by_label.items():
            by_label.setdefault(label, Counts()).add(counts)
    extra = sum(1 for pid in pred_by_id if pid not in gold_by_id)
    return Scores(overall, by_lang, by_task, by_lang_task, by_label, extra)
