"""Training data: accepted records -> OIELLM (input, output) text -> tokenized examples.

The prompt is the OIELLM input followed by a newline (``prompt_style="plain"``), or the input as
the user turn of the tokenizer's chat template (``"chat"``, for instruction-tuned base models).
The output follows, then the tokenizer's EOS; the loss covers the output and EOS only.
Prompt and output are tokenized apart, as at inference, where the prompt is all there is.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from mre.oiellm import EVENT_META_KEY, FormatError, encode, task_word_of
from mre.record import Record
from mre.tasks import Task
from training.packing import Example

logger = logging.getLogger(__name__)

#: What follows the OIELLM input in a plain prompt.
PLAIN_SEPARATOR = "\n"


def load_records(
    paths: Iterable[str | Path], *, tasks: Sequence[str] = (), langs: Sequence[str] = ()
) -> list[Record]:
    """The records of every file, keeping only ``tasks`` and ``langs`` when given.

    Files are read by ``mre.io.read_records`` with ``fmt="auto"``: canonical JSONL, or the
    stockmark NER data as it is. A bad line raises RecordError naming the file and line.
    """
    from mre.io import read_records

    wanted_tasks = {Task.parse(t) for t in tasks}
    out: list[Record] = []
    for path in paths:
        for r in read_records(path, fmt="auto"):
            if wanted_tasks and r.task not in wanted_tasks:
                continue
            if langs and r.lang not in langs:
                continue
            out.append(r)
    return out


def split_records(
    records: list[Record], eval_fraction: float, seed: int = 0
) -> tuple[list[Record], list[Record]]:
    """(train, eval): a seeded random ``eval_fraction`` of the records held out."""
    if eval_fraction <= 0:
        return list(records), []
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    n_eval = max(1, round(eval_fraction * len(records)))
    held = set(order[:n_eval])
    return (
        [r for i, r in enumerate(records) if i not in held],
        [r for i, r in enumerate(records) if i in held],
    )


def labels_by_task(records: Iterable[Record]) -> dict[str, list[str]]:
    """The span labels of the records by task word (``"NER": ["人名", ...]``), sorted."""
    out: dict[str, set[str]] = {}
    for r in records:
        word = task_word_of(r.task, event=bool(r.meta.get(EVENT_META_KEY)))
        out.setdefault(word, set()).update(s.label for s in r.spans)
    return {word: sorted(labels) for word, labels in sorted(out.items()) if labels}


def build_prompt(input_text: str, tokenizer: Any, prompt_style: str) -> str:
    """The prompt string the model sees for an OIELLM input."""
    if prompt_style == "plain":
        return input_text + PLAIN_SEPARATOR
    if prompt_style == "chat":
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError("prompt_style 'chat' needs a tokenizer with a chat template")
        prompt = tokenizer.apply_chat_template(
            [{"role": "user", "content": input_text}], tokenize=False, add_generation_prompt=True
        )
        return str(prompt)
    raise ValueError(f"unknown prompt_style {prompt_style!r}; expected 'plain' or 'chat'")


def encode_prompt(prompt: str, tokenizer: Any, prompt_style: str) -> list[int]:
    """Token ids of a prompt (a chat template writes its own special tokens)."""
    ids = tokenizer(prompt, add_special_tokens=prompt_style == "plain")["input_ids"]
    return list(ids)


def make_example(record: Record, tokenizer: Any, prompt_style: str) -> Example:
    """The tokenized example of ``record``."""
    input_text, output_text = encode(record)
    prompt_ids = encode_prompt(
        build_prompt(input_text, tokenizer, prompt_style), tokenizer, prompt_style
    )
    output_ids = list(tokenizer(output_text, add_special_tokens=False)["input_ids"])
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no EOS token; generation could never stop")
    return Example(ids=tuple(prompt_ids + output_ids + [eos]), n_prompt=len(prompt_ids))


def build_examples(
    records: Iterable[Record], tokenizer: Any, prompt_style: str, max_len: int
) -> tuple[list[Example], int]:
    """Examples of the records that fit in ``max_len`` tokens, and how many were dropped.

    A record longer than a row is dropped, not truncated: a truncated output would teach the
    model to stop in the middle. So is one the format cannot write (logged with its id).
    """
    examples = []
    dropped = 0
    for r in records:
        try:
            ex = make_example(r, tokenizer, prompt_style)
        except FormatError as err:
            logger.warning("skipping record %r: %s", r.id, err)
            dropped += 1
            continue
        if len(ex) > max_len:
            dropped += 1
            continue
        examples.append(ex)
    if dropped:
        logger.warning(
            "dropped %d records (longer than %d tokens, or not writable)", dropped, max_len
        )
    return examples, dropped
