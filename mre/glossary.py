"""Label glossaries: the same text-level and word-level label in every language.

Labels are translated by the glossary, never by the LLM. One data file per task family
ships in ``mre/glossaries/<NAME>.json``::

    {"task": "SCNM", "tasks": ["SCNM"], "source": "where the names come from",
     "text_labels": [{"ja": "社会", "en": "Society", "zh": "社会"}, ...],
     "span_labels": [{"ja": "人名", "en": "Person", "zh": "人名"}, ...]}

A row may carry ``"aliases": {"ja": ["ニュートラル"]}``: other spellings accepted as the
*source* label, never produced as a target. ``SCPOS.json`` serves the four SCPOS tasks.
TCONER is open-domain (any entity type name), so it has no file, and TCREE has none yet:
for those :func:`map_label` returns None and the caller decides what to do.

Languages beyond the file's columns come from plugins: a
:class:`word_tokenizers.Language` has ``glossary: {task: {ja_label: own_label}}``; its
entries join the rows by their Japanese label (the pivot).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

from mre.errors import MREError
from mre.tasks import Task

log = logging.getLogger(__name__)

Kind = Literal["span", "text"]

__all__ = [
    "GlossaryError",
    "available",
    "clear_cache",
    "glossary_problems",
    "labels",
    "map_label",
]

#: Columns every row of a shipped glossary must have.
REQUIRED_LANGS = ("ja", "en", "zh")
PIVOT = "ja"
_KEYS = {"span": "span_labels", "text": "text_labels"}


class GlossaryError(MREError):
    """A glossary file that breaks the format."""


@dataclass(frozen=True)
class _Row:
    names: Mapping[str, str]  # lang -> label
    aliases: Mapping[str, tuple[str, ...]]  # lang -> other accepted spellings


def _file_name(task: Task) -> str:
    return "SCPOS" if task.is_scpos else task.value


def glossary_problems(data: Any) -> list[str]:
    """What is wrong with one glossary document (an empty list when it is valid).

    Checks: an object with ``task``, ``source``, ``text_labels`` and ``span_labels``; every
    row has non-empty ``ja``/``en``/``zh`` strings; no label (or alias) appears twice in
    one column of one kind.
    """
    if not isinstance(data, dict):
        return [f"expected a JSON object, found {type(data).__name__}"]
    problems = [
        f"missing key {key!r}"
        for key in ("task", "source", "text_labels", "span_labels")
        if key not in data
    ]
    for key in ("text_labels", "span_labels"):
        rows = data.get(key, [])
        if not isinstance(rows, list):
            problems.append(f"{key}: expected a list")
            continue
        seen: dict[tuple[str, str], int] = {}
        for i, row in enumerate(rows):
            where = f"{key}[{i}]"
            if not isinstance(row, dict):
                problems.append(f"{where}: expected an object")
                continue
            for lang in REQUIRED_LANGS:
                value = row.get(lang)
                if not isinstance(value, str) or not value.strip():
                    problems.append(f"{where}: missing or empty {lang!r}")
            aliases = row.get("aliases", {})
            if not isinstance(aliases, dict) or not all(
                isinstance(v, list) and all(isinstance(a, str) and a for a in v)
                for v in aliases.values()
            ):
                problems.append(f"{where}: aliases must map a language to a list of strings")
                aliases = {}
            spellings = [
                (lang, value)
                for lang, value in row.items()
                if lang != "aliases" and isinstance(value, str)
            ]
            spellings += [(lang, a) for lang, values in aliases.items() for a in values]
            for lang, value in spellings:
                first = seen.setdefault((lang, value), i)
                if first != i:
                    problems.append(f"{where}: {lang} label {value!r} already in row {first}")
    return problems


@cache
def _load(name: str) -> dict[str, tuple[_Row, ...]] | None:
    """The rows of glossary `name` by kind, or None when no such file ships."""
    resource = resources.files("mre").joinpath("glossaries", f"{name}.json")
    if not resource.is_file():
        return None
    data = json.loads(resource.read_text(encoding="utf-8"))
    problems = glossary_problems(data)
    if problems:
        raise GlossaryError(f"glossary {name}.json: " + "; ".join(problems))
    out: dict[str, tuple[_Row, ...]] = {}
    for kind, key in _KEYS.items():
        out[kind] = tuple(
            _Row(
                names={k: v for k, v in row.items() if k != "aliases"},
                aliases={k: tuple(v) for k, v in row.get("aliases", {}).items()},
            )
            for row in data[key]
        )
    return out


def available() -> list[str]:
    """Names of the shipped glossary files (without ``.json``)."""
    folder = resources.files("mre").joinpath("glossaries")
    return sorted(
        p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json")
    )


@cache
def _plugin_glossary(lang: str, task: Task) -> Mapping[str, str] | None:
    """The ja -> `lang` entries a plugin language brings for `task`, or None."""
    try:
        import word_tokenizers

        language = word_tokenizers.get_language(lang)
    except (KeyError, ImportError):
        return None
    glossary = language.glossary
    for key in (task.value, _file_name(task)):
        if key in glossary:
            return glossary[key]
    return None


def _label_of(row: _Row, lang: str, task: Task) -> str | None:
    if lang in row.names:
        return row.names[lang]
    plugin = _plugin_glossary(lang, task)
    pivot = row.names.get(PIVOT)
    if plugin is None or pivot is None:
        return None
    return plugin.get(pivot)


def _matches(row: _Row, lang: str, task: Task, label: str, fold: bool) -> bool:
    spellings = [_label_of(row, lang, task), *row.aliases.get(lang, ())]
    if fold:
        key = label.strip().casefold()
        return any(s is not None and s.casefold() == key for s in spellings)
    return label in spellings


def map_label(
    label: str, *, task: Task | str, source: str, target: str, kind: Kind | None = None
) -> str | None:
    """`label` (in language `source`) in language `target`, or None when unmapped.

    Works for any pair of languages that the glossary rows (or plugin languages) cover,
    ``en -> zh`` included. An exact match is tried first, then a case-insensitive one
    (``"person"`` finds ``"Person"``). `kind` restricts the search to span or text
    labels; by default span labels are searched first. Unknown tasks raise ValueError;
    tasks without a glossary (TCONER, TCREE) give None.
    """
    return _map_label(label, Task.parse(task), source, target, kind)


@cache  # the tables are read once and never change: every pair maps the same few labels
def _map_label(label: str, t: Task, source: str, target: str, kind: Kind | None) -> str | None:
    tables = _load(_file_name(t))
    if tables is None:
        return None
    kinds: tuple[Kind, ...] = (kind,) if kind is not None else ("span", "text")
    for fold in (False, True):
        for k in kinds:
            for row in tables[k]:
                if _matches(row, source, t, label, fold):
                    return _label_of(row, target, t)
    return None


def labels(task: Task | str, lang: str, kind: Kind = "span") -> list[str]:
    """The `kind` labels of `task` in `lang`, in glossary order (empty when none)."""
    t = Task.parse(task)
    tables = _load(_file_name(t))
    if tables is None:
        return []
    return [name for row in tables[kind] if (name := _label_of(row, lang, t)) is not None]


def clear_cache() -> None:
    """Forget loaded files and plugin entries (after installing a language plugin)."""
    _load.cache_clear()
    _plugin_glossary.cache_clear()
    _map_label.cache_clear()
