"""The model check: the trained OIELLM reads the translated text and must agree with the spans.

The verifier calls an `OIELLMCheck` on every projected target record that passed the rule
checks (`agents.verifier.verify(..., model_check=...)`):

- the OIELLM extracts from the record's text, with the record's task and language;
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

**Calibration.** The threshold is not guessed: `calibrate` runs the model on a gold slice
(target-language records whose spans are right), takes the disagreement of every record and
picks its `quantile` (default 0.9, linear interpolation between order statistics, numpy's
default method). A correct translation is then flagged about `1 - quantile` of the time;
a weak model (one that disagrees with everything on gold) gets a threshold near 1.0 and can
veto almost nothing, which is what a model that has not learned the task deserves.
`Calibration.save(checkpoint)` writes `checkpoint/model_check.json`; `OIELLMCheck.load`
reads it.

    python -m agents.model_check --checkpoint runs/x/final --gold gold.en.jsonl [--quantile 0.9]

**Switching it off.** No `--verifier-model` on `python -m graphs.translate`: no model check;
`model_check: false` in a `self_training` config.

Extractions are cached by (task, lang, text): a retry that changes nothing, and the align and
verify of one draft, never pay for the model twice.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from agents.findings import Code, Finding
from mre import Record, Task

log = logging.getLogger(__name__)

#: The file next to a checkpoint that holds the calibrated threshold.
CALIBRATION_FILE = "model_check.json"
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
    lang = record.lang
    parts = [
        f"an extraction model trained on earlier verified {lang} data reads your translation "
        f"differently from your markers (disagreement {cmp.disagreement:.2f}, allowed "
        f"{threshold:.2f})."
    ]
    if cmp.missed:
        parts.append(
            "It did not recognise these marked entities: "
            + _named([f"{t!r} ({lab})" for lab, t in cmp.missed])
            + "; make each marked span the complete, usual name of that entity."
        )
    if cmp.extra:
        parts.append(
            "It found these entities that no marker covers exactly: "
            + _named([f"{t!r} ({lab})" for lab, t in cmp.extra])
            + "; if one of them translates a marked source entity, put the marker around "
            "exactly that name."
        )
    if cmp.relabelled:
        parts.append(
            "It read these as another kind of entity: "
            + _named([f"{t!r} ({theirs}, marked as {ours})" for t, ours, theirs in cmp.relabelled])
            + "; write the name so that its kind is clear."
        )
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

    @classmethod
    def load(
        cls, path: str | Path, threshold: float | None = None, *, device: str | None = None
    ) -> OIELLMCheck:
        """The checkpoint at `path` with the threshold calibrated for it (`model_check.json`
        next to it), or `threshold` when given."""
        from training.infer import OIELLM

        path = Path(path)
        if threshold is not None:
            return cls(OIELLM.load(path, device=device), threshold)
        cal = Calibration.read(path)  # before loading the model: a missing file fails fast
        log.info(
            "model check: %s, threshold %.3f (quantile %.2f of %d gold records)",
            path,
            cal.threshold,
            cal.quantile,
            cal.n,
        )
        return cls(
            OIELLM.load(path, device=device),
            cal.threshold,
            batch_size=cal.batch_size,
            max_new_tokens=cal.max_new_tokens,
        )

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


# ---- calibration --------------------------------------------------------------------------


def quantile_of(values: Sequence[float], q: float) -> float:
    """The `q` quantile by linear interpolation between order statistics (numpy's default):
    position q*(n-1) in the sorted values."""
    if not values:
        raise ValueError("quantile of no values")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile must be in [0, 1], got {q}")
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


@dataclass
class Calibration:
    """The threshold picked on a gold slice, and how."""

    threshold: float
    quantile: float
    n: int
    mean_disagreement: float
    disagreements: list[float] = field(default_factory=list)
    batch_size: int = 16
    max_new_tokens: int = 256
    gold: list[str] = field(default_factory=list)  # where the gold slice came from

    def save(self, checkpoint: str | Path) -> Path:
        path = Path(checkpoint) / CALIBRATION_FILE
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def read(cls, checkpoint: str | Path) -> Calibration:
        path = Path(checkpoint) / CALIBRATION_FILE
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} not found: the model check needs a threshold calibrated for this "
                f"checkpoint; run `python -m agents.model_check --checkpoint {checkpoint} "
                "--gold GOLD.jsonl` (gold: target-language records with right spans)"
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**data)
        except (ValueError, TypeError) as err:
            raise ValueError(f"{path}: not a model-check calibration: {err}") from err


def calibrate_from_predictions(
    gold: Sequence[Record],
    predicted: Sequence[Record],
    quantile: float = 0.9,
    *,
    batch_size: int = 16,
    max_new_tokens: int = 256,
    sources: Sequence[str] = (),
) -> Calibration:
    """The calibration of predictions already made on `gold` (same order)."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(predicted)} predictions for {len(gold)} gold records")
    if not gold:
        raise ValueError("cannot calibrate the model check on an empty gold slice")
    values = [disagreement(g, p) for g, p in zip(gold, predicted, strict=True)]
    return Calibration(
        threshold=round(quantile_of(values, quantile), 6),
        quantile=quantile,
        n=len(values),
        mean_disagreement=round(sum(values) / len(values), 6),
        disagreements=[round(v, 6) for v in values],
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        gold=list(sources),
    )


def calibrate(
    model: Extractor,
    gold: Sequence[Record],
    quantile: float = 0.9,
    *,
    batch_size: int = 16,
    max_new_tokens: int = 256,
    sources: Sequence[str] = (),
) -> Calibration:
    """Run `model` on the gold slice and pick the `quantile` of its disagreement."""
    check = OIELLMCheck(model, 1.0, batch_size=batch_size, max_new_tokens=max_new_tokens)
    predicted = check.predict(gold)
    cal = calibrate_from_predictions(
        gold,
        predicted,
        quantile,
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        sources=sources,
    )
    counts = Counter(round(v, 1) for v in cal.disagreements)
    log.info(
        "calibrated on %d gold records: threshold %.3f (q=%.2f), mean disagreement %.3f, %s",
        cal.n,
        cal.threshold,
        quantile,
        cal.mean_disagreement,
        dict(sorted(counts.items())),
    )
    return cal


# ---- CLI ----------------------------------------------------------------------------------


def cli(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m agents.model_check",
        description="Calibrate the model check's threshold for a checkpoint on a gold slice "
        f"and write CHECKPOINT/{CALIBRATION_FILE}.",
    )
    p.add_argument("--checkpoint", required=True, type=Path, help="a saved OIELLM directory")
    p.add_argument("--gold", required=True, nargs="+", type=Path, help="gold record files")
    p.add_argument("--quantile", type=float, default=0.9, help="default 0.9")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--device", default=None)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from mre.io import read_records
    from training.infer import OIELLM

    gold = [r for path in args.gold for r in read_records(path, fmt="jsonl", strict=True)]
    model = OIELLM.load(args.checkpoint, device=args.device)
    cal = calibrate(
        model,
        gold,
        args.quantile,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        sources=[str(g) for g in args.gold],
    )
    path = cal.save(args.checkpoint)
    print(
        f"threshold {cal.threshold:.3f} (quantile {cal.quantile} of {cal.n} gold records, "
        f"mean disagreement {cal.mean_disagreement:.3f}) -> {path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(cli())
