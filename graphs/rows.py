"""The rows of a run directory (DESIGN contract 3), typed once, and the one function that
computes a run's figures from them.

- `AcceptedRow`: a line of `DIR/<lang>/accepted.jsonl`, a canonical target-language record
  whose `meta` (`AcceptedMeta`) carries the run's account of the pair.
- `RejectedRow`: a line of `DIR/<lang>/rejected.jsonl`.

The runner writes them (`graphs.outputs`), `graphs.report` and `eval.projection` read them,
and both take their figures from `run_figures`. Dumped with `to_json()`, a row is the same
JSON object (same keys, same order) that the runner has always written.

Reading is lenient where files written by hand or by older versions differ (eval reads
those too): finding codes are text, the account fields of `meta` are optional.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, model_validator

from agents.translator import Usage
from mre.errors import RecordError
from mre.record import Record

ACCEPTED = "accepted.jsonl"
REJECTED = "rejected.jsonl"
INVALID_INPUT = "invalid_input"  # agents.findings.Code.INVALID_INPUT

Status = Literal["accepted", "rejected"]


@dataclass(frozen=True)
class InvalidInput:
    """An input line that is not a valid record: it is rejected for every target."""

    key: str
    line: int
    reason: str
    raw: str


class RowFinding(BaseModel):
    """A finding as a row holds it (`agents.findings.Finding` dumped; the code read as text)."""

    code: str = "unknown"
    severity: str = "error"
    message: str = ""
    span: int | None = None
    data: dict[str, JsonValue] = Field(default_factory=dict)


class AcceptedMeta(BaseModel):
    """`meta` of an accepted row: where it came from, and what the run spent on it."""

    model_config = ConfigDict(extra="allow")  # e.g. meta.source_spans of hand-made files

    source_id: str | None = None
    source_lang: str | None = None
    attempts: int | None = None
    span_map: list[int] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    review_usage: Usage | None = None  # the reviewer agent's calls, apart (None: no review)
    history: list[list[str]] = Field(default_factory=list)
    other_targets: dict[str, str] = Field(default_factory=dict)

    def source_span_count(self, own: int) -> int:
        """Spans of the source record: `meta.source_spans` (an int or a list) when given,
        else `own` (the record is then taken as fully projected)."""
        value = (self.model_extra or {}).get("source_spans")
        if isinstance(value, bool) or value is None:
            return own
        if isinstance(value, int):
            return value
        if isinstance(value, list):
            return len(value)
        raise ValueError(f"meta.source_spans must be an int or a list, got {value!r}")


class AcceptedRow(Record):
    """A line of `accepted.jsonl`: the target-language record and the run's account."""

    meta: AcceptedMeta = Field(default_factory=AcceptedMeta)  # type: ignore[assignment]

    def to_json(self) -> dict[str, Any]:
        skip = {"meta": {"review_usage"}} if self.meta.review_usage is None else None
        return self.model_dump(mode="json", exclude=skip)


class DraftAlignment(BaseModel):
    """The clean text of a last answer and where each source span landed in it."""

    text: str
    projected: list[tuple[int, int, int, str]] = Field(default_factory=list)  # index, start, end, text


class DraftAnswer(BaseModel):
    """A last answer that did not make a record (a span or a label was missing)."""

    model_config = ConfigDict(extra="forbid")

    answer: str
    alignment: DraftAlignment | None = None


class RejectedRow(BaseModel):
    """A line of `rejected.jsonl`.

    `source` is the source record; for a bad input line (`reasons == ["invalid_input"]`) it
    is the line as read (its JSON value, or the text when it is not JSON). `other_targets`
    is written for translated pairs, `line` for bad input lines.
    """

    key: str | None = None
    target: str | None = None
    source: Annotated[Record | JsonValue, Field(union_mode="left_to_right")]
    draft: Annotated[Record | DraftAnswer | None, Field(union_mode="left_to_right")] = None
    findings: list[RowFinding] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)
    attempts: int | None = None
    history: list[list[str]] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    review_usage: Usage | None = None  # the reviewer agent's calls, apart (None: no review)
    other_targets: dict[str, str] | None = None
    line: int | None = None

    @model_validator(mode="after")
    def _source_is_a_record(self) -> RejectedRow:
        if not isinstance(self.source, Record) and not self.invalid_input:
            Record.model_validate(self.source)  # raises, saying what is wrong
        return self

    @property
    def invalid_input(self) -> bool:
        return INVALID_INPUT in self.reasons

    def to_json(self) -> dict[str, Any]:
        skip = {k for k in ("other_targets", "line", "review_usage") if getattr(self, k) is None}
        return self.model_dump(mode="json", exclude=skip)


