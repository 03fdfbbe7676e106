"""The OIELLM text format: one record <-> one (input, output) pair of strings.

The format follows the MMM paper (arXiv 2407.10953, figure of the OIELLM input and output) and
the OIELLM model card (``ganchengguang/OIELLM-8B-Instruction``), whose example reads::

    input:  "In 1953, filming of "On the Waterfront" starring Marlon Brando began, ... /NER"
    output: "Literature/NER/:Person;Marlon Brando:Product Name;On the Waterfront:Person;Kazan"

that is

- input  ``"{text}/{task word}"``;
- output ``"{text label}/{task word}/"`` followed by one item per span, each item introduced
  by ``:`` -- ``":{span label};{span text}"`` -- and one item per relation,
  ``":{head};{relation};{tail}"`` (three fields; a span item has two, which is how the parser
  tells them apart). No ``:`` closes the list; a trailing one is accepted when parsing.

Decisions this module makes where the paper is silent (all reversible, so that
``decode(*encode(r)) == r`` for every valid record, ids and meta aside):

- **Null text label.** ``label=None`` is written as the empty string: ``"/NER/:人名;…"``.
  An empty label decodes to ``None`` (so a record whose label is ``""`` comes back as ``None``).
- **No escapes.** Output fields (labels, span texts, relation names) are written as they are,
  as in the paper and the MMM files: ``:人名;CBU-87/B``. The decoder resolves separators
  inside span texts with the text: a span must occur in the text, so of the ways to cut the
  output at ``:`` and ``;`` it takes the one whose items name text that is there (most items
  that resolve; at a tie, the most items). The older escaped form (``\\`` before
  ``\\ : ; / #`` in fields, ``CBU-87\\/B``) is still read: a field that does not occur as
  written is looked up unescaped. A record whose fields could be read two ways (a label
  with ``:`` or ``;``, a span text that ends in ``#2`` ...) is written in the escaped form, so
  that ``decode(*encode(r)) == r`` still holds for every valid record.
- **Locating spans.** The output names spans by their text; the decoder finds each one in the
  text. Items come in span order (by start), and an item's text is taken at its first
  occurrence at or after the previous item's start that no earlier item with the same text took
  ("repeated strings take their occurrences in order"); when there is none (an output out of
  text order), the first untaken occurrence anywhere. When that rule would pick the wrong place
  (an earlier, unannotated occurrence of the same string, as in ``富野由悠季 ... 富野``), the
  encoder appends ``#k``: the span is the k-th occurrence (1-based, overlapping occurrences
  counted) of its text in the whole text, e.g. ``":人名;富野#2"``.
- **Relations** (TCREE) name their ends by span text, e.g. ``":鳥山明;作者;ドラゴンボール"``;
  the decoder maps a name to the first span (in output order) with that text, and a name
  ``text#k`` to the span with that text at its k-th occurrence in the text. The encoder writes
  ``#k`` only when the text alone would pick another span. Every span is also written as a span
  item (spans carry labels; relation items come after the span items). When decoding, a
  relation end that names no span item but occurs in the text (outputs that write triples
  only) becomes a span of its own labelled ``RELATION_END_LABEL`` ("entity").
- **Event extraction.** A TCREE record whose ``meta["event"]`` is true uses the task word
  ``EVENT_TASK_WORD`` ("Event Extraction") instead of "Relation Extraction"; events are spans
  (trigger and arguments, labelled) and relations (trigger -> argument, labelled by role).
  Decoding an output with that task word sets ``meta["event"] = True``.
- **What decode returns.** :func:`decode` returns a :class:`~mre.record.Record` (``id`` from
  the ``id=`` argument). What could not be parsed is skipped and described in
  ``record.meta["parse_errors"]`` (a list of strings, absent when there is none);
  :func:`decode_with_errors` returns the record and the list of :class:`ParseIssue` instead.
  A generation cut off by the token limit should be decoded with ``complete=False``: its last
  item may be a truncated span (``望月あ`` for ``望月あきら``) that would still be found in the
  text, so it is dropped and reported.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass

from mre.errors import MREError
from mre.record import Record, Relation, Span, sort_spans
from mre.tasks import EVENT_TASK_WORD, Task
from word_tokenizers.spans import occurrences

#: The characters escaped with a backslash in the older escaped form of output fields.
SPECIAL_CHARS = "\\:;/#"
#: The ``meta`` key that marks a TCREE record as an event (task word "Event Extraction").
EVENT_META_KEY = "event"
#: The ``meta`` key where :func:`decode` lists what it could not parse.
PARSE_ERRORS_META_KEY = "parse_errors"
#: The label of a span made for a relation end that names no span item.
RELATION_END_LABEL = "entity"


class FormatError(MREError, ValueError):
    """A record that the OIELLM format cannot write without losing information."""


@dataclass(frozen=True)
class ParseIssue:
    """Something in a generated output that could not be parsed (and was skipped)."""

    reason: str
    fragment: str = ""

    def __str__(self) -> str:
        return f"{self.reason}: {self.fragment!r}" if self.fragment else self.reason


# ---------------------------------------------------------------------------------------------
# escaping


def escape(field: str) -> str:
    """``field`` with every special character preceded by a backslash."""
    return "".join("\\" + c if c in SPECIAL_CHARS else c for c in field)


def unescape(field: str) -> str:
    """The inverse of :func:`escape`; a lone trailing backslash is kept as it is."""
    out: list[str] = []
    i = 0
    while i < len(field):
        c = field[i]
        if c == "\\" and i + 1 < len(field):
            out.append(field[i + 1])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def split_unescaped(s: str, sep: str, maxsplit: int = -1) -> list[str]:
    """``s`` split on the occurrences of the one-character ``sep`` not preceded by a backslash.

    The parts keep their escapes, so that they can be split again on another separator.
    """
    parts: list[str] = []
    start = 0
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c == sep and (maxsplit < 0 or len(parts) < maxsplit):
            parts.append(s[start:i])
            start = i + 1
        i += 1
    parts.append(s[start:])
    return parts


# ---------------------------------------------------------------------------------------------
# locating spans (shared by the encoder and the decoder so that they agree)


def _default_start(occs: list[int], cursor: int, taken: set[int]) -> int | None:
    """Where an item without ``#k`` goes: the first untaken occurrence at or after ``cursor``,
    else the first untaken occurrence anywhere, else None."""
    for start in occs:
        if start >= cursor and start not in taken:
            return start
    for start in occs:
        if start not in taken:
            return start
    return None


# ---------------------------------------------------------------------------------------------
# encoding


def task_word_of(task: Task | str, *, event: bool = False) -> str:
    """The task word of ``task`` (``EVENT_TASK_WORD`` for an event TCREE record)."""
    task = Task.parse(task)
    if event and task is Task.TCREE:
        return EVENT_TASK_WORD
    return task.task_word


def make_input(text: str, task: Task | str, *, event: bool = False) -> str:
    """The model input for ``text``: ``"{text}/{task word}"``."""
    return f"{text}/{task_word_of(task, event=event)}"


def encode(record: Record) -> tuple[str, str]:
    """The (input, output) pair of ``record`` in the OIELLM format (see the module docstring).

    Fields are written as they are (the paper's format); a record that would not decode back
    from that form is written in the escaped form instead. Raises FormatError when a relation
    end cannot be named unambiguously (two spans with the same text at the same place, with
    different labels, one of them in a relation), or when neither form decodes back.
    """
    for esc in (_raw, escape):
        input_text, output_text = _encode(record, esc)
        back, errors = decode_with_errors(
            output_text, text=record.text, task=record.task, lang=record.lang, id=record.id
        )
        if not errors and _same(back, record):
            return input_text, output_text
    raise FormatError(
        f"record {record.id!r}: the OIELLM output cannot be decoded back: {output_text!r}"
    )


def _raw(field: str) -> str:
    return field


def _same(a: Record, b: Record) -> bool:
    keep = {"task", "text", "spans", "relations"}
    if (a.label or None) != (b.label or None):
        return False
    event = bool(a.meta.get(EVENT_META_KEY)) == (
        bool(b.meta.get(EVENT_META_KEY)) and b.task is Task.TCREE
    )
    return event and a.model_dump(include=keep) == b.model_dump(include=keep)


def _encode(record: Record, escape: Callable[[str], str]) -> tuple[str, str]:
    event = bool(record.meta.get(EVENT_META_KEY)) and record.task is Task.TCREE
    task_word = task_word_of(record.task, event=event)
    label = "" if record.label is None else escape(record.label)
    items: list[str] = []

    cursor = 0
    taken: dict[str, set[int]] = {}
    names: list[str] = []  # how a relation refers to each span
    first_with_text: dict[str, int] = {}
    for i, span in enumerate(record.spans):
        occs = occurrences(record.text, span.text)
        seen = taken.setdefault(span.text, set())
        default = _default_start(occs, cursor, seen)
        text_field = escape(span.text)
        k = occs.index(span.start) + 1
        if default != span.start:
            text_field += f"#{k}"
        items.append(f"{escape(span.label)};{text_field}")
        seen.add(span.start)
        cursor = span.start
        if span.text not in first_with_text:
            first_with_text[span.text] = i
            names.append(escape(span.text))
        else:
            names.append(f"{escape(span.text)}#{k}")

    for rel in record.relations:
        ends = []
        for index in (rel.head, rel.tail):
            span = record.spans[index]
            first = first_with_text[span.text]
            if index != first:
                twins = [
                    j
                    for j, s in enumerate(record.spans)
                    if j != index and s.text == span.text and s.start == span.start
                ]
                if any(j < index for j in twins):
                    raise FormatError(
                        f"record {record.id!r}: relation end {index} ({span.text!r} at "
                        f"{span.start}) cannot be told from another span at the same place"
                    )
            ends.append(names[index])
        items.append(f"{ends[0]};{escape(rel.label)};{ends[1]}")

    body = "".join(":" + item for item in items)
    return make_input(record.text, record.task, event=event), f"{label}/{task_word}/{body}"


# ---------------------------------------------------------------------------------------------
# decoding


def _parse_name(field: str) -> tuple[str, int | None] | None:
    """(text, k) of ``text`` or ``text#k`` in the escaped form; None when ``#`` is followed by
    no number >= 1."""
    parts = split_unescaped(field, "#")
    if len(parts) == 1:
        return unescape(parts[0]), None
    if len(parts) == 2 and parts[1].isdigit() and int(parts[1]) >= 1:
        return unescape(parts[0]), int(parts[1])
    return None


_NUMBERED = re.compile(r"(.+)#([1-9][0-9]*)", re.DOTALL)


def _resolve_name(field: str, text: str) -> tuple[str, int | None] | None:
    """(span text, k) that ``field`` names in ``text``: the field as written when it occurs
    there, else ``name#k`` with ``name`` occurring at least k times, else the escaped form
    unescaped; None when it names nothing in the text."""
    if not field:
        return None
    if field in text:
        return field, None
    m = _NUMBERED.fullmatch(field)
    if m:
        k = int(m.group(2))
        for name in (m.group(1), _parse_unescaped(m.group(1))):
            if name and len(occurrences(text, name)) >= k:
                return name, k
    if "\\" in field:
        name = _parse_name(field)
        if name is not None and name[0] and len(occurrences(text, name[0])) >= (name[1] or 1):
            return name
    return None


def _parse_unescaped(field: str) -> str:
    return unescape(field) if "\\" in field else field


def _label(field: str) -> str:
    """A label or relation field: as written, or unescaped when in the escaped form."""
    return _parse_unescaped(field)


@dataclass(frozen=True)
class _Item:
    """One ``:``-item of an output: a span, a relation, or what could not be read."""

    raw: str
    kind: str  # "span", "relation" or "bad"
    label: str = ""
    name: tuple[str, int | None] = ("", None)  # span: (text, k)
    ends: tuple[tuple[str, int | None], tuple[str, int | None]] = (("", None), ("", None))


def _first_separator(item: str, sep: str) -> int:
    """Index of the first ``sep`` in ``item`` not preceded by a backslash (-1: none)."""
    i = 0
    while i < len(item):
        if item[i] == "\\":
            i += 2
            continue
        if item[i] == sep:
            return i
        i += 1
    return -1


def _read_item(item: str, text: str) -> _Item:
    """``item`` as a span (``label;text``) if it names text that is there, else as a relation
    (``head;relation;tail``), else bad."""
    cut = _first_separator(item, ";")
    if cut > 0 and ":" not in item[:cut].replace("\\:", ""):
        name = _resolve_name(item[cut + 1 :], text)
        if name is not None:
            return _Item(item, "span", label=_label(item[:cut]), name=name)
    semis = [i for i, c in enumerate(item) if c == ";"]
    for a, b in itertools.pairwise(semis):
        rel = item[a + 1 : b]
        if not rel:
            continue
        head, tail = _resolve_name(item[:a], text), _resolve_name(item[b + 1 :], text)
        if head is not None and tail is not None:
            return _Item(item, "relation", label=_label(rel), ends=(head, tail))
    return _Item(item, "bad")


def _bad_item_issue(item: str, text: str) -> ParseIssue:
    """Why ``item`` could not be read (as the escaped-form reader would say it)."""
    fields = split_unescaped(item, ";")
    if len(fields) == 3:
        return ParseIssue("relation end names no span, or empty relation", item)
    if len(fields) != 2:
        return ParseIssue(
            f"expected 'label;span' or 'head;relation;tail', got {len(fields)} fields", item
        )
    name = _parse_name(fields[1])
    if not fields[0] or name is None or not name[0]:
        return ParseIssue("empty label or span text, or a bad '#k'", item)
    span_text, k = name
    occs = occurrences(text, span_text)
    if not occs:
        return ParseIssue("span not found in the text", span_text)
    return ParseIssue(f"span occurs {len(occs)} times in the text, not {k}", item)


def _split_items(body: str, text: str) -> list[_Item]:
    """The items of an output body (``:item:item...``), cut at the ``:`` that give the most
    items that name text that is there (ties: the fewest unreadable items, then the most)."""
    colons = [i for i, c in enumerate(body) if c == ":"]
    if not colons:
        return []
    cap = 2 * len(text) + 256  # an item names at most two spans of the text
    n = len(colons)
    ends = [*colons[1:], len(body)]  # item j can end at colons[k] (k > j) or at the end
    cache: dict[tuple[int, int], _Item] = {}

    def item(j: int, e: int) -> _Item:
        key = (j, e)
        if key not in cache:
            cache[key] = _read_item(body[colons[j] + 1 : e], text)
        return cache[key]

    best: list[tuple[int, int, int]] = [(0, 0, 0)] * (n + 1)
    choice = [n] * n
    for j in range(n - 1, -1, -1):
        top: tuple[int, int, int] | None = None
        for k in range(j + 1, n + 1):
            e = ends[k - 1]
            if e - colons[j] > cap and k > j + 1:
                break
            it = item(j, e)
            good, bad = (1, 0) if it.kind != "bad" else (0, 1 if it.raw else 0)
            rest = best[k]
            score = (rest[0] + good, rest[1] - bad, rest[2] + (1 if it.raw else 0))
            if top is None or score > top:
                top, choice[j] = score, k
        best[j] = top or (0, 0, 0)
    out = []
    j = 0
    while j < n:
        k = choice[j]
        out.append(item(j, ends[k - 1]))
        j = k
    return out


def _split_head(output_text: str, task: Task) -> tuple[str, str | None, str | None]:
    """(label field, task word, body): the head ``label/task word/`` is found by its task
    word, so a label may hold ``/``; None for the parts the output does not reach."""
    words = [task.task_word] + ([EVENT_TASK_WORD] if task is Task.TCREE else [])
    found = [(i, w) for w in words if (i := output_text.find(f"/{w}/")) >= 0]
    if found:
        i, w = min(found)
        return output_text[:i], w, output_text[i + len(w) + 2 :]
    head = split_unescaped(output_text, "/", maxsplit=2)
    if len(head) == 1:
        return head[0], None, None
    if len(head) == 2:
        return head[0], _parse_unescaped(head[1]), None
    return head[0], _parse_unescaped(head[1]), head[2]


def decode_with_errors(
    output_text: str,
    *,
    text: str,
    task: Task | str,
    lang: str,
    id: str = "decoded",
    complete: bool = True,
) -> tuple[Record, list[ParseIssue]]:
    """The record that ``output_text`` describes for ``text``, and what could not be parsed.

    ``complete=False`` says the generation stopped at its token limit: the last item is then
    dropped as possibly truncated. The record's ``meta`` holds ``event: True`` when the output
    used the event task word; it does not hold the errors (see :func:`decode`).
    """
    task = Task.parse(task)
    errors: list[ParseIssue] = []
    meta: dict[str, object] = {}

    label_field, task_word, body = _split_head(output_text, task)
    label = _label(label_field) if label_field else None
    if task_word is None:
        errors.append(ParseIssue("the output ends before the task word", output_text))
        body = ""
        if not complete:
            label = None  # the label itself may be cut off
    else:
        expected = {task.task_word} | ({EVENT_TASK_WORD} if task is Task.TCREE else set())
        if task_word == EVENT_TASK_WORD and task is Task.TCREE:
            meta[EVENT_META_KEY] = True
        elif task_word not in expected:
            errors.append(
                ParseIssue(f"task word is not {task.task_word!r} (task {task.value})", task_word)
            )
        if body is None:
            errors.append(ParseIssue("the output ends before the '/' after the task word"))
            body = ""

    first = body.find(":")
    lead = body if first < 0 else body[:first]
    if lead:
        errors.append(ParseIssue("text before the first ':' item", lead))
    items = [it for it in _split_items(body[max(first, 0) :], text) if it.raw]
    if not complete and items:
        errors.append(ParseIssue("the output was cut off; last item dropped", items[-1].raw))
        items = items[:-1]

    spans: list[Span] = []
    relation_items: list[_Item] = []
    cursor = 0
    taken: dict[str, set[int]] = {}
    for it in items:
        if it.kind == "bad":
            errors.append(_bad_item_issue(it.raw, text))
            continue
        if it.kind == "relation":
            relation_items.append(it)
            continue
        span_text, k = it.name
        occs = occurrences(text, span_text)
        seen = taken.setdefault(span_text, set())
        start: int | None
        if k is not None:
            start = occs[k - 1]
        else:
            start = _default_start(occs, cursor, seen)
            if start is None:
                errors.append(ParseIssue("span repeated more often than it occurs", span_text))
                continue
        seen.add(start)
        cursor = start
        spans.append(Span(start=start, end=start + len(span_text), text=span_text, label=it.label))

    relations: list[Relation] = []
    for it in relation_items:
        item, rel_label = it.raw, it.label
        # each end: an existing span's index, or (text, start) of a span to add
        ends: list[int | tuple[str, int]] = []
        for name in it.ends:
            index = _find_span(spans, text, *name)
            if index is not None:
                ends.append(index)
            elif name[1] is None and name[0]:
                # a triple whose end is no span item (outputs that write triples only): the
                # end becomes a span of its own, placed like a span item
                occs = occurrences(text, name[0])
                start = _default_start(occs, cursor, taken.get(name[0], set()))
                if start is None:
                    break
                ends.append((name[0], start))
            else:
                break
        if len(ends) != 2 or not rel_label:
            errors.append(ParseIssue("relation end names no span, or empty relation", item))
            continue
        indices: list[int] = []
        for end in ends:
            if isinstance(end, tuple) and indices and ends[0] == end:
                indices.append(indices[0])  # X;relation;X with X a new span: one span
            elif isinstance(end, tuple):
                end_text, end_start = end
                taken.setdefault(end_text, set()).add(end_start)
                spans.append(
                    Span(
                        start=end_start,
                        end=end_start + len(end_text),
                        text=end_text,
                        label=RELATION_END_LABEL,
                    )
                )
                indices.append(len(spans) - 1)
            else:
                indices.append(end)
        relations.append(Relation(head=indices[0], label=rel_label, tail=indices[1]))

    spans, relations = sort_spans(spans, relations)
    record = Record(
        id=id,
        lang=lang,
        task=task,
        text=text,
        label=label,
        spans=spans,
        relations=relations,
        meta=meta,
    )
    return record, errors


def _find_span(spans: list[Span], text: str, name: str, k: int | None) -> int | None:
    """Index of the span a relation end names (see the module docstring)."""
    if k is None:
        return next((i for i, s in enumerate(spans) if s.text == name), None)
    occs = occurrences(text, name)
    if k > len(occs):
        return None
    start = occs[k - 1]
    return next((i for i, s in enumerate(spans) if s.text == name and s.start == start), None)


def decode(
    output_text: str,
    *,
    text: str,
    task: Task | str,
    lang: str,
    id: str = "decoded",
    complete: bool = True,
) -> Record:
    """The record that ``output_text`` describes for ``text`` (see the module docstring).

    What could not be parsed is skipped and listed, as strings, in
    ``record.meta["parse_errors"]`` (absent when everything parsed).
    """
    record, errors = decode_with_errors(
        output_text, text=text, task=task, lang=lang, id=id, complete=complete
    )
    if errors:
        record.meta[PARSE_ERRORS_META_KEY] = [str(e) for e in errors]
    return record


def _tasks_of_word(task_word: str) -> list[Task]:
    if task_word == EVENT_TASK_WORD:
        return [Task.TCREE]
    return [t for t in Task if t.task_word == task_word]


def decode_pair(
    input_text: str,
    output_text: str,
    *,
    id: str = "decoded",
    lang: str,
    task: Task | str | None = None,
    strict: bool = True,
) -> Record:
    """The record of an OIELLM (input, output) pair, as in the MMM dataset files.

    The text is the input up to its last ``/``; the task, when not given, comes from the
    task word (``NER`` is both SCNM and TCONER, so it needs ``task``). With ``strict=True``
    any parse issue raises FormatError; else issues go to ``meta["parse_errors"]``.
    """
    text, sep, task_word = input_text.rpartition("/")
    if not sep or not text:
        raise FormatError(
            f"record {id!r}: input has no '/{{task word}}' at its end: {input_text[-40:]!r}"
        )
    if task is None:
        candidates = _tasks_of_word(task_word)
        if len(candidates) != 1:
            names = ", ".join(t.value for t in candidates) or "none"
            raise FormatError(
                f"record {id!r}: task word {task_word!r} names {names}; pass task= explicitly"
            )
        task = candidates[0]
    task = Task.parse(task)
    if task not in _tasks_of_word(task_word):
        raise FormatError(
            f"record {id!r}: input task word {task_word!r} is not task {task.value}'s"
        )
    record, errors = decode_with_errors(output_text, text=text, task=task, lang=lang, id=id)
    if errors and strict:
        raise FormatError(f"record {id!r}: " + "; ".join(str(e) for e in errors))
    if errors:
        record.meta[PARSE_ERRORS_META_KEY] = [str(e) for e in errors]
    if task_word == EVENT_TASK_WORD:
        record.meta[EVENT_META_KEY] = True
    return record
