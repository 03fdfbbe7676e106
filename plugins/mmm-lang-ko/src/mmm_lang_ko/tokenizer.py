"""Korean word tokenizer: Kiwi (kiwipiepy) morphemes with Sejong tags mapped to Universal POS.

    >>> tok = word_tokenizers.get("ko")
    >>> [(t.text, t.pos) for t in tok.tokenize("삼성전자가 새 제품을 발표했다.")]
    [('삼성전자', 'PROPN'), ('가', 'ADP'), ('새', 'DET'), ('제품', 'NOUN'), ('을', 'ADP'),
     ('발표', 'NOUN'), ('했', 'VERB'), ('다', 'PART'), ('.', 'PUNCT')]

What a token is: a *morpheme*, not an eojeol (the space-delimited word). Korean glues
particles and endings onto the word (삼성전자가 = 삼성전자 + 가), and an entity span must be
able to stop before the particle, so the particle is a token of its own.

Offsets are Kiwi's own ``start`` / ``len``, which are ``str`` indices into the input (astral
characters and emoji count as one, like Python). Three things Kiwi does are made to fit the
project's token contract (``text == source[start:end]``, sorted, not overlapping, whitespace
never a token, every other character inside some token):

- contracted morphemes share characters (했 = 하 + 었, 예쁜 = 예쁘 + ᆫ, both at the same
  offsets): morphemes whose spans overlap are merged into one token, which takes its POS,
  lemma and norm from the first of them (the stem: 했 is VERB, lemma 하다, norm 하);
- zero-length morphemes (an elided copula 이) are dropped;
- multi-word dictionary entries ("일본 코카콜라", one NNP over a space) are cut at whitespace
  into one token per word, each with the entry's POS; characters no morpheme covers (none
  seen so far, but Kiwi is free to skip what it cannot analyse) become X tokens.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

from word_tokenizers.base import MissingBackendError, Token

log = logging.getLogger(__name__)

#: What fixes a missing backend; the plugin's own dependencies bring both packages.
INSTALL_HINT = "pip install kiwipiepy kiwipiepy-model  (or reinstall the plugin: pip install mmm-lang-ko)"

#: Sejong tag (Kiwi's tag set, irregular-conjugation suffix "-I"/"-R" removed) -> Universal POS.
#: Follows the UD Korean treebanks where a morpheme has an obvious counterpart: particles are
#: ADP (case) or CCONJ (conjunctive), endings and other bound morphemes PART, the copula AUX.
TAG_MAP: dict[str, str] = {
    "NNG": "NOUN",  # common noun
    "NNP": "PROPN",  # proper noun
    "NNB": "NOUN",  # bound noun (것, 년, 월)
    "NR": "NUM",  # numeral (하나, 첫째)
    "NP": "PRON",  # pronoun
    "VV": "VERB",  # verb
    "VA": "ADJ",  # adjective (예쁘다)
    "VX": "AUX",  # auxiliary predicate
    "VCP": "AUX",  # copula 이다
    "VCN": "AUX",  # negative copula 아니다
    "MM": "DET",  # determiner (새, 이, 그)
    "MAG": "ADV",  # general adverb
    "MAJ": "CCONJ",  # conjunctive adverb (그리고)
    "IC": "INTJ",  # interjection
    "JKS": "ADP",  # case particles ...
    "JKC": "ADP",
    "JKG": "ADP",
    "JKO": "ADP",
    "JKB": "ADP",
    "JKV": "ADP",
    "JKQ": "ADP",
    "JX": "ADP",  # auxiliary particle (는, 도)
    "JC": "CCONJ",  # conjunctive particle (와, 하고)
    "EP": "PART",  # pre-final ending (었)
    "EF": "PART",  # final ending (다)
    "EC": "PART",  # connective ending
    "ETN": "PART",  # nominalizing ending
    "ETM": "PART",  # adnominal ending
    "XPN": "NOUN",  # noun prefix
    "XSN": "NOUN",  # noun suffix (들, 님)
    "XSV": "VERB",  # verb-deriving suffix (발표+하다)
    "XSA": "ADJ",  # adjective-deriving suffix (행복+하다)
    "XSM": "ADV",  # adverb-deriving suffix (Kiwi)
    "XR": "ADJ",  # root (깨끗 in 깨끗하다): nearly always an adjective root
    "SF": "PUNCT",  # . ? !
    "SP": "PUNCT",  # , / : ;
    "SS": "PUNCT",  # quotes, brackets
    "SSO": "PUNCT",
    "SSC": "PUNCT",
    "SE": "PUNCT",  # ellipsis
    "SO": "PUNCT",  # dashes, tildes
    "SW": "SYM",  # other symbols; also letters of other scripts Kiwi does not know
    "SL": "X",  # foreign (Latin) word: its class is unknown to Kiwi
    "SH": "X",  # Han characters
    "SN": "NUM",  # digits
    "SB": "PUNCT",  # list bullets (가., 1.)
    "UN": "X",  # unanalysable
    "W_URL": "X",
    "W_EMAIL": "X",
    "W_HASHTAG": "X",
    "W_MENTION": "X",
    "W_SERIAL": "NUM",
    "W_EMOJI": "SYM",
    "Z_CODA": "PART",  # an added final consonant (Kiwi's z_coda)
    "Z_SIOT": "PART",  # saisiot
}


def upos_of_tag(tag: str) -> str:
    """Universal POS of a Kiwi tag; unknown tags (user tags...) are X."""
    return TAG_MAP.get(tag.split("-", 1)[0], "X")


def _is_invisible(text: str) -> bool:
    """Only control / format characters (U+200B...): Kiwi calls these NNP or SW."""
    return all(unicodedata.category(ch)[0] == "C" for ch in text)


def _words(text: str, start: int, end: int) -> Iterable[tuple[int, int]]:
    """The runs of non-whitespace characters of `text[start:end]`, as offsets into `text`."""
    i = start
    while i < end:
        while i < end and text[i].isspace():
            i += 1
        j = i
        while j < end and not text[j].isspace():
            j += 1
        if j > i:
            yield i, j
        i = j


def tokens_of(text: str, morphemes: Sequence[Any]) -> list[Token]:
    """Project-contract tokens of `text` from Kiwi's morphemes of it (see the module doc)."""
    spans = sorted(
        (m for m in morphemes if m.len > 0), key=lambda m: m.start
    )  # stable: a stem stays before the ending it shares characters with
    out: list[Token] = []
    covered = 0  # end of the last cluster: characters before it are done
    i = 0
    n = len(spans)
    while i < n:
        head = spans[i]
        start = head.start
        end = start + head.len
        j = i + 1
        while j < n and spans[j].start < end:  # overlaps the cluster: 했 = 하 + 었
            end = max(end, spans[j].start + spans[j].len)
            j += 1
        if start < covered:  # cannot happen with sorted spans merged above; keep it safe
            start = covered
        _gap(text, covered, start, out)
        pos = upos_of_tag(head.tag)
        for a, b in _words(text, start, end):
            surface = text[a:b]
            if (a, b) == (start, end):  # the usual case: the stem's lemma and form
                lemma, norm = head.lemma, head.form
            else:  # one word of a multi-word entry
                lemma = norm = surface
            out.append(
                Token(surface, a, b, "X" if _is_invisible(surface) else pos, lemma, norm)
            )
        covered = max(covered, end)
        i = j
    _gap(text, covered, len(text), out)
    return out


