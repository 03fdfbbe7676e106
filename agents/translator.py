"""The translator agent: one LLM call translates the marked text; labels go through the glossary."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationError

from agents.cache import ResponseCache, cache_key
from agents.findings import Code, Finding
from agents.llm import Method
from agents.markers import mark
from agents.prompts import Prompts
from agents.schemas import TranslationAnswer
from mre import Record
from word_tokenizers import Language

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

log = logging.getLogger(__name__)


class Usage(BaseModel):
    """LLM cost of one or more calls."""

    calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            calls=self.calls + other.calls,
            cache_hits=self.cache_hits + other.cache_hits,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
        )


class LabelMap(BaseModel):
    """The source record's labels in the target language (None where the glossary has none)."""

    text_label: str | None = None
    span_labels: list[str | None] = Field(default_factory=list)


class Draft(BaseModel):
    """What the translator produced for one attempt."""

    answer: str | None = Field(default=None, description="the translation with its markers")
    labels: LabelMap = Field(default_factory=LabelMap)
    findings: list[Finding] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)


def map_labels(record: Record, source: Language, target: Language) -> tuple[LabelMap, list[Finding]]:
    """Map the record's text and span labels through the glossary; unmapped ones are findings."""
    from mre.glossary import map_label

    findings: list[Finding] = []

    def one(label: str, where: str, span: int | None) -> str | None:
        mapped = map_label(label, task=record.task, source=source.code, target=target.code)
        if mapped is None:
            findings.append(
                Finding.fatal(
                    Code.LABEL_UNMAPPED,
                    f"the {where} label {label!r} of task {record.task} has no "
                    f"{target.name} entry in the glossary",
                    span=span,
                    label=label,
                )
            )
        return mapped

    text_label = one(record.label, "text", None) if record.label is not None else None
    span_labels = [one(s.label, "span", i) for i, s in enumerate(record.spans, start=1)]
    return LabelMap(text_label=text_label, span_labels=span_labels), findings


class Translator:
    """Translates one record into one language, with the verifier's findings as feedback."""

    def __init__(
        self,
        llm: BaseChatModel,
        *,
        model_name: str,
        method: Method = "json_schema",
        prompts: Prompts | None = None,
        cache: ResponseCache | None = None,
    ) -> None:
        self.llm = llm
        self.model_name = model_name
        self.method = method
        self.prompts = prompts or Prompts()
        self.cache = cache
        self._structured = llm.with_structured_output(
            TranslationAnswer, method=method, include_raw=True
        )

    def messages(
        self,
        record: Record,
        source: Language,
        target: Language,
        *,
        previous: str | None = None,
        feedback: Sequence[Finding] = (),
        established: Mapping[str, str] | None = None,
    ) -> list[tuple[str, str]]:
        """The (role, content) messages of one attempt. `established` are translations the
        run's translation memory holds for entities of this record (source -> target)."""
        names = {
            "source_name": source.name,
            "target_name": target.name,
            "source_lang": source.code,
            "target_lang": target.code,
        }
        p = self.prompts
        msgs = [
            ("system", p.system.format(**names)),
            (
                "human",
                p.user.format(
                    **names,
                    n_markers=len(record.spans),
                    marked_text=mark(record.text, record.spans),
                ),
            ),
        ]
        if established:
            from agents.prompts import MEMORY_HINT, MEMORY_LINE

            entries = "\n".join(
                MEMORY_LINE.format(source=k, target=v) for k, v in established.items()
            )
            msgs.append(("human", MEMORY_HINT.format(**names, entries=entries)))
        if feedback:
            lines = "\n".join(p.finding_line.format(message=f.message) for f in feedback)
            msgs.append(("human", p.feedback.format(previous=previous or "", findings=lines)))
        return msgs

    async def __call__(
        self,
        record: Record,
        source: Language,
        target: Language,
        *,
        previous: str | None = None,
        feedback: Sequence[Finding] = (),
        established: Mapping[str, str] | None = None,
    ) -> Draft:
        labels, label_findings = map_labels(record, source, target)
        if label_findings:  # no LLM call can fix a glossary gap
            return Draft(labels=labels, findings=label_findings)
        msgs = self.messages(
            record, source, target, previous=previous, feedback=feedback, established=established
        )
        key = cache_key(self.model_name, self.method, msgs)
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            return self._draft(labels, hit, Usage(cache_hits=1))
        try:
            out = await self._structured.ainvoke(msgs)
        except _transport_errors() as exc:
            log.warning("record %s -> %s: LLM call failed: %s", record.id, target.code, exc)
            finding = Finding.fatal(
                Code.LLM_ERROR,
                f"the LLM endpoint failed after retries: {type(exc).__name__}: {exc}",
                error=type(exc).__name__,
            )
            return Draft(labels=labels, findings=[finding], usage=Usage(calls=1))
        except _parse_errors() as exc:  # json_schema raises on a bad answer
            value: dict[str, Any] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
            usage = Usage(calls=1)
        else:
            answer: dict[str, Any] = dict(out) if isinstance(out, dict) else {}
            raw = answer.get("raw")
            usage = _usage(raw)
            parsed, error = answer.get("parsed"), answer.get("parsing_error")
            if isinstance(parsed, TranslationAnswer):
                value = {"text": parsed.text}
            elif error is not None:
                value = {"error": f"{type(error).__name__}: {error}"[:500]}
            else:  # function_calling: bad arguments only show up as invalid tool calls
                invalid = getattr(raw, "invalid_tool_calls", None) or []
                detail = invalid[0].get("error") if invalid else "no structured answer"
                value = {"error": f"unparsable answer: {detail}"[:500]}
        if self.cache is not None:
            self.cache.put(key, value)
        return self._draft(labels, value, usage)

    @staticmethod
    def _draft(labels: LabelMap, value: dict[str, Any], usage: Usage) -> Draft:
        if "text" in value:
            return Draft(answer=value["text"], labels=labels, usage=usage)
        finding = Finding.error(
            Code.ANSWER_MALFORMED,
            "your answer was not valid JSON with a string field `text` "
            f"({value.get('error', 'no detail')}); answer with the JSON object only",
        )
        return Draft(labels=labels, findings=[finding], usage=usage)


def _usage(raw: Any) -> Usage:
    meta = getattr(raw, "usage_metadata", None) or {}
    return Usage(
        calls=1,
        prompt_tokens=int(meta.get("input_tokens", 0)),
        completion_tokens=int(meta.get("output_tokens", 0)),
    )


def _transport_errors() -> tuple[type[BaseException], ...]:
    import openai

    return (openai.APIError,)


def _parse_errors() -> tuple[type[BaseException], ...]:
    from langchain_core.exceptions import OutputParserException

    return (OutputParserException, ValidationError, ValueError, TypeError, KeyError)
