"""The model check: a trained OIELLM reads the translated text and must agree with the spans.

The verifier calls an `OIELLMCheck` on every projected target record that passed the rule
checks (`agents.verifier.verify(..., model_check=...)`):

- the extractor (any callable object with `extract(texts, task, lang, ...)`, e.g.
  `training.infer.OIELLM` or `training.verifier_client.CompletionsExtractor`) extracts from the
  record's text, with the record's task and language;
- its (label, span text) pairs are compared with the projected pairs, as multisets after
  `mre.pairs.normalize` (the WL matching of `eval.metrics`); offsets and the text label are
  not compared (the text label comes from the glossary, not from the translation);
- **disagreement** = 1 - F1 of the two multisets (0.0 when both are empty, 1.0 when exactly
  one is empty);
- disagreement **above** the threshold is a `Code.MODEL_DISAGREEMENT` finding of severity
  ERROR, so the translator gets it as feedback on the retry (and the pair is rejected when no
  attempt is left). Its message says which marked entities the model did not find, which
  entities it found unmarked, and which it read with another label; `data` carries the
  model's pairs, the projected pairs, the disagreement, the threshold and the raw output.

This module holds the check only. Loading a checkpoint, calibrating its threshold on a gold
slice and the calibration CLI live in `training.verifier_model`
(`python -m training.verifier_model --checkpoint DIR --gold FILE`).

Extractions are cached by (task, lang, text): a retry that changes nothing, and the align and
verify of one draft, never pay for the model twice.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from agents.findings import Code, Finding
from agents.prompts import (
    MODEL_CHECK_EXTRA,
    MODEL_CHECK_FEEDBACK,
    MODEL_CHECK_MISSED,
    MODEL_CHECK_RELABELLED,
)
from mre import Record, Task

log = logging.getLogger(__name__)

#: `meta` key of an extracted record with the raw model output (`training.infer`).
OUTPUT_META_KEY = "oiellm_output"
PARSE_ERRORS_META_KEY = "parse_errors"
#: How many entities of each kind the feedback message names.
MAX_NAMED = 8

Pair = tuple[str, str]


class Extractor(Protocol):
    """What the check needs of a model: `training.infer.OIELLM.extract`."""

    def extract(
        self,
        texts: list[str],
        task: Task | str,
        lang: str,
        *,
        batch_size: int = ...,
        max_new_tokens: int = ...,
    ) -> list[Record]: ...


# ---- comparison ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """The model's pairs against the projected ones."""

    disagreement: float
    f1: float
    missed: list[Pair]  # projected pairs the model did not produce
    extra: list[Pair]  # model pairs that are not projected
    relabelled: list[tuple[str, str, str]]  # (text, projected label, model label)


def compare(reference: Record, predicted: Record) -> Comparison:
    """Disagreement = 1 - F1 between the pair multisets of `reference` and `predicted`."""
    from mre.pairs import compare_pairs, pair_multiset

    gold, pred = pair_multiset(reference), pair_multiset(predicted)
    tp = fp = fn = 0
    for counts in compare_pairs(gold, pred).values():
        tp, fp, fn = tp + counts.tp, fp + counts.fp, fn + counts.fn
    f1 = 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)
    missed = sorted((gold - pred).elements())
    extra = sorted((pred - gold).elements())
    # the same text on both sides under different labels: one relabelling, not two errors
    relabelled: list[tuple[str, str, str]] = []
    extra_by_text: dict[str, list[str]] = {}
    for label, text in extra:
        extra_by_text.setdefault(text, []).append(label)
    still_missed: list[Pair] = []
    for label, text in missed:
        others = extra_by_text.get(text)
        if others:
            relabelled.append((text, label, others.pop(0)))
        else:
            still_missed.append((label, text))
    still_extra = [(lab, t) for t, labs in extra_by_text.items() for lab in labs]
    return Comparison(
        disagreement=1.0 - f1,
        f1=f1,
        missed=still_missed,
        extra=sorted(still_extra),
        relabelled=relabelled,
    )


