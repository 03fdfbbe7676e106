"""The reviewer agent: one structured LLM call judges every marked entity of a translation.

Used where the verifier's evidence is uncertain (`--review uncertain`, the default) or on
every pair (`--review all`). For each marker it answers whether the target span translates
the source entity and, if not, the corrected span text. `apply_review` turns the verdicts into
findings: a corrected span found in the translation on token boundaries is re-projected (the
aligner's search, no new translation); one that is not there goes back to the translator as
feedback; a span judged correct settles the verifier's doubts about it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, ValidationError

from agents.aligner import Alignment, Projected
from agents.cache import ResponseCache, cache_key
from agents.findings import Code, Finding
from agents.llm import Method
from agents.markers import mark
from agents.prompts import REVIEW_SUGGESTION, VERIFIER_FEEDBACK, ReviewerPrompts
from agents.translator import Usage
from mre import Record
from word_tokenizers import Language
from word_tokenizers.spans import find_phrase

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

log = logging.getLogger(__name__)

ReviewMode = Literal["off", "uncertain", "all"]
REVIEW_MODES: tuple[ReviewMode, ...] = ("off", "uncertain", "all")


class EntityVerdict(BaseModel):
    """The reviewer's verdict on one marker."""

    index: int = Field(description="The marker number: 1 for <e1>, 2 for <e2>, ...")
    correct: bool = Field(
        description=(
            "true when the span inside this marker in the translation is the translation of "
            "the entity inside the same marker in the source, with the right extent (no extra "
            "words, nothing cut off); false otherwise"
        )
    )
    corrected: str | None = Field(
        default=None,
        description=(
            "Only when correct is false: the words of the translation that translate the "
            "source entity, copied exactly from the translation; or your own translation of "
            "the entity when the translation does not contain it. null when correct is true."
        ),
    )


class ReviewAnswer(BaseModel):
    """The reviewer's structured answer: one verdict per marker of the source, in order."""

    verdicts: list[EntityVerdict] = Field(
        description="One verdict for every marker of the source, in marker order."
    )


@dataclass
class Review:
    """What one reviewer call produced."""

    verdicts: list[EntityVerdict] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    error: str | None = None  # the call failed or the answer was unusable


def mark_projected(text: str, projected: dict[int, Projected]) -> str:
    """The translation with each projected span wrapped in its marker number."""
    events: list[tuple[int, int, str]] = []
    for index, p in projected.items():
        events.append((p.start, 1, f"<e{index}>"))
        events.append((p.end, 0, f"</e{index}>"))
    out: list[str] = []
    last = 0
    for pos, _, tag in sorted(events, key=lambda e: (e[0], e[1])):
        out.append(text[last:pos])
        out.append(tag)
        last = pos
    out.append(text[last:])
    return "".join(out)


class Reviewer:
    """Judges a projected translation entity by entity, in one structured call."""

    def __init__(
        self,
        llm: BaseChatModel,
        *,
        model_name: str,
        method: Method = "json_schema",
        prompts: ReviewerPrompts | None = None,
        cache: ResponseCache | None = None,
    ) -> None:
        self.llm = llm
        self.model_name = model_name
        self.method = method
        self.prompts = prompts or ReviewerPrompts()
        self.cache = cache
        self._structured = llm.with_structured_output(ReviewAnswer, method=method, include_raw=True)

    def messages(
        self,
        source: Record,
        source_lang: Language,
        target: Language,
        alignment: Alignment,
        doubts: Sequence[Finding] = (),
    ) -> list[tuple[str, str]]:
        p = self.prompts
        names = {
            "source_name": source_lang.name,
            "target_name": target.name,
            "source_lang": source_lang.code,
            "target_lang": target.code,
        }
        shown = "; ".join(f.message for f in doubts) or p.no_doubts
        return [
            ("system", p.system.format(**names)),
            (
                "human",
                p.user.format(
                    **names,
                    marked_source=mark(source.text, source.spans),
                    marked_translation=mark_projected(alignment.text, alignment.projected),
                    doubts=shown,
                ),
            ),
        ]

    async def __call__(
        self,
        source: Record,
        source_lang: Language,
        target: Language,
        alignment: Alignment,
        doubts: Sequence[Finding] = (),
    ) -> Review:
        msgs = self.messages(source, source_lang, target, alignment, doubts)
        key = cache_key(self.model_name, f"review:{self.method}", msgs)
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            return _review(hit, Usage(cache_hits=1))
        try:
            out = await self._structured.ainvoke(msgs)
        except _transport_errors() as exc:
            log.warning("review of %s -> %s failed: %s", source.id, target.code, exc)
            return Review(usage=Usage(calls=1), error=f"{type(exc).__name__}: {exc}"[:500])
        except _parse_errors() as exc:
            value: dict[str, Any] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
            usage = Usage(calls=1)
        else:
            answer: dict[str, Any] = dict(out) if isinstance(out, dict) else {}
            raw = answer.get("raw")
            meta = getattr(raw, "usage_metadata", None) or {}
            usage = Usage(
                calls=1,
                prompt_tokens=int(meta.get("input_tokens", 0)),
                completion_tokens=int(meta.get("output_tokens", 0)),
            )
            parsed = answer.get("parsed")
            if isinstance(parsed, ReviewAnswer):
                value = parsed.model_dump()
            else:
                error = answer.get("parsing_error") or "no structured answer"
                value = {"error": f"unparsable review: {error}"[:500]}
        if self.cache is not None and "error" not in value:
            self.cache.put(key, value)
        return _review(value, usage)


