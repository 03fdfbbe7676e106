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


#: Words a span neither starts nor ends with (universal POS): particles, auxiliaries,
#: conjunctions, punctuation (バンダイ|の, PC|の).
EDGE_POS = frozenset({"ADP", "PART", "AUX", "SCONJ", "CCONJ", "PUNCT", "SYM"})

Bounds = tuple[frozenset[int], frozenset[int]]  # byte offsets where a span may start, end


#: Words a name is made of (universal POS). For entity tasks a span covers a whole run of them,
#: not a part: ザパタ石油会社, not ザパタ; ジョージ・ブッシュ, not ジョージ.
NAME_POS = frozenset({"NOUN", "PROPN", "NUM"})
#: Symbols that join the name words on either side into one name (ジョージ・ブッシュ).
JOINERS = frozenset({"・", "＝", "="})


def name_runs(text: str, tokens: Any) -> list[tuple[int, int]]:
    """The (start, end) character ranges of the runs of name words in `text` (`NAME_POS`),
    next to each other or one space apart, or joined by a `JOINERS` symbol."""
    toks = list(tokens)
    runs: list[list[int]] = []
    last: Any = None  # the previous token, when it belongs to the current run
    for i, t in enumerate(toks):
        joins = (
            t.text in JOINERS
            and last is not None
            and last.end == t.start
            and i + 1 < len(toks)
            and toks[i + 1].pos in NAME_POS
            and toks[i + 1].start == t.end
        )
        if t.pos not in NAME_POS and not joins:
            last = None
            continue
        if last is not None and text[last.end : t.start] in ("", " "):
            runs[-1][1] = t.end
        else:
            runs.append([t.start, t.end])
        last = t
    return [(a, b) for a, b in runs]


def word_bounds(text: str, tokens: Any, *, names: bool = False) -> Bounds:
    """Where in `text` (UTF-8 byte offsets) a span may start and end: at the edges of its words
    (`word_tokenizers` tokens), a particle, auxiliary or punctuation not at a span's edge.

    `names` (entity tasks): at the edges of runs of name words only (`name_runs`). Of the
    spans of the stockmark NER training records, 94% start where such a run starts and 84%
    end where one ends; a model trained for minutes ends names early (ザパタ for ザパタ石油会社)
    and writes verbs and adverbs as names, and with this rule its held-out word-level F1 went
    from 14.8% to 28.4% (bench/RESULTS.md)."""
    offsets = [0]
    for ch in text:
        offsets.append(offsets[-1] + len(ch.encode("utf-8")))
    if names:
        runs = name_runs(text, tokens)
        return frozenset(offsets[a] for a, _ in runs), frozenset(offsets[b] for _, b in runs)
    content = [t for t in tokens if t.pos not in EDGE_POS]
    return (
        frozenset(offsets[t.start] for t in content),
        frozenset(offsets[t.end] for t in content),
    )


def text_bounds(texts: list[str], lang: str, *, names: bool = False) -> list[Bounds] | None:
    """`word_bounds` of every text with the language's word tokenizer; None where the
    language has none installed (spans then keep only to katakana and Latin runs)."""
    import word_tokenizers

    try:
        tokenize = word_tokenizers.get(lang).tokenize
    except (LookupError, ImportError):  # KeyError is a LookupError
        return None
    return [word_bounds(t, tokenize(t), names=names) for t in texts]


Taken = tuple[tuple[int, int], ...]  # byte ranges of the text the output's spans hold


def _find(
    text: bytes,
    span: bytes,
    starts: frozenset[int],
    ends: frozenset[int] | None,
    taken: Taken = (),
) -> int:
    """Where `span` occurs in `text` from a start in `starts` (and, given `ends`, to an end in
    it), clear of the `taken` ranges; -1 where it does not."""
    i = text.find(span)
    while i >= 0:
        j = i + len(span)
        if (
            i in starts
            and (ends is None or j in ends)
            and all(j <= a or i >= b for a, b in taken)
        ):
            return i
        i = text.find(span, i + 1)
    return -1


def taken_by(text: bytes, spans: list[bytes], bounds: Bounds) -> Taken:
    """The text ranges `spans` (an output's earlier span fields, in order) hold: each at its
    first place on word edges clear of those before it."""
    taken: list[tuple[int, int]] = []
    for span in spans:
        i = _find(text, span, bounds[0], bounds[1], tuple(taken))
        if i >= 0:
            taken.append((i, i + len(span)))
    return tuple(taken)


class CopySpans:
    """A transformers logits processor: see the module docstring. `texts` are the input texts
    of the batch's rows, `start` the column where generation starts (after left padding).
    `bounds` (`word_bounds` per row): spans start and end on word edges, not on particles."""

    def __init__(
        self,
        pieces: list[bytes],
        texts: list[str],
        start: int,
        eos_ids: list[int],
        bounds: list[Bounds] | None = None,
    ) -> None:
        self.pieces = pieces
        self.texts = [t.encode("utf-8") for t in texts]
        self.start = start
        self.eos_ids = eos_ids
        self.bounds = bounds
        self._allowed: dict[tuple[int, bytes, int, Taken], list[int]] = {}

    def _ends_well(self, row: int, span: bytes, taken: Taken) -> bool:
        if self.bounds is None:
            return _on_bounds(self.texts[row], span)
        starts, ends = self.bounds[row]
        return _find(self.texts[row], span, starts, ends, taken) >= 0

    def _starts_well(self, row: int, head: bytes, taken: Taken) -> bool:
        if self.bounds is None:
            return _starts_on_bound(self.texts[row], head)
        return _find(self.texts[row], head, self.bounds[row][0], None, taken) >= 0

    def allowed(self, row: int, current: bytes, used: int = 0, taken: Taken = ()) -> list[int]:
        """The token ids that may follow span prefix `current` in row `row`; `used`: how many
        earlier fields of the output are `current` already (a span may end only as often as
        it occurs in the text); `taken`: the text the earlier spans hold (with `bounds`, a
        span does not overlap them: パイレーツ, then not パイレーツ」の連載)."""
        key = (row, current, used, taken)
        if key in self._allowed:
            return self._allowed[key]
        text = self.texts[row]
        may_end = (
            bool(current) and text.count(current) > used and self._ends_well(row, current, taken)
        )
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
            if sep and head and not self._ends_well(row, grown, taken):
                continue
            if not current and 0x80 <= grown[0] <= 0xBF:
                continue  # a span starts on a character
            if (not current or self.bounds is not None) and not self._starts_well(
                row, grown, taken
            ):
                continue  # ... on a word (not inside a run, not on a particle)
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
            taken = taken_by(self.texts[row], spans, self.bounds[row]) if self.bounds else ()
            ids = self.allowed(row, current, spans.count(current), taken)
            if not ids:
                continue  # nothing copies: let the model end the field as it will
            keep = torch.full_like(scores[row], float("-inf"))
            keep[ids] = scores[row, ids]
            scores[row] = keep
        return scores