def disagreement(reference: Record, predicted: Record) -> float:
    """1 - F1 of the (label, text) pairs; 0.0 when neither has a pair."""
    return compare(reference, predicted).disagreement


def _named(items: Sequence[str]) -> str:
    shown = ", ".join(items[:MAX_NAMED])
    more = len(items) - MAX_NAMED
    return shown + (f" and {more} more" if more > 0 else "")


def feedback_message(record: Record, cmp: Comparison, threshold: float) -> str:
    """What the translator reads: which entities the model saw, missed or read differently."""
    parts = [
        MODEL_CHECK_FEEDBACK.format(
            lang=record.lang, disagreement=cmp.disagreement, threshold=threshold
        )
    ]
    if cmp.missed:
        parts.append(
            MODEL_CHECK_MISSED.format(entities=_named([f"{t!r} ({lab})" for lab, t in cmp.missed]))
        )
    if cmp.extra:
        parts.append(
            MODEL_CHECK_EXTRA.format(entities=_named([f"{t!r} ({lab})" for lab, t in cmp.extra]))
        )
    if cmp.relabelled:
        named = _named(
            [f"{t!r} ({theirs}, marked as {ours})" for t, ours, theirs in cmp.relabelled]
        )
        parts.append(MODEL_CHECK_RELABELLED.format(entities=named))
    return " ".join(parts)


# ---- the check ----------------------------------------------------------------------------


class OIELLMCheck:
    """A `agents.verifier.ModelCheck`: `check(record) -> [Finding]` (empty: the model agrees)."""

    def __init__(
        self,
        model: Extractor,
        threshold: float,
        *,
        batch_size: int = 16,
        max_new_tokens: int = 256,
        cache_size: int = 4096,
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        self.model = model
        self.threshold = threshold
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.cache_size = cache_size
        self.calls = 0  # model extractions actually run (cache misses)
        self._cache: OrderedDict[tuple[str, str, str], Record] = OrderedDict()

    def predict(self, records: Sequence[Record]) -> list[Record]:
        """The model's extraction of every record's text (cached by task, lang and text)."""
        keys = [(str(r.task), r.lang, r.text) for r in records]
        todo: dict[tuple[str, str], dict[str, None]] = {}  # (task, lang) -> texts, in order
        for task, lang, text in keys:
            if (task, lang, text) not in self._cache:
                todo.setdefault((task, lang), {})[text] = None
        for (task, lang), unique in todo.items():
            texts = list(unique)
            out = self.model.extract(
                texts,
                task=task,
                lang=lang,
                batch_size=self.batch_size,
                max_new_tokens=self.max_new_tokens,
            )
            self.calls += len(texts)
            for text, pred in zip(texts, out, strict=True):
                self._cache[(task, lang, text)] = pred
        found = []
        for key in keys:
            pred = self._cache[key]
            self._cache.move_to_end(key)
            found.append(pred)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return found

    def __call__(self, record: Record) -> list[Finding]:
        (predicted,) = self.predict([record])
        cmp = compare(record, predicted)
        if cmp.disagreement <= self.threshold:
            return []
        return [
            Finding.error(
                Code.MODEL_DISAGREEMENT,
                feedback_message(record, cmp, self.threshold),
                disagreement=round(cmp.disagreement, 4),
                threshold=self.threshold,
                model_pairs=[list(p) for p in predicted.pairs()],
                projected_pairs=[list(p) for p in record.pairs()],
                missed=[list(p) for p in cmp.missed],
                extra=[list(p) for p in cmp.extra],
                relabelled=[list(x) for x in cmp.relabelled],
                model_label=predicted.label,
                model_output=predicted.meta.get(OUTPUT_META_KEY, ""),
                parse_errors=predicted.meta.get(PARSE_ERRORS_META_KEY, []),
            )
        ]