def _gap(text: str, start: int, end: int, out: list[Token]) -> None:
    """Characters no morpheme covered: one X token per whitespace-delimited run."""
    for a, b in _words(text, start, end):
        surface = text[a:b]
        log.debug("Kiwi left %r at [%d, %d) unanalysed; it becomes an X token", surface, a, b)
        out.append(Token(surface, a, b, "X", surface, surface))


class KoreanTokenizer:
    """Kiwi over one shared model; calls are serialized by a lock (one Kiwi is ~300 MB)."""

    lang = "ko"

    def __init__(self, kiwi: Any) -> None:
        self._kiwi = kiwi
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return "KoreanTokenizer(kiwipiepy)"

    def tokenize(self, text: str) -> list[Token]:
        if not text or text.isspace():
            return []
        with self._lock:
            morphemes = self._kiwi.tokenize(text)
        return tokens_of(text, morphemes)

    def tokenize_batch(self, texts: Iterable[str]) -> list[list[Token]]:
        items = list(texts)
        busy = [i for i, t in enumerate(items) if t and not t.isspace()]
        out: list[list[Token]] = [[] for _ in items]
        if not busy:
            return out
        with self._lock:
            results = list(self._kiwi.tokenize([items[i] for i in busy]))
        if len(results) != len(busy):
            raise RuntimeError(f"Kiwi answered {len(results)} analyses for {len(busy)} texts")
        for i, morphemes in zip(busy, results, strict=True):
            out[i] = tokens_of(items[i], morphemes)
        return out


class KiwiMissingError(MissingBackendError):
    """kiwipiepy (or its model package) is missing; the message says what to install."""

    def __init__(self, what: str) -> None:
        ImportError.__init__(
            self,
            f"the 'ko' word tokenizer needs {what}, which is not installed; "
            f"install it with: {INSTALL_HINT}",
        )
        self.lang = "ko"


@cache
def _kiwi(model_type: str | None, num_workers: int | None) -> Any:
    """One Kiwi per process and settings (loading takes ~1.5 s and ~300 MB)."""
    from kiwipiepy import Kiwi

    return Kiwi(model_type=model_type, num_workers=num_workers)


def make_tokenizer(model_type: str | None = None, num_workers: int | None = None) -> KoreanTokenizer:
    """The Korean word tokenizer. `model_type` is Kiwi's language model (None: Kiwi's
    default, "cong" in kiwipiepy 0.24); `num_workers` its thread count for batches."""
    if importlib.util.find_spec("kiwipiepy") is None:
        raise KiwiMissingError("kiwipiepy")
    if importlib.util.find_spec("kiwipiepy_model") is None:
        raise KiwiMissingError("kiwipiepy-model")
    return KoreanTokenizer(_kiwi(model_type, num_workers))
