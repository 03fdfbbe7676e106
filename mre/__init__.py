"""The MRE mix record: schema, tasks, label glossaries, readers and writers."""

from mre.conll import ConllProblem, to_conll, write_conll
from mre.errors import MREError, RecordError
from mre.glossary import labels, map_label
from mre.io import JsonlWriter, ReadStats, RecordReader, read_records, write_jsonl
from mre.record import Record, Relation, Span, sort_spans
from mre.tasks import EVENT_TASK_WORD, SCPOS_POS_CLASSES, Task

__all__ = [
    "EVENT_TASK_WORD",
    "SCPOS_POS_CLASSES",
    "ConllProblem",
    "JsonlWriter",
    "MREError",
    "ReadStats",
    "Record",
    "RecordError",
    "RecordReader",
    "Relation",
    "Span",
    "Task",
    "labels",
    "map_label",
    "read_records",
    "sort_spans",
    "to_conll",
    "write_conll",
    "write_jsonl",
]
