"""What flows through the translation graph: one thread per (source record, target language).

The values are the agents' own types (pydantic models and enums), built once by the node
that makes them and passed on as they are: no node dumps or re-validates another's output.
LangGraph's serializer stores them in the checkpoints; `serializer()` allows exactly these
types back when a checkpoint is read (resume after a kill).

Two fields are appended to across attempts through reducers: `history` (the finding codes
of each attempt) and `usage` (LLM cost summed over the attempts).
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Annotated, Literal, TypedDict

from agents.findings import Code, Finding, Severity
from agents.translator import LabelMap, Usage
from agents.verifier import Decision
from graphs.rows import DraftAlignment
from mre import Record
from mre.record import Relation, Span
from mre.tasks import Task

if TYPE_CHECKING:
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

Status = Literal["pending", "accepted", "rejected"]


def add_usage(left: Usage, right: Usage) -> Usage:
    """Reducer of `usage`: the cost of every attempt, summed."""
    return left + right


class InputState(TypedDict):
    """What a thread starts from."""

    source: Record  # the source record
    target: str  # target language code


class State(InputState, total=False):
    """The whole state. Nodes return partial updates."""

    attempt: int  # attempts made so far
    answer: str | None  # the last translation, with markers
    labels: LabelMap  # the source's labels in the target language
    findings: list[Finding]  # findings of the last attempt (translator, aligner, verifier)
    history: Annotated[list[list[str]], operator.add]  # finding codes of every attempt
    usage: Annotated[Usage, add_usage]  # LLM cost summed over the attempts
    alignment: DraftAlignment | None  # clean text + projected spans of the last attempt
    decision: Decision  # the verifier's last decision
    record: Record | None  # the projected target record (when every span landed)
    span_map: list[int]  # target span i -> source span index
    status: Status
    previous_findings: list[Finding]  # the verifier's findings on the attempt before
    reviewed: int  # the attempt the reviewer last judged
    review_usage: Annotated[Usage, add_usage]  # the reviewer's LLM cost, apart from the translator's


class OutputState(TypedDict, total=False):
    """What a finished thread hands back to the runner."""

    status: Status
    record: Record | None
    span_map: list[int]
    answer: str | None
    alignment: DraftAlignment | None
    findings: list[Finding]
    attempt: int
    usage: Usage
    review_usage: Usage
    history: list[list[str]]


#: Every type a checkpoint of this graph holds (module, name): allowed back on resume.
STATE_TYPES: tuple[tuple[str, str], ...] = tuple(
    (t.__module__, t.__qualname__)
    for t in (
        Record, Span, Relation, Task, Finding, Code, Severity, LabelMap, Usage, Decision,
        DraftAlignment,
    )
)


def serializer() -> JsonPlusSerializer:
    """LangGraph's serializer, allowing exactly the state's own types back from a checkpoint."""
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    return JsonPlusSerializer(allowed_msgpack_modules=list(STATE_TYPES))