def _review(value: dict[str, Any], usage: Usage) -> Review:
    if "error" in value:
        return Review(usage=usage, error=str(value["error"]))
    try:
        answer = ReviewAnswer.model_validate(value)
    except ValidationError as exc:
        return Review(usage=usage, error=f"unparsable review: {exc}"[:500])
    return Review(verdicts=answer.verdicts, usage=usage)


@dataclass
class Applied:
    """The review applied to an alignment."""

    alignment: Alignment
    vouched: frozenset[int]  # entities judged correct (or repaired): doubts about them settled
    findings: list[Finding]


def apply_review(review: Review, source: Record, alignment: Alignment) -> Applied:
    """Verdicts -> findings; corrected spans found in the translation are re-projected."""
    if review.error is not None:
        return Applied(alignment, frozenset(), [])
    projected = dict(alignment.projected)
    vouched: set[int] = set()
    findings: list[Finding] = []
    n = len(source.spans)
    for verdict in review.verdicts:
        index = verdict.index
        if not 1 <= index <= n or index not in projected:
            continue
        if verdict.correct:
            vouched.add(index)
            continue
        entity = source.spans[index - 1].text
        current = projected[index]
        corrected = (verdict.corrected or "").strip()
        moved = _reproject(alignment, projected, index, corrected) if corrected else None
        if moved is not None:
            projected[index] = moved
            vouched.add(index)
            findings.append(
                Finding.info(
                    Code.REVIEW_REPAIRED,
                    f"a reviewer moved marker <e{index}> from {current.text!r} to {moved.text!r}",
                    span=index,
                    before=current.text,
                    after=moved.text,
                )
            )
            continue
        suggestion = REVIEW_SUGGESTION.format(corrected=corrected) if corrected else ""
        findings.append(
            Finding.error(
                Code.REVIEW_REJECTED,
                VERIFIER_FEEDBACK[Code.REVIEW_REJECTED.value].format(
                    index=index, span=current.text, entity=entity, suggestion=suggestion
                ),
                span=index,
                span_text=current.text,
                corrected=corrected or None,
            )
        )
    repaired = Alignment(
        text=alignment.text,
        tokens=alignment.tokens,
        projected=projected,
        findings=list(alignment.findings),
    )
    return Applied(repaired, frozenset(vouched), findings)


def _reproject(
    alignment: Alignment, projected: dict[int, Projected], index: int, corrected: str
) -> Projected | None:
    """The corrected span's place in the translation: on token boundaries, not overlapping
    another entity; the occurrence nearest the current span when there are several."""
    if not alignment.tokens:
        return None
    hits = find_phrase(alignment.text, corrected, alignment.tokens, nfkc=True, ignore_case=True)
    others = [(p.start, p.end) for i, p in projected.items() if i != index]
    free = [(s, e) for s, e in hits if all(e <= a or s >= b for a, b in others)]
    if not free:
        return None
    current = projected[index]
    s, e = min(free, key=lambda h: abs(h[0] - current.start))
    return Projected(index=index, start=s, end=e, text=alignment.text[s:e])


def _transport_errors() -> tuple[type[BaseException], ...]:
    import openai

    return (openai.APIError,)


def _parse_errors() -> tuple[type[BaseException], ...]:
    from langchain_core.exceptions import OutputParserException

    return (OutputParserException, ValidationError, ValueError, TypeError, KeyError)
