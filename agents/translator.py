"""The translator agent: one LLM call translates the marked text; labels go through the glossary."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationError

from agents.cache import ResponseCache, cache_key
from agents.findings import Code, Finding, Severity
from agents.llm import Method
from agents.markers import mark
from agents.prompts import TRANSLATOR_FEEDBACK_TEMPLATES, Prompts
from agents.schemas import ParsedAnswer, TranslationAnswer, parse_answer
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


def map_labels(
    record: Record, source: Language, target: Language
) -> tuple[LabelMap, list[Finding]]:
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
    """Translates one record into one language, with the verifier's findings as feedback.

    The answer is read tolerantly (:func:`agents.schemas.parse_answer`): a JSON object as
    asked, or one inside a ```json fence or prose, as endpoints that ignore `response_format`
    send it. With ``show_shape`` (the default for json_mode) the system message says JSON and
    shows the answer's shape. A retry never sends the messages of an earlier attempt of the
    same pair: the feedback is reworded once, then the pair stops with ``no_new_feedback``.
    """

    def __init__(
        self,
        llm: BaseChatModel,
        *,
        model_name: str,
        method: Method = "json_schema",
        prompts: Prompts | None = None,
        cache: ResponseCache | None = None,
        show_shape: bool | None = None,
        max_pairs_remembered: int = 100_000,
    ) -> None:
        self.llm = llm
        self.model_name = model_name
        self.method = method
        self.prompts = prompts or Prompts()
        self.cache = cache
        self.show_shape = method == "json_mode" if show_shape is None else show_shape
        self.temperature: float | None = getattr(llm, "temperature", None)
        self.schema: dict[str, Any] | None = (
            None if method == "json_mode" else TranslationAnswer.model_json_schema()
        )
        self.runnable = structured_runnable(llm, method)
        self._sent: OrderedDict[tuple[str, str], set[str]] = OrderedDict()
        self._max_pairs = max_pairs_remembered

    def cache_key(self, msgs: Sequence[tuple[str, str]]) -> str:
        """The response-cache key of one request of this translator."""
        return cache_key(
            self.model_name, self.method, msgs, schema=self.schema, temperature=self.temperature
        )

    def request_payload(self, msgs: Sequence[tuple[str, str]]) -> dict[str, Any]:
        """The chat-completions body this translator sends for `msgs` (e.g. for a batch file)."""
        from langchain_core.messages import convert_to_messages

        bound = self.runnable
        if isinstance(bound, dict) or not hasattr(bound, "kwargs"):  # function_calling map
            bound = bound.steps__["raw"] if hasattr(bound, "steps__") else bound
        kwargs = dict(getattr(bound, "kwargs", {}))
        kwargs.pop("ls_structured_output_format", None)
        payload: dict[str, Any] = self.llm._get_request_payload(  # type: ignore[attr-defined]
            convert_to_messages(list(msgs)), **kwargs
        )
        return payload

    def messages(
        self,
        record: Record,
        source: Language,
        target: Language,
        *,
        previous: str | None = None,
        feedback: Sequence[Finding] = (),
        repeated: bool = False,
        established: Mapping[str, str] | None = None,
    ) -> list[tuple[str, str]]:
        """The (role, content) messages of one attempt. Info findings are not feedback.
        `established` are translations the run's translation memory holds for entities of this
        record (source -> target)."""
        names = {
            "source_name": source.name,
            "target_name": target.name,
            "source_lang": source.code,
            "target_lang": target.code,
        }
        p = self.prompts
        system = p.system.format(**names)
        if self.show_shape:
            system += "\n\n" + p.json_answer.format()
        msgs = [
            ("system", system),
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
        blocking = [f for f in feedback if f.severity != Severity.INFO]
        if blocking:
            lines = "\n".join(p.finding_line.format(message=f.message) for f in blocking)
            template = p.feedback_repeated if repeated else p.feedback
            msgs.append(("human", template.format(previous=previous or "", findings=lines)))
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
        key = self.cache_key(msgs)
        retry = any(f.severity != Severity.INFO for f in feedback)
        sent = self._sent_for((record.id, target.code)) if retry else set()
        if key in sent:  # the same request as an earlier retry: say it another way
            msgs = self.messages(
                record,
                source,
                target,
                previous=previous,
                feedback=feedback,
                repeated=True,
                established=established,
            )
            key = self.cache_key(msgs)
            if key in sent:  # nothing new can be said: another call would change nothing
                finding = Finding.fatal(
                    Code.NO_NEW_FEEDBACK,
                    "the answer and its problems are the same as in earlier attempts, which "
                    "were already told in every wording; another request would repeat one",
                )
                return Draft(answer=previous, labels=labels, findings=[finding])
        sent.add(key)
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            return self._draft(labels, hit, Usage(cache_hits=1))
        try:
            out = await self.runnable.ainvoke(msgs)
        except _transport_errors() as exc:
            log.warning("record %s -> %s: LLM call failed: %s", record.id, target.code, exc)
            finding = Finding.fatal(
                Code.LLM_ERROR,
                f"the LLM endpoint failed after retries: {type(exc).__name__}: {exc}",
                error=type(exc).__name__,
            )
            return Draft(labels=labels, findings=[finding], usage=Usage(calls=1))
        except _parse_errors() as exc:
            value: dict[str, Any] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
            return self._draft(labels, value, Usage(calls=1))
        raw = out.get("raw") if isinstance(out, dict) else out
        parsed = read_answer(out, self.method)
        if parsed.text is None:  # not cached: a retry must ask again
            value = {"error": (parsed.error or "no structured answer")[:500]}
            return self._draft(labels, value, _usage(raw))
        value = {"text": parsed.text, "normalized": list(parsed.normalized)}
        if self.cache is not None:
            self.cache.put(key, value)
        return self._draft(labels, value, _usage(raw))

    def _sent_for(self, pair: tuple[str, str]) -> set[str]:
        """The request keys already sent for one (record, target) pair (bounded memory)."""
        sent = self._sent.get(pair)
        if sent is None:
            sent = self._sent[pair] = set()
            while len(self._sent) > self._max_pairs:
                self._sent.popitem(last=False)
        else:
            self._sent.move_to_end(pair)
        return sent

    def _draft(self, labels: LabelMap, value: dict[str, Any], usage: Usage) -> Draft:
        if "text" in value:
            findings = []
            if value.get("normalized"):
                findings.append(
                    Finding.info(
                        Code.ANSWER_NORMALIZED,
                        "the answer was read tolerantly: " + "; ".join(value["normalized"]),
                    )
                )
            return Draft(answer=value["text"], labels=labels, findings=findings, usage=usage)
        template = TRANSLATOR_FEEDBACK_TEMPLATES["answer_malformed"]
        finding = Finding.error(
            Code.ANSWER_MALFORMED, template.format(error=value.get("error", "no detail"))
        )
        return Draft(labels=labels, findings=[finding], usage=usage)


def structured_runnable(llm: Any, method: Method) -> Any:
    """The chat model bound for `method`, answering the raw message (json_schema, json_mode)
    or langchain's `{raw, parsed}` map (function_calling). The request bodies are the ones
    `with_structured_output` sends; the answer is read here, tolerantly."""
    if method == "function_calling":
        return llm.with_structured_output(TranslationAnswer, method=method, include_raw=True)
    if method == "json_mode":
        return llm.bind(response_format={"type": "json_object"})
    # the body `with_structured_output(method="json_schema")` sends, but as a plain dict: given
    # the pydantic class, the openai client parses the content itself and raises on an answer
    # in a fence or in prose, losing the raw text the tolerant parser needs
    from openai.lib._parsing._completions import type_to_response_format_param

    return llm.bind(response_format=type_to_response_format_param(TranslationAnswer))


def read_answer(out: Any, method: str) -> ParsedAnswer:
    """The translation in what the runnable returned, read tolerantly."""
    if isinstance(out, dict):  # function_calling: {raw, parsed, parsing_error}
        parsed = out.get("parsed")
        if isinstance(parsed, TranslationAnswer):
            return ParsedAnswer(text=parsed.text)
        raw = out.get("raw")
        for call in getattr(raw, "tool_calls", None) or []:
            got = parse_answer(call.get("args"))
            if got.text is not None:
                return got
        for call in getattr(raw, "invalid_tool_calls", None) or []:
            got = parse_answer(call.get("args") or "")
            if got.text is not None:
                return got
        content = getattr(raw, "content", "")
        if isinstance(content, str) and content.strip():
            got = parse_answer(content)
            if got.text is not None:
                return ParsedAnswer(
                    got.text, ("answer as content, not a tool call", *got.normalized)
                )
            return got
        invalid = getattr(raw, "invalid_tool_calls", None) or []
        detail = invalid[0].get("error") if invalid else "no tool call and no content"
        return ParsedAnswer(None, error=f"unparsable answer: {detail}")
    content = getattr(out, "content", out)
    if isinstance(content, list):  # content blocks
        content = "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
    return parse_answer(content)


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
