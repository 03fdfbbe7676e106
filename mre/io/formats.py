"""The three record formats: detection and one converter per format (JSON value -> Record)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from mre.errors import RecordError
from mre.io.items import (
    DETECT_LINES,
    Bad,
    bad_from_validation,
    first_char,
    json_list_items,
    jsonl_items,
    read_text,
)
from mre.record import Record, Span, sort_spans
from mre.tasks import Task

PathLike = str | os.PathLike[str]

# ---------------------------------------------------------------------------------------
# detection


def _kind_of(obj: Any) -> Literal["jsonl", "stockmark", "mmm"] | None:
    if not isinstance(obj, dict):
        return None
    if "spans" in obj or "task" in obj:
        return "jsonl"
    if "curid" in obj or "entities" in obj:
        return "stockmark"
    if "input" in obj and "output" in obj:
        return "mmm"
    return None


def detect_format(path: PathLike) -> Literal["jsonl", "stockmark", "mmm"] | None:
    """The format of a record file from its first JSON object; None for an empty file.

    Raises RecordError when the first object found matches no format.
    """
    p = Path(path)
    first = first_char(p)
    if not first:
        return None
    sample: Any = None
    line = 1
    if first == "[":
        for item in json_list_items(read_text(p), str(p)):
            sample, line = item.value, item.line
            break
        else:
            return None
    else:
        with p.open("rb") as fh:
            for item in jsonl_items(fh):
                if isinstance(item.value, dict):
                    sample, line = item.value, item.line
                    break
                if item.line >= DETECT_LINES:
                    break
    kind = _kind_of(sample)
    if kind is None:
        keys = sorted(sample) if isinstance(sample, dict) else None
        raise RecordError(
            f"cannot tell the format: expected an object with 'spans'/'task' (jsonl), "
            f"'curid'/'entities' (stockmark) or 'input'+'output' (mmm), found "
            f"{'keys ' + str(keys) if keys is not None else 'no JSON object'}; pass fmt=",
            path=str(p),
            line=line,
        )
    return kind


# ---------------------------------------------------------------------------------------
# converters: one parsed JSON value -> Record (or Bad)


def _require_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Bad("not_object", f"expected a JSON object, found {type(value).__name__}")
    return value


def _id_of(obj: Mapping[str, Any]) -> str | None:
    value = obj.get("id")
    return value if isinstance(value, str) and value else None


def canonical(value: Any, number: int) -> Record:
    obj = _require_object(value)
    try:
        return Record.model_validate(obj)
    except ValidationError as exc:
        raise bad_from_validation(exc, _id_of(obj)) from None


@dataclass
class Stockmark:
    lang: str
    task: Task
    seen: dict[str, list[str]] = field(default_factory=dict)  # curid -> texts in order

    def __call__(self, value: Any, number: int) -> Record:
        obj = _require_object(value)
        missing = [k for k in ("curid", "text", "entities") if k not in obj]
        curid = obj.get("curid")
        rid = f"stockmark-{curid}" if isinstance(curid, str | int) else None
        if missing:
            raise Bad(
                "missing_field",
                f"missing field(s): {', '.join(missing)}",
                record_id=rid,
                field=missing[0],
            )
        if not isinstance(curid, str | int) or isinstance(curid, bool):
            raise Bad(
                "schema", f"curid: expected a string, found {type(curid).__name__}", field="curid"
            )
        curid = str(curid)
        texts = self.seen.get(curid, [])
        rid = f"stockmark-{curid}" if not texts else f"stockmark-{curid}-{len(texts) + 1}"
        entities = obj["entities"]
        if not isinstance(entities, list):
            raise Bad(
                "schema",
                f"entities: expected a list, found {type(entities).__name__}",
                record_id=rid,
                field="entities",
            )
        spans = [self._span(i, e, rid) for i, e in enumerate(entities)]
        spans, _ = sort_spans(spans)
        try:
            record = Record(
                id=rid,
                lang=self.lang,
                task=self.task,
                text=obj["text"],
                label=None,
                spans=spans,
                meta={"curid": curid},
            )
        except ValidationError as exc:
            raise bad_from_validation(exc, rid) from None
        if record.text in texts:
            first = texts.index(record.text) + 1
            first_id = f"stockmark-{curid}" if first == 1 else f"stockmark-{curid}-{first}"
            raise Bad(
                "duplicate_id", f"the same curid and text as record {first_id!r}", record_id=rid
            )
        self.seen.setdefault(curid, []).append(record.text)
        return record

    @staticmethod
    def _span(i: int, entity: Any, rid: str) -> Span:
        where = f"entities[{i}]"
        if not isinstance(entity, dict):
            raise Bad(
                "schema",
                f"{where}: expected an object, found {type(entity).__name__}",
                record_id=rid,
                field=where,
            )
        missing = [k for k in ("name", "span", "type") if k not in entity]
        if missing:
            raise Bad(
                "missing_field",
                f"{where}: missing field(s): {', '.join(missing)}",
                record_id=rid,
                field=f"{where}.{missing[0]}",
            )
        span = entity["span"]
        if not (isinstance(span, list) and len(span) == 2):
            raise Bad(
                "schema",
                f"{where}.span: expected [start, end], found {span!r}",
                record_id=rid,
                field=f"{where}.span",
            )
        try:
            return Span(start=span[0], end=span[1], text=entity["name"], label=entity["type"])
        except ValidationError as exc:
            raise bad_from_validation(exc, rid, prefix=where) from None


_MMM_LANGS = {"en": "en", "ch": "zh", "zh": "zh", "ja": "ja", "jp": "ja"}


def mmm_lang_from_name(stem: str) -> str | None:
    for part in re.split(r"[_\-.]", stem.lower()):
        if part in _MMM_LANGS:
            return _MMM_LANGS[part]
    return None


def mmm_task_from_name(stem: str) -> Task | None:
    name = stem.lower()
    if "scnm" in name:
        return Task.SCNM
    if "tcree" in name:
        return Task.TCREE
    if "tconer" in name:
        return Task.TCONER
    if "scpos" in name:
        if "_rw" in name:
            return Task.SCPOS_RW
        if "adj_n" in name:
            return Task.SCPOS_ADJ_N
        if "adj" in name:
            return Task.SCPOS_ADJ
        if re.search(r"_n(_|$)", name):
            return Task.SCPOS_N
    return None


@dataclass
class Mmm:
    stem: str
    lang: str
    task: Task | None
    decode: Callable[..., Any]

    def __call__(self, value: Any, number: int) -> Record:
        obj = _require_object(value)
        rid = f"mmm-{self.stem}-{number}"
        missing = [k for k in ("input", "output") if k not in obj]
        if missing:
            raise Bad(
                "missing_field",
                f"missing field(s): {', '.join(missing)}",
                record_id=rid,
                field=missing[0],
            )
        if not isinstance(obj["input"], str) or not isinstance(obj["output"], str):
            raise Bad("schema", "input and output must be strings", record_id=rid)
        try:
            out = self.decode(obj["input"], obj["output"], id=rid, lang=self.lang, task=self.task)
            return out if isinstance(out, Record) else Record.model_validate(out)
        except ValidationError as exc:
            raise bad_from_validation(exc, rid) from None
        except ValueError as exc:  # the parser's own errors (RecordError is a ValueError)
            raise Bad("format", getattr(exc, "reason", str(exc)), record_id=rid) from None
