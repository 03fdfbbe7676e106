"""A small synthetic MRE task: short English sentences with a topic label and two entities.

For tests and demos of the training pipeline (a tiny model learns it in a few hundred steps
on a CPU): ``{person} flew to {place}.`` is labelled ``travel`` with ``PER`` and ``LOC`` spans.
``python -m training.synthetic --out runs/synthetic.jsonl -n 600`` writes it as JSONL.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from mre.record import Record, Span
from mre.tasks import Task

PERSONS = [
    "Aki", "Bo", "Chen", "Dana", "Emi", "Fu", "Gil", "Hana",
    "Ivo", "Jun", "Kai", "Lena", "Mio", "Nils", "Omar", "Pia",
]  # fmt: skip
PLACES = [
    "Oslo", "Lima", "Kyoto", "Paris", "Quito", "Rome",
    "Seoul", "Tunis", "Umea", "Vaduz", "Bern", "Cairo",
]  # fmt: skip
TEMPLATES = {
    "travel": "{person} flew to {place}.",
    "work": "{person} works in {place}.",
    "home": "{person} lives in {place}.",
}


def make_record(person: str, place: str, label: str, *, id: str) -> Record:
    text = TEMPLATES[label].format(person=person, place=place)
    p = text.index(person)
    q = text.index(place, p + len(person))
    spans = [
        Span(start=p, end=p + len(person), text=person, label="PER"),
        Span(start=q, end=q + len(place), text=place, label="LOC"),
    ]
    return Record(id=id, lang="en", task=Task.SCNM, text=text, label=label, spans=spans)


def all_records() -> list[Record]:
    """Every sentence of the task (16 persons x 12 places x 3 templates = 576), in a fixed order."""
    out: list[Record] = []
    for label in TEMPLATES:
        for person in PERSONS:
            for place in PLACES:
                out.append(make_record(person, place, label, id=f"syn-{len(out)}"))
    return out


def split(n_heldout: int, seed: int = 0) -> tuple[list[Record], list[Record]]:
    """(train, held-out): a seeded shuffle of :func:`all_records`; held-out sentences never
    occur in train (their person, place and label each do)."""
    records = all_records()
    random.Random(seed).shuffle(records)
    return records[n_heldout:], records[:n_heldout]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="JSONL file to write")
    parser.add_argument("--heldout-out", help="also write the held-out records here")
    parser.add_argument("-n", "--heldout", type=int, default=60, help="held-out records")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from mre.io import write_jsonl

    train, held = split(args.heldout, args.seed)
    write_jsonl(train, Path(args.out))
    if args.heldout_out:
        write_jsonl(held, Path(args.heldout_out))
    print(
        f"{len(train)} records -> {args.out}"
        + (f", {len(held)} -> {args.heldout_out}" if args.heldout_out else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
