"""Word-level pairs of a record: (label, span text) after NFKC, as multisets, and their
true/false positive counts. Shared by the verifier's model check and by `eval.metrics`."""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Any

from mre.record import Record

Pair = tuple[str, str]


def normalize(text: str) -> str:
    """NFKC, then strip surrounding whitespace. Case is kept."""
    return unicodedata.normalize("NFKC", text).strip()


def pair_multiset(record: Record) -> Counter[Pair]:
    """The record's (label, span text) pairs, normalized, as a multiset."""
    return Counter((normalize(label), normalize(text)) for label, text in record.pairs())


def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


@dataclass
class Counts:
    """True positives, false positives and false negatives of word-level pairs."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, other: Counts) -> None:
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn

    @property
    def precision(self) -> float:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        """2PR / (P + R), which equals 2TP / (2TP + FP + FN); 0.0 when there is no TP."""
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    @property
    def support(self) -> int:
        """The number of gold pairs."""
        return self.tp + self.fn

    def to_dict(self) -> dict[str, Any]:
        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "support": self.support,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
        }


def compare_pairs(gold: Counter[Pair], pred: Counter[Pair]) -> dict[str, Counts]:
    """Per-label counts of one record: TP = multiset intersection, FP/FN = the remainders."""
    by_label: dict[str, Counts] = {}
    for pair in gold.keys() | pred.keys():
        g, p = gold.get(pair, 0), pred.get(pair, 0)
        tp = min(g, p)
        counts = by_label.setdefault(pair[0], Counts())
        counts.add(Counts(tp=tp, fp=p - tp, fn=g - tp))
    return by_label
