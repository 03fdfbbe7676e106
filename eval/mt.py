"""chrF and BLEU of translations against references, through sacrebleu.

Corpus-level scores on sacrebleu's 0-100 scale (not fractions: that is how MT papers report
them). sacrebleu is imported inside the functions (extra `eval`).

- BLEU tokenizer by language: `zh` for Chinese, `char` for Japanese (no segmenter needed),
  sacrebleu's default `13a` for everything else. The language code's primary subtag decides:
  `zh-Hans` and `zh_CN` count as Chinese.
- chrF: sacrebleu's standard chrF (character 6-grams, beta 2, no word n-grams); it works on
  characters, so it needs no tokenizer for any language.
- `score_translations` pairs predicted records with references: a reference is keyed by
  (`id`, `lang`); a prediction takes the reference keyed by its own (`id`, `lang`), else the
  one keyed by (`meta.source_id`, `lang`) (records our pipeline translated point back to their
  source that way, and references are usually keyed by the source id). Scores are per
  language only: a BLEU over mixed tokenizers would mean nothing.
- One reference per hypothesis. Empty input or a length mismatch is a ValueError.
  BLEU of a corpus whose hypotheses are all shorter than 4 tokens is 0 (no 4-grams), as in
  sacrebleu; chrF has no such floor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mre.record import Record


def primary_subtag(lang: str) -> str:
    """`zh-Hans` -> `zh`, `ja_JP` -> `ja`, lower-cased."""
    return lang.replace("_", "-").split("-", 1)[0].lower()


def bleu_tokenizer(lang: str) -> str:
    """The sacrebleu BLEU tokenizer used for `lang`: zh, char (ja) or 13a."""
    code = primary_subtag(lang)
    if code == "zh":
        return "zh"
    if code == "ja":
        return "char"
    return "13a"


def _check(hyps: Sequence[str], refs: Sequence[str]) -> None:
    if not hyps:
        raise ValueError("no hypotheses to score")
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")


def chrf(hyps: Sequence[str], refs: Sequence[str], lang: str) -> float:
    """Corpus chrF (0-100) of `hyps` against one reference each. `lang` is accepted for
    symmetry with `bleu`; standard chrF is language-independent."""
    from sacrebleu.metrics import CHRF

    _check(hyps, refs)
    return float(CHRF().corpus_score(list(hyps), [list(refs)]).score)


def bleu(hyps: Sequence[str], refs: Sequence[str], lang: str) -> float:
    """Corpus BLEU (0-100) of `hyps` against one reference each, tokenized for `lang`."""
    from sacrebleu.metrics import BLEU

    _check(hyps, refs)
    metric = BLEU(tokenize=bleu_tokenizer(lang))
    return float(metric.corpus_score(list(hyps), [list(refs)]).score)


def reference_for(record: Record, refs: Mapping[tuple[str, str], str]) -> str | None:
    """The reference text of `record`: by (id, lang), else by (meta.source_id, lang)."""
    text = refs.get((record.id, record.lang))
    if text is None:
        source_id = record.meta.get("source_id")
        if isinstance(source_id, str):
            text = refs.get((source_id, record.lang))
    return text


def score_translations(
    preds: Sequence[Record], refs: Mapping[tuple[str, str], str]
) -> dict[str, dict[str, Any]]:
    """chrF and BLEU of the predicted texts per language, against `refs` keyed (id, lang).

    Returns {lang: {"chrf", "bleu", "bleu_tokenize", "n", "unmatched"}}; `n` predictions
    found a reference, `unmatched` did not (they are left out of the scores). A language
    where no prediction found a reference has scores 0.0 and n 0.
    """
    hyps: dict[str, list[str]] = {}
    ref_texts: dict[str, list[str]] = {}
    unmatched: dict[str, int] = {}
    for record in preds:
        unmatched.setdefault(record.lang, 0)
        hyps.setdefault(record.lang, [])
        ref_texts.setdefault(record.lang, [])
        ref = reference_for(record, refs)
        if ref is None:
            unmatched[record.lang] += 1
            continue
        hyps[record.lang].append(record.text)
        ref_texts[record.lang].append(ref)
    out: dict[str, dict[str, Any]] = {}
    for lang in sorted(hyps):
        n = len(hyps[lang])
        out[lang] = {
            "chrf": chrf(hyps[lang], ref_texts[lang], lang) if n else 0.0,
            "bleu": bleu(hyps[lang], ref_texts[lang], lang) if n else 0.0,
            "bleu_tokenize": bleu_tokenizer(lang),
            "n": n,
            "unmatched": unmatched[lang],
        }
    return out
