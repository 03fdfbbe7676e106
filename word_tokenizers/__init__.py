"""Word tokenizers with character offsets and Universal POS tags, one per language.

    >>> import word_tokenizers
    >>> tok = word_tokenizers.get("ja")          # SudachiPy, split mode C
    >>> [t.text for t in tok.tokenize("東京都に住む")]

Backends are imported on first use. New languages plug in through the entry-point group
``word_tokenizers.languages`` (see :mod:`word_tokenizers.languages`).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from word_tokenizers.base import MissingBackendError, Token, Tokenizer
from word_tokenizers.languages import Language, available_languages, get_language

__all__ = [
    "Language",
    "MissingBackendError",
    "Token",
    "Tokenizer",
    "available_languages",
    "get",
    "get_language",
]


def get(lang: str, **options: Any) -> Tokenizer:
    """The word tokenizer of `lang`, built once per (lang, options) and then reused."""
    return _get(lang, tuple(sorted(options.items())))


@cache
def _get(lang: str, options: tuple[tuple[str, Any], ...]) -> Tokenizer:
    return get_language(lang).tokenizer(**dict(options))
