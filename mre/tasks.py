"""The seven MMM tasks and their OIELLM task words."""

from __future__ import annotations

from enum import StrEnum


class Task(StrEnum):
    """An MMM task. The value is the name used in records (`"task": "SCNM"`)."""

    SCNM = "SCNM"
    SCPOS_RW = "SCPOS:RW"
    SCPOS_ADJ_N = "SCPOS:Adj&N"
    SCPOS_ADJ = "SCPOS:Adj"
    SCPOS_N = "SCPOS:N"
    TCREE = "TCREE"
    TCONER = "TCONER"

    @property
    def task_word(self) -> str:
        """The OIELLM task word of the task (the text after `/` in the model input)."""
        return TASK_WORDS[self]

    @property
    def is_scpos(self) -> bool:
        return self.value.startswith("SCPOS")

    @classmethod
    def parse(cls, value: str | Task) -> Task:
        """The task named `value`; raises ValueError listing the known tasks."""
        if isinstance(value, Task):
            return value
        try:
            return cls(value)
        except ValueError:
            known = ", ".join(t.value for t in cls)
            raise ValueError(f"unknown task {value!r}; expected one of: {known}") from None


TASK_WORDS: dict[Task, str] = {
    Task.SCNM: "NER",
    Task.SCPOS_RW: "Sentiment Relation Word",
    Task.SCPOS_ADJ_N: "Sentiment Adj and N",
    Task.SCPOS_ADJ: "Sentiment Adj",
    Task.SCPOS_N: "Sentiment N",
    Task.TCREE: "Relation Extraction",
    Task.TCONER: "NER",
}

#: TCREE records that carry an event (trigger + arguments) use this task word instead.
EVENT_TASK_WORD = "Event Extraction"

#: Universal POS classes a span must belong to, per SCPOS task (None: any class).
SCPOS_POS_CLASSES: dict[Task, frozenset[str] | None] = {
    Task.SCPOS_RW: None,
    Task.SCPOS_ADJ_N: frozenset({"ADJ", "NOUN", "PROPN"}),
    Task.SCPOS_ADJ: frozenset({"ADJ"}),
    Task.SCPOS_N: frozenset({"NOUN", "PROPN"}),
}
