"""Reading a translation run for export: its report, accepted records (checked), rejected
counts and source records; the splits by a stable hash of ``source_id``."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mre.errors import MREError
from mre.record import Record
from mre.tasks import Task

SPLITS = ("train", "validation", "test")
DEFAULT_SPLIT = "0.8/0.1/0.1"
PARALLEL = "parallel"  # the parallel view's config name


class ExportError(MREError, ValueError):
    """The run directory cannot be exported as asked (says which file and why)."""


# ---- splits ------------------------------------------------------------------------------


def parse_split(text: str) -> tuple[float, float, float]:
    """``"0.8/0.1/0.1"`` -> (train, validation, test) fractions; they must add up to 1."""
    parts = text.split("/")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise ExportError(f"--split {text!r}: expected three numbers like 0.8/0.1/0.1") from None
    if len(values) != 3 or any(v < 0 for v in values) or abs(sum(values) - 1.0) > 1e-6:
        raise ExportError(
            f"--split {text!r}: expected three non-negative fractions (train/validation/test) "
            "that add up to 1"
        )
    return values[0], values[1], values[2]


def split_of(source_id: str, fractions: Sequence[float]) -> str:
    """The split of every record translated from `source_id`: where the SHA-256 of the id,
    read as a number in [0, 1), falls among the cumulative fractions."""
    digest = hashlib.sha256(source_id.encode("utf-8")).digest()
    x = int.from_bytes(digest[:8], "big") / 2**64
    cumulative = 0.0
    for name, fraction in zip(SPLITS, fractions, strict=True):
        cumulative += fraction
        if x < cumulative:
            return name
    return [n for n, f in zip(SPLITS, fractions, strict=True) if f > 0][-1]


def task_slug(task: Task | str) -> str:
    """A task as a file or config name: ``SCPOS:Adj&N`` -> ``SCPOS_ADJ_N``."""
    return Task.parse(task).name


# ---- reading the run ---------------------------------------------------------------------


@dataclass
class Rejected:
    """The rejected records of one target language: how many, and each reason's count."""

    n: int = 0
    reasons: Counter[str] = field(default_factory=Counter)


@dataclass
class Run:
    """What the export reads from a run directory."""

    dir: Path
    report: dict[str, Any]
    targets: list[str]
    accepted: dict[str, list[Record]]
    rejected: dict[str, Rejected]
    sources: dict[str, Record] | None = None
    source_path: str | None = None

    @property
    def tasks(self) -> list[Task]:
        found = {r.task for rows in self.accepted.values() for r in rows}
        return [t for t in Task if t in found]

    @property
    def source_lang(self) -> str | None:
        if self.sources:
            return next(iter(self.sources.values())).lang
        for rows in self.accepted.values():
            for r in rows:
                lang = r.meta.get("source_lang")
                if isinstance(lang, str) and lang:
                    return lang
        return None


def source_id_of(record: Record) -> str:
    """``meta.source_id`` (the run's pointer back), else the record's own id."""
    value = record.meta.get("source_id")
    return value if isinstance(value, str) and value else record.id


def _read_rejected(path: Path) -> Rejected:
    """How many rows `path` holds and each reason's count (a row counts once per reason)."""
    from graphs.rows import read_rejected

    out = Rejected()
    if not path.is_file():
        return out
    for row in read_rejected(path):  # a bad line: RecordError naming the file and line
        out.n += 1
        out.reasons.update(set(row.reasons or ["unknown"]))
    return out


def _read_accepted(path: Path) -> list[Record]:
    """The accepted rows of `path` (``graphs.rows``: a bad line or a repeated id is a
    RecordError naming the file and line) as records whose ``meta`` is what the file holds."""
    from graphs.rows import read_accepted

    return [
        Record.model_validate(
            {
                **row.model_dump(mode="json", exclude={"meta"}),
                "meta": row.meta.model_dump(mode="json", exclude_unset=True),
            }
        )
        for row in read_accepted(path)
    ]


def _resolve_input(run_dir: Path, report: Mapping[str, Any], given: str | None) -> Path | None:
    if given:
        path = Path(given)
        if not path.is_file():
            raise ExportError(f"--input {given}: no such file")
        return path
    recorded = (report.get("input") or {}).get("path")
    if not recorded:
        return None
    for candidate in (Path(recorded), run_dir / recorded, run_dir.parent / recorded):
        if candidate.is_file():
            return candidate
    return None


def load_run(run_dir: str | Path, *, input_path: str | None = None, sources: bool = True) -> Run:
    """Read `run_dir`'s report.json, every target's accepted records (checked: a bad line
    raises naming file and line) and rejected counts, and (`sources`) the source records."""
    from mre.io import read_records

    run = Path(run_dir)
    report_path = run / "report.json"
    if not report_path.is_file():
        raise ExportError(f"{run}: no report.json; is this a graphs.translate run directory?")
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise ExportError(f"{report_path}: not JSON: {err}") from None
    targets = list(report.get("targets") or [])
    if not targets:
        targets = sorted(p.parent.name for p in run.glob("*/accepted.jsonl"))
    if not targets:
        raise ExportError(
            f"{report_path}: names no target language and {run} has no */accepted.jsonl"
        )
    accepted: dict[str, list[Record]] = {}
    rejected: dict[str, Rejected] = {}
    for lang in targets:
        path = run / lang / "accepted.jsonl"
        if not path.is_file():
            raise ExportError(f"{path}: missing (report.json names target {lang!r})")
        rows = _read_accepted(path)
        wrong = [r.id for r in rows if r.lang != lang]
        if wrong:
            raise ExportError(
                f"{path}: {len(wrong)} records are not in {lang!r} (first: {wrong[0]!r})"
            )
        accepted[lang] = rows
        rejected[lang] = _read_rejected(run / lang / "rejected.jsonl")
    out = Run(dir=run, report=report, targets=targets, accepted=accepted, rejected=rejected)
    if sources:
        path = _resolve_input(run, report, input_path)
        if path is None:
            raise ExportError(
                f"{report_path}: the source records ({(report.get('input') or {}).get('path')!r}) "
                "are not found; pass --input FILE (the parallel view needs them)"
            )
        out.sources = {r.id: r for r in read_records(path, fmt="auto", strict=False)}
        out.source_path = str(path)
        missing = sorted(
            {source_id_of(r) for rows in accepted.values() for r in rows} - set(out.sources)
        )
        if missing:
            raise ExportError(
                f"{path}: {len(missing)} accepted records point to source ids not in this file "
                f"(first: {missing[0]!r}); is it the run's input? (--input FILE)"
            )
    return out


@dataclass
class Config:
    """One config of the hf layout: its data files and row counts per split, its features."""

    name: str
    files: dict[str, list[str]]  # split -> paths relative to the export dir
    rows: dict[str, int]  # split -> rows
    features: list[dict[str, Any]]
