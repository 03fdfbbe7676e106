"""What flows through the translation graph: one thread per (record, target language).

Values are plain JSON (records and findings dumped by pydantic) so that any checkpointer
stores them as they are.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

Status = Literal["pending", "accepted", "rejected"]


class InputState(TypedDict):
    """What a thread starts from."""

    source: dict[str, Any]  # the source mre.Record
    target: str  # target language code


class State(InputState, total=False):
    """The whole state. Nodes return partial updates."""

    attempt: int  # attempts made so far
    answer: str | None  # the last translation, with markers
    labels: dict[str, Any]  # LabelMap of the translator
    findings: list[dict[str, Any]]  # findings of the last attempt
    history: list[list[str]]  # finding codes of every attempt
    usage: dict[str, int]  # Usage summed over the attempts
    alignment: dict[str, Any]  # clean text + projected spans of the last attempt
    decision: str  # the verifier's last decision
    record: dict[str, Any] | None  # the projected target record
    span_map: list[int]
    status: Status
    previous_findings: list[dict[str, Any]]  # the verifier's findings on the attempt before
    reviewed: int  # the attempt the reviewer last judged
    review_usage: dict[str, int]  # reviewer Usage, apart from the translator's


class OutputState(TypedDict, total=False):
    status: Status
    record: dict[str, Any] | None
    span_map: list[int]
    answer: str | None
    alignment: dict[str, Any] | None
    findings: list[dict[str, Any]]
    attempt: int
    usage: dict[str, int]
    history: list[list[str]]
    review_usage: dict[str, int]
