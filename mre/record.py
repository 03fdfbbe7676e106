"""The canonical MRE mix record (see DESIGN.md, "The data").

Offsets are Python `str` indices (code points), end exclusive, and
`text[start:end] == span.text` always holds for a valid record.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mre.tasks import Task


class Span(BaseModel):
    """A labelled word-level span of a record's text."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: int = Field(ge=0, description="first character, a str index")
    end: int = Field(ge=0, description="one past the last character")
    text: str = Field(min_length=1, description="text[start:end] of the record")
    label: str = Field(min_length=1, description="the word-level label, in the record's language")

    @model_validator(mode="after")
    def _ordered(self) -> Span:
        if self.end <= self.start:
            raise ValueError(f"span end {self.end} must be greater than start {self.start}")
        if self.end - self.start != len(self.text):
            raise ValueError(
                f"span [{self.start}, {self.end}) has length {self.end - self.start} "
                f"but its text {self.text!r} has length {len(self.text)}"
            )
        return self


class Relation(BaseModel):
    """A relation between two spans of the same record, by span index."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    head: int = Field(ge=0)
    label: str = Field(min_length=1)
    tail: int = Field(ge=0)


class Record(BaseModel):
    """One MRE mix record: a text-level label plus word-level spans on the same text."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    lang: str = Field(min_length=2, description="language code, e.g. ja, en, zh")
    task: Task
    text: str = Field(min_length=1)
    label: str | None = Field(default=None, description="text-level label; null when unknown")
    spans: list[Span] = Field(default_factory=list)
    relations: list[Relation] = Field(default_factory=list)
    meta: dict[str, Any] = Field(default_factory=dict)

    @field_validator("task", mode="before")
    @classmethod
    def _task(cls, value: Any) -> Task:
        return Task.parse(value)

    @model_validator(mode="after")
    def _invariants(self) -> Record:
        previous: tuple[int, int] | None = None
        for i, span in enumerate(self.spans):
            if span.end > len(self.text):
                raise ValueError(
                    f"span {i} [{span.start}, {span.end}) is out of range for a text of "
                    f"length {len(self.text)}"
                )
            found = self.text[span.start : span.end]
            if found != span.text:
                raise ValueError(
                    f"span {i} text {span.text!r} does not match text[{span.start}:{span.end}]"
                    f" = {found!r}"
                )
            key = (span.start, span.end)
            if previous is not None and key < previous:
                raise ValueError(
                    f"spans must be sorted by (start, end): span {i} [{span.start}, {span.end})"
                    f" comes after [{previous[0]}, {previous[1]})"
                )
            previous = key
        for j, rel in enumerate(self.relations):
            for end_name in ("head", "tail"):
                index = getattr(rel, end_name)
                if index >= len(self.spans):
                    raise ValueError(
                        f"relation {j} {end_name} {index} is out of range: the record has "
                        f"{len(self.spans)} spans"
                    )
        return self

    def pairs(self) -> list[tuple[str, str]]:
        """The (label, span text) pairs of the record, in span order."""
        return [(s.label, s.text) for s in self.spans]


def sort_spans(spans: list[Span], relations: list[Relation] | None = None) -> tuple[list[Span], list[Relation]]:
    """Spans sorted by (start, end) and the relations re-indexed to match."""
    order = sorted(range(len(spans)), key=lambda i: (spans[i].start, spans[i].end))
    new_index = {old: new for new, old in enumerate(order)}
    rels = [
        Relation(head=new_index[r.head], label=r.label, tail=new_index[r.tail])
        for r in (relations or [])
    ]
    return [spans[i] for i in order], rels
