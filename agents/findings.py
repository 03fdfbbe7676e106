"""Typed findings: what the aligner and verifier found wrong (or worth noting) in a draft."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Severity(StrEnum):
    """How a finding weighs on the verdict."""

    INFO = "info"  # kept in the record's meta, no effect on the verdict
    ERROR = "error"  # the draft is wrong; a retry with this feedback may fix it
    FATAL = "fatal"  # no retry can fix it (unmapped label, endpoint down): reject now


class Code(StrEnum):
    """Finding codes. They are report keys: never rename one."""

    MARKER_MISSING = "marker_missing"
    MARKER_DUPLICATED = "marker_duplicated"
    MARKER_UNKNOWN = "marker_unknown"
    MARKER_EMPTY = "marker_empty"
    MARKER_MALFORMED = "marker_malformed"
    SPAN_SEARCHED = "span_searched"
    SPAN_SNAPPED = "span_snapped"
    SPAN_NOT_ON_TOKENS = "span_not_on_tokens"
    ENTITY_SWAPPED = "entity_swapped"
    ENTITY_SUBSTITUTED = "entity_substituted"
    SPAN_WIDENED = "span_widened"
    SPAN_CUT_SHORT = "span_cut_short"
    CONTENT_DROPPED = "content_dropped"
    REVIEW_REJECTED = "review_rejected"
    REVIEW_REPAIRED = "review_repaired"
    DOUBT_KEPT = "doubt_kept"
    RESIDUE = "residue"
    LABEL_UNMAPPED = "label_unmapped"
    LENGTH_RATIO = "length_ratio"
    POS_MISMATCH = "pos_mismatch"
    EMPTY_TRANSLATION = "empty_translation"
    ANSWER_MALFORMED = "answer_malformed"
    ANSWER_NORMALIZED = "answer_normalized"  # info: the answer object was dug out of prose etc.
    MARKER_NORMALIZED = "marker_normalized"  # info: loose marker spellings were read
    SPAN_EDGE_MOVED = "span_edge_moved"  # info: edge punctuation moved outside a span
    NO_NEW_FEEDBACK = "no_new_feedback"  # fatal: a retry would repeat an earlier request
    LLM_ERROR = "llm_error"
    MODEL_DISAGREEMENT = "model_disagreement"
    CROSS_TARGET_MISMATCH = "cross_target_mismatch"
    INVALID_INPUT = "invalid_input"


class Finding(BaseModel):
    """One finding. `span` is the 1-based marker index (the source span number) when it applies."""

    model_config = ConfigDict(frozen=True)

    code: Code
    severity: Severity
    message: str = Field(description="what is wrong, in words the translator can act on")
    span: int | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def error(cls, code: Code, message: str, *, span: int | None = None, **data: Any) -> Finding:
        return cls(code=code, severity=Severity.ERROR, message=message, span=span, data=data)

    @classmethod
    def fatal(cls, code: Code, message: str, *, span: int | None = None, **data: Any) -> Finding:
        return cls(code=code, severity=Severity.FATAL, message=message, span=span, data=data)

    @classmethod
    def info(cls, code: Code, message: str, *, span: int | None = None, **data: Any) -> Finding:
        return cls(code=code, severity=Severity.INFO, message=message, span=span, data=data)
