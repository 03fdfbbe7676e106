"""What every word tokenizer returns: tokens with character offsets from the backend itself."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, cast, runtime_checkable


@dataclass(frozen=True, slots=True)
class Token:
    """One word. `text == source[start:end]`; `pos` is a Universal POS tag (NOUN, ADJ, ...)."""

    text: str
    start: int
    end: int
    pos: str
    lemma: str
    norm: str = ""  # backend's normalized form (Sudachi normalized_form, lower-case lemma, ...)

    # Hand-written so that building a token is cheap: the generated frozen __init__ calls
    # object.__setattr__ once per field (~2 us a token, about what Sudachi spends on a word);
    # writing through the slot descriptors is 3x faster. Same signature and semantics.
    # Backends' inner loops use `new_token` below, faster still.
    def __init__(
        self, text: str, start: int, end: int, pos: str, lemma: str, norm: str = ""
    ) -> None:
        _set_text(self, text)
        _set_start(self, start)
        _set_end(self, end)
        _set_pos(self, pos)
        _set_lemma(self, lemma)
        _set_norm(self, norm)


def _slot_setter(name: str) -> Callable[[Token, Any], None]:
    return cast("Callable[[Token, Any], None]", Token.__dict__[name].__set__)


_set_text = _slot_setter("text")
_set_start = _slot_setter("start")
_set_end = _slot_setter("end")
_set_pos = _slot_setter("pos")
_set_lemma = _slot_setter("lemma")
_set_norm = _slot_setter("norm")


class _TokenBuilder:
    """Builds a Token without going through its frozen __setattr__: same slots as Token, so
    CPython lets the finished object's class be switched to Token (`__class__` assignment
    between layout-compatible classes), which is cheaper than any Token.__init__."""

    __slots__ = Token.__slots__

    def __init__(
        self, text: str, start: int, end: int, pos: str, lemma: str, norm: str = ""
    ) -> None:
        self.text = text
        self.start = start
        self.end = end
        self.pos = pos
        self.lemma = lemma
        self.norm = norm
        self.__class__ = Token  # type: ignore[assignment]


#: `new_token(text, start, end, pos, lemma, norm="")` is `Token(...)` (the very same kind of
#: object) for backends' inner loops, about twice as fast as calling Token.
new_token = cast("Callable[[str, int, int, str, str, str], Token]", _TokenBuilder)


@runtime_checkable
class Tokenizer(Protocol):
    """A word tokenizer for one language."""

    lang: str

    def tokenize(self, text: str) -> list[Token]:
        """Tokens of `text` in order; whitespace is not a token."""
        ...

    def tokenize_batch(self, texts: Iterable[str]) -> list[list[Token]]:
        """`[tokenize(t) for t in texts]`, possibly faster."""
        ...


class MissingBackendError(ImportError):
    """A language's backend library is not installed; the message says how to install it.

    `extra` names the project's extra (`pip install 'mmm-translate[ja]'`); a plugin passes
    `install`, the exact command, instead.
    """

    def __init__(
        self, lang: str, what: str, extra: str = "", *, install: str | None = None
    ) -> None:
        self.lang = lang
        command = install or (
            f"pip install 'mmm-translate[{extra}]'  (or, in a checkout: pip install -e '.[{extra}]')"
        )
        super().__init__(
            f"the {lang!r} word tokenizer needs {what}, which is not installed; "
            f"install it with: {command}"
        )
