"""CoNLL / BIO export of records: one token a line, ``token<TAB>tag``.

    # id = stockmark-235
    # label = 社会
    神奈川県立大和高等学校	B-施設名
    卒業	O
    ...
    (blank line between records)

Tokens come from ``word_tokenizers.get(lang)`` (the record's language unless `lang` or a
`tokenizer` is given). Spans are never shifted to fit the tokens; instead:

- a span boundary inside a token (``cut_token``): every token that *overlaps* the span gets
  its label (the first one ``B-``), and the cut is reported as a :class:`ConllProblem`
  naming the record, the span index, the span text and the cut token;
- a token already tagged by an earlier span (``overlap``, nested spans): it keeps the
  earlier span's tag, and the later span is reported;
- a span that no token overlaps (``no_token``): reported, no tag written.

Labels keep their text, except that whitespace inside a label becomes ``_`` in the tag
(``Product Name`` -> ``B-Product_Name``) so that whitespace-splitting CoNLL readers see two
columns; pass ``space=" "`` to keep spaces. Tabs and newlines inside a token become spaces.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from mre.record import Record

if TYPE_CHECKING:
    from word_tokenizers import Token, Tokenizer

__all__ = ["ConllProblem", "bio_tags", "to_conll", "write_conll"]

ProblemKind = Literal["cut_token", "overlap", "no_token"]


@dataclass(frozen=True)
class ConllProblem:
    """A span that the tokens cannot represent exactly."""

    record_id: str
    span_index: int
    span_text: str
    kind: ProblemKind
    token: str | None  # the token that is cut or already tagged; None for no_token
    message: str

    def __str__(self) -> str:
        return (
            f"record {self.record_id!r}: span {self.span_index} {self.span_text!r}: {self.message}"
        )


def _tag_label(label: str, space: str) -> str:
    return re.sub(r"\s+", space, label.strip())


def bio_tags(
    record: Record, tokens: list[Token], *, space: str = "_"
) -> tuple[list[str], list[ConllProblem]]:
    """The BIO tag of every token of `record`, and the spans that do not fit the tokens."""
    tags = ["O"] * len(tokens)
    owner: list[int | None] = [None] * len(tokens)
    problems: list[ConllProblem] = []

    def report(i: int, kind: ProblemKind, token: str | None, message: str) -> None:
        span = record.spans[i]
        problems.append(ConllProblem(record.id, i, span.text, kind, token, message))

    for i, span in enumerate(record.spans):
        covered = [j for j, t in enumerate(tokens) if t.start < span.end and span.start < t.end]
        if not covered:
            report(i, "no_token", None, f"no token overlaps [{span.start}, {span.end})")
            continue
        for j in (covered[0], covered[-1]):
            tok = tokens[j]
            if tok.start < span.start or tok.end > span.end:
                report(
                    i,
                    "cut_token",
                    tok.text,
                    f"span [{span.start}, {span.end}) cuts token {tok.text!r} "
                    f"[{tok.start}, {tok.end}); the whole token is tagged",
                )
                if covered[0] == covered[-1]:
                    break
        label = _tag_label(span.label, space)
        first = True
        for j in covered:
            other = owner[j]
            if other is not None:
                report(
                    i,
                    "overlap",
                    tokens[j].text,
                    f"token {tokens[j].text!r} already tagged by span {other}; kept that tag",
                )
                first = True  # the next free token starts a new chunk
                continue
            tags[j] = ("B-" if first else "I-") + label
            owner[j] = i
            first = False
    return tags, problems


def _clean(text: str) -> str:
    return text.replace("\t", " ").replace("\r", " ").replace("\n", " ")


def to_conll(
    records: Iterable[Record],
    lang: str | None = None,
    *,
    tokenizer: Tokenizer | None = None,
    space: str = "_",
) -> tuple[str, list[ConllProblem]]:
    """The CoNLL text of `records` and every problem found (see the module docstring)."""
    blocks: list[str] = []
    problems: list[ConllProblem] = []
    for record in records:
        tok = tokenizer
        if tok is None:
            import word_tokenizers

            tok = word_tokenizers.get(lang or record.lang)
        tokens = tok.tokenize(record.text)
        tags, found = bio_tags(record, tokens, space=space)
        problems.extend(found)
        lines = [f"# id = {_clean(record.id)}"]
        if record.label is not None:
            lines.append(f"# label = {_clean(record.label)}")
        lines += [f"{_clean(t.text)}\t{tag}" for t, tag in zip(tokens, tags, strict=True)]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks), problems


def write_conll(
    records: Iterable[Record],
    path: str | os.PathLike[str],
    lang: str | None = None,
    *,
    tokenizer: Tokenizer | None = None,
    space: str = "_",
) -> list[ConllProblem]:
    """Write the CoNLL text of `records` to `path` (UTF-8); returns the problems found."""
    text, problems = to_conll(records, lang, tokenizer=tokenizer, space=space)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8", newline="\n")
    return problems
