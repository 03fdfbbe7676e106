"""graphs.context: tokenizers load in the background; a loading error reaches the caller."""

from __future__ import annotations

import asyncio
import threading

import pytest

from graphs.context import BackgroundTokenizer, TranslateContext
from word_tokenizers import Token
from word_tokenizers.base import MissingBackendError


class _Words:
    lang = "xx"

    def tokenize(self, text: str) -> list[Token]:
        out, pos = [], 0
        for word in text.split():
            start = text.index(word, pos)
            out.append(Token(text=word, start=start, end=start + len(word), pos="X", lemma=word))
            pos = start + len(word)
        return out

    def tokenize_batch(self, texts: list[str]) -> list[list[Token]]:
        return [self.tokenize(t) for t in texts]


def test_graph_context_background_tokenizer_waits_for_its_load() -> None:
    gate = threading.Event()

    def load() -> _Words:
        gate.wait(5)
        return _Words()

    tok = BackgroundTokenizer("xx", load)
    assert not tok.is_loaded  # loading runs in its thread until the gate opens
    gate.set()
    assert [t.text for t in tok.tokenize("a bc")] == ["a", "bc"]
    assert tok.is_loaded


def test_graph_context_loading_error_is_raised_where_tokens_are_needed() -> None:
    def load() -> _Words:
        raise MissingBackendError("xx", "the xx tokenizer", "xx")

    tok = BackgroundTokenizer("xx", load)
    ctx = TranslateContext(
        translator=None,  # type: ignore[arg-type]  # not called here
        source_language=None,  # type: ignore[arg-type]
        target_languages={},
        target_tokenizers={"xx": tok},
    )
    with pytest.raises(MissingBackendError, match="xx"):
        asyncio.run(ctx.tokenizer_ready("xx"))
    with pytest.raises(MissingBackendError):
        ctx.tokenize("xx", "a b")