Row = AcceptedRow | RejectedRow
R = TypeVar("R", AcceptedRow, RejectedRow)


def pair_key(row: Row) -> str:
    """The source key of a row: the source record id (or `line:N` for a bad input line)."""
    if isinstance(row, AcceptedRow):
        return str(row.meta.source_id)
    return str(row.key)


def parse_row(obj: Any, status: Status) -> Row:
    """One parsed JSON line as a row (pydantic's ValidationError when it is not one)."""
    if status == "accepted":
        return AcceptedRow.model_validate(obj)
    if not isinstance(obj, dict) or "source" not in obj:
        raise ValueError('expected an object with a "source" record')
    return RejectedRow.model_validate(obj)


def read_rows(path: str | Path, status: Status) -> list[Row]:
    """Every row of `path`; a bad line is a RecordError naming the file and the line."""
    out: list[Row] = []
    with Path(path).open(encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                out.append(parse_row(json.loads(raw), status))
            except (ValueError, TypeError, ValidationError) as err:  # json and pydantic errors
                raise RecordError(str(err), path=str(path), line=lineno) from err
    return out


def read_accepted(path: str | Path) -> list[AcceptedRow]:
    """The accepted rows of `path`; a repeated record id is an error too."""
    rows = [r for r in read_rows(path, "accepted") if isinstance(r, AcceptedRow)]
    seen: dict[str, int] = {}
    for i, row in enumerate(rows, start=1):
        if row.id in seen:
            raise RecordError(f"repeated id (first in row {seen[row.id]})", path=str(path),
                              record_id=row.id)
        seen[row.id] = i
    return rows


def read_rejected(path: str | Path) -> list[RejectedRow]:
    return [r for r in read_rows(path, "rejected") if isinstance(r, RejectedRow)]


# ---- figures ------------------------------------------------------------------------------


@dataclass
class LanguageFigures:
    """The figures of one target language."""

    accepted: int = 0
    rejected: int = 0
    source_spans: int = 0  # spans of the sources of every row (accepted and rejected)
    projected_spans: int = 0  # spans of the accepted records
    attempts: Counter[int] = field(default_factory=Counter)  # rows with a known number
    findings: Counter[str] = field(default_factory=Counter)  # every attempt's codes
    rejected_findings: Counter[str] = field(default_factory=Counter)  # final codes of rejected
    reasons: Counter[str] = field(default_factory=Counter)
    usage: Counter[str] = field(default_factory=Counter)


@dataclass
class RunFigures:
    """A run's figures, per language and per source record."""

    languages: dict[str, LanguageFigures] = field(default_factory=dict)
    per_source: dict[str, dict[str, str]] = field(default_factory=dict)  # key -> lang -> status

    def total(self, name: str) -> int:
        return sum(int(getattr(f, name)) for f in self.languages.values())

    def summed(self, name: str) -> Counter[Any]:
        out: Counter[Any] = Counter()
        for f in self.languages.values():
            out.update(getattr(f, name))
        return out


def _source_spans(source: Any) -> int:
    if isinstance(source, Record):
        return len(source.spans)
    if isinstance(source, dict) and isinstance(source.get("spans"), list):
        return len(source["spans"])  # a bad input line that was JSON with spans
    return 0


def run_figures(
    rows: Iterable[tuple[str, Row]], languages: Sequence[str] = ()
) -> RunFigures:
    """The one place a run's figures are computed: (target language, row) pairs in, counts
    out. `languages` are listed even when they have no row."""
    figures = RunFigures({lang: LanguageFigures() for lang in languages})
    per_source: dict[str, dict[str, str]] = defaultdict(dict)
    for lang, row in rows:
        f = figures.languages.setdefault(lang, LanguageFigures())
        if isinstance(row, AcceptedRow):
            meta = row.meta
            f.accepted += 1
            per_source[str(meta.source_id)][lang] = "accepted"
            if meta.attempts is not None:
                f.attempts[meta.attempts] += 1
            f.usage.update(meta.usage.model_dump())
            for codes in meta.history:
                f.findings.update(codes)
            f.projected_spans += len(row.spans)
            f.source_spans += meta.source_span_count(len(row.spans))
        else:
            f.rejected += 1
            per_source[str(row.key)][lang] = "rejected"
            if row.attempts is not None:
                f.attempts[row.attempts] += 1
            f.usage.update(row.usage.model_dump())
            f.reasons.update(row.reasons)
            final = [x.code for x in row.findings]
            f.rejected_findings.update(final)
            for codes in row.history or [final]:
                f.findings.update(codes)
            f.source_spans += _source_spans(row.source)
    figures.per_source = dict(per_source)
    return figures

