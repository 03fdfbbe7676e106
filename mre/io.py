"""Readers and writers of MRE mix records.

Reading: :func:`read_records` takes a file in one of three formats and yields
:class:`~mre.record.Record` objects, checking every line.

- ``jsonl``: the canonical format, one record a line (``{"id", "lang", "task", "text",
  "label", "spans", "relations", "meta"}``); a JSON list of such objects is accepted too.
- ``stockmark``: the stockmark Japanese Wikipedia NER data, JSONL or one JSON list of
  ``{"curid", "text", "entities": [{"name", "span": [start, end], "type"}]}``. Each line
  becomes an SCNM record with ``label=None``, id ``stockmark-{curid}`` and
  ``meta={"curid": ...}``; entities become spans (name -> text, type -> label) sorted by
  (start, end). A curid is a Wikipedia *article* id, so several sentences share one: the
  second, third ... sentence of an article get the ids ``stockmark-{curid}-2``,
  ``stockmark-{curid}-3`` ... in file order. The same curid with the same text twice is a
  duplicate record.
- ``mmm``: the MMM dataset files (``Train_En_0_SCNM_dataset.json`` ...): a JSON list (or
  JSONL) of OIELLM pairs ``{"input": "{text}/{task word}", "output": "{label}/{task word}/
  :{label};{span}..."}``. They are decoded by :func:`mre.oiellm.decode_pair`. The
  language and task come from the arguments or else from the file name (``_En_`` / ``_Ch_``
  / ``_Ja_``; ``SCNM``, ``SCPOS_RW``, ``adj_n``, ``adj``, ``_n``, ``TCREE``); record ids
  are ``mmm-{file stem}-{item number}``.

``fmt="auto"`` looks at the first JSON object of the file: ``spans``/``task`` -> jsonl,
``curid``/``entities`` -> stockmark, ``input`` + ``output`` -> mmm.

Bad lines (invalid JSON, not an object, a missing field, an unknown task, a span out of
range or whose text does not match, a duplicate id ...): with ``strict=True`` (the
default) the first one raises :class:`~mre.errors.RecordError` naming the file, the 1-based
line and the record id; with ``strict=False`` each is counted, written to the ``rejects``
JSONL file as ``{"path", "line", "record_id", "kind", "reason", "raw"}`` and skipped.
Blank lines are skipped. In a JSON list the line is where the item starts; a JSON list that
is itself broken cannot be read past the break and raises in both modes.

Writing: :func:`write_jsonl` writes a file at once; :class:`JsonlWriter` appends one
record at a time (flushed, optionally fsynced) for output that a rerun resumes.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, TextIO

from pydantic import BaseModel, ValidationError

from mre.errors import MREError, RecordError
from mre.oiellm import decode_pair
from mre.record import Record, Span, sort_spans
from mre.tasks import Task

log = logging.getLogger(__name__)

Format = Literal["auto", "jsonl", "stockmark", "mmm"]
PathLike = str | os.PathLike[str]

__all__ = [
    "Format",
    "JsonlWriter",
    "ReadStats",
    "RecordReader",
    "detect_format",
    "read_records",
    "validation_reason",
    "write_jsonl",
]

#: How many leading lines auto-detection looks through for a JSON object.
_DETECT_LINES = 100


# ---------------------------------------------------------------------------------------
# errors


class _Bad(Exception):
    """One bad item: why, and what is known of it. Becomes a RecordError or a reject."""

    def __init__(
        self, kind: str, reason: str, *, record_id: str | None = None, field: str | None = None
    ) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.record_id = record_id
        self.field = field


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validation_reason(err: ValidationError, *, prefix: str = "") -> tuple[str, str | None]:
    """A readable one-line reason for a pydantic error, and the path of its first field.

    ``spans[1].end: Input should be greater than or equal to 0``; model-level checks read
    ``span 0 text 'x' does not match text[0:1] = 'y'``. Several errors are joined by ``; ``.
    """
    parts = []
    first_field: str | None = None
    for e in err.errors(include_url=False):
        where = _loc(tuple(e["loc"]))
        if prefix:
            where = f"{prefix}.{where}" if where and not where.startswith("[") else prefix + where
        msg = str(e["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if e["type"] == "missing":
            msg = "missing field"
        parts.append(f"{where}: {msg}" if where else msg)
        if first_field is None and where:
            first_field = where
    return "; ".join(parts), first_field


def _bad_from_validation(err: ValidationError, record_id: str | None, prefix: str = "") -> _Bad:
    reason, where = validation_reason(err, prefix=prefix)
    types = {e["type"] for e in err.errors(include_url=False)}
    kind = "missing_field" if types == {"missing"} else "schema"
    return _Bad(kind, reason, record_id=record_id, field=where)


# ---------------------------------------------------------------------------------------
# items of a file: (line, raw text, parsed JSON)


@dataclass(frozen=True)
class _Item:
    line: int
    raw: str
    value: Any = None
    error: str | None = None  # the JSON error when the raw text does not parse


def _jsonl_items(fh: TextIO) -> Iterator[_Item]:
    for number, line in enumerate(fh, start=1):
        raw = line.rstrip("\r\n")
        if not raw.strip():
            continue
        try:
            yield _Item(number, raw, json.loads(raw))
        except json.JSONDecodeError as exc:
            yield _Item(number, raw, error=f"invalid JSON: {exc.msg} at column {exc.colno}")


def _json_list_items(text: str, path: str) -> Iterator[_Item]:
    """The items of one JSON list, each with the line it starts on."""
    decoder = json.JSONDecoder()
    ws = re.compile(r"[ \t\r\n]*")

    def skip(pos: int) -> int:
        match = ws.match(text, pos)
        return match.end() if match else pos

    def broken(pos: int, what: str) -> RecordError:
        line = text.count("\n", 0, pos) + 1
        return RecordError(f"broken JSON list: {what}", path=path, line=line)

    pos = skip(0)
    if text.startswith("\ufeff", pos):
        pos = skip(pos + 1)
    if not text.startswith("[", pos):
        raise broken(pos, "expected '['")
    pos = skip(pos + 1)
    if text.startswith("]", pos):
        return
    while True:
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise broken(exc.pos, exc.msg) from None
        yield _Item(text.count("\n", 0, pos) + 1, text[pos:end], value)
        pos = skip(end)
        if text.startswith(",", pos):
            pos = skip(pos + 1)
        elif text.startswith("]", pos):
            if text[skip(pos + 1) :].strip():
                raise broken(pos + 1, "text after the closing ']'")
            return
        else:
            raise broken(pos, "expected ',' or ']'")


def _first_char(path: Path) -> str:
    with path.open(encoding="utf-8-sig") as fh:
        while chunk := fh.read(4096):
            stripped = chunk.lstrip()
            if stripped:
                return stripped[0]
    return ""


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
    first = _first_char(p)
    if not first:
        return None
    sample: Any = None
    line = 1
    if first == "[":
        for item in _json_list_items(p.read_text(encoding="utf-8-sig"), str(p)):
            sample, line = item.value, item.line
            break
        else:
            return None
    else:
        with p.open(encoding="utf-8-sig") as fh:
            for item in _jsonl_items(fh):
                if isinstance(item.value, dict):
                    sample, line = item.value, item.line
                    break
                if item.line >= _DETECT_LINES:
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
# converters: one parsed JSON value -> Record (or _Bad)


def _require_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad("not_object", f"expected a JSON object, found {type(value).__name__}")
    return value


def _id_of(obj: Mapping[str, Any]) -> str | None:
    value = obj.get("id")
    return value if isinstance(value, str) and value else None


def _canonical(value: Any, number: int) -> Record:
    obj = _require_object(value)
    try:
        return Record.model_validate(obj)
    except ValidationError as exc:
        raise _bad_from_validation(exc, _id_of(obj)) from None


@dataclass
class _Stockmark:
    lang: str
    task: Task
    seen: dict[str, list[str]] = field(default_factory=dict)  # curid -> texts in order

    def __call__(self, value: Any, number: int) -> Record:
        obj = _require_object(value)
        missing = [k for k in ("curid", "text", "entities") if k not in obj]
        curid = obj.get("curid")
        rid = f"stockmark-{curid}" if isinstance(curid, str | int) else None
        if missing:
            raise _Bad(
                "missing_field",
                f"missing field(s): {', '.join(missing)}",
                record_id=rid,
                field=missing[0],
            )
        if not isinstance(curid, str | int) or isinstance(curid, bool):
            raise _Bad(
                "schema", f"curid: expected a string, found {type(curid).__name__}", field="curid"
            )
        curid = str(curid)
        texts = self.seen.get(curid, [])
        rid = f"stockmark-{curid}" if not texts else f"stockmark-{curid}-{len(texts) + 1}"
        entities = obj["entities"]
        if not isinstance(entities, list):
            raise _Bad(
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
            raise _bad_from_validation(exc, rid) from None
        if record.text in texts:
            first = texts.index(record.text) + 1
            first_id = f"stockmark-{curid}" if first == 1 else f"stockmark-{curid}-{first}"
            raise _Bad(
                "duplicate_id", f"the same curid and text as record {first_id!r}", record_id=rid
            )
        self.seen.setdefault(curid, []).append(record.text)
        return record

    @staticmethod
    def _span(i: int, entity: Any, rid: str) -> Span:
        where = f"entities[{i}]"
        if not isinstance(entity, dict):
            raise _Bad(
                "schema",
                f"{where}: expected an object, found {type(entity).__name__}",
                record_id=rid,
                field=where,
            )
        missing = [k for k in ("name", "span", "type") if k not in entity]
        if missing:
            raise _Bad(
                "missing_field",
                f"{where}: missing field(s): {', '.join(missing)}",
                record_id=rid,
                field=f"{where}.{missing[0]}",
            )
        span = entity["span"]
        if not (isinstance(span, list) and len(span) == 2):
            raise _Bad(
                "schema",
                f"{where}.span: expected [start, end], found {span!r}",
                record_id=rid,
                field=f"{where}.span",
            )
        try:
            return Span(start=span[0], end=span[1], text=entity["name"], label=entity["type"])
        except ValidationError as exc:
            raise _bad_from_validation(exc, rid, prefix=where) from None


_MMM_LANGS = {"en": "en", "ch": "zh", "zh": "zh", "ja": "ja", "jp": "ja"}


def _mmm_lang_from_name(stem: str) -> str | None:
    for part in re.split(r"[_\-.]", stem.lower()):
        if part in _MMM_LANGS:
            return _MMM_LANGS[part]
    return None


def _mmm_task_from_name(stem: str) -> Task | None:
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
class _Mmm:
    stem: str
    lang: str
    task: Task | None
    decode: Callable[..., Any]

    def __call__(self, value: Any, number: int) -> Record:
        obj = _require_object(value)
        rid = f"mmm-{self.stem}-{number}"
        missing = [k for k in ("input", "output") if k not in obj]
        if missing:
            raise _Bad(
                "missing_field",
                f"missing field(s): {', '.join(missing)}",
                record_id=rid,
                field=missing[0],
            )
        if not isinstance(obj["input"], str) or not isinstance(obj["output"], str):
            raise _Bad("schema", "input and output must be strings", record_id=rid)
        try:
            out = self.decode(obj["input"], obj["output"], id=rid, lang=self.lang, task=self.task)
            return out if isinstance(out, Record) else Record.model_validate(out)
        except ValidationError as exc:
            raise _bad_from_validation(exc, rid) from None
        except ValueError as exc:  # the parser's own errors (RecordError is a ValueError)
            raise _Bad("format", getattr(exc, "reason", str(exc)), record_id=rid) from None


# ---------------------------------------------------------------------------------------
# the reader


@dataclass
class ReadStats:
    """What one pass over a file gave: records yielded, items rejected and why."""

    accepted: int = 0
    rejected: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)


class RecordReader(Iterator[Record]):
    """An iterator of the valid records of one file (see the module docstring).

    Single pass, like a file object. ``stats`` counts what was read so far; ``fmt`` is the
    format actually read (after auto-detection, once iteration has started).
    """

    def __init__(
        self,
        path: PathLike,
        *,
        fmt: Format = "auto",
        strict: bool = True,
        rejects: PathLike | TextIO | None = None,
        lang: str | None = None,
        task: Task | str | None = None,
    ) -> None:
        if fmt not in ("auto", "jsonl", "stockmark", "mmm"):
            raise ValueError(f"unknown format {fmt!r}; expected auto, jsonl, stockmark or mmm")
        self.path = Path(path)
        self.fmt: Format = fmt
        self.strict = strict
        self.lang = lang
        self.task = Task.parse(task) if task is not None else None
        self.stats = ReadStats()
        self._rejects_target = rejects
        self._rejects: IO[str] | None = None
        self._owns_rejects = False
        self._gen: Iterator[Record] | None = None

    @property
    def accepted(self) -> int:
        return self.stats.accepted

    @property
    def rejected(self) -> int:
        return self.stats.rejected

    def __iter__(self) -> RecordReader:
        return self

    def __next__(self) -> Record:
        if self._gen is None:
            self._gen = self._records()
        return next(self._gen)

    def close(self) -> None:
        """Stop reading and close the rejects file (done automatically at the end)."""
        if self._gen is not None and hasattr(self._gen, "close"):
            self._gen.close()
        self._close_rejects()

    # -- internals -------------------------------------------------------------------

    def _converter(self, fmt: str) -> Callable[[Any, int], Record]:
        if fmt == "jsonl":
            return _canonical
        if fmt == "stockmark":
            return _Stockmark(lang=self.lang or "ja", task=self.task or Task.SCNM)
        stem = self.path.stem
        lang = self.lang or _mmm_lang_from_name(stem)
        if lang is None:
            raise MREError(
                f"{self.path}: cannot tell the language of this MMM file from its name; pass lang="
            )
        return _Mmm(stem, lang, self.task or _mmm_task_from_name(stem), decode_pair)

    def _items(self) -> Iterator[_Item]:
        if _first_char(self.path) == "[":
            yield from _json_list_items(self.path.read_text(encoding="utf-8-sig"), str(self.path))
        else:
            with self.path.open(encoding="utf-8-sig") as fh:
                yield from _jsonl_items(fh)

    def _records(self) -> Iterator[Record]:
        if self.fmt == "auto":
            detected = detect_format(self.path)
            if detected is None:
                return
            self.fmt = detected
        convert = self._converter(self.fmt)
        if not self.strict:
            self._open_rejects()
        seen: dict[str, int] = {}
        number = 0
        try:
            for item in self._items():
                number += 1
                bad: _Bad | None = None
                try:
                    if item.error is not None:
                        raise _Bad("invalid_json", item.error)
                    record = convert(item.value, number)
                    first = seen.get(record.id)
                    if first is not None:
                        raise _Bad(
                            "duplicate_id",
                            f"duplicate id {record.id!r}: first seen on line {first}",
                            record_id=record.id,
                        )
                except _Bad as exc:
                    bad = exc
                if bad is not None:
                    self._reject(item, bad)  # raises when strict
                    continue
                seen[record.id] = item.line
                self.stats.accepted += 1
                yield record
        finally:
            self._close_rejects()
        if self.stats.rejected:
            log.warning(
                "%s: %d records read, %d rejected (%s)",
                self.path,
                self.stats.accepted,
                self.stats.rejected,
                ", ".join(f"{k}: {n}" for k, n in self.stats.by_kind.items()),
            )

    def _reject(self, item: _Item, bad: _Bad) -> None:
        if self.strict:
            raise RecordError(
                bad.reason,
                path=str(self.path),
                line=item.line,
                record_id=bad.record_id,
                field=bad.field,
            )
        self.stats.rejected += 1
        self.stats.by_kind[bad.kind] += 1
        log.debug("%s:%d: rejected (%s): %s", self.path, item.line, bad.kind, bad.reason)
        if self._rejects is not None:
            row = {
                "path": str(self.path),
                "line": item.line,
                "record_id": bad.record_id,
                "kind": bad.kind,
                "reason": bad.reason,
                "raw": item.raw,
            }
            self._rejects.write(json.dumps(row, ensure_ascii=False) + "\n")
            self._rejects.flush()

    def _open_rejects(self) -> None:
        target = self._rejects_target
        if target is None or self._rejects is not None:
            return
        if isinstance(target, str | os.PathLike):
            p = Path(target)
            p.parent.mkdir(parents=True, exist_ok=True)
            self._rejects = p.open("w", encoding="utf-8")
            self._owns_rejects = True
        else:
            self._rejects = target

    def _close_rejects(self) -> None:
        if self._rejects is not None and self._owns_rejects:
            self._rejects.close()
        self._rejects = None


def read_records(
    path: PathLike,
    *,
    fmt: Format = "auto",
    strict: bool = True,
    rejects: PathLike | TextIO | None = None,
    lang: str | None = None,
    task: Task | str | None = None,
) -> RecordReader:
    """The valid records of `path`, streamed (see the module docstring for the formats).

    - ``strict=True``: the first bad line raises RecordError (file, line, record id).
    - ``strict=False``: bad lines are skipped, counted in ``reader.stats`` and, when
      `rejects` is a path or an open text file, written there as JSONL (a path is
      truncated when reading starts).
    - `lang` / `task`: the language and task of stockmark (default ``ja`` / ``SCNM``) and
      MMM records (default: from the file name); canonical records carry their own.

        >>> reader = read_records("ner.jsonl", strict=False, rejects="rejects.jsonl")
        >>> records = list(reader); reader.stats.rejected
    """
    return RecordReader(path, fmt=fmt, strict=strict, rejects=rejects, lang=lang, task=task)


# ---------------------------------------------------------------------------------------
# writers


def _dumpable(item: Record | BaseModel | Mapping[str, Any]) -> Any:
    if isinstance(item, BaseModel):
        return item.model_dump(mode="json")
    if isinstance(item, Mapping):
        return dict(item)
    raise TypeError(f"cannot write a {type(item).__name__} as a JSONL row")


def dumps_line(item: Record | BaseModel | Mapping[str, Any]) -> str:
    """One compact JSON line (no newline), UTF-8 characters kept as they are."""
    return json.dumps(_dumpable(item), ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def write_jsonl(
    records: Iterable[Record | BaseModel | Mapping[str, Any]], dest: PathLike | TextIO
) -> int:
    """Write `records` to `dest` (a path, replaced; or an open text file), one a line.

    Returns how many were written.
    """
    if isinstance(dest, str | os.PathLike):
        p = Path(dest)
        p.parent.mkdir(parents=True, exist_ok=True)
        with p.open("w", encoding="utf-8", newline="\n") as fh:
            return write_jsonl(records, fh)
    count = 0
    for record in records:
        dest.write(dumps_line(record) + "\n")
        count += 1
    dest.flush()
    return count


def _drop_partial_last_line(path: Path) -> int:
    """Cut a last line that has no newline (a write cut short); returns the bytes cut."""
    if not path.exists():
        return 0
    size = path.stat().st_size
    if size == 0:
        return 0
    with path.open("rb+") as fh:
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return 0
        pos = size
        keep = 0
        while pos > 0:
            step = min(65536, pos)
            pos -= step
            fh.seek(pos)
            chunk = fh.read(step)
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                keep = pos + newline + 1
                break
        fh.truncate(keep)
    return size - keep


class JsonlWriter:
    """Append records to a JSONL file, one flushed line per `write`.

    Made for output that a rerun resumes: the file is opened in append mode, every line is
    flushed (and fsynced with ``fsync=True``) before `write` returns, and a last line left
    without its newline by a crash is cut off when the file is opened again (the record it
    held was never completely written). Safe to call from several threads.

        >>> with JsonlWriter("out/en/accepted.jsonl") as out:
        ...     out.write(record)
    """

    def __init__(self, path: PathLike, *, fsync: bool = False) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.count = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        dropped = _drop_partial_last_line(self.path)
        if dropped:
            log.warning("%s: cut %d bytes of an unfinished last line", self.path, dropped)
        self._fh: io.TextIOWrapper | None = self.path.open("a", encoding="utf-8", newline="\n")
        self._lock = threading.Lock()

    def write(self, item: Record | BaseModel | Mapping[str, Any]) -> None:
        line = dumps_line(item) + "\n"
        with self._lock:
            if self._fh is None:
                raise ValueError(f"{self.path}: write to a closed JsonlWriter")
            self._fh.write(line)
            self._fh.flush()
            if self.fsync:
                os.fsync(self._fh.fileno())
            self.count += 1

    def write_many(self, items: Iterable[Record | BaseModel | Mapping[str, Any]]) -> int:
        n = 0
        for item in items:
            self.write(item)
            n += 1
        return n

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
