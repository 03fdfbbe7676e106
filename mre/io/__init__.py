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
is itself broken cannot be read past the break and raises in both modes. JSONL is read as
bytes and decoded line by line: a line that is not valid UTF-8 is one bad line (kind
``invalid_utf8``, the reason names the byte) and the next lines are read; a UTF-8 BOM is
dropped. The caller's limits are bad lines too: ``expect_lang`` (kind ``wrong_language``)
and ``max_chars`` (kind ``too_long``), each with its line and record id.

Layout: ``items`` (lines -> parsed items, why an item is bad), ``formats`` (detection and one
converter per format), ``reader`` (:class:`RecordReader`), ``writer`` (:func:`write_jsonl`,
:class:`JsonlWriter`).

Writing: :func:`write_jsonl` writes a file at once; :class:`JsonlWriter` appends one
record at a time (flushed, optionally fsynced) for output that a rerun resumes.
"""

from __future__ import annotations

from mre.io.formats import detect_format
from mre.io.items import validation_reason
from mre.io.reader import Format, ReadStats, RecordReader, read_records
from mre.io.writer import JsonlWriter, dumps_line, write_jsonl

__all__ = [
    "Format",
    "JsonlWriter",
    "ReadStats",
    "RecordReader",
    "detect_format",
    "dumps_line",
    "read_records",
    "validation_reason",
    "write_jsonl",
]
