"""The run directory's files: layout, atomic writes, record files."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mre.record import Record


def round_dir(run: Path, r: int) -> Path:
    """``RUN/round-NN``."""
    return run / f"round-{r:02d}"


def write_json(path: Path, obj: Any) -> None:
    """`obj` as indented UTF-8 JSON in `path`, atomically (temporary file + rename)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def write_records(path: Path, records: Iterable[Record]) -> int:
    """Write `records` as canonical JSONL, atomically; returns how many."""
    from mre.io import write_jsonl

    tmp = path.with_name(path.name + ".tmp")
    n = write_jsonl(records, tmp)
    os.replace(tmp, path)
    return n


def read_records(paths: Iterable[str | Path], fmt: str = "jsonl") -> list[Record]:
    """Every record of `paths`, checked (the first bad line raises, naming file and line)."""
    from mre.io import read_records as read

    return [r for p in paths for r in read(p, fmt=fmt, strict=True)]  # type: ignore[arg-type]


def sha256_of(paths: Iterable[str | Path]) -> str:
    """One digest over the bytes of every file in `paths`, in order."""
    digest = hashlib.sha256()
    for p in paths:
        digest.update(Path(p).read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()
