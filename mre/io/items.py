"""The items of a record file: (line, raw text, parsed JSON), and why an item is bad.

Lines are read as bytes and decoded one by one, so a line that is not valid UTF-8 is one
bad item (kind ``invalid_utf8``) and the lines after it are still read. A UTF-8 BOM at the
start of the file is dropped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import ValidationError

from mre.errors import RecordError

# ---------------------------------------------------------------------------------------
# errors


class Bad(Exception):
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


def bad_from_validation(err: ValidationError, record_id: str | None, prefix: str = "") -> Bad:
    reason, where = validation_reason(err, prefix=prefix)
    types = {e["type"] for e in err.errors(include_url=False)}
    kind = "missing_field" if types == {"missing"} else "schema"
    return Bad(kind, reason, record_id=record_id, field=where)


# ---------------------------------------------------------------------------------------
# items of a file: (line, raw text, parsed JSON)


#: How many leading lines auto-detection looks through for a JSON object.
DETECT_LINES = 100

_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Item:
    line: int
    raw: str
    value: Any = None
    error: str | None = None  # why the raw text does not parse
    error_kind: str = "invalid_json"  # the reject kind of `error`


def decode_line(data: bytes) -> tuple[str | None, str | None]:
    """``(text, None)`` for valid UTF-8, else ``(None, reason)`` naming the first bad byte."""
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        bad = data[exc.start : exc.end].hex(" ")
        return (
            None,
            f"not valid UTF-8: byte(s) {bad} at byte {exc.start} of the line ({exc.reason})",
        )


def jsonl_items(fh: BinaryIO) -> Iterator[Item]:
    """The non-blank lines of a JSONL file opened in binary mode, each parsed."""
    for number, data in enumerate(fh, start=1):
        if number == 1 and data.startswith(_BOM):
            data = data[len(_BOM) :]
        text, error = decode_line(data.rstrip(b"\r\n"))
        if text is None:
            raw = data.rstrip(b"\r\n").decode("utf-8", errors="backslashreplace")
            yield Item(number, raw, error=error, error_kind="invalid_utf8")
            continue
        if not text.strip():
            continue
        try:
            yield Item(number, text, json.loads(text))
        except json.JSONDecodeError as exc:
            yield Item(number, text, error=f"invalid JSON: {exc.msg} at column {exc.colno}")


def read_text(path: Path) -> str:
    """A whole file as text (BOM dropped); invalid UTF-8 is a RecordError with its line."""
    data = path.read_bytes()
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise RecordError(
            f"not valid UTF-8 (byte {data[exc.start]:#04x}); a JSON list cannot be read past it",
            path=str(path),
            line=line,
        ) from None


def json_list_items(text: str, path: str) -> Iterator[Item]:
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
        yield Item(text.count("\n", 0, pos) + 1, text[pos:end], value)
        pos = skip(end)
        if text.startswith(",", pos):
            pos = skip(pos + 1)
        elif text.startswith("]", pos):
            if text[skip(pos + 1) :].strip():
                raise broken(pos + 1, "text after the closing ']'")
            return
        else:
            raise broken(pos, "expected ',' or ']'")


def first_char(path: Path) -> str:
    """The first non-blank character of a file ("" when it has none); bad bytes are skipped."""
    with path.open("rb") as fh:
        while chunk := fh.read(4096):
            stripped = chunk.removeprefix(_BOM).decode("utf-8", errors="ignore").lstrip()
            if stripped:
                return stripped[0]
    return ""
