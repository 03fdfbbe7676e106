"""Decoding that copies spans: inside a span field of an OIELLM output (after ``;``), only tokens
that keep the field a substring of the input text may be generated, and the field may end
(``:`` or end of output) only where it is one.

An extractor's spans must occur in its text (the decoder rejects any that do not). A small
model that has learnt the format and the labels but not yet to copy writes name-like strings
that are in no text; with this constraint, its choice among the text's own substrings is what
is scored. Labels and the text label stay free.

Works on bytes (byte-level BPE tokens may hold part of a character), one row of the batch at
a time; the allowed set of a row is cached per span prefix.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte <-> printable-character table, inverted (byte-level BPE token strings)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs, strict=True)}


def token_bytes(tokenizer: Any) -> list[bytes]:
    """The bytes each token id stands for (b"" for special tokens)."""
    table = _byte_decoder()
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    size = max(len(tokenizer), max(tokenizer.get_vocab().values()) + 1)
    out: list[bytes] = []
    for i in range(size):
        if i in special:
            out.append(b"")
            continue
        piece = tokenizer.convert_ids_to_tokens(i)
        if piece is None:
            out.append(b"")
        elif all(ch in table for ch in piece):
            out.append(bytes(table[ch] for ch in piece))
        else:  # not byte-level: its decoded text
            out.append(tokenizer.decode([i]).encode("utf-8"))
    return out


def _run_class(ch: str) -> str:
    """The runs a name does not stop inside: katakana (with ー), Latin letters and digits."""
    if "\u30a0" <= ch <= "\u30ff" or ch == "ー":
        return "kana"
    if ch.isascii() and ch.isalnum():
        return "latin"
    return ""


def _bound(before: str, after: str) -> bool:
    a, b = _run_class(before), _run_class(after)
    return not (a and a == b)


def _on_bounds(text: bytes, span: bytes) -> bool:
    """Whether `span` occurs in `text` somewhere it neither starts nor ends inside a katakana
    or Latin run (パ in パイレーツ does not: a name does not stop there)."""
    try:
        t, s = text.decode("utf-8"), span.decode("utf-8")
    except UnicodeDecodeError:
        return False  # part of a character
    i = t.find(s)
    while i >= 0:
        j = i + len(s)
        if (i == 0 or _bound(t[i - 1], s[0])) and (j == len(t) or _bound(s[-1], t[j])):
            return True
        i = t.find(s, i + 1)
    return False


def _starts_on_bound(text: bytes, head: bytes) -> bool:
    """Whether the first piece of a span occurs in `text` where no katakana or Latin run
    goes on before it."""
    t = text.decode("utf-8", "ignore")
    s = head.decode("utf-8", "ignore")
    if not s:
        return True  # part of a character: judged when the field ends
    i = t.find(s)
    while i >= 0:
        if i == 0 or _bound(t[i - 1], s[0]):
            return True
        i = t.find(s, i + 1)
    return False


class CopySpans:
    """A transformers logits processor: see the module docstring. `texts` are the input texts
    of the batch's rows, `start` the column where generation starts (after left padding)."""

    def __init__(
        self, pieces: list[bytes], texts: list[str], start: int, eos_ids: list[int]
    ) -> None:
        self.pieces = pieces
        self.texts = [t.encode("utf-8") for t in texts]
        self.start = start
        self.eos_ids = eos_ids
        self._allowed: dict[tuple[int, bytes, int], list[int]] = {}

    def allowed(self, row: int, current: bytes, used: int = 0) -> list[int]:
        """The token ids that may follow span prefix `current` in row `row`; `used`: how many
        earlier fields of the output are `current` already (a span may end only as often as
        it occurs in the text)."""
        key = (row, current, used)
        if key in self._allowed:
            return self._allowed[key]
        text = self.texts[row]
        may_end = bool(current) and text.count(current) > used and _on_bounds(text, current)
        ids = []
        for i, piece in enumerate(self.pieces):
            if not piece:
                continue
            head, sep, _ = piece.partition(b":")
            grown = current + head
            if b";" in head or grown not in text:
                continue
            if sep and not (head or may_end):
                continue
            if sep and head and not _on_bounds(text, grown):
                continue
            if not current and (0x80 <= grown[0] <= 0xBF or not _starts_on_bound(text, grown)):
                continue  # a span starts on a character, and not inside a run
            ids.append(i)
        if may_end:
            ids += self.eos_ids
        self._allowed[key] = ids
        return ids

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        for row in range(input_ids.shape[0]):
            out = b"".join(self.pieces[t] for t in input_ids[row, self.start :].tolist())
            semi = out.rfind(b";")
            if semi < 0 or semi < out.rfind(b":"):
                continue  # not inside a span field
            current = out[semi + 1 :]
            spans = [f.split(b":", 1)[0] for f in out[:semi].split(b";")[1:]]
            ids = self.allowed(row, current, spans.count(current))
            if not ids:
                continue  # nothing copies: let the model end the field as it will
            keep = torch.full_like(scores[row], float("-inf"))
            keep[ids] = scores[row, ids]
            scores[row] = keep
        return scores
